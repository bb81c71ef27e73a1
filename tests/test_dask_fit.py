"""Fits on Dask arrays over a dask.distributed cluster (mtlclassic.multitask._dask) against
the in-memory fits: the same objective to the solvers' tolerance, for every penalty and
loss, missing labels, weights, uneven / single / column chunks, data larger than a
worker's memory limit, lazy features, the CV estimators and MultiTaskEstimator (mixed
task types)."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

import dask  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from mtlclassic.features import ImageFeatures  # noqa: E402
from mtlclassic.multitask import (MultiTaskClassifier, MultiTaskClassifierCV,  # noqa: E402
                                  MultiTaskRegressor, MultiTaskRegressorCV)

LIMIT = 64 * 2**20  # bytes of managed memory per worker


@pytest.fixture(scope="module")
def client():
    # in-process workers (fast to start on 2 cores); their memory limit applies to the data
    # they hold (spilled to disk beyond 80 %); the process-wide thresholds (spill/pause
    # on the RSS of the whole test process) are off, since workers share that process
    with dask.config.set({"distributed.worker.memory.target": 0.8,
                          "distributed.worker.memory.spill": False,
                          "distributed.worker.memory.pause": False,
                          "distributed.worker.memory.terminate": False}):
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                      memory_limit=LIMIT, dashboard_address=":0") as cluster, \
                distributed.Client(cluster) as c:
            yield c


def _data(n=300, d=5, T=3, seed=0, missing=0.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) + 1.0  # a mean: the intercepts and centring matter
    W = rng.standard_normal((d, T))
    W[:, 1] = W[:, 0] + 0.3 * rng.standard_normal(d)  # related tasks
    Y = X @ W + 0.5 * rng.standard_normal((n, T))
    if missing:
        Y[rng.random((n, T)) < missing] = np.nan
    return X, Y


def _lazy(A, rows=(110, 110, 70, 10)):
    """An uneven row chunking (the last block small)."""
    rows = tuple(rows[:-1]) + (A.shape[0] - sum(rows[:-1]),)
    return da.from_array(A, chunks=(rows,) + A.shape[1:])


def _check_same(a, b):
    """b (dask) reaches a's (in memory) optimum to the tolerance: both certify objective -
    min F <= tol * scale, so their objectives differ by at most that (plus rounding)."""
    scale = a._null_scale_
    tol = a.tol
    assert abs(a.objective_ - b.objective_) <= 2 * tol * scale + 1e-12 * abs(a.objective_)
    if np.isfinite(a.dual_gap_):
        assert b.dual_gap_ <= tol * scale * (1 + 1e-9)
    np.testing.assert_allclose(b.coef_, a.coef_, atol=5e-3 * max(1.0, np.abs(a.coef_).max()))
    np.testing.assert_allclose(b.intercept_, a.intercept_, atol=5e-3 * max(1.0, np.abs(
        a.intercept_).max()))
    # l21 in memory takes the working-set BCD solver, which needs X's columns on one
    # machine; on dask arrays it is FISTA (the same certified objective)
    assert b.solver_ == (a.solver_ if a.solver_ != "bcd" else "fista")


@pytest.mark.parametrize("penalty", ["ridge", "mean", "graph", "l21", "trace", "mtrl"])
@pytest.mark.parametrize("missing", [0.0, 0.25])
def test_regressor_equals_in_memory(client, penalty, missing):
    X, Y = _data(missing=missing)
    kw = dict(penalty=penalty, alpha=0.05, tol=1e-5)
    a = MultiTaskRegressor(**kw).fit(X, Y)
    b = MultiTaskRegressor(**kw).fit(_lazy(X), _lazy(Y))  # NaN labels inside the Y chunks
    _check_same(a, b)
    if penalty == "graph":  # the "auto" relation from sums over the blocks
        np.testing.assert_allclose(b.task_relation_, a.task_relation_, atol=1e-10)
    pred = b.predict(_lazy(X))
    assert isinstance(pred, da.Array)
    np.testing.assert_allclose(pred.compute(), b.predict(X), rtol=1e-12, atol=1e-12)


def _labels(missing=0.2, seed=1):
    X, Y = _data(seed=seed)
    rng = np.random.default_rng(seed)
    Yc = np.empty(Y.shape, dtype=object)
    Yc[:, 0] = np.where(Y[:, 0] > np.median(Y[:, 0]), "yes", "no")
    Yc[:, 1] = (Y[:, 1] > np.median(Y[:, 1])).astype(int)
    Yc[:, 2] = np.digitize(Y[:, 2], np.percentile(Y[:, 2], [30, 65]))  # 3 classes
    Yc[rng.random(Y.shape) < missing] = None
    return X, Yc


@pytest.mark.parametrize("loss,penalty", [("logistic", "ridge"), ("logistic", "mean"),
                                          ("logistic", "graph"), ("logistic", "l21"),
                                          ("logistic", "trace"), ("logistic", "mtrl"),
                                          ("multinomial", "ridge"), ("multinomial", "l21"),
                                          ("multinomial", "mtrl")])
def test_classifier_equals_in_memory(client, loss, penalty):
    X, Yc = _labels()
    # tol 1e-6: at 1e-4 two certified fits may differ by more than _check_same's 5e-3 in
    # the coefficients (graph: the in-memory L-BFGS in Q's eigenbasis and the Dask fit's
    # stopped 0.011 apart, both within the certificate's radius sqrt(2 gap / mu) ~ 0.1)
    kw = dict(penalty=penalty, alpha=0.05, tol=1e-6, loss=loss)
    a = MultiTaskClassifier(**kw).fit(X, Yc)
    b = MultiTaskClassifier(**kw).fit(_lazy(X), _lazy(Yc))  # object labels, None missing
    _check_same(a, b)
    for ca, cb in zip(a.classes_, b.classes_):
        np.testing.assert_array_equal(ca, cb)
    pred = b.predict(_lazy(X))
    assert isinstance(pred, da.Array)
    np.testing.assert_array_equal(pred.compute(), b.predict(X))


def test_weights_and_intercept_scaling(client):
    X, Y = _data(missing=0.2, seed=3)
    rng = np.random.default_rng(3)
    sw = rng.uniform(0.2, 2.0, len(X))
    SW = rng.uniform(0.2, 2.0, Y.shape)
    for kw, w in [(dict(penalty="ridge", task_weight="size"), sw),
                  (dict(penalty="graph", task_relation=None), SW),
                  (dict(penalty="mean", intercept_scaling=2.0), sw)]:
        kw.update(alpha=0.05, tol=1e-5)
        a = MultiTaskRegressor(**kw).fit(X, Y, sample_weight=w)
        b = MultiTaskRegressor(**kw).fit(_lazy(X), _lazy(Y), sample_weight=_lazy(w))
        _check_same(a, b)
    X, Yc = _labels(seed=4)
    # tol 1e-6, as in test_classifier_equals_in_memory: _check_same's 5e-3 on the
    # coefficients is not implied by a certificate at 1e-4
    kw = dict(penalty="graph", alpha=0.02, tol=1e-6, class_weight="balanced")
    a = MultiTaskClassifier(**kw).fit(X, Yc, sample_weight=sw)
    b = MultiTaskClassifier(**kw).fit(_lazy(X), _lazy(Yc), sample_weight=sw)
    _check_same(a, b)


def test_gram_path_weighted_full_labels(client):
    """Squared loss, every label present, n >= d: FISTA on the Gram moments summed over
    the blocks (two passes over the data, none per iteration)."""
    X, Y = _data(seed=5)
    sw = np.random.default_rng(5).uniform(0.5, 1.5, len(X))
    kw = dict(penalty="l21", alpha=0.05, tol=1e-6)
    a = MultiTaskRegressor(**kw).fit(X, Y, sample_weight=sw)
    b = MultiTaskRegressor(**kw).fit(_lazy(X), _lazy(Y), sample_weight=_lazy(sw))
    _check_same(a, b)


def test_one_chunk_and_column_chunks(client):
    X, Y = _data(missing=0.2, seed=6)
    kw = dict(penalty="mean", alpha=0.05, tol=1e-5)
    a = MultiTaskRegressor(**kw).fit(X, Y)
    one = MultiTaskRegressor(**kw).fit(da.from_array(X, chunks=X.shape), Y)  # numpy Y
    _check_same(a, one)
    with pytest.warns(UserWarning, match="rechunked"):
        cols = MultiTaskRegressor(**kw).fit(da.from_array(X, chunks=(100, 2)), _lazy(Y))
    _check_same(a, cols)


def test_bad_inputs(client):
    X, Y = _data()
    Xd = _lazy(X)
    with pytest.raises(ValueError, match="different numbers of samples"):
        MultiTaskRegressor().fit(Xd, Y[:-1])
    with pytest.raises(ValueError, match="sample_weight must have shape"):
        MultiTaskRegressor().fit(Xd, Y, sample_weight=np.ones(5))
    with pytest.raises(ValueError, match="NaN or infinity"):
        MultiTaskRegressor().fit(da.where(Xd > 2.5, np.nan, Xd), Y)
    Yn = Y.copy()
    Yn[:, 1] = np.nan
    with pytest.raises(ValueError, match="task 1 has no labelled sample"):
        MultiTaskRegressor().fit(Xd, _lazy(Yn))
    with pytest.raises(ValueError, match="continuous"):
        MultiTaskClassifier().fit(Xd, _lazy(Y))
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        MultiTaskRegressor().fit(Xd[Xd[:, 0] > -10], Y)
    Yd = _lazy(Y)
    with pytest.raises(ValueError, match="y: a dask array of unknown chunk sizes"):
        MultiTaskRegressor().fit(Xd, Yd[Yd[:, 0] > -1e9])  # was "300 and nan" samples
    with pytest.raises(ValueError, match="has no task"):  # was an IndexError on a worker
        MultiTaskRegressor().fit(Xd, da.from_array(Y[:, :0], chunks=(100, -1)))
    with pytest.raises(ValueError, match="has no task"):
        MultiTaskClassifier().fit(Xd, Y[:, :0] > 0)
    Ys = Y.astype(object)
    Ys[5, 1] = "far"
    for y in (Ys, da.from_array(Ys, chunks=(100, -1))):  # was numpy's bare message
        with pytest.raises(ValueError, match="regression targets must be real numbers"):
            MultiTaskRegressor().fit(Xd, y)
    with pytest.raises(ValueError, match="regression targets must be real numbers"):
        MultiTaskRegressor().fit(X, Ys)
    with pytest.raises(TypeError, match="sparse chunks"):  # was numpy's isfinite TypeError
        MultiTaskRegressor().fit(Xd.map_blocks(sp.csr_matrix), Y)


def _worker_bytes(c):
    """Bytes each worker holds in memory (its managed data, not what it spilled)."""
    def held(dask_worker):
        data = dask_worker.data
        fast = getattr(data, "fast", data)
        from dask.sizeof import sizeof

        return sum(sizeof(v) for v in fast.values())

    return list(c.run(held).values())


def test_data_larger_than_a_worker(client):
    """80 MB of X with a 64 MiB limit per worker: the blocks are split over the two
    workers, never gathered in one, and the fit equals the in-memory one."""
    n, d = 40_000, 250
    X = da.random.RandomState(0).standard_normal((n, d), chunks=(5_000, d))
    Y = X[:, :3] @ np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, -1.0]]) \
        + 0.5 * da.random.RandomState(1).standard_normal((n, 3), chunks=(5_000, 3))
    Y = da.where(da.random.RandomState(2).random_sample((n, 3), chunks=(5_000, 3)) < 0.1,
                 np.nan, Y)  # missing labels: L-BFGS with a pass per iteration
    X, Y = client.persist([X, Y])
    distributed.wait([X, Y])
    held = _worker_bytes(client)
    assert X.nbytes > LIMIT and max(held) < LIMIT, held
    kw = dict(penalty="ridge", alpha=0.05, tol=1e-4)
    b = MultiTaskRegressor(**kw).fit(X, Y)
    assert max(_worker_bytes(client)) < LIMIT
    a = MultiTaskRegressor(**kw).fit(X.compute(), Y.compute())
    _check_same(a, b)


def test_lazy_features_pipeline(client, monkeypatch):
    """ImageFeatures keeps a dask input lazy; features -> lazy scaler -> estimator runs
    with no dask array turned into a NumPy one on the client."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(7)
    imgs = rng.integers(0, 256, (60, 32, 32, 3), dtype=np.uint8)
    imgs[:30, 8:24, 8:24] //= 3  # a darker square: something to learn
    y = np.array([0] * 30 + [1] * 30)
    lazy = da.from_array(imgs, chunks=(25, 32, 32, 3))
    F = ImageFeatures().fit(lazy).transform(lazy)
    assert isinstance(F, da.Array) and F.shape[0] == 60
    np.testing.assert_allclose(F.compute(), ImageFeatures().fit_transform(imgs))
    try:
        from dask_ml.preprocessing import StandardScaler as LazyScaler
    except ImportError:  # the documented alternative: a mean / std of the dask array
        LazyScaler = None
    model = dict(penalty="ridge", alpha=0.05, tol=1e-6)
    ref = make_pipeline(ImageFeatures(), StandardScaler(), MultiTaskClassifier(**model))
    ref.fit(imgs, y)

    def refuse(self, *a, **k):
        raise AssertionError("a dask array was materialised on the client")

    monkeypatch.setattr(da.Array, "__array__", refuse)
    if LazyScaler is not None:
        pipe = make_pipeline(ImageFeatures(), LazyScaler(), MultiTaskClassifier(**model))
        pipe.fit(lazy, y)
        est = pipe[-1]
    else:
        F = ImageFeatures().fit(lazy).transform(lazy)
        F = (F - F.mean(axis=0)) / da.where(F.std(axis=0) > 0, F.std(axis=0), 1.0)
        est = MultiTaskClassifier(**model).fit(F, y)
    monkeypatch.undo()
    np.testing.assert_allclose(est.coef_, ref[-1].coef_, atol=1e-3)


@pytest.mark.parametrize("scoring", [None, "neg_mean_squared_error"])
def test_cv_estimators(client, monkeypatch, scoring):
    """The CV estimators on dask arrays: the same fold scores as in memory, computed on the
    cluster (the held-out entries weighted 1 in score_sums): no fold's predictions come to
    the client (the in-memory scorer is never called)."""
    calls = []

    def no_gather(cls):
        orig = cls._heldout_score
        monkeypatch.setattr(cls, "_heldout_score",
                            staticmethod(lambda *a: calls.append(1) or orig(*a)))

    no_gather(MultiTaskRegressorCV), no_gather(MultiTaskClassifierCV)
    X, Y = _data(missing=0.2, seed=8)
    kw = dict(penalty="graph", alphas=2, cv=2, tol=1e-5, scoring=scoring)
    a = MultiTaskRegressorCV(**kw).fit(X, Y)
    n_mem = len(calls)
    targets = []  # the fold fits' targets: made on the workers (dask), not sent from here
    orig_fit = MultiTaskRegressor.fit
    monkeypatch.setattr(MultiTaskRegressor, "fit", lambda self, X, y, **k: targets.append(
        type(y).__module__.split(".")[0]) or orig_fit(self, X, y, **k))
    b = MultiTaskRegressorCV(**kw).fit(_lazy(X), _lazy(Y))
    monkeypatch.setattr(MultiTaskRegressor, "fit", orig_fit)
    assert targets[:4] == ["dask"] * 4  # 2 folds x 2 alphas (then the refit)
    assert n_mem == 4 and len(calls) == n_mem
    assert a.alpha_ == pytest.approx(b.alpha_, rel=1e-6)
    np.testing.assert_allclose(b.cv_results_["fold_scores"], a.cv_results_["fold_scores"],
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(b.coef_, a.coef_, atol=5e-3)
    X, Yc = _labels(seed=9)
    # tol 1e-10: two fits certified to tol are only as close as the certificate's radius
    # sqrt(2 gap / alpha) (1.3 at tol 1e-4 and the chosen alpha 3e-4; 1e-3 at 1e-10),
    # whatever path each solver takes (the in-memory ridge fit runs per-column L-BFGS)
    kw = dict(penalty="ridge", alphas=2, cv=2, tol=1e-10,
              scoring=None if scoring is None else "pooled_accuracy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = MultiTaskClassifierCV(**kw).fit(X, Yc)
        b = MultiTaskClassifierCV(**kw).fit(_lazy(X), Yc)
    assert len(calls) == n_mem + 4
    assert a.alpha_ == pytest.approx(b.alpha_, rel=1e-6)
    np.testing.assert_allclose(b.cv_results_["fold_scores"], a.cv_results_["fold_scores"],
                               atol=1e-12)
    np.testing.assert_allclose(b.coef_, a.coef_, atol=5e-3)


def test_float32_blocks(client):
    """float32 X stays float32 on the workers (float32 products, tol >= 1e-6): the
    objective of the float64 in-memory fit to that tolerance."""
    X, Y = _data(missing=0.25, seed=10)
    kw = dict(penalty="l21", alpha=0.05, tol=1e-6)
    a = MultiTaskRegressor(**kw).fit(X, Y)
    b = MultiTaskRegressor(**kw).fit(_lazy(X.astype(np.float32)), _lazy(Y))
    assert b.dual_gap_ <= 1e-6 * b._null_scale_ * (1 + 1e-9)
    assert abs(a.objective_ - b.objective_) <= 4e-6 * a._null_scale_
    np.testing.assert_allclose(b.coef_, a.coef_, atol=1e-3)


@pytest.mark.parametrize("penalty", ["l21", "trace"])
def test_float32_blocks_tight_tol_iterations(client, penalty):
    """float32 X at tol 1e-6: the products accumulate in float64 on the workers (float32
    ones put ~1e-7 relative error on the loss: FISTA took 4x the in-memory iterations,
    455 against 105 for l21 here), so the fit takes the in-memory fit's iterations."""
    X, Yc = _labels()
    X32 = X.astype(np.float32)
    kw = dict(penalty=penalty, alpha=0.01, tol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        a = MultiTaskClassifier(**kw).fit(X32, Yc)
        b = MultiTaskClassifier(**kw).fit(_lazy(X32), Yc)
    assert b.n_iter_ <= 1.25 * a.n_iter_ + 5
    assert b.dual_gap_ <= 1e-6 * b._null_scale_ * (1 + 1e-9)
    assert abs(a.objective_ - b.objective_) <= 2e-6 * a._null_scale_


def test_overflow_across_blocks_refused(client):
    """Review: each block's squared targets (or weights) summed finite, their total did
    not: the dask fit returned an infinite objective (and for weights an unnamed error)
    where the in-memory fit refuses the input naming it."""
    rng = np.random.default_rng(4)
    X = rng.standard_normal((300, 3))
    y = 1.2e153 * np.sign(rng.standard_normal(300))
    with pytest.raises(ValueError, match="squared loss of these targets overflows"):
        MultiTaskRegressor(penalty="ridge").fit(X, y)
    with pytest.raises(ValueError, match="squared loss of these targets overflows"):
        MultiTaskRegressor(penalty="ridge").fit(_lazy(X), _lazy(y))
    Y = rng.standard_normal((300, 2))
    sw = np.full(300, 1e306)
    with pytest.raises(ValueError, match="sample_weight sums to infinity"):
        MultiTaskRegressor(penalty="ridge").fit(_lazy(X), _lazy(Y), sample_weight=_lazy(sw))


def test_precise_products_of_float32_blocks():
    """_mm on float32 blocks: float32 BLAS products, or (``_PRECISE``) float64 ones slab by
    slab, equal to the float64 product to rounding, for both orientations and 1-D B."""
    from mtlclassic.multitask import _dask

    rng = np.random.default_rng(3)
    X = rng.standard_normal((1000, 300)).astype(np.float32)  # several slabs of 436 rows
    X64 = X.astype(np.float64)
    W, G, w = rng.standard_normal((300, 3)), rng.standard_normal((1000, 3)), rng.random(1000)
    for precise in (False, True):
        got = [_dask._call(_dask._mm, precise, A, B) for A, B in
               ((X, W), (X.T, G), (X.T, w))]
        want = [X64 @ W, X64.T @ G, X64.T @ w]
        for g, r in zip(got, want):
            assert g.dtype == np.float64 and g.shape == r.shape
            err = np.abs(g - r).max() / np.abs(r).max()
            assert err < (1e-13 if precise else 1e-5)
            if not precise:
                assert err > 1e-12  # float32 accumulation, for contrast
    assert not _dask._PRECISE.get()  # reset after each call


def test_step_rule_on_blocks(client, monkeypatch):
    """The debug check of FISTA's steps (exact Lipschitz constants summed over the
    blocks): no accepted step above 2 / L, for squared and logistic loss."""
    from mtlclassic.multitask import _solver

    monkeypatch.setattr(_solver, "CHECK_STEPS", True)
    oracles, fista = [], _solver.fista

    def spy(oracle, *args, **kw):
        oracles.append(oracle)
        return fista(oracle, *args, **kw)

    monkeypatch.setattr(_solver, "fista", spy)
    X, Y = _data(missing=0.25, seed=11)
    b = MultiTaskRegressor(penalty="l21", alpha=0.05, tol=1e-5).fit(_lazy(X), _lazy(Y))
    # in memory, FISTA too (l21's default there is the working-set solver)
    a = MultiTaskRegressor(penalty="l21", alpha=0.05, tol=1e-5, solver="fista").fit(X, Y)
    _check_same(a, b)
    # the constant the steps were checked against is the in-memory one
    assert oracles[0].exact_lipschitz() == pytest.approx(oracles[1].exact_lipschitz(),
                                                         rel=1e-10)
    X, Yc = _labels(seed=12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter: a few checked steps are enough
        MultiTaskClassifier(penalty="l21", alpha=0.05, max_iter=4).fit(_lazy(X), _lazy(Yc))


@pytest.mark.parametrize("kind", ["squared", "logistic"])
def test_one_round_trip_per_iteration(client, monkeypatch, kind):
    """FISTA on the blocks gathers once per accepted step (the candidate's loss and the
    next extrapolated point's loss and gradient together), plus the duality-gap checks
    (every 5th iteration: one gather for squared loss, two for logistic, whose conjugate
    at the shrunk dual scale needs a pass) and, for logistic, 3 power rounds per local
    Lipschitz refresh (every 20th); the iterates are those of the unfused evaluation."""
    from mtlclassic.multitask import _dask, _solver

    trips, start, fista = [], [], _solver.fista
    reduce_many = _dask.DaskData.reduce_many

    def counted(self, lists, *args, **kw):
        trips.append(len(lists))
        return reduce_many(self, lists, *args, **kw)

    def spy(*args, **kw):
        start.append(len(trips))
        return fista(*args, **kw)

    monkeypatch.setattr(_dask.DaskData, "reduce_many", counted)
    monkeypatch.setattr(_solver, "fista", spy)
    monkeypatch.setattr(_dask.DaskOracle, "task_gram_max_entries", 0)  # FISTA on the blocks
    if kind == "squared":
        X, Y = _data(n=600, d=40, missing=0.2, seed=3)
        X[:, 1] = X[:, 0] + 0.05 * X[:, 1]  # ill-conditioned: many iterations
        est = MultiTaskRegressor(penalty="l21", alpha=0.02, tol=1e-9, max_iter=5000)
        per_check = 1
    else:
        X, Y = _labels(seed=4)
        est = MultiTaskClassifier(penalty="l21", alpha=0.01, tol=1e-6, max_iter=5000)
        per_check = 2
    fitted = est.fit(_lazy(X), _lazy(Y))
    it = fitted.n_iter_
    assert it >= 40  # long enough for the per-iteration count to show
    in_fista = len(trips) - start[0]
    budget = it + per_check * (it // 5 + 2) + (3 * (it // 20) if kind != "squared" else 0)
    assert in_fista <= budget + 0.1 * it  # a few rejected steps: one gather each
    assert max(trips) == 2  # the candidate and the speculative extrapolated point
    # without the speculation: the same iterates, about twice the gathers
    trips.clear(), start.clear()
    monkeypatch.setattr(_dask.DaskOracle, "speculate", False)
    plain = type(est)(**est.get_params()).fit(_lazy(X), _lazy(Y))
    assert plain.n_iter_ == it
    np.testing.assert_allclose(plain.coef_, fitted.coef_, rtol=0, atol=1e-12)
    assert len(trips) - start[0] > in_fista + 0.8 * it


# ------------------------------------------------- MultiTaskEstimator (mixed task types)
@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_lipschitz_bound_in_one_pass(client, monkeypatch, loss):
    """With d <= gram_max_d the global bound 1.05 lambda_max([X_c 1]^T diag(max_t A_t)
    [X_c 1]) (times the curvature bound) + lambda_max(Q) comes from one pass (the matrix
    summed over the blocks), with the exact local constants at FISTA's start: the setup
    before FISTA gathers at most 8 times (input statistics included) where the power
    iteration took 40 rounds more. Above the limit, the power iteration: never above the
    exact value, close to it."""
    from mtlclassic.multitask import _dask, _solver

    trips, seen, fista = [], [], _solver.fista
    reduce_many = _dask.DaskData.reduce_many

    def counted(self, lists, *args, **kw):
        trips.append(len(lists))
        return reduce_many(self, lists, *args, **kw)

    def spy(oracle, *args, **kw):
        seen.append((oracle, kw["lipschitz_cap"], len(trips)))
        return fista(oracle, *args, **kw)

    monkeypatch.setattr(_dask.DaskData, "reduce_many", counted)
    monkeypatch.setattr(_solver, "fista", spy)
    monkeypatch.setattr(_dask.DaskOracle, "task_gram_max_entries", 0)  # FISTA on the blocks
    if loss == "squared":
        X, Y = _data(n=300, d=8, missing=0.3, seed=21)
        Est, curv = MultiTaskRegressor, 1.0
    else:
        X, Y = _labels(seed=22)
        Est, curv = MultiTaskClassifier, 0.25
    kw = dict(penalty="l21", alpha=0.05, max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter: only the setup matters here
        Est(**kw).fit(_lazy(X), _lazy(Y))
        monkeypatch.setattr(_dask.DaskOracle, "gram_max_d", 0)  # the power iteration
        Est(**kw).fit(_lazy(X), _lazy(Y))
        # X of 1e80: the vectors' squares overflowed and the estimate was 0 (as in memory)
        Est(**kw).fit(_lazy(X * 1e80), _lazy(Y))
    (oracle, cap, setup), (_, power_cap, power_setup), (_, huge_cap, _) = seen
    assert huge_cap == pytest.approx(power_cap * 1e160, rel=1e-3)
    assert setup <= 8 and power_setup >= setup + 39
    # the bound computed densely from the blocks' weights (float64 data: exact to rounding)
    blocks = client.gather(oracle.data.blocks)
    Xc = np.concatenate([np.asarray(b["X"]) for b in blocks]) - oracle.m
    w = np.concatenate([np.asarray(b["A"]).max(axis=1) for b in blocks])
    M = np.column_stack([Xc, np.ones(len(Xc))])
    H = (M.T * w) @ M
    exact = curv * 1.05 * np.linalg.eigvalsh(H).max() + _solver._qmax(oracle.Q)
    assert cap == pytest.approx(exact, rel=1e-10)
    assert power_cap <= cap * (1 + 1e-12) and power_cap == pytest.approx(cap, rel=1e-3)
    # the local constant at the start (exact here: a few columns) is at most the global
    assert oracle.local_lipschitz(oracle.linear(np.zeros((X.shape[1], oracle.data.n_sub)),
                                                np.zeros(oracle.data.n_sub))) <= cap


@pytest.mark.parametrize("penalty", ["l21", "graph"])
def test_missing_labels_squared_in_per_task_gram_form(client, monkeypatch, penalty):
    """Squared loss with missing labels on the blocks: the per-task Gram matrices summed
    in two passes (means, then centred moments), then FISTA (l21) or the exact solve
    (graph) on the client with no pass; the in-memory fit's objective, and the
    blocks-path fit's."""
    from mtlclassic.multitask import _dask, _solver

    trips, seen = [], []
    reduce_many = _dask.DaskData.reduce_many
    fista, lbfgs = _solver.fista, _solver.lbfgs

    def counted(self, lists, *args, **kw):
        trips.append(len(lists))
        return reduce_many(self, lists, *args, **kw)

    def spy(solver):
        def run(oracle, *args, **kw):
            seen.append((type(oracle).__name__, len(trips)))
            out = solver(oracle, *args, **kw)
            seen.append((None, len(trips)))
            return out
        return run

    monkeypatch.setattr(_dask.DaskData, "reduce_many", counted)
    monkeypatch.setattr(_solver, "fista", spy(fista))
    monkeypatch.setattr(_solver, "lbfgs", spy(lbfgs))
    monkeypatch.setattr(_solver, "smooth_task_gram", spy(_solver.smooth_task_gram))
    X, Y = _data(n=400, d=6, T=4, missing=0.3, seed=23)
    sw = np.random.default_rng(23).uniform(0.5, 2.0, len(X))
    kw = dict(penalty=penalty, alpha=0.05, tol=1e-9, max_iter=20000)
    a = MultiTaskRegressor(**kw).fit(X, Y, sample_weight=sw)
    seen.clear()
    b = MultiTaskRegressor(**kw).fit(_lazy(X), _lazy(Y), sample_weight=_lazy(sw))
    (name, start), (_, end) = seen[-2:]
    assert name == "TaskGramOracle" and end == start  # no gather inside the solver
    _check_same(a, b)
    np.testing.assert_allclose(b.intercept_, a.intercept_, atol=1e-4)
    monkeypatch.setattr(_dask.DaskOracle, "task_gram_max_entries", 0)
    c = MultiTaskRegressor(**kw).fit(_lazy(X), _lazy(Y), sample_weight=_lazy(sw))
    assert seen[-2][0] == "DaskOracle"
    _check_same(a, c)


def test_cv_unknown_chunk_sizes_named(client):
    """A dask X of unknown chunk sizes: the CV estimators name the remedy, as fit does."""
    X, Y = _data(seed=25)
    Xu = _lazy(X).map_blocks(lambda b: b, chunks=((np.nan,) * 4, (X.shape[1],)))
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        MultiTaskRegressorCV(penalty="ridge", alphas=2, cv=2).fit(Xu, Y)


def test_chunks_held_once(client, monkeypatch):
    """Once the blocks are built, the workers hold X once: the computed chunks' own futures
    are released (they had doubled what the workers count, spill and write to disk)."""
    import time

    from dask.sizeof import sizeof

    from mtlclassic.multitask import _dask

    rng = da.random.default_rng(24)  # chunks computed on the workers (not views)
    X = rng.standard_normal((2000, 50), chunks=(500, 50))
    Y = X[:, :3] + rng.standard_normal((2000, 3), chunks=(500, 3))
    held, relation = [], _dask.relation

    def worker_bytes():  # the workers' own count of the data they hold (in-process)
        return sum(sizeof(v) for w in client.cluster.workers.values()
                   for v in w.data.values())

    def spy(est, pen, data, *args):
        distributed.wait(data.blocks)
        for _ in range(30):  # released futures leave the workers a moment later
            held.append(worker_bytes())
            if held[-1] < 1.5 * X.nbytes:
                break
            time.sleep(0.1)
        return relation(est, pen, data, *args)

    monkeypatch.setattr(_dask, "relation", spy)
    MultiTaskRegressor(penalty="l21", alpha=0.05).fit(X, Y)
    # X (800 kB) plus Y and A (a fraction of it); twice X before the fix
    assert X.nbytes <= held[-1] < 1.5 * X.nbytes


def _mixed(n=240, d=5, seed=13, missing=0.15):
    """Three regression columns (pixel-like scale) and two classification columns (the
    last 3-class), related through a shared signal; NaN = unlabelled."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) + 1.0
    W = rng.standard_normal((d, 1)) + 0.5 * rng.standard_normal((d, 5))
    Z = X @ W
    reg = 40.0 * (Z[:, :3] + 0.3 * rng.standard_normal((n, 3))) + 100.0
    z3 = Z[:, 3] + 0.5 * rng.standard_normal(n)
    c3 = (z3 > np.median(z3)).astype(float)
    c4 = np.digitize(Z[:, 4], np.quantile(Z[:, 4], [1 / 3, 2 / 3])).astype(float)
    Y = np.column_stack([reg, c3, c4])
    Y[rng.random(Y.shape) < missing] = np.nan
    return X, Y


def _check_mixed(a, b):
    _check_same(a, b)
    assert b.task_types_ == a.task_types_
    np.testing.assert_allclose(b.target_scale_, a.target_scale_, rtol=1e-12)
    for ca, cb in zip(a.classes_, b.classes_):
        assert (ca is None) == (cb is None)
        if ca is not None:
            np.testing.assert_array_equal(ca, cb)
    np.testing.assert_array_equal(b.subtask_task_, a.subtask_task_)


@pytest.mark.parametrize("penalty,loss", [("ridge", "logistic"), ("l21", "multinomial"),
                                          ("graph", "logistic")])
def test_mixed_estimator_equals_in_memory(client, penalty, loss):
    """Regression and classification tasks in one model on the blocks (the grouped loss
    with squared columns, the mixed dual point and curvature): the in-memory optimum,
    task types found by "auto" from block counts, std scaling from block moments."""
    from mtlclassic.multitask import MultiTaskEstimator

    X, Y = _mixed()
    # the smooth penalties at 1e-6: two fits certified at 1e-4 may stop at points whose
    # coefficients differ by more than _check_same's 5e-3 (graph: 0.27 of 45)
    kw = dict(penalty=penalty, alpha=0.05, tol=1e-4 if penalty == "l21" else 1e-6, loss=loss)
    a = MultiTaskEstimator(**kw).fit(X, Y)
    b = MultiTaskEstimator(**kw).fit(_lazy(X), _lazy(Y))  # NaN labels inside the chunks
    assert a.task_types_ == ["regression"] * 3 + ["classification"] * 2
    _check_mixed(a, b)
    if penalty == "graph":  # the "auto" relation from sums over the blocks
        np.testing.assert_allclose(b.task_relation_, a.task_relation_, atol=1e-10)


def test_mixed_estimator_weights_one_chunk_and_labels(client):
    """Per-entry sample weights (dask), balanced class weights, string labels in an
    object Y, explicit task types, one chunk; columns chunked are rechunked."""
    from mtlclassic.multitask import MultiTaskEstimator

    X, Y = _mixed(seed=14, missing=0.1)
    rng = np.random.default_rng(14)
    SW = rng.uniform(0.3, 2.0, Y.shape)
    SW[rng.random(Y.shape) < 0.05] = 0.0  # zero weight: an unlabelled entry
    Yo = Y.astype(object)
    Yo[:, 3] = np.where(np.isnan(Y[:, 3]), None, np.where(Y[:, 3] > 0, "smile", "none"))
    types = ["regression"] * 3 + ["classification"] * 2
    kw = dict(penalty="mean", alpha=0.05, tol=1e-5, class_weight="balanced",
              task_types=types, task_weight=[1.0, 2.0, 0.5, 1.0, 1.5])
    a = MultiTaskEstimator(**kw).fit(X, Yo, sample_weight=SW)
    b = MultiTaskEstimator(**kw).fit(da.from_array(X, chunks=X.shape), _lazy(Yo),
                                     sample_weight=_lazy(SW))
    _check_mixed(a, b)
    # one sample weight per row, no scaling, every task a regression task (the Gram path)
    sw = SW[:, 0] + 0.1
    kw = dict(penalty="graph", alpha=0.05, tol=1e-6, scale_targets=False,
              task_types=["regression"] * 3)
    a = MultiTaskEstimator(**kw).fit(X, np.nan_to_num(Y[:, :3], nan=100.0), sample_weight=sw)
    with pytest.warns(UserWarning, match="rechunked"):
        b = MultiTaskEstimator(**kw).fit(da.from_array(X, chunks=(100, 2)),
                                         np.nan_to_num(Y[:, :3], nan=100.0), sample_weight=sw)
    _check_mixed(a, b)


def test_mixed_auto_types_from_block_counts():
    """task_types="auto" on the blocks: the counts of each block (_blk_types) summed
    decide as scikit-learn's type_of_target on the gathered column (infer_task_type)."""
    from mtlclassic.multitask import _dask, _labels
    from mtlclassic.multitask._mixed import infer_task_type

    n = 60
    rng = np.random.default_rng(15)
    cols = {
        "floats": rng.standard_normal(n),
        "integer floats": rng.integers(0, 5, n).astype(float),
        "one non-integer late": np.r_[np.zeros(n - 1), 0.5],
        "ints": rng.integers(0, 3, n),
        "bools": rng.random(n) > 0.5,
        "strings": np.array(["a", "b"] * (n // 2), dtype=object),
        "object floats": np.array(list(rng.standard_normal(n)), dtype=object),
        "object ints": np.array([int(v) for v in rng.integers(0, 3, n)], dtype=object),
        "non-integer and inf": np.r_[rng.standard_normal(n - 1), np.inf],
        "object numbers then a string": np.array(list(rng.standard_normal(n - 1)) + ["x"],
                                                 dtype=object),
        "object bools": np.array([bool(v) for v in rng.random(n) > 0.5], dtype=object),
    }
    for name, col in cols.items():
        col = col.astype(object) if name.startswith("object") else col
        values = np.array(col)
        values[n // 3] = np.nan if values.dtype.kind == "f" else values[n // 3]  # unlabelled
        Yb = values[:, None]
        parts = [_dask._blk_types(Yb[s], None, None) for s in (slice(0, 25), slice(25, 25),
                                                                 slice(25, n))]
        total = _dask._sum_parts(None, *parts)
        miss = _labels.missing_mask(Yb)[:, 0]
        try:
            ref = infer_task_type(values[~miss])
        except (TypeError, ValueError):
            ref = "classification"
        got = "regression" if _labels.continuous_from_counts(
            {k: v[0] for k, v in total.items()}) else "classification"
        assert got == ref, name


def test_mixed_estimator_bad_inputs(client):
    from mtlclassic.multitask import MultiTaskEstimator

    X, Y = _mixed(n=120)
    Xd = _lazy(X, rows=(50, 50, 20))
    with pytest.raises(ValueError, match="task_types has 1 entries but y has 5"):
        MultiTaskEstimator(task_types=["regression"]).fit(Xd, Y)
    Yo = Y.astype(object)
    Yo[:5, 0] = "far"
    with pytest.raises(ValueError, match="the regression tasks .*real numbers"):
        MultiTaskEstimator(task_types=["regression"] * 3 + ["classification"] * 2).fit(
            Xd, _lazy(Yo, rows=(50, 50, 20)))
    Y1 = Y.copy()
    Y1[:, 3] = 1.0
    with pytest.raises(ValueError, match="task 3 has only one class"):
        MultiTaskEstimator().fit(Xd, Y1)
    with pytest.raises(ValueError, match="class_weight\\[0\\]: task 0 is a regression"):
        MultiTaskEstimator(class_weight=[{1.0: 2.0}] + [None] * 4).fit(Xd, Y)
    with pytest.raises(ValueError, match="different numbers of samples"):
        MultiTaskEstimator().fit(Xd, Y[:-1])
    y_pix = np.round(X[:, 0] * 30 + 100)  # integer-valued: classification, with a warning
    with pytest.warns(UserWarning, match="task_types"):
        est = MultiTaskEstimator(penalty="ridge", max_iter=5).fit(Xd, y_pix)
    assert est.task_types_ == ["classification"]


# ------------------------------------------------------------- lazy predictions
def test_lazy_predictions_never_gather_X(client, monkeypatch):
    """predict / decision_function / predict_proba on a dask X return lazy dask arrays
    (their in-memory formats: per-task lists, the classes' dtype), computed block by
    block on the workers; score computes only the (n, T) predictions. X is never turned
    into a NumPy array on the client (``__array__`` refused), nothing runs before
    ``compute`` (no task on the cluster), and the results keep X's row chunks."""
    from mtlclassic.multitask import MultiTaskEstimator

    X, Y = _mixed(n=200, seed=16, missing=0.1)
    Yo = Y.astype(object)
    Yo[:, 3] = np.where(np.isnan(Y[:, 3]), None, np.where(Y[:, 3] > 0, "yes", "no"))
    Yc = np.where(np.isnan(Y[:, 3:]), 0.0, Y[:, 3:])
    kw = dict(penalty="ridge", alpha=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models = [
            (MultiTaskRegressor(**kw).fit(X, Y[:, :3]), Y[:, :3]),
            (MultiTaskRegressorCV(penalty="ridge", alphas=2, cv=2).fit(X, Y[:, 0]), Y[:, 0]),
            (MultiTaskClassifier(loss="multinomial", **kw).fit(X, Yo[:, 3:]), Yo[:, 3:]),
            (MultiTaskClassifierCV(penalty="ridge", alphas=2, cv=2).fit(X, Yc[:, 1]), Yc[:, 1]),
            (MultiTaskEstimator(**kw).fit(X, Yo), Yo),
            (MultiTaskEstimator(**kw).fit(X, Y), Y),
        ]
    methods = ("predict", "decision_function", "predict_proba")
    refs = [{m: getattr(est, m)(X) for m in methods if hasattr(est, m)} for est, _ in models]
    scores = [est.score(X, y) for est, y in models]
    rng = np.random.default_rng(16)
    sw = rng.uniform(0.2, 2.0, len(X))
    SW = rng.uniform(0.2, 2.0, Y.shape)
    SW[:, 0] = 0.0  # task 0 has no labelled row of non-zero weight: skipped
    weighted = [(est.score(X, y, sample_weight=sw),
                 est.score(X, y, sample_weight=SW[:, :np.shape(y)[1]]) if np.ndim(y) == 2
                 else None) for est, y in models]
    Xd = _lazy(X, rows=(80, 80, 40))

    def refuse(self, *a, **k):
        raise AssertionError("a dask array was materialised on the client")

    monkeypatch.setattr(da.Array, "__array__", refuse)
    for (est, y), ref, score in zip(models, refs, scores):
        for m, expected in ref.items():
            with distributed.get_task_stream(client) as before:
                out = getattr(est, m)(Xd)
            many = isinstance(expected, list)
            outs, exps = (out, expected) if many else ([out], [expected])
            assert len(outs) == len(exps)
            assert all(o is None if e is None else isinstance(o, da.Array)
                       for o, e in zip(outs, exps)), (est, m)
            assert before.data == [], (est, m)  # lazy: nothing ran on the cluster
            outs = [o for o in outs if o is not None]
            with distributed.get_task_stream(client) as during:
                got = dask.compute(*outs)
            assert during.data, (est, m)
            for o, g, e in zip(outs, got, [e for e in exps if e is not None]):
                assert o.dtype == e.dtype and o.shape == e.shape, (est, m)
                assert o.chunks[0] == Xd.chunks[0], (est, m)  # computed block by block
                if e.dtype.kind == "f":
                    np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)
                else:
                    np.testing.assert_array_equal(g, e)
        # score: sums per block reduced on the cluster (y in memory or dask, other chunks)
        assert est.score(Xd, y) == pytest.approx(score, rel=1e-12)
        yd = da.from_array(np.asarray(y), chunks=70)
        assert est.score(Xd, yd) == pytest.approx(score, rel=1e-12)
        by_row, by_entry = weighted[[e for e, _ in models].index(est)]
        assert est.score(Xd, yd, sample_weight=da.from_array(sw, chunks=50)) == \
            pytest.approx(by_row, rel=1e-12)
        if by_entry is not None:
            assert est.score(Xd, y, sample_weight=SW[:, :np.shape(y)[1]]) == \
                pytest.approx(by_entry, rel=1e-12)
    monkeypatch.undo()
    est = models[0][0]
    with pytest.raises(ValueError, match="X has 4 features, but MultiTaskRegressor is "
                                         "expecting 5"):
        est.predict(Xd[:, :4])
    with pytest.raises(ValueError, match="y has shape"):
        est.score(Xd, Y[:, :2])
    with pytest.raises(ValueError, match="sample_weight must have shape"):
        est.score(Xd, Y[:, :3], sample_weight=da.ones(7, chunks=7))
    with pytest.raises(ValueError, match="sample_weight must be finite"):
        est.score(Xd, Y[:, :3], sample_weight=da.from_array(-sw, chunks=50))
    with pytest.raises(ValueError, match="no task has a labelled sample"):
        est.score(Xd, np.full((len(X), 3), np.nan))
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        est.score(Xd[Xd[:, 0] > -100], Y[:, :3])


def test_mixed_step_rule_and_lipschitz_on_blocks(client, monkeypatch):
    """Mixed columns on the blocks: the exact Lipschitz bound (curvature 1 / 1/4 / 1/2 per
    squared / logistic / softmax column) and the power-iteration estimate (max_t c_t A_t)
    equal the in-memory oracle's; FISTA's debug step check passes."""
    from mtlclassic.multitask import MultiTaskEstimator, _solver

    monkeypatch.setattr(_solver, "CHECK_STEPS", True)
    oracles, fista = [], _solver.fista

    def spy(oracle, *args, **kw):
        oracles.append((oracle, kw["lipschitz_cap"]))
        return fista(oracle, *args, **kw)

    monkeypatch.setattr(_solver, "fista", spy)
    X, Y = _mixed(n=150, seed=17)
    kw = dict(penalty="l21", alpha=0.05, loss="multinomial", max_iter=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter: a few checked steps are enough
        MultiTaskEstimator(**kw).fit(_lazy(X, rows=(60, 60, 30)), _lazy(Y, rows=(60, 60, 30)))
        MultiTaskEstimator(**kw).fit(X, Y)
    (dask_oracle, dask_cap), (mem_oracle, mem_cap) = oracles
    assert dask_oracle.mixed and mem_oracle.kind == "mixed"
    assert dask_oracle.exact_lipschitz() == pytest.approx(mem_oracle.exact_lipschitz(),
                                                          rel=1e-10)
    # on the blocks the exact top eigenvalue (d <= gram_max_d); in memory 40 power rounds,
    # which never exceed it
    assert mem_cap <= dask_cap * (1 + 1e-12)
    assert dask_cap == pytest.approx(mem_cap, rel=1e-4)
    assert dask_oracle.null_objective() == pytest.approx(mem_oracle.null_objective(),
                                                         rel=1e-12)


def test_lazy_prediction_is_the_model_at_call_time(client):
    """A lazy prediction holds a copy of the model: refitting before compute changes
    neither it nor a later model's predictions (no shared task keys)."""
    X, Y = _data(n=120, seed=21)
    Xd = da.from_array(X, chunks=40)
    m = MultiTaskRegressor(penalty="ridge", alpha=0.1)
    lazy, expected = [], []
    for s in (1.0, -1.0, 2.0):
        m.fit(X, s * Y)
        lazy.append(m.predict(Xd))
        expected.append(m.predict(X))
    for got, want in zip(dask.compute(*lazy), expected):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    fresh = MultiTaskRegressor(penalty="ridge", alpha=0.1).fit(X, Y)
    np.testing.assert_allclose(fresh.predict(Xd).compute(), fresh.predict(X), rtol=1e-12)


def test_empty_chunks_and_bad_score_targets(client):
    """An empty row block (after boolean filtering) gives empty outputs; score refuses an
    infinite regression label as in memory; a dask DataFrame is refused clearly."""
    X, Y = _data(n=90, seed=22)
    Xd = da.from_array(X, chunks=30)
    keep = np.ones(90, dtype=bool)
    keep[30:60] = False
    Xf = Xd[da.from_array(keep, chunks=30)]
    Xf.compute_chunk_sizes()
    assert 0 in Xf.chunks[0]
    m = MultiTaskRegressor(penalty="l21", alpha=0.05).fit(X, Y)
    np.testing.assert_allclose(m.predict(Xf).compute(), m.predict(X[keep]), rtol=1e-12)
    assert m.score(Xf, Y[keep]) == pytest.approx(m.score(X[keep], Y[keep]), rel=1e-12)
    Yc = (Y > 0).astype(int)
    c = MultiTaskClassifier(penalty="ridge").fit(X, Yc)
    for got, want in zip(c.predict_proba(Xf), c.predict_proba(X[keep])):
        np.testing.assert_allclose(got.compute(), want, rtol=1e-12)
    Ybad = Y.copy()
    Ybad[3, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        m.score(X, Ybad)
    with pytest.raises(ValueError, match="infinity"):
        m.score(Xd, Ybad)
    dd = pytest.importorskip("dask.dataframe")
    frame = dd.from_dask_array(Xd)
    with pytest.raises(TypeError, match="to_dask_array"):
        MultiTaskRegressor().fit(frame, Y)
    with pytest.raises(TypeError, match="to_dask_array"):
        m.predict(frame)


def test_unknown_chunk_sizes_named(client):
    """y or sample_weight of unknown chunk sizes: the error names the array and the fix."""
    X, Y = _data(n=60, seed=23)
    Xd = da.from_array(X, chunks=30)
    Yu = da.from_array(Y, chunks=30)
    Yu = Yu[Yu[:, 0] > -np.inf]  # boolean indexing: unknown chunk sizes, all rows kept
    sw = da.from_array(np.ones(60), chunks=30)
    swu = sw[sw > 0]
    m = MultiTaskRegressor(penalty="ridge").fit(X, Y)
    with pytest.raises(ValueError, match=r"y\.compute_chunk_sizes"):
        m.score(Xd, Yu)
    with pytest.raises(ValueError, match=r"sample_weight\.compute_chunk_sizes"):
        m.score(Xd, Y, sample_weight=swu)
    with pytest.raises(ValueError, match=r"sample_weight\.compute_chunk_sizes"):
        MultiTaskRegressor().fit(Xd, da.from_array(Y, chunks=30), sample_weight=swu)
