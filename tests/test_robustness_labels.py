"""Silent wrong answers and unclear errors in the estimators' label, score and CV handling
(robustness sweep): every NaN-like value is "unlabelled", complex targets are refused,
``score`` skips tasks without labels, mixed label types and overflowing X get their own
messages, ``cv`` is checked against each task's labelled count and joblib workers are capped."""

import decimal
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse

from mtlclassic.multitask import (MultiTaskClassifier, MultiTaskClassifierCV,
                                  MultiTaskRegressor, MultiTaskRegressorCV)
from mtlclassic.multitask._labels import is_missing_value, missing_mask


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    y = np.where(X[:, 0] + 0.3 * rng.normal(size=60) > 0, "pos", "neg").astype(object)
    return X, y


@pytest.mark.parametrize("nan", [None, float("nan"), np.float16("nan"), np.float32("nan"),
                                 np.float64("nan"), np.longdouble("nan"), decimal.Decimal("NaN"),
                                 pd.NA, pd.NaT, np.datetime64("NaT")])
def test_every_nan_like_value_is_unlabelled(data, nan):
    X, y = data
    assert is_missing_value(nan)
    y = y.copy()
    y[::3] = nan
    clf = MultiTaskClassifier(penalty="ridge", alpha=1e-2).fit(X, y)
    assert list(clf.classes_) == ["neg", "pos"]  # the NaN is not a class
    ref = MultiTaskClassifier(penalty="ridge", alpha=1e-2).fit(X, np.where(
        np.arange(60) % 3 == 0, None, data[1]))
    np.testing.assert_array_equal(clf.coef_, ref.coef_)


def test_nan_like_values_never_become_classes_of_a_binary_task(data):
    """The issue's case: np.float32 NaNs in an object array made 20 'classes'."""
    X, y = data
    y = y.copy()
    y[:20] = [np.float32("nan")] * 20
    clf = MultiTaskClassifier(penalty="ridge").fit(X, y)
    assert len(clf.classes_) == 2 and clf.coef_.shape[0] == 1


def test_values_that_are_not_missing():
    for v in [0, 0.0, "", "nan", "NA", False, np.int64(0), (1, 2)]:
        assert not is_missing_value(v), v
    Y = np.array([[1, None], ["a", pd.NA]], dtype=object)
    np.testing.assert_array_equal(missing_mask(Y), [[False, True], [False, True]])


def test_missing_label_may_be_pd_na_or_a_value():
    Y = np.array([[1, -1], [pd.NA, 2]], dtype=object)
    np.testing.assert_array_equal(missing_mask(Y, missing_label=pd.NA), [[0, 0], [1, 0]])
    np.testing.assert_array_equal(missing_mask(Y, missing_label=-1), [[0, 1], [1, 0]])


def test_pandas_nullable_regression_targets():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 3))
    y = pd.Series(X @ [1.0, -2.0, 0.5]).convert_dtypes()  # Float64 with pd.NA
    y[::4] = pd.NA
    reg = MultiTaskRegressor(penalty="ridge", alpha=1e-3).fit(X, y.to_numpy(dtype=object))
    ref = MultiTaskRegressor(penalty="ridge", alpha=1e-3).fit(
        X, y.to_numpy(dtype=float, na_value=np.nan))
    np.testing.assert_array_equal(reg.coef_, ref.coef_)
    assert np.isnan(y.to_numpy(dtype=float, na_value=np.nan)).sum() == 13


@pytest.mark.parametrize("Est", [MultiTaskRegressor, MultiTaskClassifier])
def test_complex_targets_are_refused(Est):
    X = np.random.default_rng(0).normal(size=(20, 3))
    y = (np.arange(20) % 2) + 1j
    with pytest.raises(ValueError, match="complex"):
        Est().fit(X, y)
    with pytest.raises(ValueError, match="complex"):
        Est().fit(X, np.array([1 + 2j] + [1.0] * 19, dtype=object))


def test_mixed_label_types_named(data):
    X, _ = data
    y = np.array(["a", 1] * 30, dtype=object)
    with pytest.raises(ValueError, match=r"labels of mixed types \(int, str\)"):
        MultiTaskClassifier().fit(X, y)


@pytest.mark.parametrize("Est", [MultiTaskRegressor, MultiTaskClassifier])
def test_overflowing_x_is_named(Est):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5)) * 1e200
    y = np.arange(40) % 2
    with pytest.raises(ValueError, match="overflow"):
        Est().fit(X, y)
    Est(penalty="ridge").fit(X / 1e200 * 1e60, y)  # large but safe values still fit


def test_score_skips_a_task_without_labels_in_the_rows():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 4))
    Y = np.stack([X[:, 0] > 0, X[:, 1] > 0, X[:, 2] > 0], axis=1).astype(float)
    clf = MultiTaskClassifier(penalty="ridge", alpha=1e-4).fit(X, Y)
    Ye = Y.copy()
    Ye[:, 2] = np.nan
    full = [np.mean(clf.predict(X)[:, t] == Y[:, t]) for t in range(2)]
    assert clf.score(X, Ye) == pytest.approx(np.mean(full))  # not (a + b + 0) / 3
    reg = MultiTaskRegressor(penalty="ridge").fit(X, Y)
    from sklearn.metrics import r2_score

    ref = np.mean([r2_score(Y[:, t], reg.predict(X)[:, t]) for t in range(2)])
    assert reg.score(X, Ye) == pytest.approx(ref)
    # a zero weight on every labelled sample of a task is the same as no label
    w = np.ones(90)
    assert clf.score(X, Y, sample_weight=w) == pytest.approx(clf.score(X, Y))
    with pytest.raises(ValueError, match="no task has a labelled sample"):
        clf.score(X, np.full_like(Y, np.nan))
    with pytest.raises(ValueError, match="no task has a labelled sample"):
        reg.score(X, np.full_like(Y, np.nan))
    with pytest.raises(ValueError, match="task"):
        reg.score(X, Y[:, :2])


def test_cv_too_many_folds_for_the_labels():
    """MultiTaskRegressorCV(cv=20) on 20 samples failed after all fits with 'All-NaN slice'."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), rng.normal(size=20)
    with pytest.warns(UserWarning, match=r"cv=20: .*task 0: 10 folds \(20 labelled\)"):
        m = MultiTaskRegressorCV(cv=20, alphas=3).fit(X, y)
    assert m.cv_results_["fold_scores"].shape == (1, 10, 3)
    assert np.all(np.isfinite(m.cv_results_["fold_scores"]))
    with pytest.raises(ValueError, match="cv=5: task 0 has 3 labelled"):
        MultiTaskRegressorCV(cv=5).fit(X[:3], y[:3])
    # pooled MSE scores a single held-out sample: no reduction needed
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        m = MultiTaskRegressorCV(cv=20, alphas=2, scoring="neg_mean_squared_error").fit(X, y)
    assert m.cv_results_["fold_scores"].shape == (1, 20, 2)


def test_cv_workers_capped_at_the_fold_paths(monkeypatch):
    import mtlclassic.multitask._cv as cvmod

    seen = {}
    real = cvmod.Parallel

    def spy(n_jobs=None, **kw):
        seen["n_jobs"] = n_jobs
        return real(n_jobs=1, **kw)

    monkeypatch.setattr(cvmod, "Parallel", spy)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    MultiTaskClassifierCV(n_jobs=1000, cv=3, alphas=2).fit(X, X[:, 0] > 0)
    assert seen["n_jobs"] == 3  # 3 folds x 1 (l2, intercept_scaling) pair


def test_list_of_lists_keeps_nan_and_none_missing():
    X = np.random.default_rng(0).normal(size=(6, 2))
    Y = [["a", np.nan], ["b", "x"], ["a", "y"], ["b", "x"], ["a", "y"], ["b", None]]
    clf = MultiTaskClassifier(penalty="ridge").fit(X, Y)
    assert list(clf.classes_[1]) == ["x", "y"]


def test_decimal_labels():
    X = np.random.default_rng(0).normal(size=(6, 2))
    y = np.array([decimal.Decimal("sNaN"), "a", "b", "a", "b", "a"], dtype=object)
    assert list(MultiTaskClassifier(penalty="ridge").fit(X, y).classes_) == ["a", "b"]
    cont = np.array([decimal.Decimal(f"0.{k}3") for k in range(6)], dtype=object)
    with pytest.raises(ValueError, match="continuous"):
        MultiTaskClassifier().fit(X, cont)


def test_overflowing_targets_and_weights_are_named():
    """Found by review: Y of ~1e154 (its squares overflow) fitted to coef_ = 0 with an
    infinite gap and no error; sample weights of 1e308 (their sum overflows) to a
    non-finite intercept. Both are refused, naming the input."""
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((30, 4)), rng.standard_normal((30, 2))
    with pytest.raises(ValueError, match="squared loss of these targets overflows"):
        MultiTaskRegressor(penalty="l21", alpha=0.1).fit(X, Y * 1e154)
    MultiTaskRegressor(penalty="l21", alpha=0.1).fit(X, Y * 1e140)  # large but finite
    with pytest.raises(ValueError, match="sample_weight sums to infinity"):
        MultiTaskRegressor().fit(X, Y, sample_weight=np.full(30, 1e308))
    with pytest.raises(ValueError, match="task_weight sums to infinity"):
        MultiTaskRegressor(task_weight=[1e308, 1e308]).fit(X, Y)


def test_overflow_checks_under_strict_float_errors():
    """Review: the checks' own overflow raised RuntimeWarning / FloatingPointError (with
    warnings as errors or np.errstate(all="raise")) instead of the ValueError."""
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((30, 4)), rng.standard_normal((30, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"), pytest.raises(ValueError, match="overflows"):
            MultiTaskRegressor(penalty="l21", alpha=0.1).fit(X, Y * 1e160)
        with np.errstate(all="raise"), pytest.raises(ValueError, match="sums to infinity"):
            MultiTaskRegressor().fit(X, Y, sample_weight=np.full(30, 1e307))


@pytest.mark.parametrize("layout", ["C", "F", "strided", "float32", "sparse"])
def test_one_pass_x_checks_match_the_separate_ones(layout):
    """The fit checks X's finiteness and magnitude in one pass (a sum of squares) where it
    can: the same errors, with scikit-learn's messages, for every layout -- a NaN, an
    infinity, a value past the overflow limit -- and no error (nor a warning from the
    sum's own overflow) for values large but safe, whose squares' sum overflows."""
    rng = np.random.default_rng(2)
    base = rng.standard_normal((40, 6))
    y = rng.standard_normal(40)
    dtype = np.float32 if layout == "float32" else np.float64

    def shaped(X):
        X = X.astype(dtype)
        if layout == "F":
            return np.asfortranarray(X)
        if layout == "strided":
            return np.repeat(X, 2, axis=1)[:, ::2]
        if layout == "sparse":
            return scipy.sparse.csr_matrix(X)
        return X

    for bad, match in [(np.nan, "Input X contains NaN"), (np.inf, "Input X contains inf"),
                       (-np.inf, "Input X contains inf")]:
        X = base.copy()
        X[3, 2] = bad
        with pytest.raises(ValueError, match=match) as err:
            MultiTaskRegressor().fit(shaped(X), y)
        if np.isnan(bad):
            assert "MultiTaskRegressor" in str(err.value)  # scikit-learn's full message
    limit = np.sqrt(np.finfo(dtype).max / 40)
    X = base.copy()
    X[5, 1] = 2 * limit
    with pytest.raises(ValueError, match="overflow"):
        MultiTaskRegressor().fit(shaped(X), y)
    X = base.copy()
    X[:, 0] = 0.3 * limit  # the squares' sum overflows; every value is safe
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        MultiTaskRegressor(penalty="ridge").fit(shaped(X), y)
    X = base.copy()
    X[3, 2] = 1e-170 if dtype == np.float64 else 1e-30  # its square underflows: the
    X = shaped(X)  # check's own arithmetic raised under errstate(all="raise") (review)
    with np.errstate(all="raise"):
        MultiTaskRegressor(penalty="ridge").fit(X, y)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_column_sums_kernel_equals_numpy(dtype):
    """The native one pass of the fit's checks (csrc/cpu/moments.cpp): column sums with
    the additions of NumPy's X.sum(axis=0) (the same bits for float64 X; float32 X summed
    in float64) and max |x|, on random matrices of many shapes and on a real image; a
    NaN or an infinity makes its column's sum non-finite; other arrays are refused."""
    from skimage import data

    from mtlclassic.backend.kernels import column_sums_top

    rng = np.random.default_rng(0)
    mats = [rng.standard_normal(s) * np.exp(3 * rng.standard_normal(s))
            for s in [(1, 1), (1, 7), (2, 3), (5, 4), (6, 9), (333, 17), (500, 260)]]
    mats.append(np.array([[-0.0, 1.0], [-0.0, -1.0], [-0.0, 0.0]]))  # a -0.0 column: +0.0
    mats.append(data.camera().astype(np.float64) / 255.0)
    for X in mats:
        X = X.astype(dtype)
        s, top = column_sums_top(X)
        assert s.dtype == np.float64 and s.shape == (X.shape[1],)
        ref = X.astype(np.float64).sum(axis=0)
        np.testing.assert_array_equal(s, ref)
        assert np.array_equal(np.signbit(s), np.signbit(ref))
        assert top == float(np.abs(X).max())
    X = rng.standard_normal((20, 4)).astype(dtype)
    for bad in (np.nan, np.inf, -np.inf):
        Xb = X.copy()
        Xb[7, 2] = bad
        s, _ = column_sums_top(Xb)
        assert not np.isfinite(s[2]) and np.all(np.isfinite(np.delete(s, 2)))
    for bad in (X.T, X[:, ::2], X.astype(np.int64), X.ravel(), np.asfortranarray(X[:, :3])):
        with pytest.raises(ValueError, match="C-contiguous"):
            column_sums_top(bad)


def test_centred_rows_kernel_equals_numpy():
    """The native block conversion of float32 X (csrc/cpu/moments.cpp): X[rows, cols] -
    mean in float64, the bits of NumPy's float64 cast and subtraction, on random matrices
    and a real image, every column or a subset; the products of _solver.CenteredDense,
    built on it, equal those with the centred float64 copy (F-ordered X falls back to
    NumPy); other arrays and blocks out of range are refused."""
    from skimage import data

    from mtlclassic.backend.kernels import centred_rows
    from mtlclassic.multitask._solver import CenteredDense

    rng = np.random.default_rng(0)
    mats = [rng.standard_normal(s) * np.exp(3 * rng.standard_normal(s))
            for s in [(1, 1), (5, 4), (333, 17), (600, 2000)]]
    mats.append(data.camera().astype(np.float64) / 255.0)
    for X in mats:
        X = X.astype(np.float32)
        n, d = X.shape
        X64 = X.astype(np.float64)
        m = X64.mean(axis=0)
        for start, stop in [(0, n), (n // 3, n), (n - 1, n)]:
            out = np.empty((stop - start, d))
            centred_rows(X, start, m, out)
            np.testing.assert_array_equal(out, X64[start:stop] - m)
            cols = np.sort(rng.choice(d, size=max(1, d // 3), replace=False)).astype(np.int64)
            out = np.empty((stop - start, len(cols)))
            centred_rows(X, start, np.ascontiguousarray(m[cols]), out, cols)
            np.testing.assert_array_equal(out, X64[start:stop][:, cols] - m[cols])
        Xc = X64 - m
        W = rng.standard_normal((d, 3))
        W[d // 4:] = 0  # row-sparse: the non-zero rows' columns only
        G = rng.standard_normal((n, 3))
        for C in (CenteredDense(X, m), CenteredDense(np.asfortranarray(X), m)):
            np.testing.assert_allclose(C @ W, Xc @ W, rtol=1e-12, atol=1e-12 * abs(Xc).max())
            np.testing.assert_allclose(C.T @ G, Xc.T @ G, rtol=1e-12,
                                       atol=1e-11 * abs(Xc).max() * n)
            np.testing.assert_allclose(C @ W[:, 0], Xc @ W[:, 0], rtol=1e-12,
                                       atol=1e-12 * abs(Xc).max())
            np.testing.assert_array_equal(C.astype(np.float32), Xc.astype(np.float32))
    X = rng.standard_normal((20, 4)).astype(np.float32)
    m, out = np.zeros(4), np.empty((5, 4))
    for bad in (X.astype(np.float64), X.T, X[:, ::2]):
        with pytest.raises(ValueError, match="X must be"):
            centred_rows(bad, 0, m, out)
    with pytest.raises(ValueError, match="out must be"):
        centred_rows(X, 0, m, np.empty((5, 4), np.float32))
    with pytest.raises(ValueError, match="mean must be"):
        centred_rows(X, 0, np.zeros(3), out)
    with pytest.raises(ValueError, match="beyond X's 20 rows"):
        centred_rows(X, 16, m, out)
    with pytest.raises(ValueError, match="beyond X's 20 rows"):
        centred_rows(X, -1, m, out)
    for bad in (1.7, "1", None, True):  # (review: 1.7 was truncated, "1" accepted)
        with pytest.raises(ValueError, match="start must be an integer"):
            centred_rows(X, bad, m, out)
    with pytest.raises(ValueError, match="cols must hold"):
        centred_rows(X, 0, np.zeros(2), np.empty((5, 2)), np.array([0, 4]))
    with pytest.raises(ValueError, match="cols must be"):
        centred_rows(X, 0, np.zeros(2), np.empty((5, 2)), np.array([0, 1], np.int32))


def test_fit_centres_with_the_checks_column_sums(monkeypatch):
    """The l21 working-set fit takes X's column means from the check's pass (no second
    pass over X): the same coefficients, bit for bit, as with X.sum(axis=0)."""
    from mtlclassic.multitask import _estimators

    rng = np.random.default_rng(1)
    X = rng.standard_normal((60, 300)) + 3.0
    Y = X[:, :4] @ rng.standard_normal((4, 3)) + rng.standard_normal((60, 3))
    kw = dict(penalty="l21", alpha=0.05, tol=1e-10, max_iter=100000)
    a = MultiTaskRegressor(**kw).fit(X, Y)
    seen = []
    real = _estimators._BaseMultiTask._solve_bcd

    def solve_bcd(self, ctx, *args):
        seen.append(ctx.get("x_sums"))
        return real(self, ctx, *args)

    monkeypatch.setattr(_estimators._BaseMultiTask, "_solve_bcd", solve_bcd)
    b = MultiTaskRegressor(**kw).fit(X, Y)
    assert a.solver_ == "bcd" and seen and seen[0] is not None
    np.testing.assert_array_equal(seen[0], X.sum(axis=0))
    monkeypatch.setattr(_estimators, "_check_finite_and_magnitude", lambda X, name: None)
    c = MultiTaskRegressor(**kw).fit(X, Y)  # no sums: X.sum(axis=0) in the solver
    np.testing.assert_array_equal(a.coef_, b.coef_)
    np.testing.assert_array_equal(a.coef_, c.coef_)
    np.testing.assert_array_equal(a.intercept_, c.intercept_)
