// Block coordinate descent (BCD) step of the L2,1 penalty, shared math.
//
// One block is a row W_j (T entries) of the coefficient matrix. With g = grad_j f(W) the
// block gradient of the smooth part and L_j a Lipschitz constant of grad_j f in W_j, the
// block step is the proximal step
//
//     W_j <- prox_{(alpha / L_j) ||.||_2}(W_j - g / L_j)
//          = max(0, 1 - (alpha / L_j) / ||v||) v,   v = W_j - g / L_j
//
// (Tseng & Yun, Math. Program. 2009; for the group lasso: Massias, Gramfort & Salmon,
// "Celer", ICML 2018; Bertrand et al., "Beyond L1", NeurIPS 2022). The kernels write the
// change delta = W_j(new) - W_j(old) so that the caller can update the residual / the
// Gram products.
#pragma once

#include "config.h"
#include "prox.h"

namespace mtl {

// Block step of row w (length T) with gradient g: writes delta (length T) and returns
// whether any entry changed. w is not modified.
MTL_HD bool l21_block_step(const double* w, const double* g, double L, double alpha,
                           double* delta, index_t T) {
    double sumsq = 0.0;
    for (index_t t = 0; t < T; ++t) {
        const double v = w[t] - g[t] / L;
        delta[t] = v;  // v, for now
        sumsq += v * v;
    }
    const double s = l21_row_scale(sumsq, alpha / L);
    bool changed = false;
    for (index_t t = 0; t < T; ++t) {
        delta[t] = s * delta[t] - w[t];
        changed = changed || (delta[t] != 0.0);
    }
    return changed;
}

}  // namespace mtl
