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
