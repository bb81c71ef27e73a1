"""Python entry points of the compiled kernels.

Each function validates its arguments (shape, dtype, finiteness of scalars,
contiguity, device) and only then hands raw buffers to ``_cpu`` or ``_cuda``.
The namespace of the input decides where the work runs: NumPy -> C++ threads,
CuPy -> CUDA on CuPy's current stream.
"""

import math
import numbers

import numpy as np

from ._array import is_cupy_array
from ._native import require_cpu, require_cuda
from ._threads import effective_n_threads

FLOAT_DTYPES = (np.float32, np.float64)


def _check_float_matrix(W, name):
    if not hasattr(W, "ndim") or not hasattr(W, "dtype"):
        raise TypeError(f"{name} must be a NumPy or CuPy array, got {type(W).__name__}")
    if W.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got an array of shape {tuple(W.shape)}")
    if W.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got dtype {W.dtype}")


def _check_scalar(value, name, minimum=0.0):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value < minimum:
        raise ValueError(f"{name} must be finite and >= {minimum}, got {value}")
    return value


def _prepare_out(out, W, xp):
    if out is None:
        return xp.empty_like(W, order="C")
    if type(out) is not type(W):
        raise TypeError("out must be the same kind of array as W (NumPy or CuPy)")
    if out.shape != W.shape or out.dtype != W.dtype:
        raise ValueError(f"out must have shape {W.shape} and dtype {W.dtype}, got "
                         f"{out.shape} {out.dtype}")
    if not out.flags.c_contiguous:
        raise ValueError("out must be C-contiguous")
    if xp is np and not out.flags.writeable:
        raise ValueError("out must be writeable")
    return out


def prox_l21(W, tau, out=None, n_jobs=None):
    """L2,1 proximal operator (row-wise group soft-thresholding).

    ``out_j = max(0, 1 - tau / ||W_j||_2) * W_j`` for each row ``j`` (a feature; the
    columns are tasks).  Rows with norm <= tau become exactly zero.  Reference:
    Argyriou, Evgeniou & Pontil, "Convex multi-task feature learning", 2008.

    Parameters
    ----------
    W : ndarray of shape (n_rows, n_cols), float32 or float64, NumPy or CuPy
        Non-contiguous input is copied to a contiguous one first.
    tau : float >= 0
        Threshold (step size x penalty strength).
    out : ndarray, optional
        C-contiguous array of W's shape, dtype and kind; may be ``W`` itself when W is
        contiguous (in-place).
    n_jobs : int or None
        CPU threads (scikit-learn convention: None = 1, -1 = all); ignored on the GPU.
    """
    _check_float_matrix(W, "W")
    tau = _check_scalar(tau, "tau")
    if is_cupy_array(W):
        import cupy as cp

        cuda = require_cuda()
        if W.device.id != cp.cuda.Device().id:
            raise ValueError(f"W lives on GPU {W.device.id} but the current device is "
                             f"{cp.cuda.Device().id}")
        W = cp.ascontiguousarray(W)
        out = _prepare_out(out, W, cp)
        cuda.prox_l21(W.data.ptr, out.data.ptr, W.shape[0], W.shape[1], tau,
                      W.dtype == cp.float64, cp.cuda.get_current_stream().ptr)
        return out
    cpu = require_cpu()
    W = np.ascontiguousarray(W)
    out = _prepare_out(out, W, np)
    fn = cpu.prox_l21_f64 if W.dtype == np.float64 else cpu.prox_l21_f32
    fn(W, tau, out, effective_n_threads(n_jobs))
    return out
