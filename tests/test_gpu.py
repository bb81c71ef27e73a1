"""GPU tests of the feature kernels and the multi-task estimators (``-m gpu``): parity with
the CPU, CuPy in -> CuPy out, NumPy with backend='cuda', pickling, cross-device predict,
and error paths. Skipped without a GPU (a failure with --require-gpu)."""

import pickle

import numpy as np
import pytest
import skimage.data as sd

from mtlclassic.features import GLCM, HOG, LBP, ColorHistogram, GaborBank
from mtlclassic.features.glcm import PROPERTIES
from mtlclassic.multitask import MultiTaskClassifier, MultiTaskRegressor, _losses

pytestmark = pytest.mark.gpu


@pytest.fixture
def cp():
    import cupy

    return cupy


def _images(rng, n, H, W, C, dtype):
    if dtype == np.uint8:
        x = rng.integers(0, 256, (n, H, W, C), dtype=np.uint8)
        x[0, ..., 0] = sd.camera()[:H, :W]  # real images too
        if C == 3:
            x[1] = sd.astronaut()[:H, :W]
        return x
    if dtype == np.uint16:
        return rng.integers(0, 65536, (n, H, W, C), dtype=np.uint16)
    return rng.random((n, H, W, C)).astype(dtype)


HOG_CASES = [dict(), dict(block_norm="L1"), dict(block_norm="L1-sqrt"), dict(block_norm="L2"),
             dict(transform_sqrt=True), dict(orientations=40, pixels_per_cell=(6, 7),
                                             cells_per_block=(3, 2))]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("C", [1, 3])
@pytest.mark.parametrize("kw", HOG_CASES)
def test_hog_gpu_matches_cpu(cp, rng, dtype, C, kw):
    x = _images(rng, 5, 67, 75, C, dtype)
    for out_dtype in (np.float32, np.float64):
        est = HOG(dtype=out_dtype, **kw).fit(x)
        ref = est.transform(x)
        got = est.transform(cp.asarray(x))
        assert isinstance(got, cp.ndarray) and got.dtype == out_dtype
        np.testing.assert_allclose(got.get(), ref, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("method", ["default", "ror", "uniform", "nri_uniform", "var"])
@pytest.mark.parametrize("P,R", [(8, 1), (16, 2.5), (4, 3)])
def test_lbp_gpu_matches_cpu(cp, rng, method, P, R):
    x = _images(rng, 4, 61, 57, 1, np.uint8)
    est = LBP(P=P, R=R, method=method, grid=(3, 2)).fit(x)
    np.testing.assert_allclose(est.transform(cp.asarray(x)).get(), est.transform(x),
                               rtol=1e-6, atol=1e-7)
    xf = _images(rng, 3, 40, 44, 1, np.float64)
    est = LBP(P=P, R=R, method=method, grid=2, dtype=np.float64).fit(xf)
    np.testing.assert_allclose(est.transform(cp.asarray(xf)).get(), est.transform(xf),
                               rtol=1e-6, atol=1e-7)


def test_lbp_gpu_global_scratch(cp, rng):
    x = _images(rng, 2, 40, 40, 1, np.uint8)
    est = LBP(P=16, method="default", grid=1).fit(x)  # 65536 bins: past shared memory
    np.testing.assert_array_equal(est.transform(cp.asarray(x)).get(), est.transform(x))


@pytest.mark.parametrize("space,mode", [("rgb", "joint"), ("hsv", "joint"),
                                        ("hsv", "per-channel"), ("grey", "joint")])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_color_gpu_matches_cpu(cp, rng, space, mode, dtype):
    C = 1 if space == "grey" else 3
    x = _images(rng, 4, 33, 29, C, dtype)
    x[0, 0, 0] = x[0, 0, 1]  # ties
    est = ColorHistogram(space=space, mode=mode, bins=(5, 4, 3) if C == 3 else 7,
                         grid=(2, 3)).fit(x)
    np.testing.assert_array_equal(est.transform(cp.asarray(x)).get(), est.transform(x))
    est = ColorHistogram(space=space, bins=4, value_range="image").fit(x)
    np.testing.assert_allclose(est.transform(cp.asarray(x)).get(), est.transform(x),
                               rtol=1e-6, atol=1e-7)


def test_numpy_input_with_backend_cuda_and_chunks(cp, rng):
    x = _images(rng, 9, 64, 64, 1, np.uint8)
    ref = HOG().fit(x).transform(x)
    got = HOG(backend="cuda", batch_size=4).fit(x).transform(x)
    assert isinstance(got, cp.ndarray)
    np.testing.assert_allclose(got.get(), ref, rtol=1e-6, atol=1e-7)
    # 2-D input with image_shape, and backend='native' on CuPy input (host round trip)
    flat = cp.asarray(x.reshape(9, -1))
    got = HOG(image_shape=(64, 64)).fit(flat).transform(flat)
    np.testing.assert_allclose(got.get(), ref, rtol=1e-6, atol=1e-7)
    g = GLCM(backend="native").fit(x)
    out = g.transform(cp.asarray(x))
    assert isinstance(out, cp.ndarray)
    np.testing.assert_array_equal(out.get(), g.transform(x))


# ------------------------------------------------------------------ GLCM

def _grey(rng, n, H, W, dtype):
    """Random grey images of dtype with real photos (camera, brick) in the first two."""
    x = _images(rng, n, H, W, 1, np.uint8)
    x[1, ..., 0] = sd.brick()[:H, :W]
    if dtype == np.uint8:
        return x
    if dtype == np.uint16:
        return x.astype(np.uint16) * 257
    return (x / 255.0).astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("value_range", [None, "image", (-0.5, 70000.0)])
@pytest.mark.parametrize("symmetric", [False, True])
def test_glcm_gpu_matches_cpu(cp, rng, dtype, value_range, symmetric):
    """Counts are exact on both sides and the properties come from the same function in the
    same order: equal to the CPU's up to the last bit of log (entropy)."""
    x = _grey(rng, 5, 61, 70, dtype)
    # 256 levels: counts in global memory; distance 65 leaves the 61 x 70 images at some
    # angles (an all-zero matrix there) but not at all
    for levels, dist in [(32, (1, 2)), (8, (0, 5)), (256, (1, 65))]:
        kw = dict(distances=dist, angles=(0, np.pi / 4, np.pi / 2, 3 * np.pi / 4, 2.5),
                  levels=levels, symmetric=symmetric, properties=PROPERTIES,
                  value_range=value_range)
        for out_dtype in (np.float64, np.float32):
            est = GLCM(dtype=out_dtype, **kw).fit(x)
            got = est.transform(cp.asarray(x))
            assert isinstance(got, cp.ndarray) and got.dtype == out_dtype
            tol = 1e-13 if out_dtype == np.float64 else 2e-7
            np.testing.assert_allclose(got.get(), est.transform(x), rtol=tol, atol=1e-15,
                                       err_msg=f"levels={levels} {dist} {out_dtype}")


def test_glcm_gpu_default_properties_bit_exact_and_chunks(cp, rng):
    """Without entropy (no log) the GPU's properties are the CPU's bits; NumPy input with
    backend='cuda' in chunks of batch_size gives the same."""
    x = _grey(rng, 11, 128, 96, np.uint8)
    ref = GLCM(dtype=np.float64).fit(x).transform(x)
    got = GLCM(dtype=np.float64).fit(x).transform(cp.asarray(x))
    np.testing.assert_array_equal(got.get(), ref)
    chunked = GLCM(dtype=np.float64, backend="cuda", batch_size=4).fit(x).transform(x)
    assert isinstance(chunked, cp.ndarray)
    np.testing.assert_array_equal(chunked.get(), ref)
    # a constant image: contrast 0, correlation 1 (zero variance, scikit-image's convention)
    const = cp.full((2, 20, 20), 9, dtype=cp.uint8)
    c = GLCM(properties=("contrast", "correlation"), dtype=np.float64).fit(const)
    out = c.transform(const).get()
    np.testing.assert_array_equal(out[:, :4], 0.0)
    np.testing.assert_array_equal(out[:, 4:], 1.0)


def test_glcm_gpu_errors(cp):
    from mtlclassic.backend._native import _cuda

    with pytest.raises(ValueError, match="value_range"):
        GLCM().fit(cp.full((1, 8, 8), 2.0))
    with pytest.raises(ValueError, match="grey images"):
        GLCM().fit(cp.zeros((1, 8, 8, 3), cp.uint8))
    with pytest.raises(ValueError, match="at most 64 entries"):
        GLCM(properties=["ASM"] * 65).fit(cp.zeros((1, 8, 8), cp.uint8)).transform(
            cp.zeros((1, 8, 8), cp.uint8))
    host = np.zeros((1, 8, 8, 1), np.uint8)
    dev = cp.zeros((1, 8, 8, 1), cp.uint8)
    out, counts = cp.empty((1, 4), cp.float32), cp.empty(4 * 64, cp.uint32)
    args = dict(in_dtype=0, out_double=False, n=1, H=8, W=8, mode=0, lo=0.0, hi=1.0,
                dr=[0, 1, 1, 1], dc=[1, 1, 0, -1], levels=8, symmetric=False, which=[0])
    with pytest.raises(ValueError, match="images: not a device pointer"):
        _cuda.glcm_features(images=host.ctypes.data, out=out.data.ptr, counts=counts.data.ptr,
                            **args)
    with pytest.raises(ValueError, match="counts: not a device pointer"):
        _cuda.glcm_features(images=dev.data.ptr, out=out.data.ptr, counts=host.ctypes.data,
                            **args)
    _cuda.glcm_features(images=dev.data.ptr, out=out.data.ptr, counts=counts.data.ptr, **args)
    cp.cuda.get_current_stream().synchronize()
    np.testing.assert_array_equal(out.get(), 0.0)  # contrast of a constant image


# ------------------------------------------------------------------ Gabor

GABOR_CASES = [dict(), dict(grid=(3, 2)), dict(frequencies=(0.05, 0.25), orientations=(0.3, 2.0),
                                              bandwidth=1.5, n_stds=2)]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("kw", GABOR_CASES)
def test_gabor_gpu_matches_cpu(cp, rng, dtype, kw):
    """Same responses bit for bit (the CPU's arithmetic); cell sums in another order:
    ~1e-15 relative, 1e-12 asked."""
    x = _grey(rng, 4, 45, 52, dtype)
    for out_dtype in (np.float64, np.float32):
        est = GaborBank(dtype=out_dtype, **kw).fit(x)
        got = est.transform(cp.asarray(x))
        assert isinstance(got, cp.ndarray) and got.dtype == out_dtype
        ref = est.transform(x)
        tol = 1e-12 if out_dtype == np.float64 else 2e-7
        np.testing.assert_allclose(got.get(), ref, rtol=tol, atol=tol * np.abs(ref).max())


def test_gabor_gpu_tiny_images_and_chunks(cp, rng):
    """Images smaller than the kernels (the reflection wraps several times), one-pixel
    images, and NumPy input with backend='cuda' in chunks."""
    for shape in [(3, 9, 7), (2, 1, 1), (2, 1, 13)]:
        x = rng.random(shape)
        est = GaborBank(frequencies=(0.05, 0.4), dtype=np.float64).fit(x)
        ref = est.transform(x)
        np.testing.assert_allclose(est.transform(cp.asarray(x)).get(), ref, rtol=1e-12,
                                   atol=1e-13 * max(1.0, np.abs(ref).max()))
    x = _grey(rng, 7, 40, 40, np.uint8)
    ref = GaborBank(dtype=np.float64, grid=2).fit(x).transform(x)
    got = GaborBank(dtype=np.float64, grid=2, backend="cuda", batch_size=3).fit(x).transform(x)
    assert isinstance(got, cp.ndarray)
    np.testing.assert_allclose(got.get(), ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())


def test_gabor_gpu_errors(cp):
    from mtlclassic.backend._native import _cuda

    with pytest.raises(ValueError, match="grey images"):
        GaborBank().fit(cp.zeros((1, 16, 16, 3)))
    with pytest.raises(ValueError, match="NaN"):
        GaborBank().fit(cp.full((1, 16, 16), cp.nan))
    w = cp.zeros(18)
    dev = cp.zeros((1, 8, 8, 1))
    out, scratch = cp.empty((1, 2)), cp.empty(10 * 10 + 64)
    args = dict(in_dtype=3, out_double=True, n_weights=18, kh=[3], kw=[3], offset=[0], n=1, H=8,
                W=8, pad_r=1, pad_c=1, grid_r=1, grid_c=1)
    with pytest.raises(ValueError, match="weights: not a device pointer"):
        _cuda.gabor_features(images=dev.data.ptr, out=out.data.ptr,
                             weights=np.zeros(18).ctypes.data, padded=scratch.data.ptr,
                             mag=scratch.data.ptr + 800, **args)
    _cuda.gabor_features(images=dev.data.ptr, out=out.data.ptr, weights=w.data.ptr,
                         padded=scratch.data.ptr, mag=scratch.data.ptr + 800, **args)
    np.testing.assert_array_equal(out.get(), 0.0)  # zero kernels, zero responses


def test_feature_errors_on_gpu(cp):
    with pytest.raises(ValueError, match="NaN"):
        HOG().fit(cp.full((1, 32, 32), cp.nan))
    with pytest.raises(ValueError, match="fitted on images of shape"):
        HOG().fit(cp.zeros((1, 32, 32))).transform(cp.zeros((1, 32, 40)))
    from mtlclassic.backend._native import _cuda

    host = np.zeros((1, 32, 32, 1), np.uint8)
    with pytest.raises(ValueError, match="not a device pointer"):
        _cuda.hog_batch(host.ctypes.data, 0, host.ctypes.data, host.ctypes.data, False, 1, 32,
                        32, 1, 9, 8, 8, 3, 3, 3, False)


@pytest.mark.parametrize("kind", ["squared", "logistic"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_loss_kernel_matches_numpy(cp, rng, kind, dtype):
    from mtlclassic.backend.kernels import loss_grad_cuda

    Z = rng.standard_normal((1000, 7)) * 5
    Y = rng.standard_normal((1000, 7)) if kind == "squared" else np.sign(rng.standard_normal(
        (1000, 7)))
    A = rng.random((1000, 7)) * (rng.random((1000, 7)) < 0.7)
    lv, G = loss_grad_cuda(*(cp.asarray(a, dtype=dtype) for a in (Z, Y, A)),
                           _losses.KINDS[kind])
    ref_l, ref_G = _losses.NUMPY_LOSSES[kind](*(a.astype(dtype).astype(np.float64)
                                                 for a in (Z, Y, A)))
    tol = 1e-12 if dtype == np.float64 else 1e-6
    assert abs(lv - ref_l) <= tol * abs(ref_l)
    np.testing.assert_allclose(G.get(), ref_G, rtol=tol * 10, atol=tol)


@pytest.mark.parametrize("penalty", ["graph", "l21", "trace", "mtrl"])
@pytest.mark.parametrize("Est", [MultiTaskRegressor, MultiTaskClassifier])
def test_estimators_on_gpu(cp, rng, Est, penalty, model_objective):
    n, d, T = 400, 10, 4
    X = rng.standard_normal((n, d))
    Z = X @ (rng.standard_normal((d, 1)) + 0.3 * rng.standard_normal((d, T)))
    Y = (Z if Est is MultiTaskRegressor else (Z > 0).astype(int)).astype(float)
    Y[rng.random((n, T)) < 0.2] = np.nan
    kw = dict(penalty=penalty, alpha=0.05, l2=1e-3, tol=1e-7, max_iter=5000)
    cpu = Est(**kw).fit(X, Y)
    gpu = Est(**kw).fit(cp.asarray(X, dtype=cp.float32), Y)
    assert isinstance(gpu.coef_, cp.ndarray) and gpu.coef_.dtype == cp.float32
    f_cpu, f_gpu = model_objective(cpu, X, Y), model_objective(gpu, X, Y)
    assert abs(f_gpu - f_cpu) <= 1e-5 * abs(f_cpu)
    P = gpu.predict(cp.asarray(X, dtype=cp.float32))
    assert isinstance(P, cp.ndarray)
    Pn = gpu.predict(X)  # NumPy in -> NumPy out from a GPU model
    assert isinstance(Pn, np.ndarray)
    loaded = pickle.loads(pickle.dumps(gpu))
    assert isinstance(loaded.coef_, np.ndarray)
    np.testing.assert_allclose(loaded.coef_, gpu.coef_.get())
    assert isinstance(cpu.predict(cp.asarray(X)), cp.ndarray)  # CPU model on CuPy input
    f64 = Est(**kw).fit(cp.asarray(X), Y)  # float64 CuPy stays float64
    assert f64.coef_.dtype == cp.float64
    assert abs(model_objective(f64, X, Y) - f_cpu) <= 1e-6 * abs(f_cpu)


@pytest.mark.parametrize("Est", [MultiTaskRegressor, MultiTaskClassifier])
def test_penalised_intercepts_on_gpu(cp, rng, Est, model_objective):
    n, d, T = 400, 10, 3
    X = rng.standard_normal((n, d))
    Z = X @ rng.standard_normal((d, T)) + np.array([1.0, -0.5, 0.5])
    Y = (Z if Est is MultiTaskRegressor else (Z > 0).astype(int)).astype(float)
    Y[rng.random((n, T)) < 0.2] = np.nan
    kw = dict(penalty="mean", alpha=0.05, l2=1e-3, intercept_scaling=2.0, tol=1e-7,
              max_iter=5000)
    cpu = Est(**kw).fit(X, Y)
    gpu = Est(warm_start=True, **kw).fit(cp.asarray(X, dtype=cp.float32), Y)
    assert isinstance(gpu.intercept_, cp.ndarray) and gpu.coef_.shape == cpu.coef_.shape
    f_cpu, f_gpu = model_objective(cpu, X, Y), model_objective(gpu, X, Y)
    assert abs(f_gpu - f_cpu) <= 1e-5 * abs(f_cpu)
    gpu.fit(cp.asarray(X, dtype=cp.float32), Y)  # warm start from its own device solution
    assert abs(model_objective(gpu, X, Y) - f_cpu) <= 1e-5 * abs(f_cpu)


def test_estimator_errors_on_gpu(cp, rng, monkeypatch):
    X = cp.asarray(rng.standard_normal((30, 4)))
    Y = rng.standard_normal((30, 2))
    with pytest.raises(ValueError, match="runs on the CPU only"):
        MultiTaskRegressor(solver="lbfgs", device="cuda").fit(X, Y)
    with pytest.raises(ValueError, match="NaN"):
        MultiTaskRegressor().fit(cp.full((30, 4), cp.nan), Y)
    from mtlclassic.multitask import _estimators

    monkeypatch.setattr(_estimators, "device_free_bytes", lambda: 1000)
    with pytest.raises(MemoryError, match="GiB of device memory"):
        MultiTaskRegressor(device="cuda").fit(rng.standard_normal((300, 4)),
                                              rng.standard_normal((300, 2)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grouped_softmax_kernel_matches_numpy(cp, rng, dtype):
    from mtlclassic.backend.kernels import loss_grad_cuda

    n, owner = 1000, np.array([0, 1, 1, 1, 2, 2, 2, 2])
    group = _losses.softmax_groups(owner, [1, 2])
    Z = 3 * rng.standard_normal((n, 8))
    Y = -np.ones((n, 8))
    Y[:, 0] = np.where(rng.random(n) < 0.5, 1, -1)
    Y[np.arange(n), 1 + rng.integers(0, 3, n)] = 1
    Y[np.arange(n), 4 + rng.integers(0, 4, n)] = 1
    A = np.repeat(rng.uniform(0, 1, (n, 1)), 8, axis=1)
    A[::5] = 0.0
    ref_loss, ref_G = _losses.grouped_numpy(Z, Y, A, group)
    loss, G = loss_grad_cuda(*(cp.asarray(a, dtype=dtype) for a in (Z, Y, A)),
                             _losses.KINDS["logistic"], group=cp.asarray(group))
    tol = 1e-4 if dtype == np.float32 else 1e-12
    assert loss == pytest.approx(ref_loss, rel=tol)
    np.testing.assert_allclose(cp.asnumpy(G), ref_G, atol=tol)


def test_multinomial_fit_on_gpu(cp, rng):
    X = rng.standard_normal((500, 8))
    y = (X @ rng.standard_normal((8, 4)) + rng.standard_normal((500, 4))).argmax(axis=1)
    kw = dict(penalty="l21", alpha=1e-2, loss="multinomial", tol=1e-8, max_iter=20000)
    cpu = MultiTaskClassifier(**kw).fit(X, y)
    gpu = MultiTaskClassifier(**kw).fit(cp.asarray(X), y)
    np.testing.assert_allclose(gpu.predict_proba(X), cpu.predict_proba(X), atol=2e-3)


def test_mixed_kernel_and_fit_on_gpu(cp, rng):
    """Squared columns (group -1) beside logistic and softmax ones in the CUDA grouped pass,
    and a MultiTaskEstimator fitted on the GPU reaching the CPU's objective."""
    from mtlclassic.backend.kernels import loss_grad_cuda
    from mtlclassic.multitask import MultiTaskEstimator

    n, owner = 700, np.array([0, 1, 2, 2, 2])
    group = _losses.mixed_groups(owner, [0], [2])
    Z = 3 * rng.standard_normal((n, 5))
    Y = -np.ones((n, 5))
    Y[:, 0] = 5 * rng.standard_normal(n)
    Y[:, 1] = np.where(rng.random(n) < 0.5, 1, -1)
    Y[np.arange(n), 2 + rng.integers(0, 3, n)] = 1
    A = rng.uniform(0, 1, (n, 5))
    ref_loss, ref_G = _losses.grouped_numpy(Z, Y, A, group)
    loss, G = loss_grad_cuda(*(cp.asarray(a) for a in (Z, Y, A)), _losses.KINDS["logistic"],
                             group=cp.asarray(group))
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(cp.asnumpy(G), ref_G, atol=1e-12)
    X = rng.standard_normal((600, 10))
    T = X @ rng.standard_normal((10, 4))
    Yf = np.column_stack([30 * T[:, 0] + 5, T[:, 1] > 0, np.digitize(T[:, 2], [-1, 1]),
                          T[:, 3]]).astype(float)
    Yf[rng.random(Yf.shape) < 0.1] = np.nan
    kw = dict(penalty="l21", alpha=1e-2, loss="multinomial", tol=1e-7, max_iter=20000,
              task_types=["regression", "classification", "classification", "regression"])
    cpu = MultiTaskEstimator(**kw).fit(X, Yf)
    gpu = MultiTaskEstimator(**kw).fit(cp.asarray(X), Yf)
    assert gpu.objective_ == pytest.approx(cpu.objective_, rel=1e-5)
    np.testing.assert_allclose(np.asarray(gpu.predict(X), float)[:, [0, 3]],
                               np.asarray(cpu.predict(X), float)[:, [0, 3]], rtol=1e-3,
                               atol=1e-2)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_patches_gpu_match_cpu(cp, rng, dtype):
    from mtlclassic.features import extract_patches, patch_hog

    imgs = (rng.random((6, 50, 40)) * 255).astype(dtype)
    pts = rng.uniform(-5, 55, (6, 5, 2))
    sides = rng.uniform(3, 30, (6, 5))
    cpu = extract_patches(imgs, pts, sides, 16)
    gpu = extract_patches(cp.asarray(imgs), pts, sides, 16)
    assert isinstance(gpu, cp.ndarray)
    np.testing.assert_array_equal(gpu.get(), cpu)
    np.testing.assert_array_equal(patch_hog(cp.asarray(imgs), pts, sides, 16,
                                            pixels_per_cell=4).get(),
                                  patch_hog(imgs, pts, sides, 16, pixels_per_cell=4))
