"""scikit-learn's model selection on multi-task targets: GridSearchCV, cross_val_score,
cross_validate and RandomizedSearchCV with MultiTaskKFold on mixed-type, partly unlabelled Y;
the continuous-column check; sub-task labels in the relation plot."""

import warnings

import numpy as np
import pytest
from sklearn.model_selection import (GridSearchCV, RandomizedSearchCV, cross_val_score,
                                     cross_validate)

from mtlclassic.multitask import MultiTaskClassifier, MultiTaskKFold, MultiTaskRegressor


@pytest.fixture(scope="module")
def mixed():
    rng = np.random.default_rng(0)
    n = 90
    X = rng.normal(size=(n, 4))
    Y = np.empty((n, 3), dtype=object)
    Y[:, 0] = np.where(X[:, 0] > 0, "a", "b")
    Y[:, 1] = (X[:, 1] > 0).astype(int)
    Y[:, 2] = np.digitize(X[:, 2], [-0.5, 0.5]) * 1.0  # three classes as floats
    Y[::5, 0] = None
    Y[1::7, 1] = np.nan
    Y[2::3, 2] = np.float32("nan")
    return X, Y


def _labelled(Y, t):
    return np.array([not (v is None or v != v) for v in Y[:, t]])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_folds_spread_every_task_and_class(mixed, seed):
    X, Y = mixed
    cv = MultiTaskKFold(3, random_state=seed)
    fold = cv.fold_of_rows(Y)
    assert np.ptp(np.bincount(fold)) <= 2  # rows: about n / 3 each
    for t in range(3):
        lab = _labelled(Y, t)
        per_fold = np.bincount(fold[lab], minlength=3)
        assert np.ptp(per_fold) <= 2
        for c in set(Y[lab, t]):
            cls = np.array([v == c for v in Y[:, t]]) & lab
            per = np.bincount(fold[cls], minlength=3)
            assert np.ptp(per) <= 2, (t, c, per)
    splits = list(cv.split(X, Y))
    assert len(splits) == 3 == cv.get_n_splits()
    test_rows = np.sort(np.concatenate([te for _, te in splits]))
    np.testing.assert_array_equal(test_rows, np.arange(len(X)))
    np.testing.assert_array_equal(cv.fold_of_rows(Y),
                                  MultiTaskKFold(3, random_state=seed).fold_of_rows(Y))


def test_gridsearch_and_friends_on_mixed_partly_unlabelled_targets(mixed):
    X, Y = mixed
    cv = MultiTaskKFold(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gs = GridSearchCV(MultiTaskClassifier(penalty="ridge"),
                          {"alpha": [1e-3, 1e-1, 10.0]}, cv=cv).fit(X, Y)
        scores = cross_val_score(MultiTaskClassifier(penalty="l21", alpha=1e-3), X, Y, cv=cv)
        res = cross_validate(MultiTaskClassifier(penalty="ridge", alpha=1e-3), X, Y, cv=cv,
                             return_train_score=True)
        rs = RandomizedSearchCV(MultiTaskClassifier(penalty="ridge"),
                                {"alpha": [1e-3, 1e-2, 10.0]}, n_iter=2, cv=cv,
                                random_state=0).fit(X, Y)
    assert gs.best_params_["alpha"] < 10.0  # alpha=10 underfits: a real choice was made
    assert np.all(np.isfinite(gs.cv_results_["mean_test_score"]))
    assert scores.shape == (3,) and np.all(scores > 0.7)
    # the default scoring is the estimator's own score, which skips unlabelled entries
    train, test = next(iter(cv.split(X, Y)))
    m = MultiTaskClassifier(penalty="ridge", alpha=1e-3).fit(X[train], Y[train])
    assert res["test_score"][0] == pytest.approx(m.score(X[test], Y[test]))
    assert np.all(np.isfinite(res["train_score"]))
    assert rs.best_score_ > 0.7


def test_integer_cv_where_scikit_learn_allows_it(mixed):
    X, Y = mixed
    Yf = np.stack([(X[:, 0] > 0) * 1.0, X[:, 1]], axis=1)
    Yf[::4, 0] = np.nan
    s = cross_val_score(MultiTaskRegressor(penalty="ridge"), X, Yf, cv=3)
    assert s.shape == (3,) and np.all(np.isfinite(s))
    Yi = np.stack([(X[:, 0] > 0), (X[:, 1] > 0)], axis=1).astype(int)
    assert np.all(cross_val_score(MultiTaskClassifier(penalty="ridge"), X, Yi, cv=3) > 0.8)


@pytest.mark.parametrize("kw, msg", [(dict(n_splits=1), "n_splits"),
                                     (dict(stratify="yes"), "stratify")])
def test_splitter_bad_input(mixed, kw, msg):
    X, Y = mixed
    with pytest.raises(ValueError, match=msg):
        list(MultiTaskKFold(**kw).split(X, Y))
    with pytest.raises(ValueError, match="needs y"):
        list(MultiTaskKFold(3).split(X))
    with pytest.raises(ValueError, match="more than the 2 samples"):
        MultiTaskKFold(3).fold_of_rows([1, 2])


def test_continuous_object_column_refused():
    """The multi-attribute images' blur column became 200 classes and 215 sub-tasks."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    Y = np.empty((40, 2), dtype=object)
    Y[:, 0] = np.where(X[:, 0] > 0, "a", "b")
    Y[:, 1] = list(rng.uniform(0, 2, 40))
    with pytest.raises(ValueError, match="task 1: the targets are continuous"):
        MultiTaskClassifier().fit(X, Y)
    Y[:, 1] = list(rng.integers(0, 3, 40) * 1.0)  # integral floats are classes
    assert MultiTaskClassifier().fit(X, Y).coef_.shape[0] == 1 + 3


def test_relation_plot_labels_subtasks():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from mtlclassic.plotting import plot_task_relation

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    Y = np.stack([X[:, 0] > 0, np.digitize(X[:, 1], [-0.5, 0.5])], axis=1)
    clf = MultiTaskClassifier(task_relation=None).fit(X, Y)
    ax = plot_task_relation(clf, task_names=["sign", "level"])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["sign", "level:0", "level:1",
                                                            "level:2"]
    with pytest.raises(ValueError, match=r"one per task, 2, or per sub-task, 4"):
        plot_task_relation(clf, task_names=["a", "b", "c"])


def test_cv_estimators_take_a_splitter(mixed):
    from sklearn.model_selection import KFold

    from mtlclassic.multitask import MultiTaskClassifierCV

    X, Y = mixed
    a = MultiTaskClassifierCV(penalty="ridge", alphas=3, cv=MultiTaskKFold(3)).fit(X, Y)
    assert a.cv_results_["fold_scores"].shape == (1, 3, 3)
    b = MultiTaskClassifierCV(penalty="ridge", alphas=3, cv=KFold(4)).fit(X, Y)
    assert b.cv_results_["fold_scores"].shape == (1, 4, 3)
    with pytest.raises(ValueError, match="cv must be an integer >= 2 or a splitter"):
        MultiTaskClassifierCV(cv="five").fit(X, Y)
