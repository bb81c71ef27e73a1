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
