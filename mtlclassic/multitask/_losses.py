"""Masked losses over all sub-tasks at once.

``A`` holds each entry's weight ``s_i rho_t / n_t`` (0 where unlabelled), so the loss is
``sum_it A_it l(y_it, z_it)`` and its gradient w.r.t. Z is ``A * l'(Y, Z)``.
"""

import numpy as np


def squared(Z, Y, A):
    """``l = 1/2 (y - z)^2``; returns (loss, dL/dZ)."""
    G = A * (Z - Y)
    return 0.5 * float(np.sum(G * (Z - Y))), G


def logistic(Z, Y, A):
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


LOSSES = {"squared": squared, "logistic": logistic}
