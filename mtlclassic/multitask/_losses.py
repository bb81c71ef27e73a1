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


def native_loss(kind, n_jobs=None):
    """A loss function ``(Z, Y, A) -> (loss, G)`` running the fused C++ pass."""
    cpu = require_cpu()
    code = KINDS[kind]
    n_threads = effective_n_threads(n_jobs)

    def fn(Z, Y, A):
        Z = np.ascontiguousarray(Z, dtype=np.float64)
        G = np.empty_like(Z)
        loss = cpu.loss_grad(Z, np.ascontiguousarray(Y, dtype=np.float64),
                             np.ascontiguousarray(A, dtype=np.float64), G, code, n_threads)
        return loss, G

    return fn


NUMPY_LOSSES = {"squared": squared_numpy, "logistic": logistic_numpy}
