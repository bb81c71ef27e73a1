"""Solvers for F(W, b) = loss(X W + b) + 1/2 tr(W Q W^T) + g(W).

* :func:`fista`: accelerated proximal gradient (Beck & Teboulle, SIAM J. Imaging Sci.
  2009) with backtracking whose step can grow back, function-value adaptive restart
  (O'Donoghue & Candes, Found. Comput. Math. 2015: an accelerated step that would raise F
  is discarded and momentum reset, so the accepted objective never rises beyond
  rounding), warm starts, and
  a stop when both the relative change of F and the gradient-mapping norm (a KKT
  residual, relative to the gradient at zero) fall below tol. Per iteration: one GEMM for
  Z = X W and one for X^T G; Z at the extrapolated point is a combination of known Zs.
* :func:`closed_form`: squared loss, quadratic penalty, every entry labelled: the
  Sylvester equation (X^T S X / n) W + W Q D_rho^-1 = X^T S Y / n on centred data,
  n = sum of the sample weights.
"""

import math

import numpy as np
import scipy.linalg


def closed_form(X, Y, sw, rho, Q, fit_intercept):
    """Exact minimiser for squared loss with all labels present; sw: sample weights (n,),
    rho: task weights (T,), Q: (T, T)."""
    n = sw.sum()  # n_t, the same for every task when all labels are present
    if fit_intercept:
        wsum = sw.sum()
        x_mean = sw @ X / wsum
        y_mean = sw @ Y / wsum
        Xc, Yc = X - x_mean, Y - y_mean
    else:
        Xc, Yc = X, Y
    A = (Xc.T * sw) @ Xc / n
    C = (Xc.T * sw) @ Yc / n
    B = Q / rho[None, :]
    W = scipy.linalg.solve_sylvester(A, B, C)
    b = (y_mean - x_mean @ W) if fit_intercept else np.zeros(Y.shape[1])
    return W, b


def objective(X, Y, A, loss, Q, penalty, alpha, W, b):
    Z = X @ W + b
    lv, _ = loss(Z, Y, A)
    return lv + 0.5 * float(np.sum((W @ Q) * W)) + penalty.value(W, alpha)


def fista(X, Y, A, loss, Q, penalty, alpha, W0, b0, fit_intercept, max_iter, tol,
          n_jobs=None, verbose=0, lipschitz=1.0):
    """Returns W, b, n_iter, converged, trace (objective after each accepted step) and the
    final Lipschitz estimate (a warm start passes it back as ``lipschitz``)."""
    W, b = W0.copy(), b0.copy()
    Z = X @ W + b

    def smooth(W_, Z_):
        lv, G = loss(Z_, Y, A)
        WQ = W_ @ Q
        return lv + 0.5 * float(np.sum(WQ * W_)), G, WQ

    def grads(G, WQ):
        gW = X.T @ G + WQ
        gb = G.sum(axis=0) if fit_intercept else np.zeros_like(b)
        return gW, gb

    f, G, WQ = smooth(W, Z)
    F = f + penalty.value(W, alpha)
    # scale of the KKT residual: the gradient of the smooth part at W = 0, b = 0
    _, G0 = loss(np.zeros_like(Z), Y, A)
    g0W, g0b = X.T @ G0, (G0.sum(axis=0) if fit_intercept else 0.0)
    kkt_scale = max(math.sqrt(float(np.sum(g0W * g0W) + np.sum(np.square(g0b)))), 1e-12)

    Lip = float(lipschitz)
    t = 1.0
    Yw, Yb, ZY, fY, GY, WQY = W, b, Z, f, G, WQ
    trace = [F]
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        gW, gb = grads(GY, WQY)
        while True:
            step = 1.0 / Lip
            Wn = penalty.prox(Yw - step * gW, step * alpha, n_jobs=n_jobs)
            bn = Yb - step * gb
            Zn = X @ Wn + bn
            fn, Gn, WQn = smooth(Wn, Zn)
            dW, db = Wn - Yw, bn - Yb
            sq = float(np.sum(dW * dW) + np.sum(db * db))
            bound = fY + float(np.sum(gW * dW) + np.sum(gb * db)) + 0.5 * Lip * sq
            if fn <= bound + 1e-12 * abs(fY) or sq == 0.0:
                break
            Lip *= 2.0
        Fn = fn + penalty.value(Wn, alpha)
        kkt = Lip * math.sqrt(sq) / kkt_scale
        if Fn > F and Yw is not W:  # adaptive restart: drop the step, restart momentum
            t = 1.0
            Yw, Yb, ZY, fY, GY, WQY = W, b, Z, f, G, WQ
            continue
        # (a plain proximal-gradient step from W, taken right after a restart, is accepted:
        # with the backtracking bound it cannot raise F beyond floating-point rounding)
        t_new = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
        beta = (t - 1.0) / t_new
        rel = abs(F - Fn) / max(abs(Fn), 1e-12)
        W_prev, b_prev, Z_prev = W, b, Z
        W, b, Z, f, G, WQ, F = Wn, bn, Zn, fn, Gn, WQn, Fn
        trace.append(F)
        if verbose:
            print(f"iter {it}: objective {F:.10g}, rel change {rel:.2e}, kkt {kkt:.2e}, "
                  f"step {1 / Lip:.3g}")
        if rel < tol and kkt < tol:
            converged = True
            break
        t = t_new
        Yw = W + beta * (W - W_prev)
        Yb = b + beta * (b - b_prev)
        ZY = Z + beta * (Z - Z_prev)
        fY, GY, WQY = smooth(Yw, ZY)
        Lip *= 0.9  # let the step grow back
    return W, b, it, converged, trace, Lip
