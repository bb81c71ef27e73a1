"""The multinomial (softmax) loss of multi-class tasks: the native grouped pass against its
NumPy reference, LogisticRegression's multinomial model as the one-task ridge identity,
class weights, every penalty, missing labels, and the device body in float32."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from mtlclassic.multitask import MultiTaskClassifier, _losses

TIGHT = dict(tol=1e-14, max_iter=20000)  # a gap of 1e-14: parameters to ~1e-7


def _problem(rng, n=400, d=6):
    X = rng.standard_normal((n, d))
    W = rng.standard_normal((d, 4))
    y4 = (X @ W + 0.8 * rng.standard_normal((n, 4))).argmax(axis=1)
    yb = (X[:, 0] + rng.standard_normal(n) > 0).astype(int)
    return X, y4, yb


def test_grouped_pass_matches_reference(rng):
    n, T = 257, 9
    owner = np.array([0, 1, 1, 1, 2, 3, 3, 3, 3])
    group = _losses.softmax_groups(owner, [1, 3])
    np.testing.assert_array_equal(group, [1, 3, 0, 0, 1, 4, 0, 0, 0])
    Z = 3 * rng.standard_normal((n, T))
    Z[0, 1:4] = [800.0, -900.0, 3.0]  # no overflow
    Y = -np.ones((n, T))
    Y[:, 0] = np.where(rng.random(n) < 0.5, 1, -1)
    Y[:, 4] = np.where(rng.random(n) < 0.5, 1, -1)
    Y[np.arange(n), 1 + rng.integers(0, 3, n)] = 1
    Y[np.arange(n), 5 + rng.integers(0, 4, n)] = 1
    A = rng.uniform(0, 1, (n, T))
    A[:, 1:4] = A[:, 1:2]  # one weight per row and softmax task
    A[:, 5:9] = A[:, 5:6]
    A[::7, 5:9] = 0.0  # unlabelled rows
    ref_loss, ref_G = _losses.grouped_numpy(Z, Y, A, group)
    for n_jobs in (1, 2, 3):
        loss, G = _losses.native_loss("logistic", n_jobs, group=group)(Z, Y, A)
        np.testing.assert_allclose(loss, ref_loss, rtol=1e-13)
        np.testing.assert_allclose(G, ref_G, rtol=1e-12, atol=1e-15)
        if n_jobs == 1:
            first = (loss, G.copy())
        else:  # the thread count does not change a bit
            assert loss == first[0] and np.array_equal(G, first[1])
    assert np.all(np.isfinite(G)) and np.allclose(G[:, 1:4].sum(axis=1), 0)
    # a softmax task's loss at equal scores is log K per labelled row
    l0, _ = _losses.grouped_numpy(np.zeros((2, 4)), np.array([[1., -1, -1, -1]] * 2),
                                  np.ones((2, 4)), np.array([4, 0, 0, 0]))
    assert l0 == pytest.approx(2 * np.log(4))


def test_bad_group_layout(rng):
    fn = _losses.native_loss("logistic", 1, group=np.array([3, 0, 1]))
    with pytest.raises(ValueError, match="zeros must follow"):
        fn(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((2, 3)))
    fn = _losses.native_loss("logistic", 1, group=np.array([1, 3, 0]))
    with pytest.raises(ValueError, match="fits in the row"):
        fn(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((2, 3)))


@pytest.mark.parametrize("cw", [None, "balanced"])
def test_one_task_ridge_equals_multinomial_logistic_regression(rng, cw):
    X, y4, _ = _problem(rng)
    alpha, n = 1e-2, len(y4)
    m = MultiTaskClassifier(penalty="ridge", alpha=alpha, loss="multinomial", class_weight=cw,
                            **TIGHT).fit(X, y4)
    r = LogisticRegression(C=1 / (alpha * n), class_weight=cw, **TIGHT).fit(X, y4)
    np.testing.assert_allclose(m.predict_proba(X), r.predict_proba(X), atol=1e-6)
    np.testing.assert_allclose(m.coef_, r.coef_, atol=1e-5)
    assert np.array_equal(m.predict(X), r.predict(X))


def test_binary_tasks_stay_logistic(rng):
    X, y4, yb = _problem(rng)
    Y = np.stack([yb, y4], axis=1)
    both = MultiTaskClassifier(penalty="ridge", alpha=1e-2, loss="multinomial", **TIGHT).fit(X, Y)
    alone = MultiTaskClassifier(penalty="ridge", alpha=1e-2, **TIGHT).fit(X, yb)
    np.testing.assert_allclose(both.coef_[0], alone.coef_[0], atol=1e-7)
    assert both.coef_.shape == (1 + 4, X.shape[1])
    P = both.predict_proba(X)
    assert P[0].shape == (len(X), 2) and P[1].shape == (len(X), 4)
    np.testing.assert_allclose(P[1].sum(axis=1), 1.0)


@pytest.mark.parametrize("penalty", ["ridge", "mean", "graph", "l21", "trace", "mtrl"])
def test_every_penalty_with_missing_labels(rng, penalty):
    X, y4, yb = _problem(rng, n=300)
    Y = np.stack([yb, y4, (y4 + 1) % 4], axis=1).astype(object)
    Y[rng.random(Y.shape) < 0.2] = None
    m = MultiTaskClassifier(penalty=penalty, alpha=1e-2, l2=1e-3, loss="multinomial",
                            tol=1e-8, max_iter=5000).fit(X, Y)
    acc = m.score(X, Y)
    ovr = MultiTaskClassifier(penalty=penalty, alpha=1e-2, l2=1e-3, tol=1e-8,
                              max_iter=5000).fit(X, Y).score(X, Y)
    assert acc > 0.6 and abs(acc - ovr) < 0.1
    for p in m.predict_proba(X):
        np.testing.assert_allclose(p.sum(axis=1), 1.0)


def test_smooth_solvers_agree(rng):
    X, y4, _ = _problem(rng, n=200)
    kw = dict(penalty="graph", alpha=1e-2, l2=1e-3, loss="multinomial", tol=1e-12,
              max_iter=50000)
    a = MultiTaskClassifier(solver="lbfgs", **kw).fit(X, y4)
    b = MultiTaskClassifier(solver="fista", **kw).fit(X, y4)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-6)


def test_multinomial_calibration_beats_one_vs_rest(rng):
    X, y4, _ = _problem(rng, n=600)
    Xtr, Xte, ytr, yte = X[:400], X[400:], y4[:400], y4[400:]
    from sklearn.metrics import log_loss

    kw = dict(penalty="ridge", alpha=1e-3)
    soft = MultiTaskClassifier(loss="multinomial", **kw).fit(Xtr, ytr)
    ovr = MultiTaskClassifier(**kw).fit(Xtr, ytr)
    assert log_loss(yte, soft.predict_proba(Xte)) < log_loss(yte, ovr.predict_proba(Xte))


def test_bad_loss():
    with pytest.raises(ValueError, match="loss must be 'logistic'"):
        MultiTaskClassifier(loss="softmax").fit(np.zeros((4, 2)), [0, 1, 0, 1])


def test_device_body_float32(rng):
    """The GPU fit's body with NumPy standing in for CuPy and the NumPy grouped loss."""
    from mtlclassic.multitask import _labels

    X, y4, yb = _problem(rng, n=300)
    Y = np.stack([yb, y4], axis=1).astype(float)
    Y[rng.random(Y.shape) < 0.2] = np.nan
    est = MultiTaskClassifier(penalty="l21", alpha=1e-2, loss="multinomial", tol=1e-7,
                              max_iter=20000)
    ref = MultiTaskClassifier(penalty="l21", alpha=1e-2, loss="multinomial", tol=1e-10,
                              max_iter=20000).fit(X, Y)
    pen = est._check_params()
    Y2, one_d = _labels.as_2d_targets(Y)
    miss = _labels.missing_mask(Y2)
    Yenc, mask, owner = est._encode(Y2, miss)
    group = est._loss_groups(owner)
    A = mask / mask.sum(axis=0)
    est.n_features_in_ = X.shape[1]
    est._fit_arrays(np, np.float32, lambda Z, Yy, W: _losses.grouped_numpy(Z, Yy, W, group),
                    pen, X, Yenc, A, np.ones(len(X)), np.ones(len(owner)), mask, owner, 2,
                    one_d, X, None, group)
    est.classes_ = est._classes
    np.testing.assert_allclose(est.coef_, ref.coef_, atol=2e-3)


def test_cv_estimator_takes_the_loss(rng):
    from mtlclassic.multitask import MultiTaskClassifierCV

    X, y4, _ = _problem(rng, n=200)
    cv = MultiTaskClassifierCV(penalty="ridge", alphas=3, cv=3, loss="multinomial").fit(X, y4)
    ref = MultiTaskClassifier(penalty="ridge", alpha=cv.alpha_, loss="multinomial").fit(X, y4)
    np.testing.assert_allclose(cv.coef_, ref.coef_)


def test_classifier_signatures_follow_the_base_defaults():
    """The classifiers spell out their __init__ (for class_weight and loss): every shared
    parameter keeps the base class's default."""
    import inspect

    from mtlclassic.multitask import MultiTaskClassifierCV
    from mtlclassic.multitask._cv import _CVMixin
    from mtlclassic.multitask._estimators import _BaseMultiTask

    for base, cls in [(_BaseMultiTask, MultiTaskClassifier), (_CVMixin, MultiTaskClassifierCV)]:
        b = inspect.signature(base.__init__).parameters
        c = inspect.signature(cls.__init__).parameters
        assert {k: v.default for k, v in b.items()} == {k: c[k].default for k in b}


def test_multinomial_certificate_bounds_the_objective(rng):
    """The softmax dual point (made feasible for the free intercepts) gives a gap that
    bounds the distance to the optimum."""
    X, y4, yb = _problem(rng, n=300)
    Y = np.stack([yb, y4], axis=1).astype(float)
    Y[rng.random(Y.shape) < 0.2] = np.nan
    for penalty in ("ridge", "l21", "trace"):
        kw = dict(penalty=penalty, alpha=1e-2, l2=1e-3, loss="multinomial", max_iter=50000)
        loose = MultiTaskClassifier(tol=1e-3, **kw).fit(X, Y)
        best = MultiTaskClassifier(tol=1e-13, **kw).fit(X, Y)
        assert 0 <= loose.objective_ - best.objective_ <= loose.dual_gap_ + 1e-12
        assert 0 <= best.dual_gap_ <= 1e-13 * best._null_scale_ + 1e-12
