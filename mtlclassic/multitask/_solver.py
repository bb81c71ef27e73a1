"""Solvers for F(W, b) = loss(X W + b) + 1/2 tr(W Q W^T) + g(W).

* :func:`fista`: accelerated proximal gradient (Beck & Teboulle, SIAM J. Imaging Sci.
  2009) with backtracking whose step can grow back, function-value adaptive restart
  (O'Donoghue & Candes, Found. Comput. Math. 2015: an accelerated step that would raise F
  is discarded and momentum reset, so the accepted objective never rises beyond
  rounding), warm starts, and
  a stop when both the relative change of F and the gradient-mapping norm (a KKT
  residual, relative to the gradient at zero) fall below tol. Per iteration: one GEMM for
  Z = X W and one for X^T G (:class:`DataOracle`), or, for squared loss with every label
  present and n >= d, a single d x d x T GEMM on the Gram matrix (:class:`GramOracle`);
  the map at the extrapolated point is a combination of known ones.
* :func:`closed_form`: squared loss, quadratic penalty, every entry labelled: the
  Sylvester equation (X^T S X / n) W + W Q D_rho^-1 = X^T S Y / n on centred data,
  n = sum of the sample weights.
"""

import math

import numpy as np
import scipy.linalg

from ..backend import get_namespace, to_numpy


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


def lipschitz_estimate(X, A, Q, curvature, fit_intercept, n_power=30, seed=0):
    """Upper estimate of the Lipschitz constant of the smooth part's gradient:
    curvature * lambda_max([X 1]^T diag(max_t A_it) [X 1]) + lambda_max(Q), by power
    iteration (curvature: 1 for squared, 1/4 for logistic loss)."""
    xp = get_namespace(X)
    w = A.max(axis=1)
    rng = np.random.default_rng(seed)
    v = xp.asarray(rng.standard_normal(X.shape[1]), dtype=X.dtype)
    v0 = float(rng.standard_normal()) if fit_intercept else 0.0
    lam = 0.0
    for _ in range(n_power):
        nv = math.sqrt(float(xp.sum(v * v)) + v0 * v0)
        if nv == 0:
            break
        v, v0 = v / nv, v0 / nv
        wu = w * (X @ v + v0)
        v = X.T @ wu
        v0 = float(wu.sum()) if fit_intercept else 0.0
        lam = math.sqrt(float(xp.sum(v * v)) + v0 * v0)
    Q = to_numpy(Q)
    q = float(np.linalg.eigvalsh(Q).max()) if Q.size else 0.0
    return curvature * lam * 1.05 + max(q, 0.0)


def objective(X, Y, A, loss, Q, penalty, alpha, W, b):
    Z = X @ W + b
    lv, _ = loss(Z, Y, A)
    return lv + 0.5 * float(np.sum((W @ Q) * W)) + penalty.value(W, alpha)


class DataOracle:
    """Smooth part on the data: the linear map is Z = X W + b (one GEMM), the loss is
    evaluated on Z and the gradient is X^T G (the second GEMM) plus W Q."""

    def __init__(self, X, Y, A, loss, Q, fit_intercept):
        self.X, self.Y, self.A, self.loss, self.Q = X, Y, A, loss, Q
        self.fit_intercept = fit_intercept

    def linear(self, W, b):
        return self.X @ W + b

    def value(self, W, b, lin):
        lv, G = self.loss(lin, self.Y, self.A)
        WQ = W @ self.Q
        return lv + 0.5 * float(np.sum(WQ * W)), (G, WQ)

    def grad(self, W, b, lin, aux):
        G, WQ = aux
        gb = G.sum(axis=0) if self.fit_intercept else np.zeros_like(b)
        return self.X.T @ G + WQ, gb

    def grad_at_zero_norm(self):
        _, G0 = self.loss(np.zeros_like(self.Y), self.Y, self.A)
        g0b = G0.sum(axis=0) if self.fit_intercept else 0.0
        return math.sqrt(float(np.sum((self.X.T @ G0) ** 2) + np.sum(np.square(g0b))))


class GramOracle:
    """Squared loss with every label present, in Gram form (for n >> d): on data centred
    with the sample weights, sum_t c_t (1/2 w_t^T K w_t - w_t^T h_t + 1/2 ||y_t||_S^2)
    with K = X^T S X, H = X^T S Y, c_t = rho_t / n. The linear map is K W (one d x d x T
    GEMM per iteration, independent of n); the intercept is recovered afterwards as
    b = mean(y) - mean(x) W, which is its optimum for any W, so the objective values are
    those of the full problem."""

    fit_intercept = False

    def __init__(self, X, Y, sw, rho, Q, fit_intercept):
        xp = get_namespace(X)
        n = sw.sum()
        if fit_intercept:
            self.x_mean, self.y_mean = sw @ X / n, sw @ Y / n
            X, Y = X - self.x_mean, Y - self.y_mean
        else:
            self.x_mean = xp.zeros(X.shape[1], dtype=X.dtype)
            self.y_mean = xp.zeros(Y.shape[1], dtype=X.dtype)
        XS = X.T * sw
        self.K, self.H = XS @ X, XS @ Y
        self.c = rho / n
        self.const = 0.5 * float(np.sum(self.c * (sw @ (Y * Y))))
        self.Q = Q

    def linear(self, W, b):
        return self.K @ W

    def value(self, W, b, lin):
        WQ = W @ self.Q
        f = float(np.sum(self.c * (0.5 * np.sum(W * lin, axis=0) - np.sum(W * self.H, axis=0))))
        return f + self.const + 0.5 * float(np.sum(WQ * W)), WQ

    def grad(self, W, b, lin, aux):
        return (lin - self.H) * self.c + aux, np.zeros_like(b)

    def grad_at_zero_norm(self):
        return math.sqrt(float(np.sum((self.H * self.c) ** 2)))

    def intercept(self, W):
        return self.y_mean - self.x_mean @ W


def fista(oracle, penalty, alpha, W0, b0, max_iter, tol, n_jobs=None, verbose=0,
          lipschitz=1.0):
    """Returns W, b, n_iter, converged, trace (objective after each accepted step) and the
    final Lipschitz estimate (a warm start passes it back as ``lipschitz``)."""
    W, b = W0.copy(), b0.copy()
    lin = oracle.linear(W, b)
    f, aux = oracle.value(W, b, lin)
    F = f + penalty.value(W, alpha)
    # scale of the KKT residual: the gradient of the smooth part at W = 0, b = 0
    kkt_scale = max(oracle.grad_at_zero_norm(), 1e-12)

    Lip = float(lipschitz)
    # slack of the sufficient-decrease test: rounding of f in the iterate's precision
    slack = 1e-12 if W.dtype == np.float64 else 1e-6
    t = 1.0
    Yw, Yb, linY, fY, auxY = W, b, lin, f, aux
    trace = [F]
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        gW, gb = oracle.grad(Yw, Yb, linY, auxY)
        while True:
            step = 1.0 / Lip
            Wn, gn = penalty.prox_value(Yw - step * gW, step * alpha, alpha, n_jobs=n_jobs)
            bn = Yb - step * gb
            linn = oracle.linear(Wn, bn)
            fn, auxn = oracle.value(Wn, bn, linn)
            dW, db = Wn - Yw, bn - Yb
            sq = float(np.sum(dW * dW) + np.sum(db * db))
            bound = fY + float(np.sum(gW * dW) + np.sum(gb * db)) + 0.5 * Lip * sq
            if fn <= bound + slack * abs(fY) or sq == 0.0:
                break
            Lip *= 2.0
        Fn = fn + gn
        kkt = Lip * math.sqrt(sq) / kkt_scale
        if Fn > F and Yw is not W:  # adaptive restart: drop the step, restart momentum
            t = 1.0
            Yw, Yb, linY, fY, auxY = W, b, lin, f, aux
            continue
        # (a plain proximal-gradient step from W, taken right after a restart, is accepted:
        # with the backtracking bound it cannot raise F beyond floating-point rounding)
        t_new = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
        beta = (t - 1.0) / t_new
        rel = abs(F - Fn) / max(abs(Fn), 1e-12)
        W_prev, b_prev, lin_prev = W, b, lin
        W, b, lin, f, aux, F = Wn, bn, linn, fn, auxn, Fn
        trace.append(F)
        if verbose:
            print(f"iter {it}: objective {F:.10g}, rel change {rel:.2e}, kkt {kkt:.2e}, "
                  f"step {1 / Lip:.3g}")
        if rel < tol and kkt < tol:
            converged = True
            break
        t = t_new
        # the map is linear, so its value at the extrapolated point costs no GEMM
        Yw = W + beta * (W - W_prev)
        Yb = b + beta * (b - b_prev)
        linY = lin + beta * (lin - lin_prev)
        fY, auxY = oracle.value(Yw, Yb, linY)
        Lip *= 0.9  # let the step grow back
    return W, b, it, converged, trace, Lip


def lbfgs(oracle, W0, b0, fit_intercept, max_iter, tol):
    """L-BFGS (Liu & Nocedal, Math. Program. 1989; scipy's L-BFGS-B) on the smooth
    problems (ridge, mean, graph penalties): same oracles, same objective, stops when the
    largest gradient entry falls below tol times the gradient norm at zero. Returns
    W, b, n_iter, converged, trace."""
    import scipy.optimize

    d, T = W0.shape
    kkt_scale = max(oracle.grad_at_zero_norm(), 1e-12)

    def unpack(x):
        W = x[:d * T].reshape(d, T)
        b = x[d * T:] if fit_intercept else np.zeros(T)
        return W, b

    def fun(x):
        W, b = unpack(x)
        lin = oracle.linear(W, b)
        f, aux = oracle.value(W, b, lin)
        gW, gb = oracle.grad(W, b, lin, aux)
        g = np.concatenate([gW.ravel(), gb]) if fit_intercept else gW.ravel()
        return f, g

    x0 = np.concatenate([W0.ravel(), b0]) if fit_intercept else W0.ravel().copy()
    trace = [fun(x0)[0]]

    def callback(intermediate_result):
        trace.append(float(intermediate_result.fun))

    res = scipy.optimize.minimize(
        fun, x0, jac=True, method="L-BFGS-B", callback=callback,
        options={"maxiter": max_iter, "gtol": tol * kkt_scale,
                 "ftol": 64 * np.finfo(float).eps, "maxcor": 20})
    W, b = unpack(res.x)
    return W.copy(), np.array(b, dtype=np.float64), max(int(res.nit), 1), bool(res.success), \
        trace
