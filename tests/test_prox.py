"""L2,1 proximal operator: native C++ (and CUDA) against the float64 reference."""

import numpy as np
import pytest

from mtlclassic.backend import kernels
from mtlclassic.backend._native import _cpu
from mtlclassic.backend.reference import prox_l21_reference

SHAPES = [(1, 1), (7, 3), (50, 64), (3, 1000), (1000, 5), (33, 1)]
RTOL = {np.float32: 1e-6, np.float64: 1e-13}


def _random_W(rng, shape, dtype, zero_rows=True):
    W = rng.standard_normal(shape).astype(dtype)
    if zero_rows and shape[0] > 2:
        W[rng.choice(shape[0], size=shape[0] // 3, replace=False)] = 0
    return W


def _between_norms(norms, q):
    """A threshold half-way between two distinct row norms near quantile q: a tau equal
    to a row's norm would make that row's result depend on the last bit of its norm."""
    u = np.unique(norms)
    if len(u) < 2:
        return float(u[0]) / 2
    k = min(int(q * (len(u) - 1)), len(u) - 2)
    return float(u[k] + u[k + 1]) / 2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_parity_with_reference(rng, shape, dtype):
    W = _random_W(rng, shape, dtype)
    norms = np.linalg.norm(W.astype(np.float64), axis=1)
    for tau in [0.0, 1e-3, _between_norms(norms, 0.5), _between_norms(norms, 0.9)]:
        got = kernels.prox_l21(W, tau)
        ref = prox_l21_reference(W, tau)
        assert got.dtype == W.dtype and got.shape == W.shape
        # the scale 1 - tau/||W_j|| loses relative accuracy as ||W_j|| -> tau (summation
        # order differs from NumPy's); the error stays below eps * |W|, hence the atol
        np.testing.assert_allclose(got, ref, rtol=RTOL[dtype], atol=RTOL[dtype] * abs(W).max())
        # rows at or below the threshold are exactly zero
        assert np.all(got[norms <= tau] == 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shrinks_norm_by_tau(rng, dtype):
    """Identity of group soft-thresholding: ||out_j|| = max(0, ||W_j|| - tau)."""
    W = _random_W(rng, (200, 17), dtype, zero_rows=False)
    tau = 3.5
    out = kernels.prox_l21(W, tau)
    n_in = np.linalg.norm(W.astype(np.float64), axis=1)
    n_out = np.linalg.norm(out.astype(np.float64), axis=1)
    np.testing.assert_allclose(n_out, np.maximum(0, n_in - tau), rtol=RTOL[dtype] * 10,
                               atol=RTOL[dtype] * 10)
    # direction is kept for the surviving rows
    keep = n_in > tau
    cos = np.sum(out[keep] * W[keep], axis=1) / (n_in[keep] * n_out[keep])
    np.testing.assert_allclose(cos, 1.0, rtol=RTOL[dtype] * 10)


def test_tau_zero_is_identity_and_huge_tau_is_zero(rng):
    W = _random_W(rng, (40, 9), np.float64)
    assert np.array_equal(kernels.prox_l21(W, 0.0), W)
    assert not np.any(kernels.prox_l21(W, 1e300))


def test_real_dtypes_of_tau_accepted(rng):
    W = _random_W(rng, (5, 4), np.float32)
    np.testing.assert_array_equal(kernels.prox_l21(W, np.float32(0.5)), kernels.prox_l21(W, 0.5))
    np.testing.assert_array_equal(kernels.prox_l21(W, 1), kernels.prox_l21(W, 1.0))


def test_in_place(rng):
    W = _random_W(rng, (64, 8), np.float64)
    expected = prox_l21_reference(W, 0.7)
    out = kernels.prox_l21(W, 0.7, out=W)
    assert out is W
    np.testing.assert_allclose(W, expected, rtol=1e-13)


@pytest.mark.parametrize("make", [
    lambda W: np.asfortranarray(W),
    lambda W: W[::2],
    lambda W: W[:, ::3],
    lambda W: W.T.copy().T,
])
def test_non_contiguous_input_is_handled(rng, make):
    W = _random_W(rng, (30, 12), np.float32)
    view = make(W)
    got = kernels.prox_l21(view, 0.4)
    np.testing.assert_allclose(got, prox_l21_reference(np.ascontiguousarray(view), 0.4),
                               rtol=1e-6)
    assert got.flags.c_contiguous


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (0, 0)])
def test_empty(shape):
    W = np.zeros(shape)
    assert kernels.prox_l21(W, 1.0).shape == shape


def test_threads_give_identical_bits(rng):
    W = _random_W(rng, (5001, 13), np.float32)
    a = kernels.prox_l21(W, 0.8, n_jobs=1)
    b = kernels.prox_l21(W, 0.8, n_jobs=2)
    c = kernels.prox_l21(W, 0.8, n_jobs=-1)
    assert np.array_equal(a, b) and np.array_equal(a, c)


def test_nan_row_propagates_only_there(rng):
    W = _random_W(rng, (6, 4), np.float64, zero_rows=False)
    W[2, 1] = np.nan
    out = kernels.prox_l21(W, 0.1)
    assert np.all(np.isnan(out[2]))
    assert np.all(np.isfinite(np.delete(out, 2, axis=0)))


@pytest.mark.parametrize("W, tau, exc, match", [
    (np.zeros(4), 1.0, ValueError, "W must be 2-D"),
    (np.zeros((2, 2, 2)), 1.0, ValueError, "W must be 2-D"),
    (np.zeros((3, 3), dtype=np.int64), 1.0, TypeError, "W must be float32 or float64"),
    (np.zeros((3, 3), dtype=np.complex128), 1.0, TypeError, "W must be float32"),
    ([[1.0, 2.0]], 1.0, TypeError, "W must be a NumPy or CuPy array"),
    (np.zeros((3, 3)), -1.0, ValueError, "tau must be finite and >= 0"),
    (np.zeros((3, 3)), np.nan, ValueError, "tau must be finite"),
    (np.zeros((3, 3)), np.inf, ValueError, "tau must be finite"),
    (np.zeros((3, 3)), True, TypeError, "tau must be a real number"),
    (np.zeros((3, 3)), "1", TypeError, "tau must be a real number"),
])
def test_bad_input(W, tau, exc, match):
    with pytest.raises(exc, match=match):
        kernels.prox_l21(W, tau)


def test_bad_out():
    W = np.ones((4, 3))
    with pytest.raises(ValueError, match="out must have shape"):
        kernels.prox_l21(W, 1.0, out=np.empty((3, 4)))
    with pytest.raises(ValueError, match="out must have shape"):
        kernels.prox_l21(W, 1.0, out=np.empty((4, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        kernels.prox_l21(W, 1.0, out=np.empty((4, 3), order="F"))
    ro = np.empty((4, 3))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        kernels.prox_l21(W, 1.0, out=ro)
    with pytest.raises(ValueError, match="n_jobs"):
        kernels.prox_l21(W, 1.0, n_jobs=0)


def test_native_module_rejects_bad_buffers_itself():
    """Second line of defence: the C++ binding checks too, and never crashes."""
    W = np.ones((4, 3))
    with pytest.raises((ValueError, TypeError)):
        _cpu.prox_l21_f64(np.ones((4, 3), order="F"), 1.0, np.empty((4, 3)), 1)
    with pytest.raises((ValueError, TypeError)):
        _cpu.prox_l21_f64(W, 1.0, np.empty((5, 3)), 1)
    with pytest.raises((ValueError, TypeError)):
        _cpu.prox_l21_f64(W, -1.0, np.empty((4, 3)), 1)
    with pytest.raises((ValueError, TypeError)):
        _cpu.prox_l21_f32(W, 1.0, np.empty((4, 3), dtype=np.float32), 1)


# ---------------------------------------------------------------- GPU

@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES + [(100_003, 64), (257, 3000)])
def test_gpu_parity(rng, shape, dtype):
    import cupy as cp

    W = _random_W(rng, shape, dtype)
    norms = np.linalg.norm(W.astype(np.float64), axis=1)
    for tau in [0.0, _between_norms(norms, 0.5), 1e300]:
        got = kernels.prox_l21(cp.asarray(W), tau)
        assert isinstance(got, cp.ndarray) and got.dtype == dtype
        np.testing.assert_allclose(cp.asnumpy(got), kernels.prox_l21(W, tau),
                                   rtol=RTOL[dtype], atol=RTOL[dtype] * abs(W).max())
        np.testing.assert_allclose(cp.asnumpy(got), prox_l21_reference(W, tau),
                                   rtol=RTOL[dtype], atol=RTOL[dtype] * abs(W).max())


@pytest.mark.gpu
def test_gpu_in_place_non_contiguous_and_stream(rng):
    import cupy as cp

    W = cp.asarray(_random_W(rng, (513, 40), np.float32))
    ref = prox_l21_reference(cp.asnumpy(W), 0.5)
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        out = kernels.prox_l21(W, 0.5, out=W)
    stream.synchronize()
    assert out is W
    np.testing.assert_allclose(cp.asnumpy(W), ref, rtol=1e-6)
    Wf = cp.asfortranarray(cp.asarray(_random_W(rng, (64, 9), np.float64)))
    np.testing.assert_allclose(cp.asnumpy(kernels.prox_l21(Wf, 0.3)),
                               prox_l21_reference(cp.asnumpy(Wf), 0.3), rtol=1e-13)
    # the reference itself runs on CuPy
    np.testing.assert_allclose(cp.asnumpy(prox_l21_reference(Wf, 0.3)),
                               prox_l21_reference(cp.asnumpy(Wf), 0.3), rtol=1e-13)


@pytest.mark.gpu
def test_gpu_rejects_host_pointer_and_mixed_out():
    import cupy as cp

    from mtlclassic.backend._native import _cuda

    host = np.ones((4, 4), dtype=np.float32)
    dev = cp.ones((4, 4), dtype=cp.float32)
    with pytest.raises(ValueError, match="not a device pointer"):
        _cuda.prox_l21(host.ctypes.data, dev.data.ptr, 4, 4, 1.0, False, 0)
    with pytest.raises(TypeError, match="same kind of array"):
        kernels.prox_l21(dev, 1.0, out=host)
