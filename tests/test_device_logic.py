"""The GPU path's host-side logic, run on the CPU: chunk sizing, pointer checks, and the
device fit's body (``_fit_arrays``) in float32 with NumPy standing in for CuPy -- the same
code the GPU runs, minus the CUDA loss kernel (its NumPy reference is used instead; the
kernel's arithmetic is the shared header the CPU loss tests cover)."""

import pickle

import numpy as np
import pytest

from mtlclassic.backend.kernels import DTYPE_CODES, device_chunk_size, device_ptr
from mtlclassic.multitask import MultiTaskClassifier, MultiTaskRegressor, _labels, _losses


def test_device_chunk_size():
    assert device_chunk_size(100, 10, 1000) == 50  # half the free memory
    assert device_chunk_size(10, 10, 1000) == 10  # never more than n
    assert device_chunk_size(100, 10, 1000, batch_size=7) == 7
    assert device_chunk_size(100, 1, 10**12, fraction=0.5) == 100
    with pytest.raises(MemoryError, match="MiB of GPU memory"):
        device_chunk_size(5, 2**30, 2**30, what="HOG")


def test_device_ptr_refuses_host_arrays():
    with pytest.raises(TypeError, match="images must be a CuPy array"):
        device_ptr(np.zeros(3), "images")
    assert set(DTYPE_CODES.values()) == {0, 1, 2, 3}


def _device_body_fit(est, X, Y):
    """Run the device fit's body with NumPy float32 arrays and the NumPy loss."""
    pen = est._check_params()
    X = np.asarray(X, dtype=np.float64)
    Y2, one_d = _labels.as_2d_targets(Y)
    miss = _labels.missing_mask(Y2, None)
    Yenc, mask, owner = est._encode(Y2, miss)
    sw = np.ones(len(X))
    rho = est._task_weights(sw, miss)[owner]
    n_t = mask.sum(axis=0)
    A = mask * (rho / n_t)[None, :]
    est.n_features_in_ = X.shape[1]
    loss = _losses.NUMPY_LOSSES[est._loss_name]
    est._fit_arrays(np, np.float32, loss, pen, est._with_intercept_column(X), Yenc, A, sw, rho,
                    mask, owner, Y2.shape[1], one_d, X)
    if hasattr(est, "_classes"):
        est.classes_ = est._classes[0] if one_d else est._classes
    return est


@pytest.mark.parametrize("penalty", ["graph", "l21", "trace", "mean", "mtrl"])
@pytest.mark.parametrize("Est", [MultiTaskRegressor, MultiTaskClassifier])
def test_device_fit_body_float32_matches_cpu(rng, Est, penalty, model_objective):
    """float32 FISTA (the GPU's solver path) reaches the float64 CPU objective to 1e-5."""
    n, d, T = 300, 12, 4
    X = rng.standard_normal((n, d))
    W = rng.standard_normal((d, 1)) + 0.3 * rng.standard_normal((d, T))
    Z = X @ W + 0.3 * rng.standard_normal((n, T))
    Y = Z if Est is MultiTaskRegressor else (Z > 0).astype(int)
    Y = Y.astype(float)
    Y[rng.random((n, T)) < 0.2] = np.nan  # missing labels
    kw = dict(penalty=penalty, alpha=0.05, l2=1e-3, tol=1e-7, max_iter=5000)
    cpu = Est(**kw).fit(X, Y)
    dev = _device_body_fit(Est(**kw), X, Y)
    assert dev.coef_.dtype == np.float32 and dev.solver_ == "fista"
    f_cpu, f_dev = model_objective(cpu, X, Y), model_objective(dev, X, Y)
    assert abs(f_dev - f_cpu) <= 1e-5 * abs(f_cpu)
    # the float32 model predicts on float64 NumPy input, and pickles
    P = pickle.loads(pickle.dumps(dev)).predict(X)
    assert P.shape == (n, T)


@pytest.mark.parametrize("Est", [MultiTaskRegressor, MultiTaskClassifier])
def test_device_fit_body_with_intercept_scaling(rng, Est, model_objective):
    n, d, T = 300, 10, 3
    X = rng.standard_normal((n, d))
    Z = X @ rng.standard_normal((d, T)) + np.array([1.0, -0.5, 0.5])
    Y = (Z if Est is MultiTaskRegressor else (Z > 0)).astype(float)
    Y[rng.random((n, T)) < 0.2] = np.nan
    kw = dict(penalty="mean", alpha=0.05, l2=1e-3, intercept_scaling=2.0, tol=1e-7,
              max_iter=5000)
    cpu = Est(**kw).fit(X, Y)
    dev = _device_body_fit(Est(**kw), X, Y)
    assert dev.coef_.shape == cpu.coef_.shape and dev.intercept_.dtype == np.float32
    f_cpu, f_dev = model_objective(cpu, X, Y), model_objective(dev, X, Y)
    assert abs(f_dev - f_cpu) <= 1e-5 * abs(f_cpu)
    np.testing.assert_allclose(dev.intercept_, cpu.intercept_, atol=2e-3)


def test_device_fit_body_mtrl_and_warm_start(rng):
    n, d, T = 200, 8, 3
    X = rng.standard_normal((n, d))
    Y = X @ rng.standard_normal((d, T)) + 0.1 * rng.standard_normal((n, T))
    est = _device_body_fit(MultiTaskRegressor(penalty="mtrl", alpha=0.1, tol=1e-6), X, Y)
    assert est.task_covariance_.shape == (T, T)
    np.testing.assert_allclose(np.diag(est.task_relation_), 1.0)
    cold = _device_body_fit(MultiTaskRegressor(penalty="graph", alpha=0.1, tol=1e-6), X, Y)
    cold.set_params(warm_start=True)
    it_cold = cold.n_iter_
    _device_body_fit(cold, X, Y)  # restarts from its own solution
    assert cold.n_iter_ < it_cold


# ------------------------------------------------------- GLCM and Gabor on the GPU: host side
# The arguments the CUDA transformers prepare, computed with NumPy; then the real _cuda
# methods run with a stand-in for CuPy and host pointers, so the actual binding parses every
# argument and validates the call up to the device-pointer check (the first check that
# needs a GPU).

import sys  # noqa: E402
import types  # noqa: E402

from mtlclassic.backend import _native  # noqa: E402
from mtlclassic.features import GLCM, GaborBank  # noqa: E402
from mtlclassic.features import gabor as gabor_mod  # noqa: E402
from mtlclassic.features import glcm as glcm_mod  # noqa: E402

needs_cuda_module = pytest.mark.skipif(_native._cuda is None, reason="_cuda was not built")


@pytest.fixture
def fake_cupy(monkeypatch):
    """NumPy standing in for CuPy: allocations are recorded, pointers are host pointers."""
    allocs = []

    def empty(shape, dtype):
        a = np.empty(shape, dtype)
        allocs.append(a)
        return a

    fake = types.SimpleNamespace(empty=empty, asarray=np.asarray, float64=np.float64,
                                 float32=np.float32, uint32=np.uint32, allocs=allocs)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    for mod in (glcm_mod, gabor_mod):
        monkeypatch.setattr(mod, "device_ptr", lambda a, name="array": a.ctypes.data)
    return fake


def test_glcm_quantisation_modes():
    qm = glcm_mod.quantisation_mode
    assert qm(np.uint8, None) == (glcm_mod.QUANT_U8, 0.0, 1.0)
    assert qm(np.uint16, None) == (glcm_mod.QUANT_U16, 0.0, 1.0)
    assert qm(np.float32, None) == (glcm_mod.QUANT_AFFINE, 0.0, 1.0)
    assert qm(np.uint8, (-2, 300)) == (glcm_mod.QUANT_AFFINE, -2.0, 300.0)
    assert qm(np.float64, "image")[0] == glcm_mod.QUANT_PER_IMAGE
    assert qm(np.uint16, "image")[0] == glcm_mod.QUANT_PER_IMAGE


def test_glcm_cuda_args(rng):
    est = GLCM(distances=(1, 3), angles=(0, np.pi / 2, 2.0), levels=16, symmetric=True,
               properties=("entropy", "contrast", "entropy"), value_range="image")
    a = est._cuda_args(np.dtype(np.float32), (5, 40, 30, 1))
    offs = glcm_mod.glcm_offsets([1, 3], [0, np.pi / 2, 2.0])
    assert a["dr"] == offs[:, 0].tolist() and a["dc"] == offs[:, 1].tolist()
    assert a["which"] == [9, 0, 9] and a["levels"] == 16 and a["symmetric"] is True
    assert a["mode"] == glcm_mod.QUANT_PER_IMAGE
    assert a["counts_len"] == 5 * 6 * 16 * 16
    assert est._cuda_scratch_bytes(40, 30, 1) * 5 == 4 * a["counts_len"]
    with pytest.raises(ValueError, match="at most 64 entries"):
        GLCM(properties=["ASM"] * 65)._cuda_args(np.dtype(np.uint8), (1, 8, 8, 1))
    with pytest.raises(ValueError, match="32-bit co-occurrence counts"):
        GLCM()._cuda_args(np.dtype(np.uint8), (1, 65536, 65536, 1))
    with pytest.raises(ValueError, match="grey images"):
        GLCM()._cuda_args(np.dtype(np.uint8), (1, 8, 8, 3))


@needs_cuda_module
def test_glcm_cuda_limits_agree_with_the_module():
    assert _native._cuda.glcm_max_props == glcm_mod.CUDA_MAX_PROPERTIES
    assert 110**2 <= _native._cuda.glcm_max_shared_bins < 111**2


@needs_cuda_module
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_glcm_cuda_call_reaches_the_pointer_check(fake_cupy, rng, dtype):
    """GLCM._cuda as the GPU runs it: the binding accepts every argument and stops at the
    first device-pointer check (host memory here)."""
    x = (rng.random((3, 20, 17, 1)) * 200).astype(dtype)
    for vr in (None, "image", (0.0, 255.0)):
        xx = x / 255 if vr is None and x.dtype.kind == "f" else x  # floats in [0, 1]
        est = GLCM(value_range=vr, distances=(1, 18), levels=64).fit(xx)
        out = np.empty((3, est.n_features_out_), np.float32)
        with pytest.raises(ValueError, match="images: not a device pointer"):
            est._cuda(np.ascontiguousarray(xx), out, 0)
        counts = fake_cupy.allocs[-1]
        assert counts.dtype == np.uint32 and counts.size == 3 * 8 * 64 * 64


@needs_cuda_module
def test_glcm_cuda_binding_validates():
    cuda = _native._cuda
    ok = dict(images=1, in_dtype=0, out=1, out_double=False, counts=1, n=2, H=8, W=8, mode=0,
              lo=0.0, hi=1.0, dr=[0, 1], dc=[1, 1], levels=8, symmetric=False, which=[0, 4])
    for change, match in [(dict(levels=1), "levels"), (dict(mode=5), "quantisation mode"),
                          (dict(mode=1), "uint8 / uint16"), (dict(in_dtype=7), "dtype code"),
                          (dict(mode=2, lo=1.0, hi=1.0), "hi > lo"), (dict(dc=[1]), "dr and dc"),
                          (dict(which=[]), "properties"), (dict(which=[10]), "property code"),
                          (dict(which=[0] * 65), "properties"), (dict(H=0), "batch shape"),
                          (dict(H=65536, W=65536), "overflow the 32-bit"),
                          (dict(H=46341, W=46341, symmetric=True), "symmetric=True"),
                          (dict(), "images: not a device pointer")]:
        with pytest.raises(ValueError, match=match):
            cuda.glcm_features(**{**ok, **change})
    cuda.glcm_features(**{**ok, "n": 0})  # nothing to do: no pointer is touched


def test_gabor_pack_kernels():
    est = GaborBank(frequencies=(0.05, 0.3), orientations=(0.0, 1.0), n_stds=2)
    kernels = est._kernels()
    plan = gabor_mod.pack_kernels(kernels)
    w = plan["weights"]
    assert w.dtype == np.float64 and w.ndim == 1
    for (re, im), kh, kw, off in zip(kernels, plan["kh"], plan["kw"], plan["offset"]):
        np.testing.assert_array_equal(w[off:off + kh * kw].reshape(kh, kw), re)
        np.testing.assert_array_equal(w[off + kh * kw:off + 2 * kh * kw].reshape(kh, kw), im)
    assert plan["offset"][-1] + 2 * plan["kh"][-1] * plan["kw"][-1] == w.size
    assert plan["pad_r"] == max(plan["kh"]) // 2 and plan["pad_c"] == max(plan["kw"]) // 2
    assert plan["kh"][0] > plan["kh"][2]  # low frequency, larger kernel
    with pytest.raises(ValueError, match="odd shape"):
        gabor_mod.pack_kernels([(np.zeros((2, 3)), np.zeros((2, 3)))])
    with pytest.raises(ValueError, match="at least one"):
        gabor_mod.pack_kernels([])


@needs_cuda_module
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_gabor_cuda_call_reaches_the_pointer_check(fake_cupy, rng, dtype):
    x = (rng.random((2, 21, 19, 1)) * 200).astype(dtype)
    est = GaborBank(frequencies=(0.1, 0.4), orientations=3, grid=(2, 3)).fit(x)
    out = np.empty((2, est.n_features_out_), np.float64)
    with pytest.raises(ValueError, match="images: not a device pointer"):
        est._cuda(x, out, 0)
    padded, mag = fake_cupy.allocs[-2:]
    plan = gabor_mod.pack_kernels(est._kernels())
    assert padded.size == 2 * (21 + 2 * plan["pad_r"]) * (19 + 2 * plan["pad_c"])
    assert mag.size == 2 * 21 * 19
    assert est._cuda_scratch_bytes(21, 19, 1) * 2 == padded.nbytes + mag.nbytes


@needs_cuda_module
def test_gabor_cuda_binding_validates():
    cuda = _native._cuda
    ok = dict(images=1, in_dtype=3, out=1, out_double=True, weights=1, n_weights=2 * 9 + 2 * 25,
              kh=[3, 5], kw=[3, 5], offset=[0, 18], padded=1, mag=1, n=2, H=8, W=8, pad_r=2,
              pad_c=2, grid_r=2, grid_c=2)
    for change, match in [(dict(kh=[3]), "same kernels"), (dict(kh=[2, 5], kw=[2, 5]), "odd"),
                          (dict(pad_r=1), "half-size"), (dict(offset=[0, 19]), "kernel 1"),
                          (dict(n_weights=60), "kernel 1"), (dict(grid_r=9), "grid"),
                          (dict(in_dtype=-1), "dtype code"), (dict(W=0), "batch shape"),
                          (dict(), "images: not a device pointer")]:
        with pytest.raises(ValueError, match=match):
            cuda.gabor_features(**{**ok, **change})
    cuda.gabor_features(**{**ok, "n": 0})
