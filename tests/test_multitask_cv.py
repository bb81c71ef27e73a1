"""Cross-validated estimators and the regularisation-path plot."""

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from mtlclassic.multitask import (MultiTaskClassifier, MultiTaskClassifierCV, MultiTaskRegressor,
                                  MultiTaskRegressorCV)
from mtlclassic.multitask._cv import entry_folds
from mtlclassic.multitask._labels import missing_mask


@parametrize_with_checks([MultiTaskRegressorCV(penalty="l21", alphas=3, cv=2),
                          MultiTaskClassifierCV(penalty="ridge", alphas=3, cv=2)],
                         expected_failed_checks=lambda est: dict(
                             {f"check_sample_weight_equivalence_on_{kind}_data": "the CV folds "
                              "are drawn over samples, so repeating a sample changes the folds "
                              "and the chosen alpha" for kind in ("dense", "sparse")},
                             **({"check_classifier_multioutput": "as for MultiTaskClassifier: "
                                 "classes_ and decision_function are per task"}
                                if isinstance(est, MultiTaskClassifierCV) else {})))
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_entry_folds_respect_missing_labels_and_strata(rng):
    Y = rng.integers(0, 3, (90, 2)).astype(object)
    Y[:30, 1] = None
    miss = missing_mask(Y)
    f = entry_folds(Y, miss, 3, True, 0)
    assert np.all(f[miss] == -1) and np.all(f[~miss] >= 0)
    for t in range(2):
        for k in range(3):
            held = Y[f[:, t] == k, t].astype(int)
            counts = np.bincount(held, minlength=3)
            assert counts.min() >= 1  # every class in every fold (stratified)


def test_cv_chooses_a_sensible_alpha_and_refits(rng):
    n, d = 200, 40
    X = rng.standard_normal((n, d))
    W = np.zeros((d, 4))
    W[:5] = rng.standard_normal((5, 4))
    Y = X @ W + 0.5 * rng.standard_normal((n, 4))
    m = MultiTaskRegressorCV(penalty="l21", alphas=12, cv=4).fit(X, Y)
    scores = m.cv_results_["mean_score"][0]
    assert m.alpha_ == m.alphas_[np.argmax(scores)]
    assert 0 < np.argmax(scores) < len(scores) - 1 or scores.max() > 0.9
    ref = MultiTaskRegressor(penalty="l21", alpha=m.alpha_).fit(X, Y)
    np.testing.assert_allclose(m.coef_, ref.coef_, atol=1e-8)
    assert m.score(X, Y) > 0.8
    # l2 grid for the mean penalty
    mm = MultiTaskRegressorCV(penalty="mean", alphas=4, l2s=[1e-3, 1e-1], cv=3).fit(X, Y)
    assert mm.cv_results_["mean_score"].shape == (2, 4) and mm.l2_ in (1e-3, 1e-1)


def test_cv_intercept_scaling_grid(rng):
    """Rows of cv_results_ are (l2, intercept_scaling) pairs; each row equals a separate
    CV run with that pair fixed, and the refit uses the chosen pair."""
    X = rng.standard_normal((150, 5))
    Y = X @ rng.standard_normal((5, 3)) + np.array([1.0, -1.0, 2.0]) \
        + 0.5 * rng.standard_normal((150, 3))
    Y[rng.random(Y.shape) < 0.3] = np.nan
    kw = dict(penalty="mean", alphas=[1.0, 0.1, 0.01], cv=3, tol=1e-8)
    m = MultiTaskRegressorCV(l2s=[1e-3, 1e-1], intercept_scalings=[0.5, 5.0], **kw).fit(X, Y)
    res = m.cv_results_
    assert res["mean_score"].shape == (4, 3)
    assert list(res["l2s"]) == [1e-3, 1e-3, 1e-1, 1e-1]
    assert res["intercept_scalings"] == [0.5, 5.0, 0.5, 5.0]
    one = MultiTaskRegressorCV(l2=1e-1, intercept_scaling=5.0, **kw).fit(X, Y)
    np.testing.assert_allclose(one.cv_results_["mean_score"][0], res["mean_score"][3],
                               rtol=1e-6)
    i, j = np.unravel_index(np.argmax(res["mean_score"]), res["mean_score"].shape)
    assert (m.l2_, m.intercept_scaling_, m.alpha_) == (res["l2s"][i], res["intercept_scalings"][i],
                                                      res["alphas"][j])
    ref = MultiTaskRegressor(penalty="mean", alpha=m.alpha_, l2=m.l2_,
                             intercept_scaling=m.intercept_scaling_, tol=1e-8).fit(X, Y)
    np.testing.assert_allclose(m.intercept_, ref.intercept_, atol=1e-8)
    for bad in ([], [0.0], [1.0, -1.0], [np.nan]):
        with pytest.raises(ValueError, match="intercept_scalings"):
            MultiTaskRegressorCV(intercept_scalings=bad, **kw).fit(X, Y)


def test_cv_classifier_with_missing_labels(rng):
    X = rng.standard_normal((240, 6))
    Y = np.column_stack([X[:, 0] > 0, X[:, 0] + X[:, 1] > 0]).astype(object)
    Y[rng.random(Y.shape) < 0.3] = None
    m = MultiTaskClassifierCV(penalty="graph", alphas=5, cv=3, n_jobs=2).fit(X, Y)
    assert isinstance(m, MultiTaskClassifier) and m.score(X, Y) > 0.85


def test_cv_bad_input(rng):
    X = rng.standard_normal((20, 3))
    y = rng.standard_normal(20)
    for kw, match in [(dict(cv=1), "cv"), (dict(alphas=0), "alphas"),
                      (dict(alphas=[-1.0]), "alphas"), (dict(l2s=[-1]), "l2s")]:
        with pytest.raises(ValueError, match=match):
            MultiTaskRegressorCV(**kw).fit(X, y)
    yc = np.r_[np.zeros(19), 1]
    with pytest.raises(ValueError, match="single labelled sample"):
        MultiTaskClassifierCV(cv=3).fit(X, yc)


def test_plot_regularization_path(rng):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from mtlclassic.plotting import plot_regularization_path

    X = rng.standard_normal((80, 5))
    Y = X @ rng.standard_normal((5, 2))
    m = MultiTaskRegressorCV(penalty="ridge", alphas=5, cv=3).fit(X, Y)
    ax = plot_regularization_path(m)
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "alpha"
    line = ax.get_lines()[0]
    np.testing.assert_allclose(line.get_xdata(), m.alphas_)
    np.testing.assert_allclose(line.get_ydata(), m.cv_results_["mean_score"][0])
    assert ax.get_legend_handles_labels()[1][0] == "l2 = auto"  # the default l2
    with pytest.raises(ValueError, match="cv_results_"):
        plot_regularization_path(MultiTaskRegressor())


def test_task_weight_size_equals_pooled_weights(rng):
    """task_weight='size' is rho_t = n_t / mean(n_t): the same fit as passing those weights,
    and with squared loss every labelled entry weighs the same (a pooled loss)."""
    from mtlclassic.multitask import MultiTaskRegressor

    n, d, T = 120, 5, 3
    X = rng.standard_normal((n, d))
    Y = X @ rng.standard_normal((d, T))
    Y[rng.random((n, T)) < np.array([0.1, 0.5, 0.8])] = np.nan
    n_t = (~np.isnan(Y)).sum(axis=0)
    a = MultiTaskRegressor(penalty="graph", alpha=0.1, task_weight="size", tol=1e-10).fit(X, Y)
    b = MultiTaskRegressor(penalty="graph", alpha=0.1, task_weight=n_t / n_t.mean(),
                           tol=1e-10).fit(X, Y)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-7, atol=1e-9)
    c = MultiTaskRegressor(penalty="graph", alpha=0.1, tol=1e-10).fit(X, Y)
    assert not np.allclose(a.coef_, c.coef_, atol=1e-4)


def test_cv_scoring(rng):
    from mtlclassic.multitask import MultiTaskClassifierCV, MultiTaskRegressorCV

    n, d, T = 90, 4, 3
    X = rng.standard_normal((n, d))
    Y = X @ rng.standard_normal((d, T)) + 0.5 * rng.standard_normal((n, T))
    r2 = MultiTaskRegressorCV(penalty="mean", alphas=4, cv=3).fit(X, Y)
    mse = MultiTaskRegressorCV(penalty="mean", alphas=4, cv=3,
                               scoring="neg_mean_squared_error").fit(X, Y)
    assert np.all(mse.cv_results_["mean_score"] <= 0)  # minus a pooled MSE
    assert np.all(r2.cv_results_["mean_score"] <= 1)
    # the pooled MSE of the chosen alpha is the best on the grid, by construction
    assert mse.cv_results_["mean_score"].max() == mse.cv_results_["mean_score"][0][
        list(mse.alphas_).index(mse.alpha_)]
    Yc = (Y > 0).astype(int)
    acc = MultiTaskClassifierCV(penalty="ridge", alphas=3, cv=2,
                                scoring="pooled_accuracy").fit(X, Yc)
    assert 0 <= acc.cv_results_["mean_score"].min() <= 1
    for Est, bad in ((MultiTaskRegressorCV, "accuracy"), (MultiTaskClassifierCV, "r2")):
        with pytest.raises(ValueError, match="scoring must be"):
            Est(alphas=2, cv=2, scoring=bad).fit(X, Yc if Est is MultiTaskClassifierCV else Y)


def test_cv_estimates_an_auto_relation_once_per_fold(rng, monkeypatch):
    """graph with task_relation="auto": the relation depends on the fold's data only, so
    the path estimates it once per fold (and once for the refit), not once per alpha; the
    scores are those of fresh fits that each estimate it."""
    from mtlclassic.multitask import _estimators

    calls = []
    real = _estimators.estimate_task_relation
    monkeypatch.setattr(_estimators, "estimate_task_relation",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    X = rng.standard_normal((120, 5))
    Y = X @ rng.standard_normal((5, 3)) + 0.3 * rng.standard_normal((120, 3))
    Y[rng.random(Y.shape) < 0.2] = np.nan
    alphas = [1.0, 0.1, 0.01]
    m = MultiTaskRegressorCV(penalty="graph", alphas=alphas, cv=3, tol=1e-14).fit(X, Y)
    assert len(calls) == 3 + 1
    folds = entry_folds(Y, np.isnan(Y), 3, False, 0)
    for f in range(3):
        Ytr = np.where(folds == f, np.nan, Y)
        for j, a in enumerate(alphas):
            P = MultiTaskRegressor(penalty="graph", alpha=a, tol=1e-14).fit(X, Ytr).predict(X)
            score = MultiTaskRegressorCV._heldout_score(Y, P, folds == f, "r2")
            assert m.cv_results_["fold_scores"][0, f, j] == pytest.approx(score, abs=1e-7)
