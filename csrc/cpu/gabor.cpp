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
                for (index_t r = 0; r < PH; ++r) {
                    const index_t sr = reflect_index(r - pad_r, H);
                    for (index_t c = 0; c < PW; ++c)
                        padded[static_cast<size_t>(r * PW + c)] =
                            static_cast<double>(img[sr * W + reflect_index(c - pad_c, W)]);
                }
                OutT* o = dst + i * nf;
                for (const Kernel& k : ks) {
                    const index_t hr = k.kh / 2, hc = k.kw / 2;
                    for (index_t r = 0; r < H; ++r) {
                        std::fill(acc_re.begin(), acc_re.end(), 0.0);
                        std::fill(acc_im.begin(), acc_im.end(), 0.0);
                        for (index_t a = 0; a < k.kh; ++a) {
                            const double* row = padded.data() + (r + pad_r + a - hr) * PW + pad_c - hc;
                            for (index_t bb = 0; bb < k.kw; ++bb) {
                                const double wr = k.re[a * k.kw + bb], wi = k.im[a * k.kw + bb];
                                const double* p = row + bb;
                                for (index_t c = 0; c < W; ++c) {
                                    acc_re[static_cast<size_t>(c)] += wr * p[c];
                                    acc_im[static_cast<size_t>(c)] += wi * p[c];
                                }
                            }
                        }
                        for (index_t c = 0; c < W; ++c)
                            mag[static_cast<size_t>(r * W + c)] =
                                std::hypot(acc_re[static_cast<size_t>(c)], acc_im[static_cast<size_t>(c)]);
                    }
                    // mean and (two-pass) variance of the magnitude in each grid cell
                    for (int gi = 0; gi < grid_r; ++gi) {
                        const index_t r0 = gi * H / grid_r, r1 = (gi + 1) * H / grid_r;
                        for (int gj = 0; gj < grid_c; ++gj) {
                            const index_t c0 = gj * W / grid_c, c1 = (gj + 1) * W / grid_c;
                            const double area = static_cast<double>((r1 - r0) * (c1 - c0));
                            double sum = 0.0;
                            for (index_t r = r0; r < r1; ++r)
                                for (index_t c = c0; c < c1; ++c) sum += mag[static_cast<size_t>(r * W + c)];
                            const double mean = sum / area;
                            double ss = 0.0;
                            for (index_t r = r0; r < r1; ++r)
                                for (index_t c = c0; c < c1; ++c) {
                                    const double d = mag[static_cast<size_t>(r * W + c)] - mean;
                                    ss += d * d;
                                }
                            *o++ = static_cast<OutT>(mean);
                            *o++ = static_cast<OutT>(ss / area);
                        }
                    }
                }
            }
        });
    });
}

}  // namespace

void register_gabor(py::module_& m) {
    m.def("gabor_features", &gabor_features, py::arg("images"), py::arg("out"),
          py::arg("kernels"), py::arg("grid_r"), py::arg("grid_c"), py::arg("n_threads") = 1);
}

}  // namespace mtl
