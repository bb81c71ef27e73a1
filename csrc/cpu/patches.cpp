// Patches resampled around sub-pixel points of a batch of grey images (math in
// mtlclassic/patch.h), threaded over (image, point) pairs, GIL released. Images may have
// different sizes: they come as a list of 2-D arrays of one dtype.
#include <algorithm>
#include <cmath>
#include <vector>

#include "common.h"
#include "images.h"
#include "mtlclassic/patch.h"
#include "parallel.h"

namespace mtl {
namespace {

struct ImageRef {
    const void* data;
    index_t H, W;
};

template <typename InT>
void patches_typed(const std::vector<ImageRef>& imgs, const double* pts, const double* sides,
                   index_t m, int P, double* out, int n_threads) {
    const index_t n = static_cast<index_t>(imgs.size());
    parallel_for(n * m, n_threads, [&](index_t b, index_t e) {
        for (index_t k = b; k < e; ++k) {
            const ImageRef& im = imgs[static_cast<size_t>(k / m)];
            const InT* px = static_cast<const InT*>(im.data);
            const double cx = pts[2 * k], cy = pts[2 * k + 1], s = sides[k];
            double* o = out + k * P * P;
            for (int r = 0; r < P; ++r)
                for (int c = 0; c < P; ++c) {
                    double x, y;
                    patch_sample_xy(cx, cy, s, P, r, c, &x, &y);
                    o[r * P + c] = bilinear_sample(px, im.H, im.W, x, y);
                }
        }
    });
}

void patches(py::list images, carray<double> points, carray<double> sides, int P,
             carray<double> out, int n_threads) {
    const index_t n = static_cast<index_t>(images.size());
    require(P >= 1, "patch_size must be >= 1");
    require(points.ndim() == 3 && points.shape(0) == n && points.shape(2) == 2,
            "points must be (n_images, n_points, 2)");
    const index_t m = points.shape(1);
    require(sides.ndim() == 2 && sides.shape(0) == n && sides.shape(1) == m,
            "sides must be (n_images, n_points)");
    require(out.ndim() == 4 && out.shape(0) == n && out.shape(1) == m && out.shape(2) == P &&
                out.shape(3) == P,
            "out must be (n_images, n_points, patch_size, patch_size)");
    require(out.writeable(), "out must be writeable");
    std::vector<ImageRef> refs;
    refs.reserve(static_cast<size_t>(n));
    DType kind = DType::OTHER;
    for (index_t i = 0; i < n; ++i) {
        py::array a = images[static_cast<size_t>(i)].cast<py::array>();
        require(a.ndim() == 2 && a.shape(0) >= 1 && a.shape(1) >= 1,
                "every image must be a non-empty 2-D array");
        require((a.flags() & py::array::c_style) != 0, "every image must be C-contiguous");
        const DType d = dtype_of(a);
        require(d != DType::OTHER, "images must be uint8, uint16, float32 or float64");
        require(i == 0 || d == kind, "images must share one dtype");
        kind = d;
        refs.push_back({a.data(), a.shape(0), a.shape(1)});
    }
    const double *p = points.data(), *s = sides.data();
    for (index_t k = 0; k < n * m; ++k)
        require(std::isfinite(p[2 * k]) && std::isfinite(p[2 * k + 1]) && std::isfinite(s[k]) &&
                    s[k] > 0,
                "points must be finite and sides finite and > 0");
    if (n == 0) return;
    double* o = out.mutable_data();
    py::gil_scoped_release nogil;
    dispatch_dtype(kind, [&](auto tag) {
        patches_typed<decltype(tag)>(refs, p, s, m, P, o, n_threads);
    });
}

}  // namespace

void register_patches(py::module_& m) {
    // out is written in place: noconvert (a converted copy would be written and dropped)
    m.def("patches", &patches, py::arg("images"), py::arg("points"), py::arg("sides"),
          py::arg("patch_size"), py::arg("out").noconvert(), py::arg("n_threads") = 1,
          "Bilinear P x P patches around (x, y) points (mtlclassic/patch.h): images a list of "
          "2-D arrays of one dtype, points (n, m, 2), sides (n, m), out (n, m, P, P) float64.");
}

}  // namespace mtl
