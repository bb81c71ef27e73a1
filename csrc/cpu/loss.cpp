// Fused masked loss + gradient pass of the multi-task solver (math in mtlclassic/loss.h):
// one sweep over Z, Y, A writes G and returns the loss. The entries are summed in fixed
// blocks whose sums are added in block order, so the loss does not depend on the thread
// count (a fit gives the same bits for every n_jobs); both sums are compensated (sum.h).
// G may be Z itself in loss_grad and in a grouped pass without softmax tasks: each entry's
// z is read before its g is written (a softmax task reads its scores again after writing
// its first gradients).
#include <algorithm>
#include <cstdint>

#include "common.h"
#include "mtlclassic/loss.h"
#include "mtlclassic/sum.h"
#include "parallel.h"

namespace mtl {
namespace {

// Y: float64, or int8 (a classifier's targets in {-1, +1}: an eighth of float64's bytes,
// where the (n, T) arrays, not X, set a fit's memory); the same bits either way
enum class YType { f64, i8 };

YType check_loss_arrays(const carray<double>& Z, const py::array& Y, const carray<double>& A,
                        const carray<double>& G, int kind) {
    require(kind == LOSS_SQUARED || kind == LOSS_LOGISTIC, "unknown loss");
    require(Z.ndim() == 2, "Z must be 2-D");
    for (const py::array* a : {&Y, static_cast<const py::array*>(&G)})
        require(a->ndim() == 2 && a->shape(0) == Z.shape(0) && a->shape(1) == Z.shape(1),
                "Z, Y, A and G must have one shape");
    // A: one weight per entry, or one row (1, T) of weights shared by every row (no
    // sample weights, every label present: no (n, T) array of copies)
    require(A.ndim() == 2 && (A.shape(0) == Z.shape(0) || A.shape(0) == 1) &&
                A.shape(1) == Z.shape(1),
            "A must have Z's shape, or one row of Z's width");
    require(G.writeable(), "G must be writeable");
    const bool f64 = py::isinstance<py::array_t<double>>(Y);
    require(f64 || py::isinstance<py::array_t<std::int8_t>>(Y), "Y must be float64 or int8");
    require((Y.flags() & py::array::c_style) != 0, "Y must be C-contiguous");
    return f64 ? YType::f64 : YType::i8;
}

// Calls f with Y's data as const double* or const int8_t*
template <typename F>
auto with_targets(const py::array& Y, YType t, F&& f) {
    return t == YType::f64 ? f(static_cast<const double*>(Y.data()))
                           : f(static_cast<const std::int8_t*>(Y.data()));
}

double loss_grad(carray<double> Z, py::array Y, carray<double> A, carray<double> G, int kind,
                 int n_threads) {
    const YType yt = check_loss_arrays(Z, Y, A, G, kind);
    const index_t n = Z.shape(0), T = Z.shape(1);
    const double *z = Z.data(), *a = A.data();
    const bool row = A.shape(0) == 1 && n != 1;  // one row of weights for every row
    double* g = G.mutable_data();
    // fixed blocks of kBlock entries, their sums added in block order: the loss is the same
    // to the last bit for every n_threads (parallel.h)
    constexpr index_t kBlock = 4096, kRun = 32;
    py::gil_scoped_release nogil;
    return with_targets(Y, yt, [&](auto y) {
        return parallel_block_sum(n * T, kBlock, n_threads, [&](index_t b, index_t e) {
            // runs of kRun entries summed plainly, the runs' sums compensated (sum.h: a
            // running sum's rounding was FISTA's noise; compensating every entry made the
            // squared loss 1.45x slower, runs of 32 cost nothing measurable)
            CompensatedSum s;
            for (index_t r = b, j = b % T; r < e; r += kRun) {
                const index_t re = std::min(e, r + kRun);
                double run = 0.0;
                if (row) {  // entry i's weight a[i mod T], the column carried along
                    for (index_t i = r; i < re; ++i) {
                        run += masked_loss_grad(kind, z[i], static_cast<double>(y[i]), a[j],
                                                g + i);
                        if (++j == T) j = 0;
                    }
                } else {
                    for (index_t i = r; i < re; ++i)
                        run += masked_loss_grad(kind, z[i], static_cast<double>(y[i]), a[i],
                                                g + i);
                }
                s.add(run);
            }
            return s.value();
        });
    });
}

double loss_grad_grouped(carray<double> Z, py::array Y, carray<double> A, carray<double> G,
                         py::array_t<int, py::array::c_style | py::array::forcecast> group,
                         int kind, int n_threads) {
    const YType yt = check_loss_arrays(Z, Y, A, G, kind);
    const index_t n = Z.shape(0), T = Z.shape(1);
    require(group.ndim() == 1 && group.shape(0) == T, "group must have one entry per column");
    const int* gr = group.data();
    for (index_t j = 0; j < T;) {  // a valid layout: 1, -1, or K >= 2 then K - 1 zeros
        const int K = gr[j] == -1 ? 1 : gr[j];
        require(K >= 1 && j + K <= T,
                "group: an entry must be 1, -1 (squared column) or a size K >= 2 that fits in "
                "the row");
        for (index_t q = j + 1; q < j + K; ++q) require(gr[q] == 0, "group: K - 1 zeros must follow a size K");
        j += K;
    }
    const double *z = Z.data(), *a = A.data();
    const index_t a_stride = A.shape(0) == 1 ? 0 : T;  // one row of weights for every row
    double* g = G.mutable_data();
    // fixed blocks of rows (about 4096 entries each), block sums in block order: the same
    // bits for every n_threads
    const index_t rows_per_block = std::max<index_t>(1, 4096 / std::max<index_t>(T, 1));
    py::gil_scoped_release nogil;
    return with_targets(Y, yt, [&](auto y) {
        return parallel_block_sum(n, rows_per_block, n_threads, [&](index_t b, index_t e) {
            CompensatedSum s;
            for (index_t i = b; i < e; ++i)
                s.add(grouped_row_loss_grad(kind, z + i * T, y + i * T, a + i * a_stride,
                                            g + i * T, gr, T));
            return s.value();
        });
    });
}

}  // namespace

void register_loss(py::module_& m) {
    // G is written in place: noconvert, so that a float32, Fortran-ordered or strided G is a
    // TypeError and not a converted copy written and dropped (the caller's G untouched)
    m.def("loss_grad_grouped", &loss_grad_grouped, py::arg("Z"), py::arg("Y"), py::arg("A"),
          py::arg("G").noconvert(), py::arg("group"), py::arg("kind"), py::arg("n_threads") = 1,
          "Masked loss with softmax groups (mtlclassic/loss.h): group[j] = K >= 2 starts a "
          "K-class softmax task (K - 1 zeros follow), 1 is a column of the element-wise loss "
          "kind, -1 a squared-loss column. A: Z's shape, or one row (1, T) for every row. "
          "Writes G; returns the loss (float64, C-contiguous; Y float64 or int8).");
    m.def("loss_grad", &loss_grad, py::arg("Z"), py::arg("Y"), py::arg("A"), py::arg("G").noconvert(),
          py::arg("kind"), py::arg("n_threads") = 1,
          "Masked loss sum(A * l(Y, Z)); writes G = A * dl/dZ (float64, C-contiguous; Y "
          "float64 or int8). A: Z's shape, or one row (1, T) of weights for every row.");
}

}  // namespace mtl
