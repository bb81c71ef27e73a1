// Batched colour histograms on the CPU (math in csrc/include/mtlclassic/color.h).
#include <vector>

#include "common.h"
#include "images.h"
#include "mtlclassic/color.h"
#include "parallel.h"

namespace mtl {
namespace {

// out (n, grid_r * grid_c * n_bins): n_bins = b0*b1*b2 (joint) or b0+b1+b2 (per channel).
// Sizes are 64-bit; Python refuses a feature vector that does not fit in memory first.
void color_histograms(py::array images, py::array out, int space, int b0, int b1, int b2,
                      bool joint, int grid_r, int grid_c, int n_threads) {
    const ImageBatch s = batch_shape(images);
    require(space >= 0 && space <= 2, "unknown colour space");
    require(space == SPACE_GREY ? s.C == 1 : s.C == 3, "wrong number of channels for the space");
    require(b0 >= 1 && b1 >= 1 && b2 >= 1, "bins must be >= 1");
    require(grid_r >= 1 && grid_c >= 1 && grid_r <= s.H && grid_c <= s.W, "bad grid");
    const index_t n_bins = color_n_bins(space, joint, b0, b1, b2);
    const index_t nf = static_cast<index_t>(grid_r) * grid_c * n_bins;
    require(out.ndim() == 2 && out.shape(0) == s.n && out.shape(1) == nf,
            "out must have shape (n, grid_r * grid_c * n_bins)");
    dispatch_in_out(images, out, [&](auto in_tag, auto out_tag) {
        using InT = decltype(in_tag);
        using OutT = decltype(out_tag);
        using T = std::conditional_t<std::is_same_v<InT, float>, float, double>;
        const InT* src = static_cast<const InT*>(images.data());
        OutT* dst = static_cast<OutT*>(out.mutable_data());
        py::gil_scoped_release nogil;
        parallel_for(s.n, n_threads, [&](index_t b, index_t e) {
            std::vector<double> h(static_cast<size_t>(n_bins));
            for (index_t i = b; i < e; ++i) {
                const InT* img = src + i * s.H * s.W * s.C;
                for (int gi = 0; gi < grid_r; ++gi) {
                    const index_t r0 = gi * s.H / grid_r, r1 = (gi + 1) * s.H / grid_r;
                    for (int gj = 0; gj < grid_c; ++gj) {
                        const index_t c0 = gj * s.W / grid_c, c1 = (gj + 1) * s.W / grid_c;
                        std::fill(h.begin(), h.end(), 0.0);
                        for (index_t r = r0; r < r1; ++r)
                            for (index_t c = c0; c < c1; ++c) {
                                const InT* p = img + (r * s.W + c) * s.C;
                                if (space == SPACE_GREY) {
                                    h[unit_bin(to_unit<InT, T>(p[0]), b0)] += 1;
                                    continue;
                                }
                                T x = to_unit<InT, T>(p[0]), y = to_unit<InT, T>(p[1]),
                                  z = to_unit<InT, T>(p[2]);
                                if (space == SPACE_HSV) rgb_to_hsv<T>(x, y, z, &x, &y, &z);
                                const index_t k0 = unit_bin(x, b0), k1 = unit_bin(y, b1),
                                              k2 = unit_bin(z, b2);
                                if (joint) {
                                    h[(k0 * b1 + k1) * b2 + k2] += 1;
                                } else {
                                    h[k0] += 1;
                                    h[b0 + k1] += 1;
                                    h[b0 + b1 + k2] += 1;
                                }
                            }
                        const double area = static_cast<double>((r1 - r0) * (c1 - c0));
                        OutT* o = dst + i * nf + (gi * grid_c + gj) * n_bins;
                        for (index_t k = 0; k < n_bins; ++k)
                            o[k] = static_cast<OutT>(h[static_cast<size_t>(k)] / area);
                    }
                }
            }
        });
    });
}

}  // namespace

void register_color(py::module_& m) {
    m.def("color_histograms", &color_histograms, py::arg("images"), py::arg("out"),
          py::arg("space"), py::arg("b0"), py::arg("b1"), py::arg("b2"), py::arg("joint"),
          py::arg("grid_r"), py::arg("grid_c"), py::arg("n_threads") = 1);
}

}  // namespace mtl
