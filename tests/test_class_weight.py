"""class_weight (None, 'balanced', dict, list of dicts) and per-entry sample weights (n, T):
scikit-learn's meanings, checked against LogisticRegression / OneVsRestClassifier."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.multiclass import OneVsRestClassifier

from mtlclassic.multitask import MultiTaskClassifier, MultiTaskClassifierCV

TIGHT = dict(tol=1e-14, max_iter=10000)


@pytest.fixture(scope="module")
def imbalanced():
    rng = np.random.default_rng(0)
    n = 300
    X = rng.normal(size=(n, 5))
    y = (X[:, 0] + rng.normal(size=n) > 1.8).astype(int)  # about 10 % positives
    y3 = np.digitize(X[:, 1] + 0.5 * rng.normal(size=n), [-1.2, 1.0])  # 50 / 203 / 47
    return X, y, y3


@pytest.mark.parametrize("cw", [None, "balanced", {0: 1.0, 1: 5.0}, {1: 0.5}])
def test_one_binary_task_equals_logistic_regression(imbalanced, cw):
    X, y, _ = imbalanced
    alpha, n = 1e-2, len(y)
    m = MultiTaskClassifier(penalty="ridge", alpha=alpha, class_weight=cw, **TIGHT).fit(X, y)
    r = LogisticRegression(C=1 / (alpha * n), class_weight=cw, **TIGHT).fit(X, y)
    np.testing.assert_allclose(m.coef_, r.coef_, atol=1e-6)
    np.testing.assert_allclose(m.intercept_, r.intercept_, atol=1e-6)


def test_balanced_multiclass_equals_one_vs_rest(imbalanced):
    X, _, y3 = imbalanced
    alpha, n = 1e-2, len(y3)
    m = MultiTaskClassifier(penalty="ridge", alpha=alpha, class_weight="balanced",
                            **TIGHT).fit(X, y3)
    r = OneVsRestClassifier(LogisticRegression(C=1 / (alpha * n), class_weight="balanced",
                                               **TIGHT)).fit(X, y3)
    np.testing.assert_allclose(m.coef_, np.vstack([e.coef_ for e in r.estimators_]), atol=1e-6)
    np.testing.assert_allclose(m.predict_proba(X), r.predict_proba(X), atol=1e-6)


def test_balanced_raises_balanced_accuracy(imbalanced):
    X, y, _ = imbalanced
    plain = MultiTaskClassifier(penalty="ridge", alpha=1e-2).fit(X, y)
    bal = MultiTaskClassifier(penalty="ridge", alpha=1e-2, class_weight="balanced").fit(X, y)
    assert balanced_accuracy_score(y, bal.predict(X)) > balanced_accuracy_score(
        y, plain.predict(X)) + 0.1


def test_list_of_specs_one_per_task(imbalanced):
    X, y, y3 = imbalanced
    Y = np.stack([y, y3], axis=1)
    both = MultiTaskClassifier(penalty="ridge", alpha=1e-2, class_weight=[{1: 5.0}, None],
                               **TIGHT).fit(X, Y)
    one = MultiTaskClassifier(penalty="ridge", alpha=1e-2, class_weight={1: 5.0},
                              **TIGHT).fit(X, y)
    rest = MultiTaskClassifier(penalty="ridge", alpha=1e-2, **TIGHT).fit(X, y3)
    np.testing.assert_allclose(both.coef_[0], one.coef_[0], atol=1e-7)
    np.testing.assert_allclose(both.coef_[1:], rest.coef_, atol=1e-7)


def test_per_entry_sample_weight(imbalanced):
    X, y, y3 = imbalanced
    rng = np.random.default_rng(1)
    Y = np.stack([y, y3], axis=1)
    SW = rng.uniform(0, 2, size=Y.shape)
    SW[:10, 0] = 0
    m = MultiTaskClassifier(penalty="ridge", alpha=1e-2, **TIGHT).fit(X, Y, sample_weight=SW)
    r = LogisticRegression(C=1 / (1e-2 * SW[:, 0].sum()), **TIGHT).fit(X, y,
                                                                       sample_weight=SW[:, 0])
    np.testing.assert_allclose(m.coef_[0], r.coef_[0], atol=1e-6)
    # a zero weight is an unlabelled entry
    Ym = Y.astype(float)
    Ym[:10, 0] = np.nan
    m2 = MultiTaskClassifier(penalty="ridge", alpha=1e-2, **TIGHT).fit(X, Ym, sample_weight=SW)
    np.testing.assert_allclose(m.coef_, m2.coef_, atol=1e-9)
    # equal columns are the (n,) weights
    w = rng.uniform(0.5, 1.5, len(y))
    a = MultiTaskClassifier(penalty="l21", alpha=1e-2).fit(X, Y, sample_weight=w)
    b = MultiTaskClassifier(penalty="l21", alpha=1e-2).fit(X, Y, sample_weight=np.stack([w, w], 1))
    np.testing.assert_array_equal(a.coef_, b.coef_)
    # score takes per-entry weights too
    assert m.score(X, Y, sample_weight=SW) == pytest.approx(np.mean([
        np.average(m.predict(X)[:, t] == Y[:, t], weights=SW[:, t]) for t in range(2)]))


def test_regressor_per_entry_weights_avoid_the_shared_sample_paths():
    from mtlclassic.multitask import MultiTaskRegressor
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(2)
    X = rng.normal(size=(80, 4))
    Y = X @ rng.normal(size=(4, 2)) + 0.1 * rng.normal(size=(80, 2))
    SW = rng.uniform(0.2, 2, size=Y.shape)
    m = MultiTaskRegressor(penalty="ridge", alpha=1e-2, tol=1e-12, max_iter=5000).fit(
        X, Y, sample_weight=SW)
    for t in range(2):
        r = Ridge(alpha=1e-2 * SW[:, t].sum()).fit(X, Y[:, t], sample_weight=SW[:, t])
        np.testing.assert_allclose(m.coef_[t], r.coef_, atol=1e-6)


@pytest.mark.parametrize("cw, msg", [("auto", "must be None, 'balanced'"),
                                     ({0: -1.0}, "finite number >= 0"),
                                     ({7: 1.0}, r"\[7\] not among its classes"),
                                     ([None], "one entry per task")])
def test_bad_class_weight(imbalanced, cw, msg):
    X, y, y3 = imbalanced
    with pytest.raises(ValueError, match=msg):
        MultiTaskClassifier(class_weight=cw).fit(X, np.stack([y, y3], 1) if isinstance(
            cw, list) else y)
    with pytest.raises(ValueError, match="ambiguous"):
        MultiTaskClassifier(class_weight={1: 2.0}).fit(X, np.stack([y, y3], 1))


@pytest.mark.parametrize("sw, msg", [(np.ones((300, 3)), r"\(300,\) or \(300, 2\)"),
                                     (-np.ones(300), "non-negative"),
                                     (np.array(["a"] * 300), "real numbers")])
def test_bad_sample_weight(imbalanced, sw, msg):
    X, y, y3 = imbalanced
    with pytest.raises(ValueError, match=msg):
        MultiTaskClassifier().fit(X, np.stack([y, y3], 1), sample_weight=sw)


def test_cv_estimator_accepts_both(imbalanced):
    X, y, y3 = imbalanced
    Y = np.stack([y, y3], axis=1)
    SW = np.random.default_rng(0).uniform(0.5, 1.5, Y.shape)
    cv = MultiTaskClassifierCV(penalty="ridge", alphas=3, cv=3, class_weight="balanced").fit(
        X, Y, sample_weight=SW)
    ref = MultiTaskClassifier(penalty="ridge", alpha=cv.alpha_, class_weight="balanced").fit(
        X, Y, sample_weight=SW)
    np.testing.assert_allclose(cv.coef_, ref.coef_)
    assert cv.get_params()["class_weight"] == "balanced"
