"""The per-task Gram form (``_solver.TaskGramOracle``): squared loss with labels missing or
weights per entry, tasks on their own samples (School's layout)."""

import warnings

import numpy as np
import pytest

from mtlclassic.multitask import MultiTaskRegressor, _losses, _solver
from mtlclassic.multitask.penalties import get_penalty


def _school_like(rng, n=600, d=6, T=12, shared=0.0):
    """Each row labelled in one task (plus a ``shared`` fraction in every task); tasks of
    unequal sizes; features with a mean (the intercepts matter)."""
    X = rng.standard_normal((n, d)) + 2.0
    task = np.minimum(rng.geometric(0.15, n) - 1, T - 1)
    W = rng.standard_normal((d, T))
    W[d // 2:] = 0.0
    Y = np.full((n, T), np.nan)
    y = np.einsum("nd,dn->n", X, W[:, task]) + task + 0.3 * rng.standard_normal(n)
    Y[np.arange(n), task] = y
    both = rng.random(n) < shared
    Y[both] = X[both] @ W + 0.3 * rng.standard_normal((both.sum(), T))
    return X, Y


def _data_form(X, Y, A, Q):
    Xc = X - X.mean(axis=0)
    return _solver.DataOracle(Xc, np.nan_to_num(Y), A, _losses.squared_numpy, Q, True)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_oracle_is_the_data_form_at_the_optimal_intercepts(rng, fit_intercept):
    """Value, gradient and duality gap of the per-task Gram form equal those of the data
    form at b = the intercepts' optimum for W (per-entry weights, unequal tasks)."""
    X, Y = _school_like(rng, shared=0.2)
    n, T = Y.shape
    A = np.where(np.isnan(Y), 0.0, rng.uniform(0.5, 2.0, Y.shape)) / n
    Q = 0.3 * np.eye(T)
    tg = _solver.TaskGramOracle(X, np.nan_to_num(Y), A, Q, fit_intercept)
    W = rng.standard_normal((X.shape[1], T))
    W[1] = 0.0
    b = tg.intercept(W) if fit_intercept else np.zeros(T)
    data = _solver.DataOracle(X, np.nan_to_num(Y), A, _losses.squared_numpy, Q, fit_intercept)
    lin, dlin = tg.linear(W, None), data.linear(W, b)
    (f, aux), (fd, auxd) = tg.value(W, None, lin), data.value(W, b, dlin)
    assert f == pytest.approx(fd, rel=1e-12)
    gW, _ = tg.grad(W, None, lin, aux)
    gWd, gbd = data.grad(W, b, dlin, auxd)
    np.testing.assert_allclose(gW, gWd, rtol=1e-10, atol=1e-12)
    if fit_intercept:  # b is optimal: no gradient along it
        np.testing.assert_allclose(gbd, 0.0, atol=1e-12)
    pen = get_penalty("l21")
    F = f + pen.value(W, 0.1)
    gap, _ = _solver.duality_gap(tg, pen, 0.1, Q, W, None, lin, aux, F)
    gapd, _ = _solver.duality_gap(data, pen, 0.1, Q, W, b, dlin, auxd, F)
    assert gap == pytest.approx(gapd, rel=1e-9)
    # its Lipschitz bound is the exact one: max_t lambda_max(K_t) + lambda_max(Q)
    assert tg.lipschitz_bound() == pytest.approx(tg.exact_lipschitz())
    assert tg.lipschitz_bound() <= data.exact_lipschitz() * (1 + 1e-12)


@pytest.mark.parametrize("penalty", ["l21", "trace", "graph", "ridge", "mean", "mtrl"])
def test_fits_equal_the_data_form(rng, monkeypatch, penalty):
    """Tasks on their own samples: the estimators pick the per-task Gram form; the same
    objective as the data form at tol 1e-10 (and the same point, up to the certificate's
    radius), the intercepts recovered."""
    X, Y = _school_like(rng)
    n, T = Y.shape
    sw = rng.uniform(0.5, 2.0, n)
    kw = dict(penalty=penalty, alpha=0.02, tol=1e-10, max_iter=100000)
    built = []
    init = _solver.TaskGramOracle.__init__

    def spy(self, *a, **k):
        built.append(1)
        init(self, *a, **k)

    monkeypatch.setattr(_solver.TaskGramOracle, "__init__", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # converged: no ConvergenceWarning
        a = MultiTaskRegressor(**kw).fit(X, Y, sample_weight=sw)
    assert built
    monkeypatch.setattr(_solver.TaskGramOracle, "useful_counts",
                        staticmethod(lambda n, d, T, nnz: False))
    solver = "bcd" if penalty == "l21" else "auto"
    b = MultiTaskRegressor(solver=solver, **kw).fit(X, Y, sample_weight=sw)
    assert len(built) == 1
    scale = b._null_scale_
    assert abs(a.objective_ - b.objective_) <= 2e-10 * scale + 1e-12 * abs(b.objective_)
    assert a.dual_gap_ <= 1e-10 * scale * (1 + 1e-9)
    np.testing.assert_allclose(a.coef_, b.coef_, atol=2e-4)
    np.testing.assert_allclose(a.intercept_, b.intercept_, atol=2e-3)
    np.testing.assert_allclose(a.predict(X), b.predict(X), atol=2e-3)


def test_chosen_only_where_it_pays(rng):
    """Small T d against n and a cheap build (few labelled entries per task, or small d);
    not for many features with most labels present, nor sparse X."""
    import scipy.sparse

    X, Y = _school_like(rng, n=600, d=6, T=12)
    A = (~np.isnan(Y)).astype(float)
    assert _solver.TaskGramOracle.useful(X, A)
    wide = rng.standard_normal((600, 200))
    dense_labels = np.ones((600, 3))
    dense_labels[::10, 0] = 0.0  # a few missing: the shared Gram form does not apply
    assert not _solver.TaskGramOracle.useful(wide, dense_labels)  # builds cost > 20 iters
    assert not _solver.TaskGramOracle.useful(X, np.ones((600, 200)))  # T d > n
    assert _solver.TaskGramOracle.useful(scipy.sparse.csr_matrix(X), A)
    assert not _solver.TaskGramOracle.useful(scipy.sparse.random(100000, 5000, 1e-4), A[:1])


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_sparse_build_equals_dense(rng, fit_intercept):
    """Sparse X: the per-task moments from sparse products (centred implicitly) equal the
    dense ones."""
    import scipy.sparse

    X, Y = _school_like(rng, shared=0.3)
    X[rng.random(X.shape) < 0.6] = 0.0
    A = np.where(np.isnan(Y), 0.0, rng.uniform(0.5, 2.0, Y.shape)) / len(X)
    Q = np.eye(Y.shape[1])
    a = _solver.TaskGramOracle(X, np.nan_to_num(Y), A, Q, fit_intercept)
    b = _solver.TaskGramOracle(scipy.sparse.csc_matrix(X), np.nan_to_num(Y), A, Q,
                               fit_intercept)
    for name in ("K", "H", "yy", "x_mean", "y_mean"):
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=1e-10,
                                   atol=1e-13)


def test_badly_scaled_feature_still_converges(rng):
    """One feature in other units: FISTA on the per-task Gram form needs thousands of
    iterations, so "auto" goes on with the working-set BCD from its point; the Lasso's
    solution on the labelled rows (found by a review: 0.6 off, unconverged)."""
    from sklearn.linear_model import Lasso

    n, d = 500, 8
    X = rng.standard_normal((n, d))
    X[:, 3] *= 1e3
    y = X[:, :3].sum(axis=1) + rng.standard_normal(n)
    y[::2] = np.nan
    lab = ~np.isnan(y)
    ref = Lasso(alpha=0.05, tol=1e-12, max_iter=100000).fit(X[lab], y[lab])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = MultiTaskRegressor(penalty="l21", alpha=0.05, tol=1e-8).fit(X, y)
    assert m.solver_ in ("fista", "fista+bcd")
    np.testing.assert_allclose(m.coef_.ravel(), ref.coef_, atol=1e-5)


def test_ill_conditioned_exact_solve_warns_nothing(rng):
    """A near-duplicate feature with the mean penalty and l2 = 0: SciPy's ill-conditioning
    warning stays inside (the duality gap decides), and the objective is certified."""
    X, Y = _school_like(rng, shared=0.5)
    X[:, 1] = X[:, 0] + 1e-9 * rng.standard_normal(len(X))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = MultiTaskRegressor(penalty="mean", alpha=0.1, l2=0.0, tol=1e-6,
                               max_iter=20000).fit(X, Y)
    assert np.all(np.isfinite(m.coef_))


def _dense_task_gram(monkeypatch):
    """Make the estimators build the per-task Gram form from the (n, T) targets and
    weights, as before _fit_task_columns (the data form's arrays made first)."""
    from mtlclassic.multitask import _estimators

    monkeypatch.setattr(_estimators.MultiTaskRegressor, "_task_columns_ok", False)


def _columns_spy(monkeypatch):
    from mtlclassic.multitask import _estimators

    calls = []
    orig = _estimators.MultiTaskRegressor._fit_task_columns

    def spy(self, *a, **k):
        calls.append(1)
        return orig(self, *a, **k)

    monkeypatch.setattr(_estimators.MultiTaskRegressor, "_fit_task_columns", spy)
    return calls


@pytest.mark.parametrize("penalty, data", [
    ("l21", "weights"), ("trace", "weights"), ("graph", "weights"), ("ridge", "weights"),
    ("mean", "weights"), ("mtrl", "weights"), ("l21", "per-entry"), ("graph", "per-entry"),
    ("l21", "size"), ("l21", "float32"), ("l21", "zero-weights"), ("l21", "alpha0"),
])
def test_task_columns_fit_equals_the_dense_task_gram_fit(rng, monkeypatch, penalty, data):
    """The fit built from each task's labelled rows (no (n, T) arrays) is the fit built
    from the (n, T) targets and weights: every penalty (the graph penalty's relation
    estimated from the targets, the learned one re-solved), per-sample and per-entry
    weights, zero weights, task_weight="size", float32 X, alpha = 0 (the ridge part's
    exact minimiser). The weights' per-task sums are the only difference (summed per
    task, not over the (n, T) array): the same objective to rounding."""
    X, Y = _school_like(rng, shared=0.1)
    n, T = Y.shape
    kw = dict(penalty=penalty, alpha=0.0 if data == "alpha0" else 0.02, tol=1e-10,
              max_iter=100000)
    sw = rng.uniform(0.5, 2.0, n)
    if data == "per-entry":
        sw = rng.uniform(0.5, 2.0, (n, T))
    elif data == "zero-weights":
        sw[::7] = 0.0
    elif data == "size":
        kw["task_weight"] = "size"
    elif data == "float32":
        X = X.astype(np.float32)
    calls = _columns_spy(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # converged: no ConvergenceWarning
        a = MultiTaskRegressor(**kw).fit(X, Y, sample_weight=sw)
    assert calls == [1]
    _dense_task_gram(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b = MultiTaskRegressor(**kw).fit(X, Y, sample_weight=sw)
    assert calls == [1] and a.solver_ == b.solver_
    scale = b._null_scale_
    assert abs(a.objective_ - b.objective_) <= 1e-12 * (scale + abs(b.objective_))
    # (alpha = 0 with l2 = 0: the exact minimiser, no certificate for a singular Q)
    assert np.isnan(a.dual_gap_) == np.isnan(b.dual_gap_) == (data == "alpha0")
    assert not a.dual_gap_ > 1e-10 * scale * (1 + 1e-9)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(a.intercept_, b.intercept_, rtol=1e-6, atol=1e-8)
    if penalty == "graph":
        np.testing.assert_allclose(a.task_relation_, b.task_relation_, rtol=1e-12)


def test_task_columns_fit_goes_on_with_the_bcd(rng, monkeypatch):
    """An unconverged FISTA (one feature in other units) goes on with the working-set BCD
    from its point, on the data form's arrays made then from the columns: the fit of the
    dense path."""
    n, d = 500, 8
    X = rng.standard_normal((n, d))
    X[:, 3] *= 1e3
    Y = np.full((n, 2), np.nan)
    Y[::2, 0] = X[::2, :3].sum(axis=1) + rng.standard_normal(n // 2)
    Y[1::2, 1] = X[1::2, 2:5].sum(axis=1) + rng.standard_normal(n // 2)
    calls = _columns_spy(monkeypatch)
    kw = dict(penalty="l21", alpha=0.05, tol=1e-10, max_iter=3000)
    a = MultiTaskRegressor(**kw).fit(X, Y)
    _dense_task_gram(monkeypatch)
    b = MultiTaskRegressor(**kw).fit(X, Y)
    assert calls == [1] and a.solver_ == b.solver_ == "fista+bcd"
    assert a.dual_gap_ <= 1e-10 * a._null_scale_
    assert abs(a.objective_ - b.objective_) <= 2e-10 * b._null_scale_
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("bad, match", [
    ("text", "regression targets must be real numbers"),
    (np.inf, "Y contains infinity"),
    (1e200, "the squared loss of these targets overflows"),
    ("nan", "Y contains NaN among its labelled entries"),  # a string, not a missing label
])
def test_task_columns_fit_refuses_bad_targets(rng, monkeypatch, bad, match):
    """Targets that are not real numbers, infinite or whose squares overflow: the errors
    of the dense path, from the columns."""
    X, Y = _school_like(rng)
    Y = Y.astype(object)
    Y[np.flatnonzero(~np.isnan(Y[:, 0].astype(float)))[3], 0] = bad
    calls = _columns_spy(monkeypatch)
    with pytest.raises(ValueError, match=match):
        MultiTaskRegressor(penalty="l21").fit(X, Y)
    assert calls == [1]
    _dense_task_gram(monkeypatch)
    with pytest.raises(ValueError, match=match):
        MultiTaskRegressor(penalty="l21").fit(X, Y)


def test_string_targets_behave_alike_on_every_path(rng):
    """Targets given as strings: numeric ones are converted on every path (as
    encode_regression converts them whole), and a missing-label string that is no number
    is the same ValueError on the per-task columns' path as on the others (review: the
    columns' path converted only the labelled entries and fitted)."""
    X, Y = _school_like(rng)
    Ys = np.where(np.isnan(Y), "?", Y.astype(str))
    for kw in (dict(), dict(solver="bcd")):
        with pytest.raises(ValueError, match="regression targets must be real numbers"):
            MultiTaskRegressor(penalty="l21", missing_label="?", **kw).fit(X, Ys)
    # numeric strings, the unlabelled entries given weight 0 (per-entry weights: the
    # columns' path): the fit of the numbers
    sw = np.where(np.isnan(Y), 0.0, 1.0)
    a = MultiTaskRegressor(penalty="l21", alpha=0.02).fit(
        X, np.where(np.isnan(Y), "0", Y.astype(str)), sample_weight=sw)
    b = MultiTaskRegressor(penalty="l21", alpha=0.02).fit(X, np.nan_to_num(Y), sample_weight=sw)
    np.testing.assert_array_equal(a.coef_, b.coef_)


def _peak_fit(est, X, Y):
    """The peak bytes (tracemalloc) a converged fit allocates."""
    import tracemalloc

    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # converged: no ConvergenceWarning
            est.fit(X, Y)
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("penalty, bound", [("l21", 2.0), ("trace", 2.0), ("ridge", 2.0),
                                            ("graph", 2.5)])
def test_task_columns_fit_memory(rng, penalty, bound):
    """Tasks on their own rows with wide targets (T = 30 on 12 features: the (n, T)
    float64 targets and loss weights are each 2.5x X's size): the fit allocates within 2x
    X -- the labels' bool masks, each task's rows -- where it held the targets' copy, the
    weights and three bool arrays (6.1x X). The default graph penalty estimates its task
    relation from the targets (read in place, the pair sums by blocks of rows; each
    task's centred rows for the shrunk per-task fits, 1x X): 2.3x, where the estimate's
    whole-array sums made it 18.9x."""
    n, d, T = 20000, 12, 30
    X = rng.standard_normal((n, d)) + 1.0
    task = rng.integers(0, T, n)
    Y = np.full((n, T), np.nan)
    Y[np.arange(n), task] = X[:, 0] * (1 + task / T) + rng.standard_normal(n)
    est = MultiTaskRegressor(penalty=penalty, alpha=0.01, tol=1e-8)
    peak = _peak_fit(est, X, Y)
    assert peak <= bound * X.nbytes, peak / X.nbytes


@pytest.mark.parametrize("frac", [0.1, 0.5])
def test_tall_fit_with_some_labels_missing_memory(rng, monkeypatch, frac):
    """Tall X with a tenth (half) of the labels missing at random: the per-task Gram form,
    from the (n, T) arrays where most labels are present (the columns would take 24 bytes
    a labelled entry against 18 an entry) and from the columns where half are missing;
    either way each task's rows are gathered a block at a time (a whole task's rows,
    centred and weighted, were three copies of most of X: 4.9x X at 100,000 rows)."""
    n = 20000
    X = rng.standard_normal((n, 20))
    Y = X[:, :10] @ rng.standard_normal((10, 10)) + 0.5 * rng.standard_normal((n, 10))
    Y[rng.random(Y.shape) < frac] = np.nan
    calls = _columns_spy(monkeypatch)
    est = MultiTaskRegressor(penalty="l21", alpha=0.01, tol=1e-8)
    peak = _peak_fit(est, X, Y)
    assert calls == ([] if frac == 0.1 else [1])
    assert peak <= 2 * X.nbytes, peak / X.nbytes


@pytest.mark.parametrize("n_rows", [100, 5000, 40000])
def test_oracle_from_columns_equals_the_oracle_from_arrays(rng, n_rows):
    """TaskGramOracle from per-task columns (a list, or task_columns' generator) equals the
    one from the (n, T) arrays, to the bit; tasks of many rows are built in blocks (up to
    8 of at least TASK_ROWS rows), equal to the unblocked moments to rounding."""
    d, T = 5, 3
    X = rng.standard_normal((n_rows, d)) + 1.0
    Y = rng.standard_normal((n_rows, T))
    A = (rng.random((n_rows, T)) < 0.6) * rng.random((n_rows, T))
    Q = np.eye(T)
    ref = _solver.TaskGramOracle(X, Y, A, Q, True)
    for cols in (_solver.task_columns(A, Y), list(_solver.task_columns(A, Y))):
        o = _solver.TaskGramOracle(X, None, None, Q, True, columns=cols)
        for name in ("K", "H", "yy", "x_mean", "y_mean"):
            np.testing.assert_array_equal(getattr(o, name), getattr(ref, name))
    for t in range(T):  # the unblocked moments of each task
        r = A[:, t] > 0
        a = A[r, t]
        m = a @ X[r] / a.sum()
        Xc = X[r] - m
        np.testing.assert_allclose(ref.K[t], (Xc.T * a) @ Xc, rtol=1e-11, atol=1e-9)
        np.testing.assert_allclose(ref.x_mean[t], m, rtol=1e-12, atol=1e-13)
