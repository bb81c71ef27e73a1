"""Masked losses over all sub-tasks at once.

``A`` holds each entry's weight ``s_i rho_t / n_t`` (0 where unlabelled), so the loss is
``sum_it A_it l(y_it, z_it)`` and its gradient w.r.t. Z is ``A * l'(Y, Z)``. The fused
native kernel (``_cpu.loss_grad``, math in ``csrc/include/mtlclassic/loss.h``) does the
pass; the NumPy versions below are its reference and agree to rounding.
"""

import numpy as np

from ..backend._native import require_cpu
from ..backend._threads import effective_n_threads

KINDS = {"squared": 0, "logistic": 1}


def squared_numpy(Z, Y, A):
    """``l = 1/2 (y - z)^2``; returns (loss, dL/dZ)."""
    G = A * (Z - Y)
    return 0.5 * float(np.sum(G * (Z - Y))), G


def logistic_numpy(Z, Y, A):
    """``l = log(1 + exp(-y z))`` with y in {-1, +1}; returns (loss, dL/dZ)."""
    m = Y * Z
    loss = float(np.sum(A * np.logaddexp(0.0, -m)))
    G = -A * Y * _expit(-m)
    return loss, G


def _expit(x):
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def softmax_groups(owner, multinomial):
    """The group layout of the sub-task columns (see ``loss.h``): K at the first column of a
    K-class task fitted with the softmax loss, 0 at its other columns, 1 elsewhere.
    ``owner``: the task of each column; ``multinomial``: the tasks with a softmax loss."""
    owner = np.asarray(owner)
    group = np.ones(len(owner), dtype=np.int32)
    for t in multinomial:
        cols = np.flatnonzero(owner == t)
        if len(cols) >= 2:
            group[cols] = 0
            group[cols[0]] = len(cols)
    return group


def mixed_groups(owner, regression, multinomial=()):
    """The group layout of a model of mixed task types: -1 at the column of every task in
    ``regression`` (squared loss), the softmax layout of :func:`softmax_groups` for the
    tasks in ``multinomial``, 1 (the element-wise logistic loss) elsewhere."""
    group = softmax_groups(owner, multinomial)
    group[np.isin(np.asarray(owner), np.asarray(list(regression), dtype=int))] = -1
    return group


def grouped_numpy(Z, Y, A, group, kind="logistic"):
    """Reference of the grouped pass: softmax cross-entropy over each group of K >= 2
    columns (weight: the group's first column of A; true class: the column where Y is +1;
    no +1 or a zero weight: no loss), the element-wise ``kind`` loss on the columns of
    group 1, the squared loss on the columns of group -1. Returns (loss, dL/dZ)."""
    group = np.asarray(group)
    loss, G = 0.0, np.zeros_like(Z)
    for cols, name in ((group == 1, kind), (group == -1, "squared")):
        if cols.any():
            lv, G[:, cols] = NUMPY_LOSSES[name](Z[:, cols], Y[:, cols], A[:, cols])
            loss += lv
    for j in np.flatnonzero(group >= 2):
        sl = slice(j, j + int(group[j]))
        z, onehot, a = Z[:, sl], (Y[:, sl] > 0).astype(Z.dtype), A[:, j:j + 1]
        lab = (onehot.sum(axis=1, keepdims=True) > 0) & (a > 0)
        m = z.max(axis=1, keepdims=True)
        lse = m + np.log(np.exp(z - m).sum(axis=1, keepdims=True))
        per_row = a * (lse - (onehot * z).sum(axis=1, keepdims=True))
        loss += float(np.sum(np.where(lab, per_row, 0.0)))
        G[:, sl] = np.where(lab, a * (np.exp(z - lse) - onehot), 0.0)
    return loss, G


def kernel_weights(A):
    """A as the native kernels take it: float64 and C-contiguous, or -- A a read-only
    broadcast of one row (stride 0 over the rows: no sample weights, every label present)
    -- that row alone, (1, T): the kernels read entry (i, t)'s weight from it, where a
    contiguous copy would make the (n, T) array the broadcast saves at every call."""
    if A.ndim == 2 and A.shape[0] > 1 and A.strides[0] == 0:
        return np.ascontiguousarray(A[:1], dtype=np.float64)
    return np.ascontiguousarray(A, dtype=np.float64)


def kernel_targets(Y):
    """Y as the native kernels take it: float64 or int8 (a classifier's compact targets
    in {-1, +1}, read as they are), C-contiguous; another dtype is converted to float64."""
    if isinstance(Y, np.ndarray) and Y.dtype == np.int8:
        return np.ascontiguousarray(Y)
    return np.ascontiguousarray(Y, dtype=np.float64)


def native_loss(kind, n_jobs=None, group=None):
    """A loss function ``(Z, Y, A, out=None, n_threads=...) -> (loss, G)`` running the
    fused C++ pass on ``n_threads`` threads (its attribute ``n_threads``: n_jobs'); with a
    ``group`` layout (:func:`softmax_groups`) holding softmax tasks, the grouped pass.
    ``out``: a float64 C-contiguous array of Z's shape that G is written to; it may be Z
    itself where the function's ``in_place`` attribute is true (no softmax task)."""
    cpu = require_cpu()
    code = KINDS[kind]
    n_threads = effective_n_threads(n_jobs)
    if group is not None and np.any(np.asarray(group) != 1):
        group = np.ascontiguousarray(group, dtype=np.int32)

        def grouped(Z, Y, A, out=None, n_threads=n_threads):
            Z = np.ascontiguousarray(Z, dtype=np.float64)
            G = np.empty_like(Z) if out is None else out
            loss = cpu.loss_grad_grouped(Z, kernel_targets(Y), kernel_weights(A), G, group,
                                         code, n_threads)
            return loss, G

        grouped.n_threads = n_threads

        # each column's value is read before its gradient is written, but a softmax task
        # reads its scores again after writing the first gradients: no G in Z's place
        grouped.in_place = not bool(np.any(group >= 2))
        return grouped

    def fn(Z, Y, A, out=None, n_threads=n_threads):
        Z = np.ascontiguousarray(Z, dtype=np.float64)
        G = np.empty_like(Z) if out is None else out
        loss = cpu.loss_grad(Z, kernel_targets(Y), kernel_weights(A), G, code, n_threads)
        return loss, G

    fn.in_place = True  # (``out`` may be Z: each entry is read before it is written)
    fn.n_threads = n_threads
    return fn


NUMPY_LOSSES = {"squared": squared_numpy, "logistic": logistic_numpy}
