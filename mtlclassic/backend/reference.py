"""Plain array-namespace reference implementations of the native kernels.

They define the numbers the C++ and CUDA kernels are tested against, and they run on
NumPy or CuPy alike (the namespace is taken from the input).
"""

import numpy as np

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


def patches_reference(images, points, sides, patch_size):
    """Float64 NumPy reference of the patch kernels (``mtlclassic/patch.h``): bilinear
    ``patch_size`` x ``patch_size`` patches of side ``sides[i, k]`` centred on
    ``points[i, k] = (x, y)``, coordinates clamped to the image, the same operations in
    the same order. Returns (n, m, P, P) float64."""
    P = int(patch_size)
    points = np.asarray(points, dtype=np.float64)
    sides = np.asarray(sides, dtype=np.float64)
    n, m = sides.shape
    out = np.empty((n, m, P, P))
    frac = (np.arange(P) + 0.5) / P - 0.5
    for i in range(n):
        img = np.asarray(images[i])
        H, W = img.shape
        for k in range(m):
            cx, cy = points[i, k]
            x = np.minimum(np.maximum(cx + sides[i, k] * frac, 0.0), W - 1.0)[None, :]
            y = np.minimum(np.maximum(cy + sides[i, k] * frac, 0.0), H - 1.0)[:, None]
            c0, r0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
            c1, r1 = np.minimum(c0 + 1, W - 1), np.minimum(r0 + 1, H - 1)
            fx, fy = x - c0, y - r0
            v = img.astype(np.float64)
            v00, v01, v10, v11 = v[r0, c0], v[r0, c1], v[r1, c0], v[r1, c1]
            top = v00 + fx * (v01 - v00)
            bottom = v10 + fx * (v11 - v10)
            out[i, k] = top + fy * (bottom - top)
    return out
