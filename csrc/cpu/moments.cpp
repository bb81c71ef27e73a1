// The fit's one pass over a dense X: its column sums and its largest magnitude.
//
// A fit checks that every entry of X is finite and that sums of squares of its entries
// cannot overflow (the largest magnitude against sqrt(max / max(n, d))), and, with free
// intercepts, takes the column means. One pass gives both: the sums (finite only if
// every entry is -- an infinite entry makes its column's sum infinite or NaN -- or,
// rarely, when a sum itself overflows: the caller's exact checks then decide) and
// max |x_ij|. The sums are taken in row order from +0, one addition per entry: the
// additions of NumPy's X.sum(axis=0) on a C-contiguous float64 array of two or more
// columns, so the same bits (one column is also F-contiguous, and NumPy then sums it
// pairwise); float32 X is summed in float64, as its float64 copy would be.
#include <algorithm>
#include <cmath>
#include <vector>

#include "common.h"

namespace mtl {
namespace {

template <typename T>
py::tuple column_sums_top(carray<T> X) {
    require(X.ndim() == 2, "X must be 2-D");
    const py::ssize_t n = X.shape(0), d = X.shape(1);
    py::array_t<double> sums(d);
    double* s = sums.mutable_data();
    const T* x = X.data();
    double top = 0.0;
    {
        py::gil_scoped_release nogil;
        std::vector<double> tops(d, 0.0);  // max |x| per column: vectorisable loops
        double* tp = tops.data();
        for (py::ssize_t j = 0; j < d; ++j) {
            s[j] = n ? 0.0 + static_cast<double>(x[j]) : 0.0;  // from +0, as NumPy
            tp[j] = std::fabs(s[j]);
        }
        py::ssize_t i = 1;
        // four rows a pass over the sums (each column's additions still in row order)
        for (; i + 4 <= n; i += 4) {
            const T *r0 = x + i * d, *r1 = r0 + d, *r2 = r1 + d, *r3 = r2 + d;
            for (py::ssize_t j = 0; j < d; ++j) {
                const double a0 = r0[j], a1 = r1[j], a2 = r2[j], a3 = r3[j];
                s[j] = (((s[j] + a0) + a1) + a2) + a3;
                const double m01 = std::max(std::fabs(a0), std::fabs(a1));
                const double m23 = std::max(std::fabs(a2), std::fabs(a3));
                tp[j] = std::max(tp[j], std::max(m01, m23));
            }
        }
        for (; i < n; ++i) {
            const T* r0 = x + i * d;
            for (py::ssize_t j = 0; j < d; ++j) {
                const double a0 = r0[j];
                s[j] += a0;
                tp[j] = std::max(tp[j], std::fabs(a0));
            }
        }
        for (py::ssize_t j = 0; j < d; ++j) top = std::max(top, tops[j]);
    }
    return py::make_tuple(sums, top);
}

}  // namespace

void register_moments(py::module_& m) {
    m.def("column_sums_top", &column_sums_top<double>, py::arg("X").noconvert(),
          "(column sums in row order, max |x|) of a C-contiguous float64 matrix");
    m.def("column_sums_top", &column_sums_top<float>, py::arg("X").noconvert(),
          "(column sums in float64, in row order, max |x|) of a C-contiguous float32 "
          "matrix");
}

}  // namespace mtl
