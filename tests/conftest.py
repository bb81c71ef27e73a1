"""Shared test configuration: the ``gpu`` marker and ``--require-gpu``.

Tests marked ``gpu`` need CuPy, a CUDA GPU and the ``_cuda`` module.  Without them they
are skipped; with ``--require-gpu`` (or MTLCLASSIC_REQUIRE_GPU=1) the skip becomes a
failure, so a broken GPU install cannot pass silently on the GPU machine.
"""

import os
import zlib

import numpy as np
import pytest


def pytest_addoption(parser):
    parser.addoption("--require-gpu", action="store_true", default=False,
                     help="fail (instead of skip) GPU tests when no usable GPU is found")


def _gpu_reason():
    from mtlclassic.backend import _native, cuda_status

    ok, reason = cuda_status()
    if not ok:
        return reason
    if _native._cuda is None:
        return f"mtlclassic._cuda was not built ({_native.CUDA_IMPORT_ERROR})"
    if _native._cuda.device_count() < 1:
        return "mtlclassic._cuda sees no device: " + _native._cuda.device_count_error()
    return None


def pytest_runtest_setup(item):
    if item.get_closest_marker("gpu") is None:
        return
    reason = _gpu_reason()
    if reason is None:
        return
    require = item.config.getoption("--require-gpu") or os.environ.get(
        "MTLCLASSIC_REQUIRE_GPU", "") not in ("", "0")
    if require:
        pytest.fail(f"GPU required (--require-gpu) but unusable: {reason}", pytrace=False)
    pytest.skip(f"no usable GPU: {reason}")


@pytest.fixture
def fista_steps(monkeypatch):
    """FISTA's debug check on (``CHECK_STEPS``: every accepted step <= 2 / L asserted) and
    the list of the (step, L) pairs it accepted, over every FISTA run of the test."""
    from mtlclassic.multitask import _solver

    monkeypatch.setattr(_solver, "CHECK_STEPS", True)
    seen = []
    real = _solver.fista

    def spy(*a, **k):
        res = real(*a, **k)
        seen.extend(res.steps)
        return res

    monkeypatch.setattr(_solver, "fista", spy)
    return seen


@pytest.fixture
def rng(request):
    """A generator seeded from the test's name: fresh data per test, reproducible."""
    seed = zlib.crc32(request.node.nodeid.encode())
    return np.random.default_rng(seed)


def _model_objective(est, X, Y):
    """The float64 objective of a fitted model's (W, b) -- NumPy or CuPy -- on NumPy X and
    wide targets Y with unit weights; penalised intercepts count as the weights of their
    constant column."""
    from mtlclassic.backend import to_numpy
    from mtlclassic.multitask import _labels, _losses
    from mtlclassic.multitask.penalties import get_penalty

    pen = get_penalty(est.penalty)
    Y2, _ = _labels.as_2d_targets(Y)
    Yenc, mask, _ = est._encode(Y2, _labels.missing_mask(Y2, None))
    A = mask / mask.sum(axis=0)[None, :]
    Q = pen.matrix(est.alpha, est.l2_, Yenc.shape[1], est.task_relation_)
    W = np.asarray(to_numpy(est.coef_), np.float64).T
    b = np.asarray(to_numpy(est.intercept_), np.float64)
    if est.intercept_scaling is not None:
        s = est.intercept_scaling
        X, W, b = np.column_stack([X, np.full(len(X), s)]), np.vstack([W, b / s]), 0.0 * b
    lv = _losses.NUMPY_LOSSES[est._loss_name](X @ W + b, Yenc, A)[0]
    return float(lv + 0.5 * np.sum((W @ Q) * W) + pen.value(W, est.alpha))


@pytest.fixture
def model_objective():
    """The objective of a fitted multi-task model (see _model_objective)."""
    return _model_objective


@pytest.fixture
def mtfl_home():
    """The data home holding mtfl/MTFL.zip (the shared data beside the checkout, or
    $MTLCLASSIC_DATA); the test is skipped when there is none."""
    from mtlclassic.datasets._loaders import data_home

    for d in data_home(None):
        if (d / "mtfl" / "MTFL.zip").is_file():
            return d
    pytest.skip("MTFL.zip not in the shared data")
