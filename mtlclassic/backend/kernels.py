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


# ------------------------------------------------------------------ GPU helpers
DTYPE_CODES = {np.dtype(np.uint8): 0, np.dtype(np.uint16): 1, np.dtype(np.float32): 2,
               np.dtype(np.float64): 3}


def device_ptr(a, name="array"):
    """Raw device pointer of a C-contiguous CuPy array (checked here, so that no bad
    pointer reaches C++: the extension also checks that it is device memory)."""
    if not is_cupy_array(a):
        raise TypeError(f"{name} must be a CuPy array, got {type(a).__name__}")
    if a.size and not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    return int(a.data.ptr)


def device_free_bytes():
    """Free device memory: the driver's free bytes plus what CuPy's pool holds unused."""
    import cupy

    free, _ = cupy.cuda.runtime.memGetInfo()
    return int(free) + int(cupy.get_default_memory_pool().free_bytes())


def device_chunk_size(n, bytes_per_item, free_bytes, batch_size=None, fraction=0.5,
                      what="the batch"):
    """How many items to process at once so that their buffers take at most ``fraction``
    of ``free_bytes`` (and at most ``batch_size``); MemoryError when not even one fits."""
    if n <= 0:
        return 1
    budget = int(free_bytes * fraction)
    if bytes_per_item > budget:
        raise MemoryError(f"{what}: one item needs {bytes_per_item / 2**20:.1f} MiB of GPU "
                          f"memory but only {free_bytes / 2**20:.1f} MiB are free")
    k = max(1, budget // max(int(bytes_per_item), 1))
    if batch_size is not None:
        k = min(k, int(batch_size))
    return int(min(k, n))


def loss_grad_cuda(Z, Y, A, kind, group=None):
    """Fused masked loss and gradient on the GPU (``mtlclassic/loss.h``): returns
    (loss, G) with G = A * l'(Y, Z) of Z's dtype and the loss summed in float64. ``group``
    (an int32 CuPy array, one entry per column; see ``_losses.softmax_groups``) makes the
    K columns of a softmax task one multinomial loss per row."""
    import cupy as cp

    cuda = require_cuda()
    dt = Z.dtype
    if dt not in (cp.float32, cp.float64):
        raise TypeError(f"Z must be float32 or float64, got {dt}")
    for a, name in ((Y, "Y"), (A, "A")):
        if a.shape != Z.shape or a.dtype != dt:
            raise ValueError(f"{name} must have Z's shape {Z.shape} and dtype {dt}, got "
                             f"{a.shape} {a.dtype}")
    Z, Y, A = (cp.ascontiguousarray(a) for a in (Z, Y, A))
    G = cp.empty_like(Z)
    if Z.size == 0:
        return 0.0, G
    if group is not None:
        if Z.ndim != 2 or group.shape != (Z.shape[1],) or group.dtype != cp.int32:
            raise ValueError(f"group must be int32 of shape ({Z.shape[1]},), got "
                             f"{group.shape} {group.dtype}")
        group = cp.ascontiguousarray(group)
        partial = cp.empty(cuda.loss_grad_blocks(Z.shape[0]), dtype=cp.float64)
        cuda.loss_grad_grouped(device_ptr(Z, "Z"), device_ptr(Y, "Y"), device_ptr(A, "A"),
                               device_ptr(G, "G"), device_ptr(group, "group"),
                               device_ptr(partial, "partial"), Z.shape[0], Z.shape[1], kind,
                               dt == cp.float64, cp.cuda.get_current_stream().ptr)
        return float(partial.sum()), G
    partial = cp.empty(cuda.loss_grad_blocks(Z.size), dtype=cp.float64)
    cuda.loss_grad(device_ptr(Z, "Z"), device_ptr(Y, "Y"), device_ptr(A, "A"),
                   device_ptr(G, "G"), device_ptr(partial, "partial"), Z.size, kind,
                   dt == cp.float64, cp.cuda.get_current_stream().ptr)
    return float(partial.sum()), G
