"""A fit does not depend on n_jobs: the native loss sums fixed blocks in a fixed order
(csrc/cpu/parallel.h), so coef_, intercept_ and n_iter_ are bit-identical for every
thread count, and n_jobs=-1 gives the same model on every machine."""

import numpy as np
import pytest

from mtlclassic.multitask import MultiTaskClassifier, MultiTaskRegressor


def _data(seed=0, n=2500, d=30, T=5):
    # n * T = 12500 loss entries: several 4096-entry blocks, split differently by 1, 2, 3
    # threads (the old per-thread partial sums changed the objective's last bits)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    W = rng.standard_normal((d, T)) * (rng.random((d, 1)) < 0.3)
    Y = X @ W + 0.5 * rng.standard_normal((n, T))
    Y[rng.random(Y.shape) < 0.1] = np.nan  # missing labels: masked entries in the sums
    return X, Y


def _fit_all(make, X, Y):
    fits = [make(n_jobs).fit(X, Y) for n_jobs in (1, 2, 3)]
    return fits


def _assert_identical(fits):
    ref = fits[0]
    for est in fits[1:]:
        assert est.n_iter_ == ref.n_iter_, (est.n_jobs, est.n_iter_, ref.n_iter_)
        assert np.array_equal(est.coef_, ref.coef_), (
            est.n_jobs, float(np.max(np.abs(est.coef_ - ref.coef_))))
        assert np.array_equal(est.intercept_, ref.intercept_), est.n_jobs


@pytest.mark.parametrize("penalty", ["l21", "graph", "trace"])
def test_regressor_fit_identical_across_n_jobs(penalty):
    X, Y = _data()
    fits = _fit_all(lambda j: MultiTaskRegressor(penalty=penalty, alpha=0.05, tol=1e-10,
                                                 max_iter=300, solver="fista", n_jobs=j), X, Y)
    _assert_identical(fits)


@pytest.mark.parametrize("penalty", ["l21", "graph"])
def test_classifier_fit_identical_across_n_jobs(penalty):
    X, Y = _data(seed=1)
    Yc = np.where(np.isnan(Y), np.nan, (Y > 0).astype(float))
    fits = _fit_all(lambda j: MultiTaskClassifier(penalty=penalty, alpha=0.01, tol=1e-10,
                                                  max_iter=300, n_jobs=j), X, Yc)
    _assert_identical(fits)


def test_native_loss_bits_identical_across_thread_counts():
    from mtlclassic.backend._native import require_cpu

    cpu = require_cpu()
    rng = np.random.default_rng(2)
    Z, Y = rng.standard_normal((2, 3001, 7))
    A = rng.random((3001, 7))
    for kind in (0, 1):
        Yk = np.sign(Y) if kind == 1 else Y
        out = []
        for nt in (1, 2, 3, 5, 64):
            G = np.empty_like(Z)
            out.append((cpu.loss_grad(Z, Yk, A, G, kind, nt), G))
        for loss, G in out[1:]:
            assert loss == out[0][0]
            assert np.array_equal(G, out[0][1])


def test_features_identical_across_n_jobs():
    """The feature kernels reduce within one image only; still, check every transformer."""
    from mtlclassic.features import GLCM, HOG, LBP, ColorHistogram, GaborBank

    rng = np.random.default_rng(3)
    grey = rng.integers(0, 256, (7, 33, 29)).astype(np.uint8)
    rgb = rng.random((7, 33, 29, 3))
    for make, X in [(HOG, grey), (LBP, grey), (GLCM, grey), (ColorHistogram, rgb),
                    (lambda **k: GaborBank(frequencies=(0.2,), **k), grey)]:
        ref = make(n_jobs=1, dtype=np.float64).fit_transform(X)
        for n_jobs in (2, 3, 16):
            assert np.array_equal(make(n_jobs=n_jobs, dtype=np.float64).fit_transform(X), ref)
