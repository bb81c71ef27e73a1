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
#include <cstdint>
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

// out[i, k] = double(X[start + i, c_k]) - mean_k, c_k = cols[k] (or k without cols): a
// block of rows of the centred float64 X that the solvers multiply by, taken from float32
// X in one pass (NumPy's cast and subtraction took two, ~0.7 ns an entry: a third of a
// float32 fit's product with X). mean holds the means of the columns taken.
void centred_rows(carray<float> X, py::ssize_t start, carray<double> mean,
                  carray<double> out, py::object cols_obj) {
    require(X.ndim() == 2 && out.ndim() == 2 && mean.ndim() == 1, "bad dimensions");
    const py::ssize_t n = X.shape(0), d = X.shape(1);
    const py::ssize_t rows = out.shape(0), k = out.shape(1);
    require(start >= 0 && start <= n && rows <= n - start, "rows out of range");
    require(mean.shape(0) == k, "mean must have out's column count");
    const float* x = X.data() + start * d;
    const double* m = mean.data();
    double* o = out.mutable_data();
    if (cols_obj.is_none()) {
        require(k == d, "out must have X's column count");
        py::gil_scoped_release nogil;
        for (py::ssize_t i = 0; i < rows; ++i) {
            const float* xr = x + i * d;
            double* orow = o + i * d;
            for (py::ssize_t j = 0; j < d; ++j) orow[j] = static_cast<double>(xr[j]) - m[j];
        }
        return;
    }
    carray<std::int64_t> cols = cols_obj.cast<carray<std::int64_t>>();
    require(cols.ndim() == 1 && cols.shape(0) == k, "cols must have out's column count");
    const std::int64_t* c = cols.data();
    for (py::ssize_t j = 0; j < k; ++j) require(c[j] >= 0 && c[j] < d, "column out of range");
    py::gil_scoped_release nogil;
    for (py::ssize_t i = 0; i < rows; ++i) {
        const float* xr = x + i * d;
        double* orow = o + i * k;
        for (py::ssize_t j = 0; j < k; ++j) orow[j] = static_cast<double>(xr[c[j]]) - m[j];
    }
}

}  // namespace

void register_moments(py::module_& m) {
    m.def("centred_rows", &centred_rows, py::arg("X").noconvert(), py::arg("start"),
          py::arg("mean").noconvert(), py::arg("out").noconvert(), py::arg("cols"),
          "out = X[start:start + len(out), cols] - mean in float64, X C-contiguous float32");
    m.def("column_sums_top", &column_sums_top<double>, py::arg("X").noconvert(),
          "(column sums in row order, max |x|) of a C-contiguous float64 matrix");
    m.def("column_sums_top", &column_sums_top<float>, py::arg("X").noconvert(),
          "(column sums in float64, in row order, max |x|) of a C-contiguous float32 "
          "matrix");
}

}  // namespace mtl
