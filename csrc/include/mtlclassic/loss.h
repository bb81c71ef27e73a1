// Element-wise masked losses of the multi-task solver, shared by CPU and GPU.
//
// Each entry (i, t) has a weight a = s_i rho_t / n_t (0 where unlabelled); the kernels
// return a * l(y, z) and write g = a * dl/dz:
//   squared   l = 1/2 (z - y)^2,        dl/dz = z - y
//   logistic  l = log(1 + exp(-y z)),   dl/dz = -y / (1 + exp(y z)),  y in {-1, +1}
// computed without overflow (softplus and the logistic sigmoid in their stable forms).
#pragma once

#include <cmath>

#include "config.h"

namespace mtl {

enum LossKind : int { LOSS_SQUARED = 0, LOSS_LOGISTIC = 1 };

// log(1 + exp(x)), as np.logaddexp(0, x)
MTL_HD double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

// 1 / (1 + exp(-x))
MTL_HD double expit(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    const double e = exp(x);
    return e / (1.0 + e);
}

MTL_HD double masked_loss_grad(int kind, double z, double y, double a, double* g) {
    if (a == 0.0) {
        *g = 0.0;
        return 0.0;
    }
    if (kind == LOSS_SQUARED) {
        const double r = z - y;
        *g = a * r;
        return 0.5 * a * r * r;
    }
    const double m = y * z;
    *g = -a * y * expit(-m);
    return a * softplus(-m);
}

}  // namespace mtl
