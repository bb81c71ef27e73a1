// Element-wise masked losses of the multi-task solver, shared by CPU and GPU.
//
// Each entry (i, t) has a weight a = s_i rho_t / n_t (0 where unlabelled); the kernels
// return a * l(y, z) and write g = a * dl/dz:
//   squared   l = 1/2 (z - y)^2,        dl/dz = z - y
//   logistic  l = log(1 + exp(-y z)),   dl/dz = -y / (1 + exp(y z)),  y in {-1, +1}
// computed without overflow (softplus and the logistic sigmoid in their stable forms).
//
// The multinomial (softmax) loss of a K-class task couples its K columns in a row: with
// scores z_1..z_K, the true class k (the column whose y is +1) and the row's weight a,
//   l = log sum_j exp(z_j) - z_k,   dl/dz_j = p_j - [j == k],   p = softmax(z),
// the max subtracted first (no overflow). A row of a multi-task problem is a sequence of
// groups: size 1 (a column of the element-wise loss `kind`), -1 (a squared column whatever
// `kind` is: a regression task in a model of mixed task types) or K >= 2 (a softmax task).
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

// Softmax cross-entropy of K scores z[0..K-1] (y one-hot in {-1, +1}; no +1: no label),
// weight a: returns a l and writes g[j] = a dl/dz_j. y may be of another type than z
// (int8 targets of a classifier: an eighth of float64's bytes).
template <typename TZ, typename TY, typename TG>
MTL_HD double softmax_loss_grad(const TZ* z, const TY* y, int K, double a, TG* g) {
    int k = -1;
    for (int j = 0; j < K; ++j)
        if (static_cast<double>(y[j]) > 0) k = j;
    if (a == 0.0 || k < 0) {
        for (int j = 0; j < K; ++j) g[j] = TG(0);
        return 0.0;
    }
    double m = static_cast<double>(z[0]);
    for (int j = 1; j < K; ++j) m = fmax(m, static_cast<double>(z[j]));
    double s = 0.0;
    for (int j = 0; j < K; ++j) s += exp(static_cast<double>(z[j]) - m);
    const double lse = m + log(s);
    for (int j = 0; j < K; ++j) {
        const double p = exp(static_cast<double>(z[j]) - lse);
        g[j] = static_cast<TG>(a * (p - (j == k ? 1.0 : 0.0)));
    }
    return a * (lse - static_cast<double>(z[k]));
}

// One row of T columns in groups: group[j] = K >= 2 at the first column of a softmax
// task, 0 at its other columns, 1 for a column of the element-wise loss `kind`, -1 for a
// squared-loss column. The softmax weight is the group's first a. y: T or int8 (as above).
template <typename T, typename TY>
MTL_HD double grouped_row_loss_grad(int kind, const T* z, const TY* y, const T* a, T* g,
                                    const int* group, long long n_cols) {
    double s = 0.0;
    long long j = 0;
    while (j < n_cols) {
        const int K = group[j];
        if (K >= 2) {
            s += softmax_loss_grad(z + j, y + j, K, static_cast<double>(a[j]), g + j);
            j += K;
        } else {
            double gj;
            s += masked_loss_grad(K == -1 ? static_cast<int>(LOSS_SQUARED) : kind,
                                  static_cast<double>(z[j]), static_cast<double>(y[j]),
                                  static_cast<double>(a[j]), &gj);
            g[j] = static_cast<T>(gj);
            ++j;
        }
    }
    return s;
}

}  // namespace mtl
