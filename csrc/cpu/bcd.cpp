// Epochs of block coordinate descent for the L2,1 penalty on a working set of rows (math
// of one block step in mtlclassic/bcd.h). Serial by nature (each step sees the previous
// one's update); the GIL is released. Python (mtlclassic.multitask._workingset) checks the
// arrays first; the checks below are the second line of defence.
//
// * bcd_l21_data: residual form. The loss sum_it A_it l(y_it, z_it) with Z = X_ws W + b
//   kept up to date: block j's gradient is sum_i x_ij A_it l'(y_it, z_it) (+ l2 W_j),
//   O(n T) per block, and a change delta of W_j adds x_j delta^T to Z. With free
//   intercepts every epoch ends with a step b_t -= (sum_i A_it l'(y_it, z_it)) / Lb_t
//   (exact for squared loss with Lb_t = sum_i A_it). Logistic loss: each block step
//   starts from the local curvature max_t sum_i x_ij^2 A_it l''(y_it, z_it) (+ l2), far
//   below the global bound L_j on confident predictions, and doubles it until the
//   sufficient-decrease test l(W + delta) - l(W) <= <grad, delta> + L/2 ||delta||^2 holds
//   (never beyond L_j, where it always holds: Tseng & Yun's step rule); the intercepts
//   likewise (a safeguarded Newton step).
// * bcd_l21_gram: Gram form for squared loss with every label present, sum_t c_t (1/2
//   w_t^T K w_t - w_t^T h_t) on the working set: block j's gradient is c_t ((K W)_jt -
//   H_jt) (+ l2 W_j), and a change delta adds K_:j delta^T to K W, O(p T) per block.
//
// * bcd_l21_rank1: residual form for squared loss with weights A_it = a_i c_t (every
//   label present): R = Z - Y (task-major inside), 3 n T memory operations a block
//   instead of 5, and blocks of rows taken together (R read once a block of rows; the
//   changes passed on within the block through its Gram matrix).
//
// All return the largest |change| of an entry of W during the last epoch.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "common.h"
#include "mtlclassic/bcd.h"
#include "mtlclassic/loss.h"

namespace mtl {
namespace {

using arr = py::array_t<double, py::array::c_style>;

void require_shape(const arr& a, index_t r, index_t c, const char* name) {
    require(a.ndim() == 2 && a.shape(0) == r && a.shape(1) == c,
            std::string(name) + ": wrong shape");
}

// max that keeps a NaN (a NaN in the data makes the epoch's largest change NaN, never a
// converged-looking 0)
inline double max_nan(double top, double v) {
    return (std::isnan(top) || std::isnan(v)) ? std::nan("") : std::max(top, v);
}

// The checks shared by the residual-form kernels: Xt (p, n), the in/out (n, T) array Z or
// R named `zname`, W (p, T), b and Lb (T,), L (p,) > 0, alpha, l2, n_epochs >= 0.
void check_residual_form(const arr& Xt, const arr& Z, const char* zname, const arr& W,
                         const arr& b, const arr& L, const arr& Lb, double alpha, double l2,
                         int n_epochs) {
    require(Xt.ndim() == 2 && W.ndim() == 2 && Z.ndim() == 2,
            std::string("Xt, W and ") + zname + " must be 2-D");
    const index_t p = Xt.shape(0), n = Xt.shape(1), T = W.shape(1);
    require(W.shape(0) == p, "W must have one row per row of Xt");
    require_shape(Z, n, T, zname);
    require(L.ndim() == 1 && L.shape(0) == p, "L must have one entry per row of W");
    require(b.ndim() == 1 && b.shape(0) == T && Lb.ndim() == 1 && Lb.shape(0) == T,
            "b and Lb must have one entry per column of W");
    require(Z.writeable() && W.writeable() && b.writeable(),
            std::string(zname) + ", W and b must be writeable");
    require(alpha >= 0.0 && l2 >= 0.0 && n_epochs >= 0, "alpha, l2, n_epochs must be >= 0");
    const double* lj = L.data();
    for (index_t j = 0; j < p; ++j) require(lj[j] > 0.0, "L must be > 0");
}

// l'(y, z) of the loss `kind` (squared: z - y; logistic: -y / (1 + exp(y z)))
inline double dloss(int kind, double y, double z) {
    if (kind == LOSS_SQUARED) return z - y;
    return -y * expit(-y * z);
}

// logistic loss change l(y, z + d) - l(y, z) = log1p(expit(-y z) expm1(-y d)): no
// cancellation between the two losses, so it is accurate to rounding relative to itself
// however small d is (the step test is then never decided by the rounding of l)
inline double logistic_change(double y, double z, double d) {
    return log1p(expit(-y * z) * expm1(-y * d));
}

// the loss change of row i (weights ai, T columns) when z moves by s * delta
inline double row_change(const double* ai, const double* yi, const double* zi, const double* delta,
                         double s, index_t T) {
    double c = 0.0;
    for (index_t t = 0; t < T; ++t)
        if (ai[t] != 0.0) c += ai[t] * logistic_change(yi[t], zi[t], s * delta[t]);
    return c;
}

// The hot loops, compiled for AVX2 as well as the baseline and picked at load time (GCC
// function multi-versioning; the same arithmetic in both, no FMA contraction: the build
// sets -ffp-contract=off). n rows of T columns, row-major.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define MTL_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define MTL_CLONES
#endif

// sum_i x_i a_i (z_i - y_i) over contiguous vectors, in four interleaved partial sums
// (a fixed order: the same bits on every run; vectorisable without reassociation)
MTL_CLONES double weighted_dot(const double* __restrict x, const double* __restrict a,
                               const double* __restrict z, const double* __restrict y,
                               index_t n) {
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    index_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += x[i] * (a[i] * (z[i] - y[i]));
        s1 += x[i + 1] * (a[i + 1] * (z[i + 1] - y[i + 1]));
        s2 += x[i + 2] * (a[i + 2] * (z[i + 2] - y[i + 2]));
        s3 += x[i + 3] * (a[i + 3] * (z[i + 3] - y[i + 3]));
    }
    for (; i < n; ++i) s0 += x[i] * (a[i] * (z[i] - y[i]));
    return (s0 + s1) + (s2 + s3);
}

// z += s x over n entries
MTL_CLONES void axpy(const double* __restrict x, double s, index_t n, double* __restrict z) {
    for (index_t i = 0; i < n; ++i) z[i] += s * x[i];
}

// (rows, cols) row-major -> (cols, rows) row-major
void transpose(const double* in, index_t rows, index_t cols, double* out) {
    for (index_t i = 0; i < rows; ++i)
        for (index_t t = 0; t < cols; ++t) out[t * rows + i] = in[i * cols + t];
}

// Squared loss in residual form on task-major copies (T, n) of Z, Y, A: each block's
// gradient is T weighted dot products over the samples, each update T axpys -- over
// task t's labelled range only, the rows from its first to its last A_it != 0 (tasks
// with their own rows, as School's 139 schools in its wide form, cost their own rows,
// not n each). Z outside a task's range is left as it was: every use of Z weighs it by
// A (loss, gradient, dual point), which is 0 there.
double epochs_squared(const double* x, const double* yt, const double* at, double* zt, double* w,
                      double* bb, const double* lj, const double* lb, index_t p, index_t n,
                      index_t T, double alpha, double l2, bool fit_intercept, int n_epochs) {
    std::vector<double> g(T), delta(T);
    std::vector<double> ones(n, 1.0);
    std::vector<index_t> lo(T, 0), len(T, 0);
    for (index_t t = 0; t < T; ++t) {
        const double* a = at + t * n;
        index_t first = 0, last = n;
        while (first < n && a[first] == 0.0) ++first;
        while (last > first && a[last - 1] == 0.0) --last;
        lo[t] = first;
        len[t] = last - first;
    }
    double top = 0.0;
    for (int epoch = 0; epoch < n_epochs; ++epoch) {
        top = 0.0;
        for (index_t j = 0; j < p; ++j) {
            const double* xj = x + j * n;
            double* wj = w + j * T;
            for (index_t t = 0; t < T; ++t) {
                const index_t o = t * n + lo[t];
                g[t] = weighted_dot(xj + lo[t], at + o, zt + o, yt + o, len[t]) + l2 * wj[t];
            }
            if (!l21_block_step(wj, g.data(), lj[j], alpha, delta.data(), T)) continue;
            for (index_t t = 0; t < T; ++t) {
                wj[t] += delta[t];
                top = max_nan(top, std::fabs(delta[t]));
                if (delta[t] != 0.0) axpy(xj + lo[t], delta[t], len[t], zt + t * n + lo[t]);
            }
        }
        if (!fit_intercept) continue;
        for (index_t t = 0; t < T; ++t) {  // the exact minimiser over b_t
            if (lb[t] <= 0.0) continue;
            const index_t o = t * n + lo[t];
            const double d = -weighted_dot(ones.data(), at + o, zt + o, yt + o, len[t]) / lb[t];
            bb[t] += d;
            if (d != 0.0) axpy(ones.data(), d, len[t], zt + o);
        }
    }
    return top;
}

double bcd_l21_data(arr Xt, arr Y, arr A, arr Z, arr W, arr b, arr L, arr Lb, double alpha,
                    double l2, int kind, bool fit_intercept, int n_epochs) {
    require(kind == LOSS_SQUARED || kind == LOSS_LOGISTIC, "unknown loss");
    check_residual_form(Xt, Z, "Z", W, b, L, Lb, alpha, l2, n_epochs);
    const index_t p = Xt.shape(0), n = Xt.shape(1), T = W.shape(1);
    require_shape(Y, n, T, "Y");
    require_shape(A, n, T, "A");
    const double *x = Xt.data(), *y = Y.data(), *a = A.data(), *lj = L.data(),
                 *lb = Lb.data();
    double *z = Z.mutable_data(), *w = W.mutable_data(), *bb = b.mutable_data();
    const bool logistic = kind == LOSS_LOGISTIC;
    py::gil_scoped_release nogil;
    if (!logistic) {
        std::vector<double> zt(n * T), yt(n * T), at(n * T);
        transpose(z, n, T, zt.data());
        transpose(y, n, T, yt.data());
        transpose(a, n, T, at.data());
        const double top = epochs_squared(x, yt.data(), at.data(), zt.data(), w, bb, lj, lb, p,
                                          n, T, alpha, l2, fit_intercept, n_epochs);
        transpose(zt.data(), T, n, z);
        return top;
    }
    std::vector<double> g(T), h(T), delta(T);
    double top = 0.0;
    for (int epoch = 0; epoch < n_epochs; ++epoch) {
        top = 0.0;
        for (index_t j = 0; j < p; ++j) {
            const double* xj = x + j * n;
            double* wj = w + j * T;
            {
              std::fill(g.begin(), g.end(), 0.0);
              std::fill(h.begin(), h.end(), 0.0);
              for (index_t i = 0; i < n; ++i) {
                const double xi = xj[i];
                if (xi == 0.0) continue;
                const double *ai = a + i * T, *yi = y + i * T, *zi = z + i * T;
                for (index_t t = 0; t < T; ++t) {
                    if (ai[t] == 0.0) continue;
                    const double s = expit(-yi[t] * zi[t]);  // l' = -y s, l'' = s (1 - s)
                    g[t] -= xi * ai[t] * yi[t] * s;
                    h[t] += xi * xi * ai[t] * s * (1.0 - s);
                }
              }
            }
            if (!logistic) {  // squared loss: A = 0 where unlabelled, Y finite there
                for (index_t t = 0; t < T; ++t) g[t] += l2 * wj[t];
                if (!l21_block_step(wj, g.data(), lj[j], alpha, delta.data(), T)) continue;
            } else {
                // logistic: the local curvature max_t h_t (+ l2), far below the global
                // bound L_j (1/4 of the data term) where the predictions are confident;
                // doubled until the sufficient-decrease test holds, never above L_j
                // (times 1.25: the test then has a margin of order h ||delta||^2 over the
                // third-order terms, instead of being decided by rounding when the
                // quadratic model is nearly exact)
                double Lk = l2;
                for (index_t t = 0; t < T; ++t) Lk = std::max(Lk, 1.25 * h[t] + l2);
                Lk = std::min(lj[j], Lk > 0.0 ? Lk : lj[j]);
                for (index_t t = 0; t < T; ++t) g[t] += l2 * wj[t];
                bool changed = false;
                while (true) {
                    changed = l21_block_step(wj, g.data(), Lk, alpha, delta.data(), T);
                    if (!changed || Lk >= lj[j]) break;
                    double gd = 0.0, dd = 0.0, change = 0.0;
                    for (index_t t = 0; t < T; ++t) {
                        gd += (g[t] - l2 * wj[t]) * delta[t];
                        dd += delta[t] * delta[t];
                    }
                    for (index_t i = 0; i < n; ++i)
                        if (xj[i] != 0.0)
                            change += row_change(a + i * T, y + i * T, z + i * T, delta.data(),
                                                 xj[i], T);
                    // loss change <= <grad loss, delta> + (Lk - l2)/2 ||delta||^2, up to
                    // rounding
                    const double bound = gd + 0.5 * (Lk - l2) * dd;
                    if (change <= bound + 1e-13 * (std::fabs(change) + std::fabs(gd) + 1e-300))
                        break;
                    Lk = std::min(2.0 * Lk, lj[j]);
                }
                if (!changed) continue;
            }
            for (index_t t = 0; t < T; ++t) {
                wj[t] += delta[t];
                top = max_nan(top, std::fabs(delta[t]));
            }
            for (index_t i = 0; i < n; ++i) {
                const double xi = xj[i];
                if (xi == 0.0) continue;
                double* zi = z + i * T;
                for (index_t t = 0; t < T; ++t) zi[t] += xi * delta[t];
            }
        }
        if (!fit_intercept) continue;
        std::fill(g.begin(), g.end(), 0.0);
        std::fill(h.begin(), h.end(), 0.0);
        for (index_t i = 0; i < n; ++i) {
            const double *ai = a + i * T, *yi = y + i * T, *zi = z + i * T;
            for (index_t t = 0; t < T; ++t) {
                if (ai[t] == 0.0) continue;
                if (!logistic) {
                    g[t] += ai[t] * (zi[t] - yi[t]);
                } else {
                    const double s = expit(-yi[t] * zi[t]);
                    g[t] -= ai[t] * yi[t] * s;
                    h[t] += ai[t] * s * (1.0 - s);
                }
            }
        }
        // squared loss: the exact minimiser over b_t (Lb_t = sum_i A_it). Logistic: a
        // Newton step on each b_t, its curvature doubled until the loss decreases
        // sufficiently, never above the global bound Lb_t
        bool any = false;
        for (index_t t = 0; t < T; ++t) {
            if (lb[t] <= 0.0 || g[t] == 0.0) {
                delta[t] = 0.0;
                continue;
            }
            double Lt = logistic && h[t] > 0.0 ? std::min(1.25 * h[t], lb[t]) : lb[t];
            while (true) {
                delta[t] = -g[t] / Lt;
                if (!logistic || Lt >= lb[t]) break;
                double change = 0.0;
                for (index_t i = 0; i < n; ++i) {
                    const double ai = a[i * T + t];
                    if (ai == 0.0) continue;
                    const double yi = y[i * T + t], zi = z[i * T + t];
                    change += ai * logistic_change(yi, zi, delta[t]);
                }
                const double bound = g[t] * delta[t] + 0.5 * Lt * delta[t] * delta[t];
                if (change <= bound + 1e-13 * (std::fabs(change) + std::fabs(bound))) break;
                Lt = std::min(2.0 * Lt, lb[t]);
            }
            bb[t] += delta[t];
            any = any || delta[t] != 0.0;
        }
        if (!any) continue;
        for (index_t i = 0; i < n; ++i) {
            double* zi = z + i * T;
            for (index_t t = 0; t < T; ++t) zi[t] += delta[t];
        }
    }
    return top;
}

// Squared loss in residual form with rank-one weights A_it = a_i c_t (every label
// present; sample weights a, task weights c -- the common case), on a task-major copy of
// R = Z - Y: block j's gradient g_t = c_t sum_i (a_i x_ij) R_ti is T plain dot products
// with the scratch column a * x_j (x_j itself where a is constant), the update T axpys --
// 3 n T memory operations a block where the general kernel reads A, Y and Z (5 n T).
//
// The T dot products of a block are taken in one pass over x (task_dots): four tasks at a
// time, each with two 4-wide partial sums over the samples (eight independent additions
// in flight; x loaded once for the four tasks), then two tasks, then one. Measured on the
// n < d working set (3,200 blocks of n = 500, T = 10, half of them updated): 2.9 ms an
// epoch against 3.9 ms for T separate four-sum dot products (dots alone 1.6 against 2.5
// ms). A fixed order of additions (vector lanes written out, no reassociation by the
// compiler): the same bits on every run and in both clones.
typedef double v4d __attribute__((vector_size(32)));

#define MTL_LOAD4(p) ({ v4d v_; __builtin_memcpy(&v_, (p), sizeof v_); v_; })
#define MTL_STORE4(p, v) do { v4d v_ = (v); __builtin_memcpy((p), &v_, sizeof v_); } while (0)
#define MTL_HSUM4(v) (((v)[0] + (v)[1]) + ((v)[2] + (v)[3]))

// g[t] = sum_i x_i r[t n + i], t < T (r task-major, T x n)
MTL_CLONES void task_dots(const double* __restrict x, const double* __restrict r, index_t n,
                          index_t T, double* __restrict g) {
    const v4d zero = {0.0, 0.0, 0.0, 0.0};
    index_t t = 0;
    for (; t + 4 <= T; t += 4) {
        const double *r0 = r + t * n, *r1 = r0 + n, *r2 = r1 + n, *r3 = r2 + n;
        v4d a0 = zero, a1 = zero, a2 = zero, a3 = zero, b0 = zero, b1 = zero, b2 = zero,
            b3 = zero;
        index_t i = 0;
        for (; i + 8 <= n; i += 8) {
            const v4d x0 = MTL_LOAD4(x + i), x1 = MTL_LOAD4(x + i + 4);
            a0 += x0 * MTL_LOAD4(r0 + i);
            a1 += x0 * MTL_LOAD4(r1 + i);
            a2 += x0 * MTL_LOAD4(r2 + i);
            a3 += x0 * MTL_LOAD4(r3 + i);
            b0 += x1 * MTL_LOAD4(r0 + i + 4);
            b1 += x1 * MTL_LOAD4(r1 + i + 4);
            b2 += x1 * MTL_LOAD4(r2 + i + 4);
            b3 += x1 * MTL_LOAD4(r3 + i + 4);
        }
        double s0 = MTL_HSUM4(a0 + b0), s1 = MTL_HSUM4(a1 + b1), s2 = MTL_HSUM4(a2 + b2),
               s3 = MTL_HSUM4(a3 + b3);
        for (; i < n; ++i) {
            s0 += x[i] * r0[i];
            s1 += x[i] * r1[i];
            s2 += x[i] * r2[i];
            s3 += x[i] * r3[i];
        }
        g[t] = s0, g[t + 1] = s1, g[t + 2] = s2, g[t + 3] = s3;
    }
    for (; t + 2 <= T; t += 2) {
        const double *r0 = r + t * n, *r1 = r0 + n;
        v4d a0 = zero, a1 = zero, b0 = zero, b1 = zero, c0 = zero, c1 = zero, e0 = zero,
            e1 = zero;
        index_t i = 0;
        for (; i + 16 <= n; i += 16) {
            const v4d x0 = MTL_LOAD4(x + i), x1 = MTL_LOAD4(x + i + 4),
                      x2 = MTL_LOAD4(x + i + 8), x3 = MTL_LOAD4(x + i + 12);
            a0 += x0 * MTL_LOAD4(r0 + i);
            a1 += x0 * MTL_LOAD4(r1 + i);
            b0 += x1 * MTL_LOAD4(r0 + i + 4);
            b1 += x1 * MTL_LOAD4(r1 + i + 4);
            c0 += x2 * MTL_LOAD4(r0 + i + 8);
            c1 += x2 * MTL_LOAD4(r1 + i + 8);
            e0 += x3 * MTL_LOAD4(r0 + i + 12);
            e1 += x3 * MTL_LOAD4(r1 + i + 12);
        }
        double s0 = MTL_HSUM4((a0 + b0) + (c0 + e0)), s1 = MTL_HSUM4((a1 + b1) + (c1 + e1));
        for (; i < n; ++i) {
            s0 += x[i] * r0[i];
            s1 += x[i] * r1[i];
        }
        g[t] = s0, g[t + 1] = s1;
    }
    for (; t < T; ++t) {
        const double* r0 = r + t * n;
        v4d a = zero, b = zero, c = zero, e = zero;
        index_t i = 0;
        for (; i + 16 <= n; i += 16) {
            a += MTL_LOAD4(x + i) * MTL_LOAD4(r0 + i);
            b += MTL_LOAD4(x + i + 4) * MTL_LOAD4(r0 + i + 4);
            c += MTL_LOAD4(x + i + 8) * MTL_LOAD4(r0 + i + 8);
            e += MTL_LOAD4(x + i + 12) * MTL_LOAD4(r0 + i + 12);
        }
        double s0 = MTL_HSUM4((a + b) + (c + e));
        for (; i < n; ++i) s0 += x[i] * r0[i];
        g[t] = s0;
    }
}

// sum_i x_i y_i (the intercept steps)
double dot(const double* x, const double* y, index_t n) {
    double g;
    task_dots(x, y, n, 1, &g);
    return g;
}

// A blocked kernel's step on row w: w += delta, delta kept as the block's row d (for its
// one pass into R or K W); returns the largest |change| so far (NaN kept).
inline double take_step(double* w, const double* delta, index_t T, double top, double* d) {
    for (index_t t = 0; t < T; ++t) {
        w[t] += delta[t];
        d[t] = delta[t];
        top = max_nan(top, std::fabs(delta[t]));
    }
    return top;
}

// G[q T + t] = sum_i u_q[i] r[t n + i] for the m vectors u_q and t < T (r task-major):
// four vectors and two tasks at a time, eight 4-wide sums (each load of r serves four
// vectors, each load of u two tasks), then task_dots for the last m % 4 vectors. Fixed
// order of additions, as task_dots.
MTL_CLONES void rows_task_dots(const double* const* u, index_t m, const double* __restrict r,
                               index_t n, index_t T, double* __restrict G) {
    const v4d zero = {0.0, 0.0, 0.0, 0.0};
    index_t q = 0;
    for (; q + 4 <= m; q += 4) {
        const double *u0 = u[q], *u1 = u[q + 1], *u2 = u[q + 2], *u3 = u[q + 3];
        double* g = G + q * T;
        index_t t = 0;
        for (; t + 2 <= T; t += 2) {
            const double *r0 = r + t * n, *r1 = r0 + n;
            v4d s00 = zero, s01 = zero, s10 = zero, s11 = zero, s20 = zero, s21 = zero,
                s30 = zero, s31 = zero;
            index_t i = 0;
            for (; i + 4 <= n; i += 4) {
                const v4d x0 = MTL_LOAD4(r0 + i), x1 = MTL_LOAD4(r1 + i);
                const v4d v0 = MTL_LOAD4(u0 + i), v1 = MTL_LOAD4(u1 + i),
                          v2 = MTL_LOAD4(u2 + i), v3 = MTL_LOAD4(u3 + i);
                s00 += v0 * x0, s01 += v0 * x1, s10 += v1 * x0, s11 += v1 * x1;
                s20 += v2 * x0, s21 += v2 * x1, s30 += v3 * x0, s31 += v3 * x1;
            }
            double h[8] = {MTL_HSUM4(s00), MTL_HSUM4(s01), MTL_HSUM4(s10), MTL_HSUM4(s11),
                           MTL_HSUM4(s20), MTL_HSUM4(s21), MTL_HSUM4(s30), MTL_HSUM4(s31)};
            for (; i < n; ++i) {
                h[0] += u0[i] * r0[i], h[1] += u0[i] * r1[i];
                h[2] += u1[i] * r0[i], h[3] += u1[i] * r1[i];
                h[4] += u2[i] * r0[i], h[5] += u2[i] * r1[i];
                h[6] += u3[i] * r0[i], h[7] += u3[i] * r1[i];
            }
            for (index_t k = 0; k < 4; ++k) g[k * T + t] = h[2 * k], g[k * T + t + 1] = h[2 * k + 1];
        }
        if (t < T) {  // the last task of an odd T
            const double* r0 = r + t * n;
            v4d s0 = zero, s1 = zero, s2 = zero, s3 = zero;
            index_t i = 0;
            for (; i + 4 <= n; i += 4) {
                const v4d x0 = MTL_LOAD4(r0 + i);
                s0 += MTL_LOAD4(u0 + i) * x0, s1 += MTL_LOAD4(u1 + i) * x0;
                s2 += MTL_LOAD4(u2 + i) * x0, s3 += MTL_LOAD4(u3 + i) * x0;
            }
            double h[4] = {MTL_HSUM4(s0), MTL_HSUM4(s1), MTL_HSUM4(s2), MTL_HSUM4(s3)};
            for (; i < n; ++i)
                h[0] += u0[i] * r0[i], h[1] += u1[i] * r0[i], h[2] += u2[i] * r0[i],
                    h[3] += u3[i] * r0[i];
            for (index_t k = 0; k < 4; ++k) g[k * T + t] = h[k];
        }
    }
    for (; q < m; ++q) task_dots(u[q], r, n, T, G + q * T);
}

// r[t n + i] += sum_q D[q T + t] x_q[i] for q < m in order, t < T: eight samples of four
// tasks a pass over the m vectors (each load of x serves four tasks; r read and written
// once for all m). Each entry gets the same additions in the same order as m calls of
// task_axpys.
MTL_CLONES void rows_task_axpys(const double* const* x, const double* __restrict D, index_t m,
                                index_t n, index_t T, double* __restrict r) {
    index_t t = 0;
    for (; t + 4 <= T; t += 4) {
        double *r0 = r + t * n, *r1 = r0 + n, *r2 = r1 + n, *r3 = r2 + n;
        index_t i = 0;
        for (; i + 8 <= n; i += 8) {
            v4d a00 = MTL_LOAD4(r0 + i), a01 = MTL_LOAD4(r0 + i + 4);
            v4d a10 = MTL_LOAD4(r1 + i), a11 = MTL_LOAD4(r1 + i + 4);
            v4d a20 = MTL_LOAD4(r2 + i), a21 = MTL_LOAD4(r2 + i + 4);
            v4d a30 = MTL_LOAD4(r3 + i), a31 = MTL_LOAD4(r3 + i + 4);
            for (index_t q = 0; q < m; ++q) {
                const double* d = D + q * T + t;
                const v4d x0 = MTL_LOAD4(x[q] + i), x1 = MTL_LOAD4(x[q] + i + 4);
                const v4d d0 = {d[0], d[0], d[0], d[0]}, d1 = {d[1], d[1], d[1], d[1]},
                          d2 = {d[2], d[2], d[2], d[2]}, d3 = {d[3], d[3], d[3], d[3]};
                a00 += d0 * x0, a01 += d0 * x1, a10 += d1 * x0, a11 += d1 * x1;
                a20 += d2 * x0, a21 += d2 * x1, a30 += d3 * x0, a31 += d3 * x1;
            }
            MTL_STORE4(r0 + i, a00);
            MTL_STORE4(r0 + i + 4, a01);
            MTL_STORE4(r1 + i, a10);
            MTL_STORE4(r1 + i + 4, a11);
            MTL_STORE4(r2 + i, a20);
            MTL_STORE4(r2 + i + 4, a21);
            MTL_STORE4(r3 + i, a30);
            MTL_STORE4(r3 + i + 4, a31);
        }
        for (; i < n; ++i)
            for (index_t q = 0; q < m; ++q) {
                const double* d = D + q * T + t;
                r0[i] += d[0] * x[q][i], r1[i] += d[1] * x[q][i];
                r2[i] += d[2] * x[q][i], r3[i] += d[3] * x[q][i];
            }
    }
    for (; t < T; ++t) {
        double* r0 = r + t * n;
        index_t i = 0;
        for (; i + 8 <= n; i += 8) {
            v4d a0 = MTL_LOAD4(r0 + i), a1 = MTL_LOAD4(r0 + i + 4);
            for (index_t q = 0; q < m; ++q) {
                const double dq = D[q * T + t];
                const v4d d0 = {dq, dq, dq, dq};
                a0 += d0 * MTL_LOAD4(x[q] + i), a1 += d0 * MTL_LOAD4(x[q] + i + 4);
            }
            MTL_STORE4(r0 + i, a0);
            MTL_STORE4(r0 + i + 4, a1);
        }
        for (; i < n; ++i)
            for (index_t q = 0; q < m; ++q) r0[i] += D[q * T + t] * x[q][i];
    }
}

// Epochs over consecutive blocks of B rows of the working set (B = Kb's width). A block
// takes the gradients of all its rows from R in one pass (rows_task_dots); then, row by
// row, each step's change delta_j is added to the gradients of the block's later rows
// through the block's Gram matrix, g_k += K_kj delta_j with K_kj = sum_i a_i x_ik x_ij,
// which is what the row-by-row kernel would see after R += x_j delta_j^T; the changed
// rows go into R in one pass at the end (rows_task_axpys). The same steps as one row at a
// time (the same math; the gradients round differently), with R read once per block
// where the row kernel read it twice per row. Kb (p, B) holds each row's part of its
// block's K; computed when a block is first visited (filled[block] = 0) and kept by the
// caller for later calls on the same Xt and a.
double bcd_l21_rank1(arr Xt, arr R, arr a, arr c, arr W, arr b, arr L, arr Lb, double alpha,
                     double l2, bool fit_intercept, int n_epochs, bool active_only, arr Kb,
                     py::array_t<std::uint8_t, py::array::c_style> filled) {
    check_residual_form(Xt, R, "R", W, b, L, Lb, alpha, l2, n_epochs);
    const index_t p = Xt.shape(0), n = Xt.shape(1), T = W.shape(1);
    require(a.ndim() == 1 && a.shape(0) == n, "a must have one entry per row of R");
    require(c.ndim() == 1 && c.shape(0) == T, "c must have one entry per column of W");
    require(Kb.ndim() == 2 && Kb.shape(0) == p && Kb.shape(1) >= 1 && Kb.shape(1) <= 256,
            "Kb must have one row per row of W and 1 to 256 columns");
    const index_t B = Kb.shape(1), nb = (p + B - 1) / B;
    require(filled.ndim() == 1 && filled.shape(0) == nb,
            "filled must have one entry per block of Kb.shape[1] rows");
    require(Kb.writeable() && filled.writeable(), "Kb and filled must be writeable");
    const double *x = Xt.data(), *aa = a.data(), *cc = c.data(), *lj = L.data(),
                 *lb = Lb.data();
    double *r = R.mutable_data(), *w = W.mutable_data(), *bb = b.mutable_data(),
           *kb = Kb.mutable_data();
    std::uint8_t* done = filled.mutable_data();
    py::gil_scoped_release nogil;
    bool a_const = true;
    for (index_t i = 1; i < n && a_const; ++i) a_const = aa[i] == aa[0];
    std::vector<double> rt(n * T), g(T), delta(T), ct(T), G(B * T), D(B * T),
        Kt(B * B), ua(a_const ? 0 : B * n);
    std::vector<const double*> u(B), xs(B), xb(B);
    std::vector<index_t> idx(B);
    for (index_t t = 0; t < T; ++t) ct[t] = a_const && n ? cc[t] * aa[0] : cc[t];
    transpose(r, n, T, rt.data());
    // u_q: the weighted row a * x_j of the block's q-th visited row (x_j itself for constant a)
    auto weighted = [&](index_t q, index_t j) {
        if (a_const) return x + j * n;
        double* v = ua.data() + q * n;
        const double* xj = x + j * n;
        for (index_t i = 0; i < n; ++i) v[i] = aa[i] * xj[i];
        return static_cast<const double*>(v);
    };
    double top = 0.0;
    for (int epoch = 0; epoch < n_epochs; ++epoch) {
        top = 0.0;
        for (index_t blk = 0; blk < nb; ++blk) {
            const index_t j0 = blk * B, m = std::min(B, p - j0);
            if (!done[blk]) {  // the block's Gram matrix, sum_i a_i x_ij x_ik
                for (index_t q = 0; q < m; ++q) u[q] = weighted(q, j0 + q);
                rows_task_dots(u.data(), m, x + j0 * n, n, m, Kt.data());
                for (index_t q = 0; q < m; ++q)
                    std::copy(Kt.data() + q * m, Kt.data() + (q + 1) * m, kb + (j0 + q) * B);
                done[blk] = 1;
            }
            index_t mq = 0;
            for (index_t j = j0; j < j0 + m; ++j) {
                if (active_only) {  // this epoch over the rows already nonzero only
                    bool nonzero = false;
                    for (index_t t = 0; t < T && !nonzero; ++t) nonzero = w[j * T + t] != 0.0;
                    if (!nonzero) continue;
                }
                u[mq] = weighted(mq, j);
                idx[mq++] = j;
            }
            if (mq == 0) continue;
            rows_task_dots(u.data(), mq, rt.data(), n, T, G.data());
            index_t nc = 0;
            for (index_t q = 0; q < mq; ++q) {
                const index_t j = idx[q];
                double* wj = w + j * T;
                const double* gq = G.data() + q * T;
                for (index_t t = 0; t < T; ++t) g[t] = ct[t] * gq[t] + l2 * wj[t];
                if (!l21_block_step(wj, g.data(), lj[j], alpha, delta.data(), T)) continue;
                top = take_step(wj, delta.data(), T, top, D.data() + nc * T);
                xs[nc++] = x + j * n;
                for (index_t k = q + 1; k < mq; ++k) {  // the later rows' gradients
                    const double kkj = kb[idx[k] * B + (j - j0)];
                    double* gk = G.data() + k * T;
                    for (index_t t = 0; t < T; ++t) gk[t] += kkj * delta[t];
                }
            }
            if (nc) rows_task_axpys(xs.data(), D.data(), nc, n, T, rt.data());
        }
        if (!fit_intercept) continue;
        // the exact minimiser over b (Lb_t = sum_i A_it = c_t sum_i a_i)
        for (index_t t = 0; t < T; ++t) {
            if (lb[t] <= 0.0) continue;
            double* rtt = rt.data() + t * n;
            const double d = -cc[t] * dot(aa, rtt, n) / lb[t];
            bb[t] += d;
            if (d != 0.0)
                for (index_t i = 0; i < n; ++i) rtt[i] += d;
        }
    }
    transpose(rt.data(), T, n, r);
    return top;
}

double bcd_l21_gram(arr K, arr H, arr c, arr KW, arr W, arr L, double alpha, double l2,
                    int n_epochs) {
    require(W.ndim() == 2, "W must be 2-D");
    const index_t p = W.shape(0), T = W.shape(1);
    require_shape(K, p, p, "K");
    require_shape(H, p, T, "H");
    require_shape(KW, p, T, "KW");
    require(c.ndim() == 1 && c.shape(0) == T, "c must have one entry per column of W");
    require(L.ndim() == 1 && L.shape(0) == p, "L must have one entry per row of W");
    require(KW.writeable() && W.writeable(), "KW and W must be writeable");
    require(alpha >= 0.0 && l2 >= 0.0 && n_epochs >= 0, "alpha, l2, n_epochs must be >= 0");
    const double *k = K.data(), *h = H.data(), *cc = c.data(), *lj = L.data();
    double *kw = KW.mutable_data(), *w = W.mutable_data();
    for (index_t j = 0; j < p; ++j) require(lj[j] > 0.0, "L must be > 0");
    py::gil_scoped_release nogil;
    // task-major copies (T, p) of K W and H. The rows go by blocks of GRAM_BLOCK: a step's
    // change delta_j reaches the block's later rows k at once (corr_k += K_jk delta_j),
    // all of K W once per block (KW += sum_j K_j: delta_j^T in one pass, rows_task_axpys:
    // the same additions in the same order as one row at a time, so K W gets the same
    // bits; the gradients round differently). One pass over K W a block where the row
    // kernel made one a row.
    constexpr index_t GRAM_BLOCK = 16;
    std::vector<double> kwt(p * T), ht(p * T), g(T), delta(T), corr(GRAM_BLOCK * T),
        D(GRAM_BLOCK * T);
    std::vector<const double*> rows(GRAM_BLOCK);
    transpose(kw, p, T, kwt.data());
    transpose(h, p, T, ht.data());
    double top = 0.0;
    for (int epoch = 0; epoch < n_epochs; ++epoch) {
        top = 0.0;
        for (index_t j0 = 0; j0 < p; j0 += GRAM_BLOCK) {
            const index_t m = std::min(GRAM_BLOCK, p - j0);
            std::fill(corr.begin(), corr.begin() + m * T, 0.0);
            index_t nc = 0;
            for (index_t q = 0; q < m; ++q) {
                const index_t j = j0 + q;
                double* wj = w + j * T;
                const double* cq = corr.data() + q * T;
                for (index_t t = 0; t < T; ++t)
                    g[t] = cc[t] * ((kwt[t * p + j] + cq[t]) - ht[t * p + j]) + l2 * wj[t];
                if (!l21_block_step(wj, g.data(), lj[j], alpha, delta.data(), T)) continue;
                top = take_step(wj, delta.data(), T, top, D.data() + nc * T);
                rows[nc++] = k + j * p;
                for (index_t r = q + 1; r < m; ++r) {
                    const double kjr = k[j * p + j0 + r];
                    double* cr = corr.data() + r * T;
                    for (index_t t = 0; t < T; ++t) cr[t] += kjr * delta[t];
                }
            }
            if (nc) rows_task_axpys(rows.data(), D.data(), nc, p, T, kwt.data());
        }
    }
    transpose(kwt.data(), T, p, kw);
    return top;
}

}  // namespace

void register_bcd(py::module_& m) {
    // the buffers updated in place are taken as they are (noconvert): a float32, strided or
    // Fortran-ordered one is refused, never silently replaced by an updated temporary copy
    m.def("bcd_l21_data", &bcd_l21_data, py::arg("Xt"), py::arg("Y"), py::arg("A"),
          py::arg("Z").noconvert(), py::arg("W").noconvert(), py::arg("b").noconvert(),
          py::arg("L"), py::arg("Lb"), py::arg("alpha"),
          py::arg("l2"), py::arg("kind"), py::arg("fit_intercept"), py::arg("n_epochs"),
          "Epochs of L2,1 block coordinate descent in residual form, in place on Z, W, b "
          "(float64; Xt: the working set's columns of X as rows). Returns max |dW| of the "
          "last epoch.");
    m.def("bcd_l21_rank1", &bcd_l21_rank1, py::arg("Xt"), py::arg("R").noconvert(),
          py::arg("a"), py::arg("c"), py::arg("W").noconvert(), py::arg("b").noconvert(),
          py::arg("L"), py::arg("Lb"),
          py::arg("alpha"), py::arg("l2"), py::arg("fit_intercept"), py::arg("n_epochs"),
          py::arg("active_only"), py::arg("Kb").noconvert(), py::arg("filled").noconvert(),
          "Epochs of L2,1 block coordinate descent for squared loss with weights "
          "A_it = a_i c_t, in place on R = Z - Y, W, b (float64), by blocks of "
          "Kb.shape[1] rows (Kb, filled: the blocks' Gram matrices, kept by the caller); "
          "active_only: over the rows of W already nonzero only. Returns max |dW| of the "
          "last epoch.");
    m.def("bcd_l21_gram", &bcd_l21_gram, py::arg("K"), py::arg("H"), py::arg("c"),
          py::arg("KW").noconvert(), py::arg("W").noconvert(), py::arg("L"), py::arg("alpha"),
          py::arg("l2"),
          py::arg("n_epochs"),
          "Epochs of L2,1 block coordinate descent in Gram form, in place on KW and W "
          "(float64). Returns max |dW| of the last epoch.");
}

}  // namespace mtl
