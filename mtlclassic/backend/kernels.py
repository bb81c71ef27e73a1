"""Python entry points of the compiled kernels.

Each function validates its arguments (shape, dtype, finiteness of scalars,
contiguity, device) and only then hands raw buffers to ``_cpu`` or ``_cuda``.
The namespace of the input decides where the work runs: NumPy -> C++ threads,
CuPy -> CUDA on CuPy's current stream.
"""

import math
import numbers
import operator

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


def column_sums_top(X):
    """(s, top) of a C-contiguous float32/float64 NumPy matrix X (n, d) in one native pass:
    s (d,) float64, the column sums in row order (for float64 X of two or more columns the
    additions, and so the bits, of ``X.sum(axis=0)``; NumPy sums a single column pairwise;
    float32 X is summed in float64), and top = max |x_ij|.
    s is finite only if every entry is (or, rarely, not when a sum overflows); ``top`` is
    the largest magnitude (NaN entries are not seen by it). ValueError for other arrays
    (csrc/cpu/moments.cpp)."""
    if not (isinstance(X, np.ndarray) and X.ndim == 2 and X.flags.c_contiguous
            and X.dtype in (np.float32, np.float64)):
        raise ValueError("X must be a C-contiguous 2-D float32 or float64 NumPy array")
    s, top = require_cpu().column_sums_top(X)
    return s, float(top)


def centred_rows(X, start, mean, out, cols=None):
    """out = X[start:start + len(out), cols] - mean, in float64, in one native pass
    (csrc/cpu/moments.cpp): X a C-contiguous float32 NumPy matrix, mean (k,) float64 the
    means of the columns taken, out a C-contiguous float64 (rows, k) buffer, cols (k,)
    int64 column indices or None (every column). Returns out. ValueError for other
    arrays or a block beyond X's rows or columns."""
    def c_array(a, dtype, ndim):
        return isinstance(a, np.ndarray) and a.dtype == dtype and a.ndim == ndim \
            and a.flags.c_contiguous
    if not c_array(X, np.float32, 2):
        raise ValueError("X must be a C-contiguous 2-D float32 NumPy array")
    if not (c_array(out, np.float64, 2) and out.flags.writeable):
        raise ValueError("out must be a writeable C-contiguous 2-D float64 NumPy array")
    if not (c_array(mean, np.float64, 1) and len(mean) == out.shape[1]):
        raise ValueError("mean must be a C-contiguous float64 vector of out's column count")
    if cols is not None:
        if not (c_array(cols, np.int64, 1) and len(cols) == out.shape[1]):
            raise ValueError("cols must be a C-contiguous int64 vector of out's column count")
        if len(cols) and (cols.min() < 0 or cols.max() >= X.shape[1]):
            raise ValueError("cols must hold column indices of X")
    elif out.shape[1] != X.shape[1]:
        raise ValueError("out must have X's column count when cols is None")
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)):
        raise ValueError(f"start must be an integer, got {start!r}")
    start = int(start)
    if start < 0 or start + out.shape[0] > X.shape[0]:
        raise ValueError(f"rows {start}..{start + out.shape[0]} are beyond X's "
                         f"{X.shape[0]} rows")
    require_cpu().centred_rows(X, start, mean, out, cols)
    return out


def _f64_buffer(a, name, shape, writeable=False):
    """a as a C-contiguous float64 NumPy array of ``shape`` (a copy only when needed; an
    in/out buffer must already be one)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(a).__name__}")
    if a.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {a.shape}")
    if writeable:
        if a.dtype != np.float64 or not a.flags.c_contiguous or not a.flags.writeable:
            raise ValueError(f"{name} is updated in place: it must be a writeable "
                             "C-contiguous float64 array")
        return a
    return np.ascontiguousarray(a, dtype=np.float64)


def _matrix_shape(a, name):
    """The shape of the 2-D NumPy array ``a`` (an error naming it otherwise)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(a).__name__}")
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got {a.ndim}-D of shape {a.shape}")
    return a.shape


def _bcd_args(n_epochs, fit_intercept, L, finite=(), nonneg=()):
    """The BCD kernels' shared checks: n_epochs an integer in [0, 2^31), fit_intercept a
    bool, L finite and > 0, the (name, array) pairs of ``finite`` finite and those of
    ``nonneg`` finite and >= 0 (each O(size): the (n, T) and (p, T) arrays, never X's
    columns, which the kernels' NaN-propagating return value reports instead)."""
    if isinstance(n_epochs, (bool, np.bool_)) or not isinstance(n_epochs, numbers.Integral) \
            or not 0 <= n_epochs < 2 ** 31:
        raise ValueError(f"n_epochs must be an integer in [0, 2**31), got {n_epochs!r}")
    if not isinstance(fit_intercept, (bool, np.bool_)):
        raise TypeError(f"fit_intercept must be a bool, got {type(fit_intercept).__name__}")
    if L.size and not np.all(np.isfinite(L) & (L > 0)):
        raise ValueError("L must be finite and > 0")
    for name, a in finite:
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} contains NaN or infinity")
    for name, a in nonneg:
        if not np.all(np.isfinite(a) & (a >= 0)):
            raise ValueError(f"{name} must be finite and >= 0")
    return int(n_epochs), bool(fit_intercept)


def bcd_l21_data(Xt, Y, A, Z, W, b, L, Lb, alpha, l2, loss, fit_intercept, n_epochs=1):
    """Epochs of block coordinate descent for ``sum_it A_it l(y_it, z_it) + alpha sum_j
    ||W_j||_2 + l2/2 ||W||^2`` in residual form, in place on Z = Xt^T W + b, W and b.

    Block step of row j: ``W_j <- prox_{alpha/L_j ||.||}(W_j - g_j / L_j)`` with ``g_j =
    sum_i Xt_ji A_i: l'(y_i:, z_i:) + l2 W_j`` (Tseng & Yun 2009; Massias et al., Celer,
    ICML 2018), then ``Z += Xt_j^T delta``; with ``fit_intercept`` each epoch ends with
    ``b_t -= sum_i A_it l'(y_it, z_it) / Lb_t``. ``loss``: "squared" or "logistic" (y in
    {-1, +1}); Xt (p, n): the working set's columns of X as rows; L (p,) > 0 block
    Lipschitz constants, Lb (T,) the intercepts'. Returns the largest |change| of W in
    the last epoch. float64, CPU only."""
    from ..multitask._losses import KINDS

    if loss not in KINDS:
        raise ValueError(f"loss must be one of {tuple(KINDS)}, got {loss!r}")
    p, n = _matrix_shape(Xt, "Xt")
    T = _matrix_shape(W, "W")[1]
    Xt = _f64_buffer(Xt, "Xt", (p, n))
    Y, A = _f64_buffer(Y, "Y", (n, T)), _f64_buffer(A, "A", (n, T))
    Z, W = _f64_buffer(Z, "Z", (n, T), True), _f64_buffer(W, "W", (p, T), True)
    b = _f64_buffer(b, "b", (T,), True)
    L, Lb = _f64_buffer(L, "L", (p,)), _f64_buffer(Lb, "Lb", (T,))
    n_epochs, fit_intercept = _bcd_args(n_epochs, fit_intercept, L,
                                        finite=(("Y", Y), ("Z", Z), ("W", W), ("b", b)),
                                        nonneg=(("A", A), ("Lb", Lb)))
    return require_cpu().bcd_l21_data(Xt, Y, A, Z, W, b, L, Lb, _check_scalar(alpha, "alpha"),
                                      _check_scalar(l2, "l2"), KINDS[loss], fit_intercept,
                                      n_epochs)


#: rows per block of :func:`bcd_l21_rank1`. Epochs on 3,200 x 500 rows, T = 10 (n < d's last
#: working set; 1,750 rows nonzero), full / active-only: 3.6 / 3.0 ms one row at a time,
#: 3.1-3.3 / 2.2-2.5 ms with blocks of 16 (32: level, 64: 3.6 / 2.5); 500 x 5,000: 9.4 -> 5.6
#: ms; 1,000 x 2,000, T = 20: 14.4 -> 7.1 ms (R beyond the L2 cache). Each block's Gram
#: matrix costs 2 n B flops a row, once per working set
RANK1_BLOCK = 16


def rank1_cache(p, block=RANK1_BLOCK):
    """The block Gram matrices of :func:`bcd_l21_rank1` for a working set of p rows, empty:
    ``(Kb, filled)``, Kb (p, block) float64 and filled (ceil(p / block),) uint8 zeros.
    Valid for one (Xt, a): the kernel fills block k (rows kB .. kB + B - 1) when it first
    visits it, row j's entries ``Kb[j, l] = sum_i a_i Xt[j, i] Xt[kB + l, i]`` (without
    a_i where a is constant: it then goes with c), and sets filled[k] = 1; the entries of
    a last, partial block beyond its rows stay 0."""
    if isinstance(p, (bool, np.bool_)) or isinstance(block, (bool, np.bool_)):
        raise TypeError(f"p and block must be integers, got {p!r}, {block!r}")
    p, block = operator.index(p), operator.index(block)
    if p < 0 or not 1 <= block <= 256:
        raise ValueError(f"p must be >= 0 and block in [1, 256], got {p}, {block}")
    return np.zeros((p, block)), np.zeros(-(-p // block), dtype=np.uint8)


def _rank1_cache_checked(cache, p):
    """``cache`` if it is the pair :func:`rank1_cache` makes for p rows (writeable, C-
    contiguous, its dtypes), else a ValueError naming it."""
    ok = isinstance(cache, tuple) and len(cache) == 2
    Kb, filled = cache if ok else (None, None)
    for a, dtype in ((Kb, np.float64), (filled, np.uint8)):
        ok = ok and isinstance(a, np.ndarray) and a.dtype == dtype and \
            a.flags.c_contiguous and a.flags.writeable
    ok = ok and Kb.ndim == 2 and Kb.shape[0] == p and 1 <= Kb.shape[1] <= 256 and \
        filled.shape == (-(-p // Kb.shape[1]),)
    if not ok:
        raise ValueError(f"cache must be rank1_cache({p}, block) for the {p} rows of Xt "
                         "(writeable, as made)")
    return Kb, filled


def _rank1_cache_matches(Kb, filled, Xt, a):
    """Whether each filled block's first diagonal entry is sum_i a_i x_i^2 of its row of Xt
    (without a for a constant a), to rounding: a spot check, O(n) a block, that the cache
    was filled from these Xt and a (one of another working set, or filled flags over an
    empty Kb, would take wrong steps)."""
    B = Kb.shape[1]
    rows = np.flatnonzero(filled) * B
    if rows.size == 0:
        return True
    w = a if a.size and np.any(a != a[0]) else np.ones_like(a)
    want = (Xt[rows] * Xt[rows]) @ w
    got = Kb[rows, 0]
    return bool(np.all(np.abs(got - want) <= 1e-10 * np.abs(want) + 1e-300))


def bcd_l21_rank1(Xt, R, a, c, W, b, L, Lb, alpha, l2, fit_intercept, n_epochs=1,
                  active_only=False, cache=None):
    """:func:`bcd_l21_data` for squared loss with rank-one weights ``A_it = a_i c_t``
    (every label present; a (n,) sample weights, c (T,) task weights), in place on the
    residual R = Z - Y (n, T), W and b: block gradient ``g_jt = c_t sum_i Xt_ji a_i R_it
    + l2 W_jt``, then ``R += Xt_j^T delta``; with ``fit_intercept`` each epoch ends with
    the exact step on b (Lb_t = c_t sum_i a_i). The rows are visited in order, by blocks
    of ``cache``'s width: a block's gradients come from R in one pass, each step's change
    reaches the block's later rows through the block's Gram matrix ``sum_i a_i x_ij
    x_ik``, and the block's changes reach R in one pass (the same steps as one row at a
    time, with R read once a block instead of twice a row). ``cache``: the blocks' Gram
    matrices from :func:`rank1_cache`, filled as blocks are first visited; pass the same
    one to later calls on the same Xt and a (None: a new one for this call).
    ``active_only``: the epochs visit only the rows of W that are nonzero when reached
    (glmnet's active-set cycling; the caller alternates them with full epochs).
    Returns the largest |change| of W in the last epoch. float64, CPU only."""
    p, n = _matrix_shape(Xt, "Xt")
    T = _matrix_shape(W, "W")[1]
    Xt = _f64_buffer(Xt, "Xt", (p, n))
    R, W = _f64_buffer(R, "R", (n, T), True), _f64_buffer(W, "W", (p, T), True)
    a, c = _f64_buffer(a, "a", (n,)), _f64_buffer(c, "c", (T,))
    b = _f64_buffer(b, "b", (T,), True)
    L, Lb = _f64_buffer(L, "L", (p,)), _f64_buffer(Lb, "Lb", (T,))
    n_epochs, fit_intercept = _bcd_args(n_epochs, fit_intercept, L,
                                        finite=(("R", R), ("W", W), ("b", b)),
                                        nonneg=(("a", a), ("c", c), ("Lb", Lb)))
    if not isinstance(active_only, (bool, np.bool_)):
        raise TypeError(f"active_only must be a bool, got {type(active_only).__name__}")
    Kb, filled = rank1_cache(p) if cache is None else _rank1_cache_checked(cache, p)
    if not _rank1_cache_matches(Kb, filled, Xt, a):
        raise ValueError("cache was filled from another Xt or a: its blocks' Gram matrices "
                         "do not match (one rank1_cache per working set)")
    return require_cpu().bcd_l21_rank1(Xt, R, a, c, W, b, L, Lb, _check_scalar(alpha, "alpha"),
                                       _check_scalar(l2, "l2"), fit_intercept, n_epochs,
                                       bool(active_only), Kb, filled)


def bcd_l21_gram(K, H, c, KW, W, L, alpha, l2, n_epochs=1):
    """Epochs of block coordinate descent for ``sum_t c_t (1/2 w_t^T K w_t - w_t^T h_t) +
    alpha sum_j ||W_j||_2 + l2/2 ||W||^2`` (squared loss in Gram form), in place on KW =
    K W and W: block gradient ``c * (KW_j - H_j) + l2 W_j``, then ``KW += K_:j delta``.
    Returns the largest |change| of W in the last epoch. float64, CPU only."""
    p, T = _matrix_shape(W, "W")
    K, H = _f64_buffer(K, "K", (p, p)), _f64_buffer(H, "H", (p, T))
    c = _f64_buffer(c, "c", (T,))
    KW, W = _f64_buffer(KW, "KW", (p, T), True), _f64_buffer(W, "W", (p, T), True)
    L = _f64_buffer(L, "L", (p,))
    n_epochs, _ = _bcd_args(n_epochs, False, L, finite=(("H", H), ("KW", KW), ("W", W)),
                            nonneg=(("c", c),))
    return require_cpu().bcd_l21_gram(K, H, c, KW, W, L, _check_scalar(alpha, "alpha"),
                                      _check_scalar(l2, "l2"), n_epochs)


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
