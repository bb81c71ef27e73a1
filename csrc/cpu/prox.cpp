// Bindings of the proximal operators (math in csrc/include/mtlclassic/prox.h).
#include "mtlclassic/prox.h"

#include "common.h"
#include "parallel.h"

namespace mtl {
namespace {

template <typename T>
void prox_l21(py::array W, double tau, py::array out, int n_threads) {
    require_c_contiguous<T>(W, "W");
    require_c_contiguous<T>(out, "out");
    require(W.ndim() == 2 && out.ndim() == 2, "W and out must be 2-D");
    require(W.shape(0) == out.shape(0) && W.shape(1) == out.shape(1), "out must have W's shape");
    require(out.writeable(), "out must be writeable");
    require(tau >= 0.0, "tau must be >= 0");
    const index_t rows = W.shape(0), cols = W.shape(1);
    const T* in = static_cast<const T*>(W.data());
    T* o = static_cast<T*>(out.mutable_data());
    py::gil_scoped_release nogil;
    parallel_for(rows, n_threads, [&](index_t b, index_t e) {
        for (index_t j = b; j < e; ++j) prox_l21_row<T>(in + j * cols, o + j * cols, cols, tau);
    });
}

}  // namespace

void register_prox(py::module_& m) {
    m.def("prox_l21_f32", &prox_l21<float>, py::arg("W"), py::arg("tau"), py::arg("out"),
          py::arg("n_threads") = 1,
          "Row-wise group soft-threshold out_j = max(0, 1 - tau/||W_j||) W_j (float32).");
    m.def("prox_l21_f64", &prox_l21<double>, py::arg("W"), py::arg("tau"), py::arg("out"),
          py::arg("n_threads") = 1,
          "Row-wise group soft-threshold out_j = max(0, 1 - tau/||W_j||) W_j (float64).");
}

}  // namespace mtl
