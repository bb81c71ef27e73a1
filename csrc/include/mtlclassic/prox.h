// Proximal operators shared by the CPU and CUDA kernels.
//
// L2,1 (group lasso over rows): for a matrix W (rows j = features, columns = tasks)
//
//     prox_{tau ||.||_{2,1}}(W)_j = max(0, 1 - tau / ||W_j||_2) * W_j
//
// (row-wise group soft-thresholding; Argyriou, Evgeniou & Pontil, "Convex multi-task
// feature learning", Mach. Learn. 2008; Parikh & Boyd, "Proximal Algorithms", 2014, 6.5.4).
// A row with ||W_j|| <= tau (including an all-zero row) becomes exactly zero.
// The squared norm is accumulated in double for both float and double inputs.
#pragma once

#include <cmath>

#include "config.h"

namespace mtl {

// Scale factor max(0, 1 - tau / sqrt(sumsq)) for a row whose squared norm is sumsq.
// NaN in the row propagates (sumsq NaN -> factor NaN), as in the NumPy reference.
MTL_HD double l21_row_scale(double sumsq, double tau) {
    if (sumsq != sumsq) return sumsq;  // NaN
    const double norm = sqrt(sumsq);
    if (norm <= tau) return 0.0;
    return 1.0 - tau / norm;
}

// Serial prox of one contiguous row of length n, in place (out may alias in).
template <typename T>
MTL_HD void prox_l21_row(const T* in, T* out, index_t n, double tau) {
    double sumsq = 0.0;
    for (index_t k = 0; k < n; ++k) {
        const double v = static_cast<double>(in[k]);
        sumsq += v * v;
    }
    const double s = l21_row_scale(sumsq, tau);
    for (index_t k = 0; k < n; ++k) out[k] = static_cast<T>(s * static_cast<double>(in[k]));
}

}  // namespace mtl
