"""Plain array-namespace reference implementations of the native kernels.

They define the numbers the C++ and CUDA kernels are tested against, and they run on
NumPy or CuPy alike (the namespace is taken from the input).
"""

from ._array import get_namespace


def prox_l21_reference(W, tau):
    """``max(0, 1 - tau/||W_j||) W_j`` row by row, computed in float64, cast back."""
    xp = get_namespace(W)
    W64 = W.astype(xp.float64)
    norms = xp.sqrt(xp.sum(W64 * W64, axis=1, keepdims=True))
    with_norm = norms > tau
    safe = xp.where(with_norm, norms, 1.0)
    scale = xp.where(with_norm, 1.0 - tau / safe, 0.0)
    scale = xp.where(xp.isnan(norms), norms, scale)
    return (scale * W64).astype(W.dtype)
