"""Multi-task estimators: identities against scikit-learn that cannot be faked, solver
properties, missing labels, and bad input."""

import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, MultiTaskLasso, Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mtlclassic.backend import cuda_available
from mtlclassic.multitask import (MultiTaskClassifier, MultiTaskRegressor, estimate_task_relation,
                                  long_to_wide, penalties, signed_laplacian)


def _data_dir():
    for cand in [os.environ.get("MTLCLASSIC_DATA"),
                 Path(__file__).resolve().parents[2] / "shared" / "data"]:
        if cand and Path(cand, "mfeat", "mfeat-pix.txt").exists():
            return Path(cand)
    return None


@pytest.fixture(scope="module")
def mfeat():
    d = _data_dir()
    if d is None:
        pytest.skip("UCI mfeat data not found (set MTLCLASSIC_DATA or keep ../shared/data)")
    X = np.loadtxt(d / "mfeat" / "mfeat-pix.txt")
    digit = np.repeat(np.arange(10), 200)
    return X, digit


def _regression(rng, n=150, d=12, T=4, noise=0.1, n_relevant=None):
    X = rng.standard_normal((n, d))
    W = rng.standard_normal((d, T))
    if n_relevant is not None:
        W[n_relevant:] = 0
    return X, X @ W + noise * rng.standard_normal((n, T)) + 3.0


# ------------------------------------------------------------------ identities

def test_l21_equals_multitask_lasso_on_mfeat(mfeat):
    """Squared loss + l21 is MultiTaskLasso: objective to 1e-6, coefficients to 1e-4."""
    X, digit = mfeat
    X = StandardScaler().fit_transform(X[::4])
    Y = np.eye(10)[digit[::4]]
    alpha = 0.01
    sk = MultiTaskLasso(alpha=alpha, tol=1e-10, max_iter=20000).fit(X, Y)
    ours = MultiTaskRegressor(penalty="l21", alpha=alpha, tol=1e-9, max_iter=20000).fit(X, Y)

    def obj(coef, b):
        R = Y - X @ coef.T - b
        return 0.5 / len(X) * np.sum(R * R) + alpha * np.linalg.norm(coef, axis=0).sum()

    f_ours, f_sk = obj(ours.coef_, ours.intercept_), obj(sk.coef_, sk.intercept_)
    assert abs(f_ours - f_sk) <= 1e-6 * abs(f_sk)
    np.testing.assert_allclose(ours.coef_, sk.coef_, atol=1e-4)
    assert ours.objective_trace_[-1] == pytest.approx(f_ours, rel=1e-12)


@pytest.mark.parametrize("solver", ["closed_form", "fista"])
def test_ridge_equals_per_task_ridge(rng, solver):
    X, Y = _regression(rng)
    alpha = 0.3
    ours = MultiTaskRegressor(penalty="ridge", alpha=alpha, solver=solver, tol=1e-14,
                              max_iter=20000).fit(X, Y)
    sk = Ridge(alpha=alpha * len(X)).fit(X, Y)
    atol = 1e-10 if solver == "closed_form" else 1e-6
    np.testing.assert_allclose(ours.coef_, sk.coef_, atol=atol)
    np.testing.assert_allclose(ours.intercept_, sk.intercept_, atol=atol)
    np.testing.assert_allclose(ours.predict(X), sk.predict(X), atol=1e-6)


def test_ridge_logistic_equals_logistic_regression(rng):
    X = rng.standard_normal((200, 8))
    y = np.where(X[:, 0] - X[:, 1] + 0.7 * rng.standard_normal(200) > 0, "yes", "no")
    C = 0.5
    sk = LogisticRegression(C=C, tol=1e-12, max_iter=10000).fit(X, y)
    ours = MultiTaskClassifier(penalty="ridge", alpha=1 / (C * len(X)), tol=1e-10,
                               max_iter=50000).fit(X, y)
    np.testing.assert_allclose(ours.coef_, sk.coef_, atol=1e-4)
    np.testing.assert_allclose(ours.decision_function(X), sk.decision_function(X), atol=1e-4)
    np.testing.assert_allclose(ours.predict_proba(X), sk.predict_proba(X), atol=1e-4)
    assert list(ours.classes_) == ["no", "yes"]
    assert (ours.predict(X) == sk.predict(X)).mean() == 1.0


def test_multiclass_equals_one_vs_rest(rng):
    X = rng.standard_normal((240, 6))
    y = np.argmax(X[:, :4] + 0.5 * rng.standard_normal((240, 4)), axis=1)
    ovr = OneVsRestClassifier(LogisticRegression(C=1.0, tol=1e-12, max_iter=10000)).fit(X, y)
    ours = MultiTaskClassifier(penalty="ridge", alpha=1 / len(X), tol=1e-10,
                               max_iter=50000).fit(X, y)
    assert ours.coef_.shape == (4, 6)
    np.testing.assert_allclose(ours.decision_function(X), ovr.decision_function(X), atol=1e-4)
    np.testing.assert_allclose(ours.predict_proba(X), ovr.predict_proba(X), atol=1e-4)


def test_graph_with_zero_relation_is_independent_ridge(rng):
    X, Y = _regression(rng)
    g = MultiTaskRegressor(penalty="graph", alpha=5.0, l2=0.2, task_relation=np.zeros((4, 4)))
    r = MultiTaskRegressor(penalty="ridge", alpha=0.2)
    np.testing.assert_allclose(g.fit(X, Y).coef_, r.fit(X, Y).coef_, atol=1e-10)


def test_mean_with_huge_alpha_is_one_pooled_model(rng):
    """alpha -> infinity forces w_t = w_0; l2 then penalises 1/2 l2 ||w_0||^2, i.e. a pooled
    ridge over all tasks' rows with per-task intercepts."""
    X, Y = _regression(rng, T=3)
    Y = Y - Y.mean(axis=0)
    l2 = 0.5
    m = MultiTaskRegressor(penalty="mean", alpha=1e8, l2=l2, fit_intercept=False).fit(X, Y)
    assert np.ptp(m.coef_, axis=0).max() < 1e-5
    n, T = len(X), 3
    # pooled: sum_t 1/(2n) ||y_t - X w||^2 + 1/2 l2 ||w||^2
    w = np.linalg.solve(T * X.T @ X / n + l2 * np.eye(X.shape[1]), X.T @ Y.sum(axis=1) / n)
    np.testing.assert_allclose(m.coef_[0], w, atol=1e-5)


@pytest.mark.parametrize("penalty", ["ridge", "mean", "graph"])
def test_closed_form_equals_fista(rng, penalty):
    X, Y = _regression(rng)
    sw = rng.uniform(0.5, 2.0, len(X))
    kw = dict(penalty=penalty, alpha=0.1, l2=0.05, task_relation=None,
              task_weight=[1.0, 2.0, 0.5, 1.0])
    a = MultiTaskRegressor(solver="closed_form", **kw).fit(X, Y, sample_weight=sw)
    b = MultiTaskRegressor(solver="fista", tol=1e-15, max_iter=50000, **kw).fit(
        X, Y, sample_weight=sw)
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-6)
    np.testing.assert_allclose(a.intercept_, b.intercept_, atol=1e-6)
    assert a.solver_ == "closed_form" and b.solver_ == "fista"


@pytest.mark.parametrize("solver", ["lbfgs", "fista"])
def test_missing_labels_equal_per_task_fits(rng, solver):
    """ridge couples nothing: with missing labels each task equals a fit on its rows."""
    X, Y = _regression(rng, n=120)
    Ym = Y.copy()
    Ym[rng.random(Ym.shape) < 0.35] = np.nan
    alpha = 0.2
    m = MultiTaskRegressor(penalty="ridge", alpha=alpha, tol=1e-14, max_iter=50000,
                           solver=solver).fit(X, Ym)
    assert m.solver_ == solver
    for t in range(Y.shape[1]):
        rows = ~np.isnan(Ym[:, t])
        sk = Ridge(alpha=alpha * rows.sum()).fit(X[rows], Y[rows, t])
        np.testing.assert_allclose(m.coef_[t], sk.coef_, atol=1e-6)
        np.testing.assert_allclose(m.intercept_[t], sk.intercept_, atol=1e-6)


def test_classifier_missing_labels_and_mixed_tasks(rng):
    X = rng.standard_normal((300, 5))
    t0 = np.where(X[:, 0] > 0, "a", "b").astype(object)
    t1 = np.argmax(X[:, 1:4], axis=1).astype(object)
    t0[:100] = None
    t1[200:] = None
    Y = np.column_stack([t0, t1])
    m = MultiTaskClassifier(penalty="graph", alpha=1e-3).fit(X, Y)
    assert m.coef_.shape == (1 + 3, 5) and list(m.subtask_task_) == [0, 1, 1, 1]
    assert m.task_relation_.shape == (4, 4)
    P = m.predict(X)
    assert P.shape == (300, 2)
    proba = m.predict_proba(X)
    assert proba[0].shape == (300, 2) and proba[1].shape == (300, 3)
    np.testing.assert_allclose(proba[1].sum(axis=1), 1.0)
    assert m.score(X, Y) > 0.9
    # the missing_label marker works the same as None
    Y2 = np.where(Y == None, -1, Y)  # noqa: E711
    m2 = MultiTaskClassifier(penalty="graph", alpha=1e-3, missing_label=-1).fit(X, Y2)
    np.testing.assert_allclose(m2.coef_, m.coef_, atol=1e-8)


# ------------------------------------------------------------------ solver

def test_kkt_residual_below_tol_and_trace_never_rises(rng):
    X, Y = _regression(rng, n=200, d=30, n_relevant=10, noise=0.5)
    tol = 1e-8
    m = MultiTaskRegressor(penalty="l21", alpha=0.5, tol=tol, max_iter=20000).fit(X, Y)
    trace = np.array(m.objective_trace_)
    assert np.all(np.diff(trace) <= 1e-12 * np.abs(trace[1:]))
    # gradient mapping at the solution, relative to the gradient at zero
    n = len(X)
    W, b = m.coef_.T, m.intercept_
    G = (X @ W + b - Y) / n
    gW, gb = X.T @ G, G.sum(axis=0)
    step = 1e-3
    from mtlclassic.backend.kernels import prox_l21

    Wn = prox_l21(W - step * gW, step * 0.5)
    resid = np.sqrt(np.sum((W - Wn) ** 2) + np.sum((step * gb) ** 2)) / step
    G0 = -Y / n
    scale = np.sqrt(np.sum((X.T @ G0) ** 2) + np.sum(G0.sum(axis=0) ** 2))
    assert resid / scale < 10 * tol
    assert np.any(np.all(m.coef_ == 0, axis=0)), "l21 should zero some features entirely"


def test_warm_start_cuts_iterations(rng):
    n, d = 300, 80
    X = rng.standard_normal((n, d)) @ (np.eye(d) + 0.3 * rng.standard_normal((d, d)))
    W = np.zeros((d, 5))
    W[:10] = rng.standard_normal((10, 5))
    Y = X @ W + 0.5 * rng.standard_normal((n, 5))
    m = MultiTaskRegressor(penalty="l21", alpha=0.2, tol=1e-8, warm_start=True,
                           max_iter=20000).fit(X, Y)
    first = m.n_iter_
    m.set_params(alpha=0.18).fit(X, Y)
    cold = MultiTaskRegressor(penalty="l21", alpha=0.18, tol=1e-8, max_iter=20000).fit(X, Y)
    assert m.n_iter_ < 0.8 * cold.n_iter_ and first > 1
    np.testing.assert_allclose(m.coef_, cold.coef_, atol=1e-5)


@pytest.mark.parametrize("Est", [MultiTaskRegressor, MultiTaskClassifier])
@pytest.mark.parametrize("penalty", ["mean", "l21", "trace"])
def test_intercept_scaling_is_a_penalised_constant_feature(rng, Est, penalty):
    """intercept_scaling=s is the fit without intercept on [X, s], split back into
    coef_ and intercept_ = s * w_const; missing labels included."""
    X, Y = _regression(rng, n=120, d=6, T=3)
    if Est is MultiTaskClassifier:
        Y = (Y > 3.0).astype(float)
    Y[rng.random(Y.shape) < 0.2] = np.nan
    s = 2.5
    kw = dict(penalty=penalty, alpha=0.05, l2=1e-3, tol=1e-10, max_iter=20000)
    m = Est(intercept_scaling=s, **kw).fit(X, Y)
    ref = Est(fit_intercept=False, **kw).fit(np.column_stack([X, np.full(len(X), s)]), Y)
    np.testing.assert_allclose(m.coef_, ref.coef_[:, :-1], atol=1e-6)
    np.testing.assert_allclose(m.intercept_, s * ref.coef_[:, -1], atol=1e-6)
    assert m.coef_.shape == (Y.shape[1], X.shape[1])
    # ignored without an intercept, as in scikit-learn
    off = Est(fit_intercept=False, intercept_scaling=s, **kw).fit(X, Y)
    np.testing.assert_array_equal(off.intercept_, 0.0)


def test_intercept_scaling_shrinks_intercepts_towards_a_shared_one(rng):
    """With the mean penalty the intercepts are pooled like the weights: the larger alpha,
    the closer they are; a huge scaling leaves them (nearly) free."""
    X = rng.standard_normal((200, 4))
    offsets = np.array([-2.0, 0.0, 1.0, 3.0])
    Y = X @ rng.standard_normal((4, 1)) + offsets + 0.3 * rng.standard_normal((200, 4))
    free = MultiTaskRegressor(penalty="mean", alpha=10.0, tol=1e-10).fit(X, Y)
    shrunk = MultiTaskRegressor(penalty="mean", alpha=10.0, intercept_scaling=1.0,
                                tol=1e-10).fit(X, Y)
    loose = MultiTaskRegressor(penalty="mean", alpha=10.0, intercept_scaling=1e3,
                               tol=1e-12, max_iter=50000).fit(X, Y)
    assert np.ptp(shrunk.intercept_) < 0.2 * np.ptp(free.intercept_)
    np.testing.assert_allclose(free.intercept_, offsets, atol=0.15)
    np.testing.assert_allclose(loose.intercept_, free.intercept_, atol=1e-3)


def test_intercept_scaling_warm_start(rng):
    X, Y = _regression(rng, n=150, d=8, T=4)
    Y[rng.random(Y.shape) < 0.3] = np.nan
    kw = dict(penalty="l21", intercept_scaling=3.0, tol=1e-9, max_iter=20000)
    m = MultiTaskRegressor(alpha=0.2, warm_start=True, **kw).fit(X, Y)
    m.set_params(alpha=0.18).fit(X, Y)
    cold = MultiTaskRegressor(alpha=0.18, **kw).fit(X, Y)
    assert m.n_iter_ < cold.n_iter_
    np.testing.assert_allclose(m.intercept_, cold.intercept_, atol=1e-5)


def test_convergence_warning(rng):
    X, Y = _regression(rng)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        MultiTaskRegressor(penalty="l21", alpha=0.01, max_iter=2).fit(X, Y)


# ------------------------------------------------------------------ sklearn integration

def test_pipeline_gridsearch_clone_pickle(rng):
    X = rng.standard_normal((160, 6))
    Y = np.column_stack([X[:, 0] > 0, X[:, 0] + X[:, 1] > 0]).astype(int)
    pipe = make_pipeline(StandardScaler(), MultiTaskClassifier())
    gs = GridSearchCV(pipe, {"multitaskclassifier__penalty": ["ridge", "graph", "l21", "mean"],
                             "multitaskclassifier__alpha": [1e-3, 1e-1]}, cv=3)
    gs.fit(X, Y)
    assert gs.best_score_ > 0.8
    est = gs.best_estimator_[-1]
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict(X[:, :6] * 0 + gs.best_estimator_[0].transform(X)),
                                  est.predict(gs.best_estimator_[0].transform(X)))
    c = clone(est)
    assert c.get_params() == est.get_params() and not hasattr(c, "coef_")


def test_penalty_objects_and_relation_helpers(rng):
    X, Y = _regression(rng)
    a = MultiTaskRegressor(penalty=penalties.Graph(), task_relation=None).fit(X, Y)
    b = MultiTaskRegressor(penalty="graph", task_relation=None).fit(X, Y)
    np.testing.assert_allclose(a.coef_, b.coef_)
    R = np.array([[1, 0.5, -0.5], [0.5, 1, 0], [-0.5, 0, 1]])
    L = signed_laplacian(R)
    W = rng.standard_normal((5, 3))
    direct = 0.5 * sum(abs(R[s, t]) * np.sum((W[:, s] - np.sign(R[s, t]) * W[:, t]) ** 2)
                       for s in range(3) for t in range(3) if s != t)
    assert np.trace(W @ L @ W.T) == pytest.approx(direct)
    Xl, Yw, tasks = long_to_wide(X[:6], [1, 2, 3, 4, 5, 6], ["a", "b", "a", "c", "b", "a"])
    assert Yw.shape == (6, 3) and list(tasks) == ["a", "b", "c"]
    assert Yw[1, 1] == 2 and np.isnan(Yw[1, 0])


def test_estimate_task_relation_recovers_signs(rng):
    z = rng.standard_normal(500)
    Y = np.column_stack([z + 0.3 * rng.standard_normal(500), z + 0.3 * rng.standard_normal(500),
                         -z + 0.3 * rng.standard_normal(500), rng.standard_normal(500)])
    R = estimate_task_relation(Y)
    assert R[0, 1] > 0.8 and R[0, 2] < -0.8 and abs(R[0, 3]) < 0.2
    # disjoint tasks fall back to the correlation of independent ridge weights
    X = rng.standard_normal((400, 6))
    w = rng.standard_normal(6)
    Yd = np.full((400, 2), np.nan)
    Yd[:200, 0] = X[:200] @ w
    Yd[200:, 1] = X[200:] @ w
    assert estimate_task_relation(Yd, X=X)[0, 1] > 0.95


# ------------------------------------------------------------------ bad input

def test_bad_input(rng):
    X, Y = _regression(rng, n=40)
    Xn = X.copy()
    Xn[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        MultiTaskRegressor().fit(Xn, Y)
    Ye = Y.copy()
    Ye[:, 2] = np.nan
    with pytest.raises(ValueError, match="task 2 has no labelled sample"):
        MultiTaskRegressor().fit(X, Ye)
    yc = np.column_stack([np.r_[np.zeros(20), np.ones(20)], np.zeros(40)])
    with pytest.raises(ValueError, match="task 1 has only one class"):
        MultiTaskClassifier().fit(X, yc)
    with pytest.raises(ValueError, match="continuous"):
        MultiTaskClassifier().fit(X, Y)
    for R, match in [(np.eye(3), "shape"), (np.array([[1, 0.2, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0],
                                                      [0, 0, 0, 1]]), "symmetric"),
                     (np.full((4, 4), np.nan), "NaN")]:
        with pytest.raises(ValueError, match=match):
            MultiTaskRegressor(task_relation=R).fit(X, Y)
    for kw, match in [(dict(alpha=-1), "alpha"), (dict(l2=np.inf), "l2"), (dict(tol=-1), "tol"),
                      (dict(max_iter=0), "max_iter"), (dict(penalty="lasso"), "penalty"),
                      (dict(solver="newton"), "solver"), (dict(device="gpu"), "device"),
                      (dict(task_weight=[1, 1]), "task_weight"),
                      (dict(task_weight="equal"), "task_weight"),
                      (dict(task_relation="estimate"), "task_relation"),
                      (dict(intercept_scaling=0), "intercept_scaling"),
                      (dict(intercept_scaling=-2.0), "intercept_scaling"),
                      (dict(intercept_scaling=np.nan), "intercept_scaling"),
                      (dict(intercept_scaling=True), "intercept_scaling"),
                      (dict(intercept_scaling="1"), "intercept_scaling"),
                      (dict(fit_intercept="yes"), "fit_intercept"),
                      (dict(warm_start=1), "warm_start")]:
        with pytest.raises(ValueError, match=match):
            MultiTaskRegressor(**kw).fit(X, Y)
    if not cuda_available():
        with pytest.raises(RuntimeError, match="no GPU is usable"):
            MultiTaskRegressor(device="cuda").fit(X, Y)
    with pytest.raises(ValueError, match="different numbers of samples"):
        MultiTaskRegressor().fit(X, Y[:-1])
    with pytest.raises(ValueError, match="closed_form"):
        MultiTaskRegressor(penalty="l21", solver="closed_form").fit(X, Y)
    with pytest.raises(ValueError, match="smooth penalty"):
        MultiTaskRegressor(penalty="l21", solver="lbfgs").fit(X, Y)
    m = MultiTaskRegressor().fit(X, Y)
    with pytest.raises(ValueError, match="features"):
        m.predict(X[:, :-1])
    with pytest.raises(ValueError, match="sample_weight"):
        MultiTaskRegressor().fit(X, Y, sample_weight=-np.ones(40))


@pytest.mark.parametrize("kind", ["squared", "logistic"])
def test_native_loss_matches_numpy(rng, kind):
    """The fused C++ masked loss/gradient pass against its NumPy reference, with zero
    weights (unlabelled entries), extreme margins and several threads."""
    from mtlclassic.multitask import _losses

    Z = rng.standard_normal((503, 7)) * 5
    Z[0, :3] = [800.0, -800.0, 0.0]
    Y = rng.standard_normal((503, 7)) if kind == "squared" else np.sign(rng.standard_normal((503, 7)))
    A = rng.random((503, 7)) * (rng.random((503, 7)) > 0.3)
    ref_loss, ref_G = _losses.NUMPY_LOSSES[kind](Z, Y, A)
    for n_jobs in (1, 2):
        loss, G = _losses.native_loss(kind, n_jobs)(Z, Y, A)
        assert loss == pytest.approx(ref_loss, rel=1e-12)
        np.testing.assert_allclose(G, ref_G, rtol=1e-12, atol=1e-300)
        assert np.all(G[A == 0] == 0)


@pytest.mark.parametrize("kind, grouped", [("squared", False), ("logistic", False),
                                           ("logistic", True)])
def test_native_loss_takes_one_row_of_weights(rng, kind, grouped):
    """A read-only broadcast of one row of weights (every row alike: no sample weights,
    every label present) goes to the kernels as that row, (1, T), and gives the bits of the
    whole (n, T) array, on 1 and 2 threads, with and without softmax groups."""
    from mtlclassic.multitask import _losses

    n, T = 1003, 7
    Z = rng.standard_normal((n, T)) * 5
    Z[0, :3] = [800.0, -800.0, 0.0]
    Y = rng.standard_normal((n, T)) if kind == "squared" else np.sign(rng.standard_normal((n, T)))
    row = rng.random(T) + 0.1
    A = np.broadcast_to(row, (n, T))
    assert _losses.kernel_weights(A).shape == (1, T)
    group = None
    if grouped:  # two softmax tasks (3 and 2 classes) beside element-wise columns
        group = _losses.softmax_groups(np.array([0, 0, 0, 1, 2, 3, 3]), [0, 3])
        Y[:, :3] = np.where(np.arange(3) == rng.integers(0, 3, n)[:, None], 1.0, -1.0)
        Y[:, 5:] = np.where(np.arange(2) == rng.integers(0, 2, n)[:, None], 1.0, -1.0)
    for n_jobs in (1, 2):
        fn = _losses.native_loss(kind, n_jobs, group=group)
        loss_row, G_row = fn(Z, Y, A)
        loss_full, G_full = fn(Z, Y, np.array(A))
        assert loss_row == loss_full
        np.testing.assert_array_equal(G_row, G_full)


@pytest.mark.parametrize("shape", [(2, 3), (1, 4), (3,), (5, 2)])
def test_native_loss_refuses_weights_of_another_shape(shape):
    """A must be Z's shape or one row of Z's width: anything else is a clear ValueError
    from both kernels, never a read past the row."""
    from mtlclassic.backend._native import require_cpu

    cpu = require_cpu()
    Z, Y, G, A = np.zeros((5, 3)), np.ones((5, 3)), np.empty((5, 3)), np.ones(shape)
    with pytest.raises(ValueError, match="A must have Z's shape"):
        cpu.loss_grad(Z, Y, A, G, 1, 1)
    with pytest.raises(ValueError, match="A must have Z's shape"):
        cpu.loss_grad_grouped(Z, Y, A, G, np.ones(3, dtype=np.int32), 1, 1)


@pytest.mark.parametrize("kind", ["squared", "logistic"])
@pytest.mark.parametrize("grouped", [False, True])
def test_native_loss_reads_int8_targets(rng, kind, grouped):
    """int8 targets (a classifier's compact encoding, in {-1, +1}) are read as they are --
    no float64 copy -- and give the bits of the float64 ones, for both weight layouts,
    on 1 and 2 threads, with and without softmax groups (whose one-hot columns are found
    from the +1 entries)."""
    from mtlclassic.multitask import _losses

    n, T = 1003, 7
    Z = rng.standard_normal((n, T)) * 5
    Z[0, :3] = [800.0, -800.0, 0.0]
    Y = np.where(rng.random((n, T)) > 0.4, 1, -1).astype(np.int8)
    group = None
    if grouped:  # two softmax tasks (3 and 2 classes) beside element-wise columns
        group = _losses.softmax_groups(np.array([0, 0, 0, 1, 2, 3, 3]), [0, 3])
        Y[:, :3] = np.where(np.arange(3) == rng.integers(0, 3, n)[:, None], 1, -1)
        Y[:, 5:] = np.where(np.arange(2) == rng.integers(0, 2, n)[:, None], 1, -1)
        Y[5, :3] = -1  # a row without its class: no loss
    assert _losses.kernel_targets(Y) is Y
    A = rng.random((n, T)) * (rng.random((n, T)) > 0.2)
    for weights in (A, np.broadcast_to(A[1], (n, T))):
        for n_jobs in (1, 2):
            fn = _losses.native_loss(kind, n_jobs, group=group)
            loss8, G8 = fn(Z, Y, weights)
            loss64, G64 = fn(Z, Y.astype(np.float64), weights)
            assert loss8 == loss64
            np.testing.assert_array_equal(G8, G64)


@pytest.mark.parametrize("kind", ["squared", "logistic"])
@pytest.mark.parametrize("group", [None, [1, -1, 1, 1, -1]])
def test_native_loss_writes_its_gradient_in_place(rng, kind, group):
    """``out=Z``: the element-wise pass (and the grouped one without softmax tasks, whose
    ``in_place`` says so) writes G over Z with the bits it writes elsewhere -- the loss by
    blocks of rows then keeps one block-sized array per block."""
    from mtlclassic.multitask import _losses

    n, T = 517, 5
    Z = rng.standard_normal((n, T)) * 4
    Y = np.where(rng.random((n, T)) > 0.5, 1.0, -1.0)
    A = rng.random((n, T)) * (rng.random((n, T)) > 0.2)
    fn = _losses.native_loss(kind, 2, None if group is None else np.array(group, np.int32))
    assert fn.in_place
    loss, G = fn(Z, Y, A)
    Zc = Z.copy()
    loss2, G2 = fn(Zc, Y, A, out=Zc)
    assert G2 is Zc and loss2 == loss
    np.testing.assert_array_equal(G2, G)


@pytest.mark.parametrize("bad, match", [
    (np.ones((5, 3), dtype=np.int16), "Y must be float64 or int8"),
    (np.ones((5, 3), dtype=np.float32), "Y must be float64 or int8"),
    (np.ones((3, 5), dtype=np.int8).T, "Y must be C-contiguous"),
    (np.ones((5, 3), dtype=np.float64)[:, ::1][::1].T.copy().T, "Y must be C-contiguous"),
    (np.ones((5, 2), dtype=np.int8), "one shape"),
])
def test_native_loss_refuses_targets_of_another_dtype_or_layout(bad, match):
    """The kernels read Y as float64 or int8 and C-contiguous: another dtype, a transposed
    array or another shape is a clear ValueError from both kernels, never a misread
    buffer (Python's kernel_targets converts other dtypes before the call)."""
    from mtlclassic.backend._native import require_cpu

    cpu = require_cpu()
    Z, G, A = np.zeros((5, 3)), np.empty((5, 3)), np.ones((5, 3))
    with pytest.raises(ValueError, match=match):
        cpu.loss_grad(Z, bad, A, G, 1, 1)
    with pytest.raises(ValueError, match=match):
        cpu.loss_grad_grouped(Z, bad, A, G, np.ones(3, dtype=np.int32), 1, 1)


@pytest.mark.parametrize("kw, data", [
    (dict(penalty="l21", alpha=1e-2), "plain"),                 # FISTA
    (dict(penalty="trace", alpha=1e-2), "plain"),               # FISTA
    (dict(), "plain"),                                          # graph: L-BFGS over modes
    (dict(penalty="ridge"), "plain"),                           # L-BFGS per column
    (dict(penalty="ridge"), "float32"),                         # its float32 iterations
    (dict(penalty="l21", alpha=1e-2, solver="bcd"), "plain"),   # working-set BCD
    (dict(loss="multinomial"), "plain"),                        # softmax groups
    (dict(penalty="l21", alpha=1e-2, loss="multinomial"), "plain"),
    (dict(), "missing"),                                        # a mask of labels
    (dict(penalty="l21", alpha=1e-2), "missing"),
    (dict(penalty="ridge", class_weight="balanced"), "weighted"),
    (dict(penalty="l21", alpha=1e-2), "weighted"),
])
def test_compact_targets_give_the_fit_of_float64_targets(rng, monkeypatch, kw, data):
    """The classifier's int8 targets (and no mask array where every label is present)
    give the fit of float64 targets to the bit, on every solver and loss layout: FISTA,
    L-BFGS over modes and per column (float64 and float32 iterations), the working-set
    BCD, softmax groups, missing labels, sample and class weights."""
    from mtlclassic.multitask import _labels

    n, d = 300, 12
    X = rng.standard_normal((n, d))
    Z = X @ rng.standard_normal((d, 3))
    Y = np.stack([Z[:, 0] > 0, Z[:, 1] > 0.3, np.digitize(Z[:, 2], [-0.5, 0.5])],
                 axis=1).astype(float)
    sw = None
    if data == "float32":
        X = X.astype(np.float32)
    elif data == "missing":
        Y[rng.random(Y.shape) < 0.15] = np.nan
    elif data == "weighted":
        sw = rng.random(n) * (rng.random(n) > 0.1)
    fits, dtypes = [], []
    encode = _labels.encode_classification
    for compact in (True, False):
        def enc(Y2, miss, *a, compact_=compact, **k):
            k["compact"] = compact_
            out = encode(Y2, miss, *a, **k)
            dtypes.append(out[0].dtype)
            return out

        monkeypatch.setattr(_labels, "encode_classification", enc)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fits.append(MultiTaskClassifier(tol=1e-8, max_iter=3000, **kw)
                        .fit(X, Y, sample_weight=sw))
    assert dtypes == [np.int8, np.float64]
    a, b = fits
    assert a.n_iter_ == b.n_iter_ and a.objective_ == b.objective_
    np.testing.assert_array_equal(a.coef_, b.coef_)
    np.testing.assert_array_equal(a.intercept_, b.intercept_)


def test_compact_encoding_values_and_mask(rng):
    """encode_classification(compact=True): int8 targets equal to the float64 ones, the
    mask a read-only broadcast of True where no label is missing (an (n, T') array where
    some are, equal to the float64 encoding's)."""
    from mtlclassic.multitask import _labels

    Y = np.stack([rng.integers(0, 2, 50), rng.integers(0, 4, 50)], axis=1).astype(float)
    for miss in (np.zeros(Y.shape, dtype=bool), rng.random(Y.shape) < 0.2):
        Yc, mc, cls_c, own_c = _labels.encode_classification(Y, miss, compact=True)
        Yf, mf, cls_f, own_f = _labels.encode_classification(Y, miss)
        assert Yc.dtype == np.int8 and Yf.dtype == np.float64
        np.testing.assert_array_equal(Yc, Yf)
        np.testing.assert_array_equal(mc, mf)
        np.testing.assert_array_equal(own_c, own_f)
        assert (mc.strides == (0, 0)) == (not miss.any())
        assert not miss.any() or mc.flags.writeable


def test_unweighted_classifier_equals_the_explicitly_weighted_one(rng):
    """No sample weights (one broadcast row of loss weights) and explicit weights that
    differ (a zero-weight copy of a row: whole (n, T) weights) fit the same model, for the
    L-BFGS, FISTA and working-set solvers."""
    X = rng.standard_normal((300, 6))
    Y = np.stack([(X[:, 0] + 0.5 * rng.standard_normal(300) > 0).astype(int),
                  np.digitize(X[:, 1] + X[:, 2], [-1.0, 0.0, 1.0])], axis=1)
    X2, Y2 = np.vstack([X, X[:1]]), np.vstack([Y, Y[:1]])
    w = np.r_[np.ones(300), 0.0]
    for kw in (dict(), dict(penalty="ridge"), dict(penalty="l21", alpha=1e-2),
               dict(penalty="l21", alpha=1e-2, solver="bcd"), dict(loss="multinomial")):
        a = MultiTaskClassifier(tol=1e-10, max_iter=20000, **kw).fit(X, Y)
        b = MultiTaskClassifier(tol=1e-10, max_iter=20000, **kw).fit(X2, Y2, sample_weight=w)
        np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-6, atol=1e-7)
        assert a.objective_ == pytest.approx(b.objective_, rel=1e-10)


def test_data_and_gram_paths_agree(rng):
    """n < d runs FISTA on the data (two GEMMs per iteration), n >= d on the Gram matrix;
    both must reach the closed form."""
    for n, d in [(40, 60), (200, 30)]:
        X, Y = _regression(rng, n=n, d=d)
        kw = dict(penalty="graph", alpha=0.05, l2=0.1, task_relation=None)
        a = MultiTaskRegressor(solver="closed_form", **kw).fit(X, Y)
        b = MultiTaskRegressor(solver="fista", tol=1e-14, max_iter=100000, **kw).fit(X, Y)
        np.testing.assert_allclose(b.coef_, a.coef_, atol=1e-6)
        np.testing.assert_allclose(b.intercept_, a.intercept_, atol=1e-6)
        assert b.objective_trace_[-1] == pytest.approx(a.objective_trace_[-1], rel=1e-9)


@pytest.mark.parametrize("penalty", ["graph", "mean"])
def test_lbfgs_equals_fista_for_logistic(rng, penalty):
    X = rng.standard_normal((200, 8))
    Y = np.column_stack([X[:, 0] + 0.5 * rng.standard_normal(200) > 0,
                         X[:, 0] + X[:, 1] + 0.5 * rng.standard_normal(200) > 0,
                         np.argmax(X[:, 2:5], axis=1)]).astype(int)
    kw = dict(penalty=penalty, alpha=0.05, l2=0.01, tol=1e-13, max_iter=100000)
    a = MultiTaskClassifier(solver="lbfgs", **kw).fit(X, Y)
    b = MultiTaskClassifier(solver="fista", **kw).fit(X, Y)
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-5)
    assert a.objective_trace_[-1] == pytest.approx(b.objective_trace_[-1], rel=1e-9)
    assert np.all(np.diff(a.objective_trace_) <= 1e-12 * np.abs(a.objective_trace_[1:]))


# ------------------------------------------------------------------ trace norm and MTRL

def test_trace_prox_is_singular_value_soft_threshold(rng):
    W = rng.standard_normal((20, 6))
    tau = 1.3
    P = penalties.Trace().prox(W, tau)
    s = np.linalg.svd(W, compute_uv=False)
    np.testing.assert_allclose(np.linalg.svd(P, compute_uv=False), np.maximum(s - tau, 0),
                               atol=1e-12)
    U, _, Vt = np.linalg.svd(W, full_matrices=False)
    np.testing.assert_allclose(P, (U * np.maximum(s - tau, 0)) @ Vt, atol=1e-12)
    assert penalties.Trace().value(W, 2.0) == pytest.approx(2.0 * s.sum())


def test_trace_norm_finds_the_shared_low_rank_subspace(rng):
    """Tasks that share a rank-2 subspace: the trace-norm fit has rank 2 and satisfies the
    proximal fixed-point (optimality) condition."""
    n, d, T = 300, 20, 8
    X = rng.standard_normal((n, d))
    W = rng.standard_normal((d, 2)) @ rng.standard_normal((2, T))
    Y = X @ W + 0.3 * rng.standard_normal((n, T))
    m = MultiTaskRegressor(penalty="trace", alpha=0.3, tol=1e-10, max_iter=20000).fit(X, Y)
    s = np.linalg.svd(m.coef_, compute_uv=False)
    assert np.sum(s > 1e-6 * s[0]) == 2
    Wf, b = m.coef_.T, m.intercept_
    G = (X @ Wf + b - Y) / n
    step = 0.05
    fixed = penalties.Trace().prox(Wf - step * (X.T @ G), step * 0.3)
    np.testing.assert_allclose(fixed, Wf, atol=1e-6)
    ridge = MultiTaskRegressor(penalty="ridge", alpha=0.01).fit(X, Y)
    assert np.sum(np.linalg.svd(ridge.coef_, compute_uv=False) > 1e-6 * s[0]) == T


def _planted(rng, n=2000, d=200):
    """Eight tasks in two groups: weights correlated within a group (0.8), anti-correlated
    across one pair of tasks (-0.7), independent otherwise."""
    C = np.eye(8)
    for g in ([0, 1, 2, 3], [4, 5, 6]):
        for i in g:
            for j in g:
                if i != j:
                    C[i, j] = 0.8
    C[0, 7] = C[7, 0] = -0.7
    lam, V = np.linalg.eigh(C)
    L = V * np.sqrt(np.maximum(lam, 1e-9))
    W = rng.standard_normal((d, 8)) @ L.T
    X = rng.standard_normal((n, d))
    return X, X @ W + 0.5 * rng.standard_normal((n, 8)), C


def _offdiag_pearson(A, B):
    iu = np.triu_indices_from(A, 1)
    return np.corrcoef(A[iu], B[iu])[0, 1]


def test_planted_structure_is_recovered(rng):
    X, Y, C = _planted(rng)
    mtrl = MultiTaskRegressor(penalty="mtrl", alpha=0.05, l2=1e-3).fit(X, Y)
    assert _offdiag_pearson(mtrl.task_relation_, C) >= 0.9
    assert np.trace(mtrl.task_covariance_) == pytest.approx(1.0)
    assert np.linalg.eigvalsh(mtrl.task_covariance_).min() > 0
    graph = MultiTaskRegressor(penalty="graph", alpha=0.05, task_relation="auto").fit(X, Y)
    assert _offdiag_pearson(graph.task_relation_, C) >= 0.9
    learn = MultiTaskRegressor(penalty="graph", alpha=0.05, l2=1e-3,
                               task_relation="learn").fit(X, Y)
    np.testing.assert_allclose(learn.task_relation_, mtrl.task_relation_, atol=1e-8)


def test_mtrl_classifier_with_missing_labels(rng):
    X, Yr, C = _planted(rng, n=400, d=40)
    Y = (Yr > 0).astype(float)
    Y[rng.random(Y.shape) < 0.3] = np.nan
    m = MultiTaskClassifier(penalty="mtrl", alpha=0.01, l2=1e-3).fit(X, Y)
    assert m.task_relation_.shape == (8, 8) and m.score(X, Y) > 0.8


def _mtrl_alternation(X, Y, alpha, l2, n_rounds):
    """Zhang & Yeung's own algorithm, written out: the exact W-step for a fixed Omega (a
    Sylvester equation for squared loss, every label present, no intercept) alternated
    with Omega = (W^T W)^(1/2) / tr(.). Returns W, Omega and the objective."""
    import scipy.linalg

    n, T = Y.shape
    K, H = X.T @ X / n, X.T @ Y / n
    Omega = np.eye(T) / T
    for _ in range(n_rounds):
        W = scipy.linalg.solve_sylvester(K, alpha * np.linalg.inv(Omega) + l2 * np.eye(T), H)
        Omega = penalties.MTRL.update(W)
    W = scipy.linalg.solve_sylvester(K, alpha * np.linalg.inv(Omega) + l2 * np.eye(T), H)
    F = (0.5 * np.sum((X @ W - Y) ** 2) / n + 0.5 * alpha * np.trace(
        W @ np.linalg.inv(Omega) @ W.T) + 0.5 * l2 * np.sum(W * W))
    return W, Omega, F


@pytest.mark.parametrize("d, T", [(8, 4), (4, 7)])
def test_mtrl_equals_the_alternating_algorithm(rng, d, T):
    """The estimator's one-pass solve of 1/2 alpha ||W||_*^2 + 1/2 l2 ||W||^2 reaches the
    optimum of the paper's alternation: the same W and Omega when d >= T; when d < T
    (Omega singular at the optimum, where the alternation only creeps towards it) an
    objective no higher than the alternation's after many rounds."""
    n, alpha, l2 = 150, 0.05, 1e-3
    X = rng.standard_normal((n, d))
    Y = X @ rng.standard_normal((d, T)) + 0.3 * rng.standard_normal((n, T))
    m = MultiTaskRegressor(penalty="mtrl", alpha=alpha, l2=l2, fit_intercept=False,
                           tol=1e-12, max_iter=100000).fit(X, Y)
    W = m.coef_.T
    F = (0.5 * np.sum((X @ W - Y) ** 2) / n
         + 0.5 * alpha * np.linalg.svd(W, compute_uv=False).sum() ** 2
         + 0.5 * l2 * np.sum(W * W))
    assert m.objective_trace_[-1] == pytest.approx(F, rel=1e-10)
    W_alt, Om_alt, F_alt = _mtrl_alternation(X, Y, alpha, l2, 300)
    if d >= T:
        np.testing.assert_allclose(W, W_alt, atol=1e-6)
        np.testing.assert_allclose(m.task_covariance_, Om_alt, atol=1e-6)
        assert F == pytest.approx(F_alt, rel=1e-9)
    else:
        assert F <= F_alt * (1 + 1e-9)
        assert F_alt - F < 1e-3 * F  # the alternation is close, just slow
        lam = np.linalg.eigvalsh(m.task_covariance_)
        assert np.sum(lam > 1e-4 * lam.max()) <= d  # singular up to the tiny ridge
    # tr(W Omega^-1 W^T) at the closed-form Omega is the squared nuclear norm
    nuc = np.linalg.svd(W, compute_uv=False).sum()
    assert np.trace(W @ np.linalg.pinv(m.task_covariance_, hermitian=True, rcond=1e-8)
                    @ W.T) == pytest.approx(nuc ** 2, rel=1e-4)


def test_mtrl_prox_is_the_squared_nuclear_norm_prox(rng):
    """prox of tau/2 ||W||_*^2 minimises 1/2 ||V - W||^2 + tau/2 ||V||_*^2: no random
    perturbation of the returned point does better."""
    pen = penalties.MTRL()
    W = rng.standard_normal((6, 5))
    for tau in (0.01, 0.3, 5.0):
        P = pen.prox(W, tau)

        def f(V):
            return 0.5 * np.sum((V - W) ** 2) + tau / 2 * pen.value(V, 1.0) * 2 / 1.0

        base = f(P)
        for _ in range(200):
            assert f(P + 1e-3 * rng.standard_normal(W.shape)) >= base - 1e-12
        assert pen.value(P, 1.0) == pytest.approx(
            0.5 * np.linalg.svd(P, compute_uv=False).sum() ** 2)
    np.testing.assert_array_equal(pen.prox(W, 0.0), W)
    assert pen.prox(np.zeros((3, 2)), 1.0).shape == (3, 2)


def _relation_by_pairs(Y, M, sw, min_overlap=3):
    """The overlap correlations, pair by pair with np.average (two-pass)."""
    T = Y.shape[1]
    R = np.eye(T)
    for s in range(T):
        for t in range(s + 1, T):
            both = M[:, s] & M[:, t] & (sw > 0)
            if both.sum() < min_overlap:
                continue
            a, b, w = Y[both, s], Y[both, t], sw[both]
            da, db = a - np.average(a, weights=w), b - np.average(b, weights=w)
            va, vb = np.average(da * da, weights=w), np.average(db * db, weights=w)
            r = 0.0 if va <= 1e-14 or vb <= 1e-14 else np.average(da * db, weights=w) / np.sqrt(
                va * vb)
            R[s, t] = R[t, s] = r
    return R


def test_estimate_task_relation_matches_pairwise_reference(rng):
    """The all-pairs matrix form equals a pair-by-pair weighted Pearson: partial overlaps,
    sample weights (zeros included), large offsets, a constant task, too-small overlaps."""
    n, T = 300, 7
    Y = rng.standard_normal((n, T)) @ rng.standard_normal((T, T)) + 1e4
    Y[:, 5] = 3.0  # constant: 0 with every task
    M = rng.random((n, T)) < 0.6
    M[:, 6] = False
    M[:4, 6] = True  # task 6 overlaps the others on at most 4 rows
    sw = rng.random(n) * 2
    sw[::7] = 0.0
    Ym = np.where(M, Y, np.nan)
    R = estimate_task_relation(Ym, sample_weight=sw, min_overlap=3)
    ref = _relation_by_pairs(Y, M, sw)
    np.testing.assert_allclose(R, ref, atol=1e-9)
    assert np.all(R[5, :5] == 0) and np.all(np.abs(R) <= 1)


def test_relation_sums_by_row_blocks(rng):
    """The relation's pair sums with missing labels go by blocks of rows (the whole-array
    expressions made about ten (n, T) float64 temporaries): the same matrix as the
    pairwise reference for NaN-marked targets, for targets with a mask and anything at the
    unlabelled entries (integers, a missing-label value), and over many blocks."""
    from mtlclassic.multitask import _relation

    n, T = 3000, 6
    Y = rng.standard_normal((n, T)) @ rng.standard_normal((T, T))
    M = rng.random((n, T)) < 0.5
    sw = rng.random(n) * 2
    sw[::5] = 0.0
    ref = _relation_by_pairs(Y, M, sw)
    R = estimate_task_relation(np.where(M, Y, np.nan), sample_weight=sw)
    np.testing.assert_allclose(R, ref, atol=1e-9)
    np.testing.assert_allclose(estimate_task_relation(np.where(M, Y, -1.0), M,
                                                      sample_weight=sw), R, atol=1e-12)
    Yi = np.round(Y * 3).astype(np.int64)  # integer targets, read a block at a time
    np.testing.assert_allclose(estimate_task_relation(Yi, M, sample_weight=sw),
                               _relation_by_pairs(Yi.astype(float), M, sw), atol=1e-9)
    whole = _relation._masked_sums(Y, M, sw, block_bytes=1 << 40)  # one block
    parts = _relation._masked_sums(Y, M, sw, block_bytes=8 * T * 7)  # blocks of 7 rows
    for k in whole:
        np.testing.assert_allclose(parts[k], whole[k], rtol=1e-11, atol=1e-9)


def test_relation_mask_of_another_shape_is_refused(rng):
    """A mask must have Y's shape (a 1-D mask with 1-D Y is one task's): anything else is a
    clear ValueError, not NumPy's broadcasting error or a silently broadcast mask."""
    y = rng.standard_normal(50)
    m = rng.random(50) < 0.7
    np.testing.assert_array_equal(estimate_task_relation(y, m),
                                  estimate_task_relation(np.where(m, y, np.nan)))
    Y = rng.standard_normal((50, 3))
    for bad in (m[:, None], m, np.ones((3,), dtype=bool), np.ones((50, 4), dtype=bool)):
        with pytest.raises(ValueError, match="mask must have Y's shape"):
            estimate_task_relation(Y, bad)


@pytest.mark.parametrize("arg", ["G", "G_grouped"])
@pytest.mark.parametrize("layout", ["float32", "fortran", "strided"])
def test_native_loss_refuses_an_output_it_would_copy(layout, arg):
    """G is written in place: a float32, Fortran-ordered or strided G is a TypeError (it
    was converted to a float64 copy, written and dropped: the caller's G untouched)."""
    from mtlclassic.backend._native import require_cpu

    cpu = require_cpu()
    Z, Y, A = np.zeros((6, 3)), np.ones((6, 3)), np.ones((6, 3))
    G = {"float32": np.zeros((6, 3), dtype=np.float32), "fortran": np.zeros((6, 3), order="F"),
         "strided": np.zeros((6, 6))[:, ::2]}[layout]
    with pytest.raises(TypeError):
        if arg == "G":
            cpu.loss_grad(Z, Y, A, G, 1, 1)
        else:
            cpu.loss_grad_grouped(Z, Y, A, G, np.ones(3, dtype=np.int32), 1, 1)


def _plain_ridge_relation(Y, X, alpha=1.0):
    """The correlation of independent per-task ridge weights (each shrunk towards zero)."""
    W = np.zeros((X.shape[1], Y.shape[1]))
    for t in range(Y.shape[1]):
        r = ~np.isnan(Y[:, t])
        Xc, yc = X[r] - X[r].mean(0), Y[r, t] - Y[r, t].mean()
        W[:, t] = np.linalg.solve(Xc.T @ Xc + alpha * r.sum() * np.eye(X.shape[1]), Xc.T @ yc)
    return np.corrcoef(W.T)


def _disjoint_tasks(rng, n_t, sign, spread=0.5, noise=0.5, d=10):
    T = len(sign)
    w0 = rng.standard_normal(d)
    Wtrue = sign * w0[:, None] + spread * rng.standard_normal((d, T))
    X = rng.standard_normal((T * n_t, d))
    task = np.repeat(np.arange(T), n_t)
    Y = np.full((T * n_t, T), np.nan)
    Y[np.arange(T * n_t), task] = np.einsum("ij,ji->i", X, Wtrue[:, task]) \
        + noise * rng.standard_normal(T * n_t)
    return X, Y, Wtrue, task


def test_relation_of_small_disjoint_tasks(rng):
    """40 disjoint tasks of 8 samples (fewer than the 10 features) in two opposite groups:
    the relation estimated from weights shrunk towards the pooled model by maximum marginal
    likelihood has the true signs and tracks the true weight correlations better than
    independent ridge fits; tasks that share one model come out close to all ones."""
    sign = np.where(np.arange(40) < 30, 1.0, -1.0)
    X, Y, Wtrue, task = _disjoint_tasks(rng, 8, sign)
    off = ~np.eye(40, dtype=bool)
    truth = np.corrcoef(Wtrue.T)[off]
    R = estimate_task_relation(Y, X=X)
    assert np.mean(np.sign(R[off]) == np.sign(truth)) > 0.9
    pearson = np.corrcoef(R[off], truth)[0, 1]
    assert pearson > 0.85
    assert pearson > np.corrcoef(_plain_ridge_relation(Y, X)[off], truth)[0, 1]
    X1, Y1, _, _ = _disjoint_tasks(rng, 8, np.ones(40), spread=0.0, noise=0.3)
    R1 = estimate_task_relation(Y1, X=X1)[off]
    assert R1.mean() > 0.9 and R1.min() > 0.7
    assert R1.mean() > _plain_ridge_relation(Y1, X1)[off].mean()


def test_relation_sample_weights_are_repeated_samples(rng):
    X, Y, _, task = _disjoint_tasks(rng, 12, np.where(np.arange(8) < 5, 1.0, -1.0))
    w = rng.integers(0, 3, len(X)).astype(float)
    rep = np.repeat(np.arange(len(X)), w.astype(int))
    np.testing.assert_allclose(estimate_task_relation(Y, X=X, sample_weight=w),
                               estimate_task_relation(Y[rep], X=X[rep]), atol=1e-10)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_closed_form_in_sample_space_for_wide_x(fit_intercept):
    """n < d: the Sylvester equation solved in sample space (n x n) equals Bartels-Stewart
    on the d x d one, for a full coupling Q, unequal task and sample weights (review: a
    20 x 5000 ridge fit took 42 s in solve_sylvester)."""
    import scipy.linalg

    from mtlclassic.multitask import _solver

    rng = np.random.default_rng(3)
    n, d, T = 25, 240, 4
    X, Y = rng.standard_normal((n, d)), rng.standard_normal((n, T))
    sw, rho = rng.random(n) + 0.5, rng.random(T) + 0.5
    M = rng.standard_normal((T, T))
    Q = M @ M.T + 0.1 * np.eye(T)
    W, b = _solver.closed_form(X, Y, sw, rho, Q, fit_intercept)
    N = sw.sum()
    xm, ym = (sw @ X / N, sw @ Y / N) if fit_intercept else (np.zeros(d), np.zeros(T))
    Xc, Yc = X - xm, Y - ym
    W0 = scipy.linalg.solve_sylvester((Xc.T * sw) @ Xc / N, Q / rho[None, :],
                                      (Xc.T * sw) @ Yc / N)
    np.testing.assert_allclose(W, W0, rtol=1e-10, atol=1e-12 * np.abs(W0).max())
    np.testing.assert_allclose(b, ym - xm @ W0, rtol=1e-10, atol=1e-12)
    # and through the estimator: scikit-learn's Ridge on wide data
    Xw = rng.standard_normal((20, 3000))
    Yw = rng.standard_normal((20, 3))
    m = MultiTaskRegressor(penalty="ridge", alpha=0.1, fit_intercept=fit_intercept).fit(Xw, Yw)
    r = Ridge(alpha=0.1 * 20, fit_intercept=fit_intercept).fit(Xw, Yw)
    np.testing.assert_allclose(m.coef_, r.coef_, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("bad", ["X", "y", "sample_weight"])
def test_refused_refit_keeps_the_fitted_model(bad):
    """Review: a refit refused for NaN in X (checked after validate_data, which sets
    n_features_in_), and then one refused for y or the weights after the new X was
    checked, left the refused X's n_features_in_ on the old model (predict on its own data
    failed). A refused fit now puts the whole fitted state back."""
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((30, 5)), rng.standard_normal((30, 2))
    m = MultiTaskRegressor(penalty="ridge").fit(X, Y)
    before = {k: v for k, v in m.__dict__.items() if k.endswith("_")}
    X2, Y2, sw = rng.standard_normal((30, 7)), Y.copy(), None
    if bad == "X":
        X2[0, 0] = np.nan
    elif bad == "y":
        Y2[:, 0] = np.nan
    else:
        sw = -np.ones(30)
    with pytest.raises(ValueError):
        m.fit(X2, Y2, sample_weight=sw)
    assert m.n_features_in_ == 5
    assert {k: v for k, v in m.__dict__.items() if k.endswith("_")}.keys() == before.keys()
    np.testing.assert_array_equal(m.coef_, before["coef_"])
    m.predict(X)


@pytest.mark.parametrize("cv", [False, True])
def test_a_refit_with_another_penalty_drops_the_earlier_fits_attributes(cv):
    """Review: task_covariance_ of an MTRL fit survived a refit with penalty='l21' (and,
    second review, the CV estimators' refit; and lipschitz_, FISTA's step bound, which a
    warm start reads, a refit by another solver)."""
    from mtlclassic.multitask import MultiTaskRegressorCV

    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((40, 5)), rng.standard_normal((40, 3))
    m = MultiTaskRegressorCV(penalty="mtrl", alphas=3, cv=2) if cv else \
        MultiTaskRegressor(penalty="mtrl")
    m.fit(X, Y)
    assert hasattr(m, "task_covariance_") and hasattr(m, "lipschitz_")
    m.set_params(penalty="l21").fit(X, Y)
    assert not hasattr(m, "task_covariance_") and not hasattr(m, "lipschitz_")


def test_an_interrupted_cv_refit_keeps_the_fitted_model(monkeypatch):
    """Second review: the CV estimators set alpha_ and cv_results_ before their final
    refit; a refit interrupted there left them describing the new search beside the old
    coef_. The whole fitted state is put back."""
    from mtlclassic.multitask import MultiTaskRegressorCV

    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((40, 5)), rng.standard_normal((40, 3))
    m = MultiTaskRegressorCV(penalty="ridge", alphas=3, cv=2).fit(X, Y)
    before = dict(m.__dict__)
    real = MultiTaskRegressor.fit
    calls = []

    def fit(self, *args, **kw):
        calls.append(1)
        if len(calls) == 7:  # 3 alphas x 2 folds, then the final refit
            raise KeyboardInterrupt
        return real(self, *args, **kw)

    monkeypatch.setattr(MultiTaskRegressor, "fit", fit)
    with pytest.raises(KeyboardInterrupt):
        m.fit(X[:30], Y[:30] * 2)
    assert len(calls) == 7 and m.__dict__.keys() == before.keys()
    assert m.alpha_ == before["alpha_"] and m.cv_results_ is before["cv_results_"]
    np.testing.assert_array_equal(m.coef_, before["coef_"])
