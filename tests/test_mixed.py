"""MultiTaskEstimator: regression and classification tasks in one model (issue 13 §2)."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks

from mtlclassic.backend._native import require_cpu
from mtlclassic.multitask import (MultiTaskClassifier, MultiTaskEstimator,
                                  MultiTaskRegressor, _labels, _losses, _solver)

TIGHT = dict(tol=1e-10, max_iter=20000)


def _data(rng, n=240, d=8, n_reg=3, n_cls=2, multiclass=True, missing=0.0):
    """Shared-signal data: n_reg regression columns (pixel-like scale) then n_cls
    classification columns (the last one 3-class when multiclass)."""
    X = rng.standard_normal((n, d))
    W = rng.standard_normal((d, 1)) + 0.5 * rng.standard_normal((d, n_reg + n_cls))
    Z = X @ W
    reg = 40.0 * (Z[:, :n_reg] + 0.3 * rng.standard_normal((n, n_reg))) + 100.0
    cls = []
    for k in range(n_cls):
        z = Z[:, n_reg + k] + 0.5 * rng.standard_normal(n)
        if multiclass and k == n_cls - 1:
            cls.append(np.digitize(z, np.quantile(z, [1 / 3, 2 / 3])).astype(float))
        else:
            cls.append((z > 0).astype(float))
    Y = np.column_stack([reg] + cls)
    if missing:
        Y[rng.random(Y.shape) < missing] = np.nan
    return X, Y, ["regression"] * n_reg + ["classification"] * n_cls


# ------------------------------------------------------------------ kernel
def test_grouped_kernel_squared_columns_match_reference(rng):
    """group -1 (a squared column) beside logistic columns and a softmax task: the native
    pass equals the NumPy reference."""
    n = 57
    group = np.array([-1, 1, 3, 0, 0, -1, 1], dtype=np.int32)
    Z = rng.standard_normal((n, 7)) * 3
    Y = np.where(rng.random((n, 7)) < 0.5, 1.0, -1.0)
    Y[:, [0, 5]] = rng.standard_normal((n, 2)) * 10
    k = rng.integers(0, 3, n)
    Y[:, 2:5] = -1.0
    Y[np.arange(n), 2 + k] = 1.0
    A = rng.random((n, 7)) * (rng.random((n, 7)) < 0.8)
    for kind in ("logistic", "squared"):
        code = _losses.KINDS[kind]
        G = np.empty_like(Z)
        loss = require_cpu().loss_grad_grouped(Z, Y, A, G, group, code, 2)
        ref_loss, ref_G = _losses.grouped_numpy(Z, Y, A, group, kind)
        assert loss == pytest.approx(ref_loss, rel=1e-12)
        np.testing.assert_allclose(G, ref_G, rtol=1e-12, atol=1e-15)
    # column 0 really is squared: 1/2 a (z - y)^2
    G = np.empty_like(Z)
    g1 = np.array([-1, 1, 1, 1, 1, 1, 1], dtype=np.int32)
    require_cpu().loss_grad_grouped(Z, Y, A, G, g1, 1, 1)
    np.testing.assert_allclose(G[:, 0], A[:, 0] * (Z[:, 0] - Y[:, 0]))


@pytest.mark.parametrize("bad", [[-2, 1, 1], [2, 1, 1], [1, 3, 0], [0, 1, 1]])
def test_grouped_kernel_refuses_bad_layouts(bad):
    Z = np.zeros((4, 3))
    with pytest.raises(ValueError, match="group"):
        require_cpu().loss_grad_grouped(Z, Z, Z, np.empty_like(Z),
                                        np.array(bad, dtype=np.int32), 1, 1)


# --------------------------------------------------------------- identities
@pytest.mark.parametrize("penalty", ["ridge", "graph", "l21", "trace", "mtrl"])
def test_all_regression_equals_regressor(rng, penalty):
    X, Y, _ = _data(rng, n_cls=0, missing=0.15)
    kw = dict(penalty=penalty, alpha=0.05, l2=1e-3, **TIGHT)
    ref = MultiTaskRegressor(**kw).fit(X, Y)
    mix = MultiTaskEstimator(scale_targets=False, **kw).fit(X, Y)
    assert mix.task_types_ == ["regression"] * 3
    np.testing.assert_allclose(mix.coef_, ref.coef_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mix.predict(X), ref.predict(X), rtol=1e-6, atol=1e-5)


def test_all_regression_scaled_equals_regressor_on_scaled_targets(rng):
    X, Y, _ = _data(rng, n_cls=0, missing=0.1)
    s = np.nanstd(Y, axis=0)
    kw = dict(penalty="l21", alpha=0.05, **TIGHT)
    ref = MultiTaskRegressor(**kw).fit(X, Y / s)
    mix = MultiTaskEstimator(**kw).fit(X, Y)
    np.testing.assert_allclose(mix.target_scale_, s)
    np.testing.assert_allclose(mix.coef_, ref.coef_ * s[:, None], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(mix.intercept_, ref.intercept_ * s, rtol=1e-6)
    assert mix.objective_ == pytest.approx(ref.objective_, rel=1e-8)


@pytest.mark.parametrize("loss", ["logistic", "multinomial"])
@pytest.mark.parametrize("penalty", ["graph", "l21", "trace"])
def test_all_classification_equals_classifier(rng, penalty, loss):
    X, Y, _ = _data(rng, n_reg=0, n_cls=3, missing=0.1)
    kw = dict(penalty=penalty, alpha=0.02, l2=1e-3, loss=loss, **TIGHT)
    ref = MultiTaskClassifier(**kw).fit(X, Y)
    mix = MultiTaskEstimator(**kw).fit(X, Y)
    np.testing.assert_allclose(mix.coef_, ref.coef_, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(mix.predict(X), ref.predict(X))
    for p, q in zip(mix.predict_proba(X), ref.predict_proba(X)):
        np.testing.assert_allclose(p, q, atol=1e-7)


@pytest.mark.parametrize("loss", ["logistic", "multinomial"])
def test_uncoupled_mixed_equals_separate_fits(rng, loss):
    """ridge does not couple the tasks: the mixed fit is a regressor on y / sigma (scaled
    back) beside a classifier, with missing labels and per-entry sample weights."""
    X, Y, types = _data(rng, missing=0.1)
    SW = rng.uniform(0.5, 2.0, Y.shape)
    kw = dict(penalty="ridge", alpha=0.03, **TIGHT)
    mix = MultiTaskEstimator(loss=loss, **kw).fit(X, Y, sample_weight=SW)
    s = mix.target_scale_[:3]
    np.testing.assert_allclose(s, np.nanstd(Y[:, :3], axis=0))
    reg = MultiTaskRegressor(**kw).fit(X, Y[:, :3] / s, sample_weight=SW[:, :3])
    clf = MultiTaskClassifier(loss=loss, **kw).fit(X, Y[:, 3:], sample_weight=SW[:, 3:])
    # the objective is separable: the sum of the two fits' objectives (each within its
    # duality gap of its optimum)
    gaps = mix.dual_gap_ + reg.dual_gap_ + clf.dual_gap_
    assert abs(mix.objective_ - reg.objective_ - clf.objective_) <= gaps + 1e-12
    # (a gap of 1e-10 of the objective bounds the weights to about 1e-5 here)
    reg_rows = np.flatnonzero(mix.subtask_task_ < 3)
    np.testing.assert_allclose(mix.coef_[reg_rows] / s[:, None], reg.coef_, rtol=1e-3,
                               atol=1e-4)
    np.testing.assert_allclose(mix.coef_[len(reg_rows):], clf.coef_, rtol=1e-3, atol=1e-4)
    P = mix.predict(X)
    np.testing.assert_allclose(P[:, :3] / s, reg.predict(X), atol=1e-4)
    np.testing.assert_array_equal(P[:, 3:], clf.predict(X))


# -------------------------------------------------------------- certificate
@pytest.mark.parametrize("penalty", ["l21", "trace", "graph", "mean", "mtrl"])
def test_coupled_mixed_fit_is_certified(rng, penalty, model_objective):
    """A coupled fit converges on its duality gap (no warning at tol 1e-9), and its
    objective is within the gap of a much tighter reference fit's."""
    X, Y, _ = _data(rng, missing=0.2)
    kw = dict(penalty=penalty, alpha=0.05, l2=1e-3, max_iter=50000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est = MultiTaskEstimator(tol=1e-6, **kw).fit(X, Y)
        ref = MultiTaskEstimator(tol=1e-12, **kw).fit(X, Y)
    if penalty != "mtrl":  # mtrl: the gap of its equivalent squared-trace problem
        assert 0 <= est.dual_gap_ <= 1e-6 * est._null_scale_
        assert est.objective_ - ref.objective_ <= est.dual_gap_ + 1e-12
    assert est.objective_ >= ref.objective_ - 1e-9 * abs(ref.objective_)


def test_mixed_dual_point_is_feasible_and_tight(rng):
    """The mixed oracle's dual objective never exceeds the primal (weak duality) at
    arbitrary points, and meets it at the optimum."""
    X, Y, _ = _data(rng, missing=0.2)
    est = MultiTaskEstimator(penalty="l21", alpha=0.05, **TIGHT).fit(X, Y)
    Y2, _ = _labels.as_2d_targets(Y)
    miss = _labels.missing_mask(Y2)
    Yenc, mask, owner = est._encode(Y2, miss)
    group = est._loss_groups(owner)
    A = mask / mask.sum(axis=0)
    Xc = X - X.mean(axis=0)
    loss = _losses.native_loss("logistic", group=group)
    from mtlclassic.multitask.penalties import get_penalty

    pen = get_penalty("l21")
    Q = pen.matrix(0.05, 0.0, Yenc.shape[1], None)
    oracle = _solver.DataOracle(Xc, Yenc, A, loss, Q, True, "logistic", group=group)
    assert oracle.kind == "mixed"
    for _ in range(5):
        W = rng.standard_normal((X.shape[1], Yenc.shape[1])) * 0.3
        b = rng.standard_normal(Yenc.shape[1])
        lin = oracle.linear(W, b)
        f, aux = oracle.value(W, b, lin)
        P = f + pen.value(W, 0.05)
        gap, D = _solver.duality_gap(oracle, pen, 0.05, Q, W, b, lin, aux, P)
        assert np.isfinite(D) and gap >= -1e-12
    assert est.dual_gap_ <= 1e-10 * est._null_scale_


# ------------------------------------------------------------ using the model
def test_predict_types_and_proba(rng):
    X, Y, _ = _data(rng)
    Yo = Y.astype(object)
    Yo[:, 3] = np.where(Y[:, 3] > 0, "smile", "no smile")
    est = MultiTaskEstimator(penalty="l21", alpha=0.02).fit(X, Yo)
    assert est.task_types_ == ["regression"] * 3 + ["classification"] * 2
    assert list(est.classes_[3]) == ["no smile", "smile"] and est.classes_[0] is None
    P = est.predict(X)
    assert P.dtype == object and isinstance(P[0, 0], float) and isinstance(P[0, 3], str)
    proba = est.predict_proba(X)
    assert proba[0] is None and proba[3].shape == (len(X), 2) and proba[4].shape == (len(X), 3)
    np.testing.assert_allclose(proba[4].sum(axis=1), 1.0)
    # numeric labels: one float array
    est2 = MultiTaskEstimator(penalty="l21", alpha=0.02).fit(X, Y)
    P2 = est2.predict(X)
    assert P2.dtype == np.float64 and set(np.unique(P2[:, 4])) <= {0.0, 1.0, 2.0}
    # regression predictions in the original units, better than the mean
    r2 = est2.score(X, Y)
    assert 0.5 < r2 <= 1.0
    np.testing.assert_allclose(est2.decision_function(X)[0], P2[:, 0])
    np.testing.assert_allclose(X @ est2.coef_[0] + est2.intercept_[0], P2[:, 0])
    # pickles
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(est2)).predict(X), P2)


def test_auxiliary_tasks_help_a_small_regression_task(rng):
    """The point of the model: a regression task with few labels borrows strength from
    classification tasks on the same features through l21."""
    n, d = 400, 60
    X = rng.standard_normal((n, d))
    support = rng.choice(d, 6, replace=False)
    W = np.zeros((d, 5))
    W[support] = rng.standard_normal((6, 5))
    Z = X @ W
    Y = np.column_stack([Z[:, 0] + 0.5 * rng.standard_normal(n)]
                        + [(Z[:, k] + 0.3 * rng.standard_normal(n) > 0) for k in range(1, 5)]
                        ).astype(float)
    Y[40:, 0] = np.nan  # the regression task has 40 labels
    Xt = rng.standard_normal((2000, d))
    yt = Xt @ W[:, 0]
    types = ["regression"] + ["classification"] * 4

    def best(Xf, Yf, tt):  # each model at its best alpha of the grid (the same grid)
        return min(np.mean((np.asarray(MultiTaskEstimator(
            penalty="l21", alpha=a, task_types=tt).fit(Xf, Yf).predict(Xt),
            dtype=float).reshape(len(Xt), -1)[:, 0] - yt) ** 2)
            for a in (0.01, 0.02, 0.05, 0.1))

    assert best(X, Y, types) < 0.7 * best(X[:40], Y[:40, :1], ["regression"])


def test_warm_start_and_one_task(rng):
    X, Y, _ = _data(rng)
    est = MultiTaskEstimator(penalty="trace", alpha=0.05, tol=1e-8, warm_start=True)
    est.fit(X, Y)
    n1, coef = est.n_iter_, est.coef_.copy()
    est.fit(X, Y)  # from the solution: the first certificate check passes
    assert est.n_iter_ <= 2
    np.testing.assert_allclose(est.coef_, coef, rtol=1e-5, atol=1e-6)
    assert n1 > 2
    one = MultiTaskEstimator(penalty="ridge", alpha=0.05).fit(X, Y[:, 0])
    assert one.predict(X).shape == (len(X),)


def test_integer_valued_auto_types_and_warning(rng):
    X = rng.standard_normal((300, 4))
    y_pix = np.round(X[:, 0] * 30 + 100)  # integer-valued pixel coordinates
    with pytest.warns(UserWarning, match="task_types"):
        est = MultiTaskEstimator(penalty="ridge").fit(X, y_pix)
    assert est.task_types_ == ["classification"]
    est = MultiTaskEstimator(penalty="ridge", task_types=["regression"]).fit(X, y_pix)
    assert est.task_types_ == ["regression"]


def test_device_fit_body_mixed_float32(rng, model_objective):
    """The GPU fit's body (FISTA in float32, per-column curvature, the grouped loss) run
    with NumPy: it reaches the float64 CPU objective."""
    X, Y, _ = _data(rng, missing=0.1)
    kw = dict(penalty="l21", alpha=0.05, tol=1e-7, max_iter=20000)
    cpu = MultiTaskEstimator(**kw).fit(X, Y)
    est = MultiTaskEstimator(**kw)
    pen = est._check_params()
    Y2, one_d = _labels.as_2d_targets(Y)
    miss = _labels.missing_mask(Y2)
    Yenc, mask, owner = est._encode(Y2, miss)
    group = est._loss_groups(owner)
    A = mask / mask.sum(axis=0)
    est.n_features_in_ = X.shape[1]

    def loss(Z, Yb, Ab):
        lv, G = _losses.grouped_numpy(Z.astype(np.float64), Yb.astype(np.float64),
                                      Ab.astype(np.float64), group)
        return lv, G.astype(Z.dtype)

    est._fit_arrays(np, np.float32, loss, pen, X, Yenc, A, np.ones(len(X)),
                    np.ones(len(owner)), mask, owner, Y2.shape[1], one_d, X, group=group)
    assert est.coef_.dtype == np.float32
    assert est.objective_ == pytest.approx(cpu.objective_, rel=1e-5)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("kw, match", [
    (dict(task_types=["regression"]), "task_types has 1 entries but y has 5"),
    (dict(task_types=["regression"] * 4 + ["ordinal"]), "'regression' or 'classification'"),
    (dict(task_types="regression"), "task_types must be 'auto' or a sequence"),
    (dict(loss="hinge"), "loss must be"),
    (dict(scale_targets="yes"), "scale_targets"),
    (dict(class_weight=[{1.0: 2.0}] + [None] * 4), "regression task"),
])
def test_bad_parameters(rng, kw, match):
    X, Y, _ = _data(rng)
    with pytest.raises(ValueError, match=match):
        MultiTaskEstimator(**kw).fit(X, Y)


def test_bad_targets(rng):
    X, Y, _ = _data(rng)
    Yo = Y.astype(object)
    Yo[:5, 0] = "far"
    with pytest.raises(ValueError, match="regression tasks"):
        MultiTaskEstimator(task_types=["regression"] * 3 + ["classification"] * 2).fit(X, Yo)
    Y1 = Y.copy()
    Y1[:, 3] = 1.0
    with pytest.raises(ValueError, match="task 3 has only one class"):  # not "task 0"
        MultiTaskEstimator().fit(X, Y1)
    Ym = Y.astype(object)
    Ym[:5, 4] = "x"
    with pytest.raises(ValueError, match="task 4: labels of mixed types"):
        MultiTaskEstimator().fit(X, Ym)
    Yi = Y.copy()
    Yi[2, 4] = np.inf
    with pytest.raises(ValueError, match="task 4 of Y: .*infinity"):
        MultiTaskEstimator().fit(X, Yi)
    with pytest.raises(ValueError, match="has no task"):  # was "need at least one array"
        MultiTaskEstimator().fit(X, Y[:, :0])
    with pytest.raises(ValueError, match="has no task"):  # was a silent 0-task fit
        MultiTaskRegressor().fit(X, Y[:, :0])
    Y2 = Y.copy()
    Y2[:, 1] = np.nan
    with pytest.raises(ValueError, match="task 1 has no labelled sample"):
        MultiTaskEstimator().fit(X, Y2)
    Y3 = Y.copy()
    Y3[3, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        MultiTaskEstimator().fit(X, Y3)


def test_class_weight_balanced_only_on_classification(rng):
    X, Y, _ = _data(rng)
    est = MultiTaskEstimator(penalty="ridge", alpha=0.03, class_weight="balanced",
                             **TIGHT).fit(X, Y)
    clf = MultiTaskClassifier(penalty="ridge", alpha=0.03, class_weight="balanced",
                              **TIGHT).fit(X, Y[:, 3:])
    assert abs(est.objective_ - clf.objective_ - MultiTaskRegressor(
        penalty="ridge", alpha=0.03, **TIGHT).fit(X, Y[:, :3] / est.target_scale_[:3]).objective_
               ) <= 1e-9 * est._null_scale_
    np.testing.assert_allclose(est.coef_[3:], clf.coef_, rtol=1e-3, atol=1e-4)


@parametrize_with_checks([MultiTaskEstimator(penalty=p, alpha=1e-2, l2=1e-3)
                          for p in ("ridge", "graph", "l21", "trace")])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_mixed_l21_never_takes_the_single_loss_working_set_solver(rng):
    """The working-set BCD solver runs one element-wise loss over every column: a mixed
    model uses FISTA, and asking for 'bcd' is refused."""
    X, Y, _ = _data(rng)
    assert MultiTaskEstimator(penalty="l21", alpha=0.05).fit(X, Y).solver_ == "fista"
    with pytest.raises(ValueError, match="not mixed task types"):
        MultiTaskEstimator(penalty="l21", alpha=0.05, solver="bcd").fit(X, Y)
