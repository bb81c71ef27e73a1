// Batched Gabor filter-bank features on the CPU: per filter, the magnitude of the
// complex response, then its mean and variance in each cell of a grid.
#include <algorithm>
#include <cmath>
#include <vector>

#include "common.h"
#include "images.h"
#include "mtlclassic/gabor.h"
#include "parallel.h"

namespace mtl {
namespace {

struct Kernel {
    index_t kh, kw;
    const double* re;  // flipped (correlation form), row-major kh x kw
    const double* im;
};

// kernels: list of (re, im) float64 arrays of odd shape, already flipped so that the
// response is a correlation: out[r, c] = sum_ab k[a, b] in[r + a - kh/2, c + b - kw/2].
void gabor_features(py::array images, py::array out, py::list kernels, int grid_r, int grid_c,
                    int n_threads) {
    const ImageBatch s = batch_shape(images);
    require(s.C == 1, "Gabor needs grey images (C == 1)");
    require(grid_r >= 1 && grid_c >= 1 && grid_r <= s.H && grid_c <= s.W, "bad grid");
    std::vector<Kernel> ks;
    std::vector<carray<double>> keep;  // holds references while the GIL is released
    index_t pad_r = 0, pad_c = 0;
    for (auto item : kernels) {
        auto pair = item.cast<py::tuple>();
        require(pair.size() == 2, "each kernel is a (real, imag) pair");
        auto re = pair[0].cast<carray<double>>(), im = pair[1].cast<carray<double>>();
        require(re.ndim() == 2 && im.ndim() == 2 && re.shape(0) == im.shape(0) &&
                    re.shape(1) == im.shape(1) && re.shape(0) % 2 == 1 && re.shape(1) % 2 == 1,
                "kernels must be odd-sized 2-D (real, imag) pairs of one shape");
        keep.push_back(re);
        keep.push_back(im);
        ks.push_back({re.shape(0), re.shape(1), re.data(), im.data()});
        pad_r = std::max(pad_r, re.shape(0) / 2);
        pad_c = std::max(pad_c, re.shape(1) / 2);
    }
    require(!ks.empty(), "no kernels");
    const index_t nf = static_cast<index_t>(ks.size()) * grid_r * grid_c * 2;
    require(out.ndim() == 2 && out.shape(0) == s.n && out.shape(1) == nf,
            "out must have shape (n, n_filters * grid_r * grid_c * 2)");
    dispatch_in_out(images, out, [&](auto in_tag, auto out_tag) {
        using InT = decltype(in_tag);
        using OutT = decltype(out_tag);
        const InT* src = static_cast<const InT*>(images.data());
        OutT* dst = static_cast<OutT*>(out.mutable_data());
        const index_t H = s.H, W = s.W, PH = H + 2 * pad_r, PW = W + 2 * pad_c;
        py::gil_scoped_release nogil;
        parallel_for(s.n, n_threads, [&](index_t b, index_t e) {
            std::vector<double> padded(static_cast<size_t>(PH * PW)), mag(static_cast<size_t>(H * W));
            std::vector<double> acc_re(static_cast<size_t>(W)), acc_im(static_cast<size_t>(W));
            for (index_t i = b; i < e; ++i) {
                const InT* img = src + i * H * W;
                for (index_t r = 0; r < PH; ++r)
                    for (index_t c = 0; c < PW; ++c)
                        padded[static_cast<size_t>(r * PW + c)] =
                            static_cast<double>(img[gabor_pad_source(r, c, pad_r, pad_c, H, W)]);
                OutT* o = dst + i * nf;
                for (const Kernel& k : ks) {
                    const index_t hr = k.kh / 2, hc = k.kw / 2;
                    for (index_t r = 0; r < H; ++r) {
                        gabor_row_response(padded.data() + (r + pad_r - hr) * PW + pad_c - hc, PW,
                                           k.re, k.im, k.kh, k.kw, W, acc_re.data(), acc_im.data());
                        for (index_t c = 0; c < W; ++c)
                            mag[static_cast<size_t>(r * W + c)] = gabor_magnitude(
                                acc_re[static_cast<size_t>(c)], acc_im[static_cast<size_t>(c)]);
                    }
                    for (int gi = 0; gi < grid_r; ++gi)
                        for (int gj = 0; gj < grid_c; ++gj) {
                            double mean, var;
                            gabor_cell_mean_var(mag.data(), W, gabor_cell_edge(gi, H, grid_r),
                                                gabor_cell_edge(gi + 1, H, grid_r),
                                                gabor_cell_edge(gj, W, grid_c),
                                                gabor_cell_edge(gj + 1, W, grid_c), &mean, &var);
                            *o++ = static_cast<OutT>(mean);
                            *o++ = static_cast<OutT>(var);
                        }
                }
            }
        });
    });
}

// Complex response of one kernel on one float64 image (H, W) (for tests of the shared
// per-pixel math): out (2, H, W) = (real, imag), computed pixel by pixel with
// gabor_pixel_response (per_pixel, the GPU's form) or row by row with gabor_row_response
// (the CPU kernel's form); both must give the same bits.
void gabor_response(carray<double> image, carray<double> re, carray<double> im,
                    carray<double> out, bool per_pixel) {
    require(image.ndim() == 2, "image must be (H, W)");
    require(re.ndim() == 2 && im.ndim() == 2 && re.shape(0) == im.shape(0) &&
                re.shape(1) == im.shape(1) && re.shape(0) % 2 == 1 && re.shape(1) % 2 == 1,
            "re and im must be odd-sized 2-D arrays of one shape");
    const index_t H = image.shape(0), W = image.shape(1), kh = re.shape(0), kw = re.shape(1);
    require(out.ndim() == 3 && out.shape(0) == 2 && out.shape(1) == H && out.shape(2) == W,
            "out must be (2, H, W)");
    const index_t pad_r = kh / 2, pad_c = kw / 2, PW = W + 2 * pad_c, PH = H + 2 * pad_r;
    std::vector<double> padded(static_cast<size_t>(PH * PW));
    for (index_t r = 0; r < PH; ++r)
        for (index_t c = 0; c < PW; ++c)
            padded[static_cast<size_t>(r * PW + c)] =
                image.data()[gabor_pad_source(r, c, pad_r, pad_c, H, W)];
    double* o_re = out.mutable_data();
    double* o_im = o_re + H * W;
    for (index_t r = 0; r < H; ++r) {
        if (per_pixel) {
            for (index_t c = 0; c < W; ++c)
                gabor_pixel_response(padded.data() + r * PW + c, PW, re.data(), im.data(), kh, kw,
                                     o_re + r * W + c, o_im + r * W + c);
        } else {
            gabor_row_response(padded.data() + r * PW, PW, re.data(), im.data(), kh, kw, W,
                               o_re + r * W, o_im + r * W);
        }
    }
}

}  // namespace

void register_gabor(py::module_& m) {
    m.def("gabor_features", &gabor_features, py::arg("images"), py::arg("out"),
          py::arg("kernels"), py::arg("grid_r"), py::arg("grid_c"), py::arg("n_threads") = 1);
    m.def("gabor_response", &gabor_response, py::arg("image"), py::arg("re"), py::arg("im"),
          py::arg("out"), py::arg("per_pixel"));
}

}  // namespace mtl
