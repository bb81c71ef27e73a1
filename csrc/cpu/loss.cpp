// Fused masked loss + gradient pass of the multi-task solver (math in mtlclassic/loss.h):
// one sweep over Z, Y, A writes G and returns the loss, threads over rows, the per-thread
// partial sums added in thread order (deterministic for a given thread count).
#include <algorithm>
#include <vector>

#include "common.h"
#include "mtlclassic/loss.h"
#include "parallel.h"

namespace mtl {
namespace {

double loss_grad(carray<double> Z, carray<double> Y, carray<double> A, carray<double> G, int kind,
                 int n_threads) {
    require(kind == LOSS_SQUARED || kind == LOSS_LOGISTIC, "unknown loss");
    require(Z.ndim() == 2, "Z must be 2-D");
    for (const py::array* a : {static_cast<const py::array*>(&Y), static_cast<const py::array*>(&A),
                               static_cast<const py::array*>(&G)})
        require(a->ndim() == 2 && a->shape(0) == Z.shape(0) && a->shape(1) == Z.shape(1),
                "Z, Y, A and G must have one shape");
    require(G.writeable(), "G must be writeable");
    const index_t n = Z.shape(0), T = Z.shape(1);
    const double *z = Z.data(), *y = Y.data(), *a = A.data();
    double* g = G.mutable_data();
    const int nt = static_cast<int>(std::max<index_t>(1, std::min<index_t>(n_threads, n)));
    std::vector<double> partial(static_cast<size_t>(nt), 0.0);
    {
        py::gil_scoped_release nogil;
        const index_t chunk = (n + nt - 1) / nt;
        parallel_for(nt, nt, [&](index_t b, index_t e) {
            for (index_t k = b; k < e; ++k) {
                double s = 0.0;
                const index_t r0 = k * chunk, r1 = std::min(n, r0 + chunk);
                for (index_t i = r0 * T; i < r1 * T; ++i) s += masked_loss_grad(kind, z[i], y[i], a[i], g + i);
                partial[static_cast<size_t>(k)] = s;
            }
        });
    }
    double total = 0.0;
    for (double p : partial) total += p;
    return total;
}

}  // namespace

void register_loss(py::module_& m) {
    m.def("loss_grad", &loss_grad, py::arg("Z"), py::arg("Y"), py::arg("A"), py::arg("G"),
          py::arg("kind"), py::arg("n_threads") = 1,
          "Masked loss sum(A * l(Y, Z)); writes G = A * dl/dZ (float64, C-contiguous).");
}

}  // namespace mtl
