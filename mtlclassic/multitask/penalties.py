"""Penalties Omega(W) of the multi-task models, W of shape (n_features, n_subtasks).

The estimators' ``alpha`` (lambda) and ``l2`` (mu) parameterise them. ``ridge``, ``mean``
and ``graph`` are quadratic, ``1/2 tr(W Q W^T)`` with a (T, T) task-coupling matrix Q, so
their gradient is ``W Q`` and squared-loss fits have a closed form; ``l21`` adds a
non-smooth term handled by its proximal operator.
"""

from abc import ABC, abstractmethod

import numpy as np

from ..backend import get_namespace, to_numpy
from ._relation import signed_laplacian


class Penalty(ABC):
    """Base: ``matrix(alpha, l2, n_tasks, relation)`` gives Q of the smooth quadratic part;
    non-smooth penalties also define ``value(W, alpha)`` and ``prox(W, tau)``, and may
    override ``prox_value`` when the prox already yields its output's value."""

    name = ""
    smooth = True
    uses_relation = False
    learns_relation = False

    @abstractmethod
    def matrix(self, alpha, l2, n_tasks, relation=None):
        """Q of the smooth part 1/2 tr(W Q W^T)."""

    def value(self, W, alpha):
        return 0.0

    def prox(self, W, tau, n_jobs=None):
        return W

    def prox_value(self, W, tau, alpha, n_jobs=None):
        """(prox(W, tau), value of the penalty there) -- one call for FISTA's step."""
        P = self.prox(W, tau, n_jobs=n_jobs)
        return P, self.value(P, alpha)

    # ------------------------------------------------------------ duality
    # h(W) = 1/2 tr(W Q W^T) + value(W, alpha) is the whole penalty; the duality gap of
    # the solvers needs its convex conjugate h*(s V) = sup_W <s V, W> - h(W) at the dual
    # point's V = -X^T G and a few scales s. ``dual_summary`` reduces V once (on its
    # device) to what h* depends on; ``conjugate`` and ``dual_scale`` work on that.

    def dual_summary(self, V, Q):
        """Smooth penalties: 1/2 tr(V Q^-1 V^T) when Q is positive definite, ``inf`` when
        Q is singular (h* is then finite only on a subspace that the solvers' dual point
        is not confined to: no certificate is available)."""
        lam, U = np.linalg.eigh(np.asarray(to_numpy(Q), dtype=np.float64))
        if lam.size == 0:
            return 0.0
        if lam.max() <= 0 or lam.min() <= 1e-12 * lam.max():
            return np.inf
        xp = get_namespace(V)
        VU = V @ xp.asarray(U, dtype=V.dtype)
        return 0.5 * float(xp.sum((VU * VU) * xp.asarray(1.0 / lam, dtype=V.dtype),
                                  dtype=xp.float64))

    def conjugate(self, summary, s, alpha, Q):
        """h*(s V) from V's ``dual_summary`` (a float; ``inf`` outside h*'s domain)."""
        return s * s * summary

    def dual_scale(self, summary, alpha):
        """The largest s in (0, 1] with h*(s V) finite (1 where h* is finite everywhere):
        the solvers shrink their dual point by it to make it feasible."""
        return 1.0

    def __repr__(self):
        return f"{type(self).__name__}()"

    def __eq__(self, other):
        return type(self) is type(other)

    def __hash__(self):
        return hash(type(self))


class Ridge(Penalty):
    """Independent tasks: ``1/2 (alpha + l2) ||W||_F^2``."""

    name = "ridge"

    def matrix(self, alpha, l2, n_tasks, relation=None):
        return (alpha + l2) * np.eye(n_tasks)


class Mean(Penalty):
    """Mean-regularised tasks (Evgeniou & Pontil, "Regularized multi-task learning", KDD
    2004): ``w_t = w_0 + v_t``, ``1/2 alpha sum_t ||v_t||^2 + 1/2 l2 ||w_0||^2``, minimised
    over w_0 in closed form (``w_0 = alpha sum_t w_t / (alpha T + l2)``), which leaves
    ``Q = alpha I - alpha^2 / (alpha T + l2) 1 1^T``. Large alpha pools the tasks into one
    model (shrunk by l2); alpha -> 0 leaves them independent."""

    name = "mean"

    def matrix(self, alpha, l2, n_tasks, relation=None):
        T = n_tasks
        if alpha == 0:
            return np.zeros((T, T))
        denom = alpha * T + l2
        return alpha * np.eye(T) - (alpha * alpha / denom) * np.ones((T, T)) if denom > 0 \
            else alpha * (np.eye(T) - np.ones((T, T)) / T)


class Graph(Penalty):
    """Task-relation graph: ``1/2 alpha sum_{s,t} |r_st| ||w_s - sign(r_st) w_t||^2 =
    alpha tr(W L W^T)`` with L the signed Laplacian of R, plus ``1/2 l2 ||W||^2``
    (Evgeniou, Micchelli & Pontil, "Learning multiple tasks with kernel methods", JMLR
    2005). Q = 2 alpha L + l2 I."""

    name = "graph"
    uses_relation = True

    def matrix(self, alpha, l2, n_tasks, relation=None):
        R = np.ones((n_tasks, n_tasks)) if relation is None else relation
        return 2.0 * alpha * signed_laplacian(R) + l2 * np.eye(n_tasks)


class L21(Penalty):
    """Shared feature selection: ``alpha sum_j ||W_j,:||_2 + 1/2 l2 ||W||^2`` (Argyriou,
    Evgeniou & Pontil, "Convex multi-task feature learning", Mach. Learn. 2008); with
    squared loss and l2 = 0 it is scikit-learn's ``MultiTaskLasso``. Its prox is the
    row-wise group soft-threshold (native kernel)."""

    name = "l21"
    smooth = False

    def matrix(self, alpha, l2, n_tasks, relation=None):
        return l2 * np.eye(n_tasks)

    def value(self, W, alpha):
        return alpha * float(np.sqrt((W * W).sum(axis=1)).sum())

    def prox(self, W, tau, n_jobs=None):
        from ..backend import kernels

        return kernels.prox_l21(W, tau, n_jobs=n_jobs)

    def dual_summary(self, V, Q):
        """The row norms ||V_j||_2 (float64, on the host)."""
        xp = get_namespace(V)
        return to_numpy(xp.sqrt(xp.sum(V * V, axis=1, dtype=xp.float64)))

    def conjugate(self, summary, s, alpha, Q):
        """h(W) = alpha sum_j ||W_j|| + mu/2 ||W||^2 (Q = mu I): h*(V) = sum_j max(||V_j||
        - alpha, 0)^2 / (2 mu); for mu = 0 the indicator of max_j ||V_j|| <= alpha."""
        return _norm_ball_conjugate(s * summary, alpha, _ridge_of(Q))

    def dual_scale(self, summary, alpha):
        return _ball_scale(summary, alpha)


class Trace(Penalty):
    """Shared low-rank subspace: ``alpha ||W||_* + 1/2 l2 ||W||^2`` (nuclear norm, the sum
    of singular values; Pong, Tseng, Ji & Ye, "Trace norm regularization: reformulations,
    algorithms, and multi-task learning", SIAM J. Optim. 2010) -- the linear counterpart of
    a shared hidden layer with per-task heads. Prox: singular-value soft-thresholding
    ``U max(S - tau, 0) V^T``."""

    name = "trace"
    smooth = False

    def matrix(self, alpha, l2, n_tasks, relation=None):
        return l2 * np.eye(n_tasks)

    def value(self, W, alpha):
        return alpha * float(_singular_values(W).sum()) if W.size else 0.0

    def prox(self, W, tau, n_jobs=None):
        return self.prox_value(W, tau, 0.0)[0]

    def prox_value(self, W, tau, alpha, n_jobs=None):
        if W.size == 0 or tau == 0:
            return W, self.value(W, alpha)
        # the prox's singular values are its output's: no second SVD for the value
        P, S = _shrink_singular_values(W, lambda S: np.maximum(S - tau, 0.0))
        return P, alpha * float(S.sum())

    def dual_summary(self, V, Q):
        """The singular values of V (float64, on the host)."""
        return _singular_values(V).astype(np.float64) if V.size else np.zeros(0)

    def conjugate(self, summary, s, alpha, Q):
        """h(W) = alpha ||W||_* + mu/2 ||W||^2 (Q = mu I): h*(V) = sum_i max(sigma_i(V) -
        alpha, 0)^2 / (2 mu); for mu = 0 the indicator of ||V||_2 <= alpha (the spectral
        norm, dual of the nuclear norm)."""
        return _norm_ball_conjugate(s * summary, alpha, _ridge_of(Q))

    def dual_scale(self, summary, alpha):
        return _ball_scale(summary, alpha)


class MTRL(Penalty):
    """Multi-task relationship learning (Zhang & Yeung, "A convex formulation for learning
    task relationships in multi-task learning", UAI 2010): ``1/2 alpha tr(W Omega^-1 W^T) +
    1/2 l2 ||W||^2`` minimised over W and a task covariance ``Omega >= 0, tr(Omega) = 1``.

    The paper alternates a W-step with the closed form ``Omega = (W^T W)^(1/2) /
    tr((W^T W)^(1/2))``. Putting that minimiser back in gives ``min_Omega tr(W Omega^-1
    W^T) = ||W||_*^2``, so the problem over W alone is ``1/2 alpha ||W||_*^2 + 1/2 l2
    ||W||^2``: the same optimum, solved here by FISTA in one pass (prox below) instead of
    tens of alternations that stall as Omega turns singular (rank <= d when d < T). The
    fitted ``task_covariance_`` is the closed form at the solution and ``task_relation_``
    its correlation matrix.

    Prox of ``tau/2 (sum_i s_i)^2`` on the singular values s (sorted): ``max(s - theta,
    0)`` with ``theta = tau S_k / (1 + tau k)``, S_k the sum of the k largest, k the
    largest count with ``s_k > theta``."""

    name = "mtrl"
    smooth = False
    learns_relation = True

    def matrix(self, alpha, l2, n_tasks, relation=None):
        return l2 * np.eye(n_tasks)

    def value(self, W, alpha):
        return 0.5 * alpha * float(_singular_values(W).sum()) ** 2 if W.size else 0.0

    def prox(self, W, tau, n_jobs=None):
        return self.prox_value(W, tau, 0.0)[0]

    def prox_value(self, W, tau, alpha, n_jobs=None):
        if W.size == 0 or tau == 0:
            return W, self.value(W, alpha)
        P, S = _shrink_singular_values(W, lambda S: self.shrink(S, tau))
        return P, 0.5 * alpha * float(S.sum()) ** 2

    def dual_summary(self, V, Q):
        """The singular values of V, decreasing (float64, on the host)."""
        return _singular_values(V).astype(np.float64) if V.size else np.zeros(0)

    def conjugate(self, summary, s, alpha, Q):
        """h(W) = phi(sigma(W)), phi(x) = alpha/2 (sum x)^2 + mu/2 ||x||^2 (Q = mu I), so
        h*(V) = phi*(sigma(V)) (Lewis, "The convex analysis of unitarily invariant matrix
        functions", 1995), phi*(v) = sup_{x >= 0} <x, v> - phi(x): the maximiser is x_i =
        max(v_i - alpha S, 0) / mu with S = sum x, found by sorting as in :meth:`shrink`;
        for mu = 0 it is max(v)^2 / (2 alpha)."""
        mu = _ridge_of(Q)
        v = s * np.sort(summary)[::-1]
        if v.size == 0:
            return 0.0
        if alpha == 0:
            return _norm_ball_conjugate(v, 0.0, mu)
        if mu == 0:
            return float(v[0]) ** 2 / (2.0 * alpha)
        k = np.arange(1, len(v) + 1)
        S_k = np.cumsum(v) / (mu + alpha * k)  # sum x if the k largest are active
        active = np.flatnonzero(v > alpha * S_k)
        if active.size == 0:
            return 0.0
        S = S_k[active[-1]]
        x = np.maximum(v - alpha * S, 0.0) / mu
        return float(x @ v - 0.5 * alpha * x.sum() ** 2 - 0.5 * mu * (x @ x))

    @staticmethod
    def shrink(S, tau):
        """prox of tau/2 (sum S)^2 for S >= 0 sorted in decreasing order."""
        k = np.arange(1, len(S) + 1)
        theta = tau * np.cumsum(S) / (1.0 + tau * k)
        active = np.flatnonzero(S > theta)
        if active.size == 0:
            return np.zeros_like(S)
        return np.maximum(S - theta[active[-1]], 0.0)

    @staticmethod
    def update(W):
        """Omega = (W^T W + eps I)^(1/2) / trace, eps a tiny ridge that keeps it invertible."""
        G = W.T @ W
        T = G.shape[0]
        G = G + (1e-10 * (np.trace(G) / T) + 1e-12) * np.eye(T)
        lam, V = np.linalg.eigh(G)
        M = (V * np.sqrt(np.maximum(lam, 0.0))) @ V.T
        return M / np.trace(M)


def _ridge_of(Q):
    """mu of a non-smooth penalty's Q = mu I."""
    Q = to_numpy(Q)
    return float(Q[0, 0]) if Q.size else 0.0


def _norm_ball_conjugate(norms, alpha, mu):
    """Conjugate of alpha ||.|| + mu/2 ||.||_F^2 for a norm whose dual norms of the parts
    are ``norms`` (rows for L2,1, singular values for the nuclear norm)."""
    excess = np.maximum(np.asarray(norms, dtype=np.float64) - alpha, 0.0)
    if mu > 0:
        return float(excess @ excess) / (2.0 * mu)
    # mu = 0: an indicator; a relative slack of rounding size absorbs the rescaled point's
    # own rounding (dual_scale puts its largest norm exactly on alpha)
    return 0.0 if np.all(excess <= 1e-12 * max(alpha, 1e-300)) else np.inf


def _ball_scale(norms, alpha):
    top = float(np.max(norms)) if np.size(norms) else 0.0
    return 1.0 if top <= alpha else alpha / top


def _singular_values(W):
    return to_numpy(get_namespace(W).linalg.svd(W, compute_uv=False))


def _shrink_singular_values(W, shrink):
    """(U shrink(S) V^T, the shrunk S), with the SVD where W lives (NumPy or CuPy) and
    shrink on the host."""
    xp = get_namespace(W)
    U, S, Vt = xp.linalg.svd(W, full_matrices=False)
    S = shrink(to_numpy(S).astype(np.float64))
    k = int(np.count_nonzero(S > 0))  # S is sorted and shrink monotone: a leading block
    if k == 0:
        return xp.zeros_like(W), S[:0]
    return (U[:, :k] * xp.asarray(S[:k], dtype=W.dtype)) @ Vt[:k], S[:k]


PENALTIES = {p.name: p for p in (Ridge, Mean, Graph, L21, Trace, MTRL)}


def get_penalty(penalty):
    """A penalty instance from a name or an instance."""
    if isinstance(penalty, Penalty):
        return penalty
    if isinstance(penalty, str) and penalty in PENALTIES:
        return PENALTIES[penalty]()
    raise ValueError(f"penalty must be one of {tuple(PENALTIES)} or a Penalty instance, got "
                     f"{penalty!r}")
