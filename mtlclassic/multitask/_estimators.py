"""MultiTaskRegressor and MultiTaskClassifier."""

import functools
import math
import numbers
import warnings

import numpy as np
import scipy.sparse
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score
from sklearn.utils.validation import assert_all_finite, check_is_fitted, validate_data

from ..backend import (effective_n_threads, get_namespace, is_cupy_array, resolve_device,
                       to_numpy)
from ..backend.kernels import column_sums_top, device_free_bytes, loss_grad_cuda
from . import _dask, _labels, _losses, _solver, _workingset
from ._relation import check_task_relation, estimate_task_relation
from .penalties import MTRL, Ridge, get_penalty

_OBJECTIVE_DOC = """
    Objective, over W = [w_1 ... w_T'] (n_features x n_subtasks) and intercepts b:

        F(W, b) = sum_t rho_t / n_t sum_{i labelled in t} s_i l(y_it, x_i w_t + b_t) + Omega(W)

    with n_t = sum of s_i over the labelled samples of sub-task t (their number for unit
    weights, so that a weight of 2 is the same as repeating a sample), s_i sample weights, rho_t task weights and
    Omega the penalty (``mtlclassic.multitask.penalties``; alpha = lambda, l2 = mu):

    * ``ridge``: 1/2 (alpha + l2) ||W||^2 -- independent tasks;
    * ``mean``: tasks shrunk towards a common model w_0 (l2 penalises w_0);
    * ``graph``: 1/2 alpha sum_st |r_st| ||w_s - sign(r_st) w_t||^2 + 1/2 l2 ||W||^2 with
      the task relation R (``task_relation``);
    * ``l21``: alpha sum_j ||W_j||_2 + 1/2 l2 ||W||^2 -- shared feature selection.

    With one task and every label present the scaling is scikit-learn's: squared loss
    with ``l21`` is ``MultiTaskLasso(alpha)``; ``ridge`` with squared loss is
    ``Ridge(alpha * n)``; ``ridge`` with logistic loss is ``LogisticRegression(C=1 / (alpha
    * n))``.
"""


#: sparse X takes the Gram path (a dense d x d matrix) only up to this many features
GRAM_MAX_SPARSE_D = 4096


def _check_overflow(X):
    """Refuse X whose products overflow: the solvers form X^T X-sized sums (n terms of
    squares), which must stay finite in X's dtype."""
    n, d = X.shape
    if scipy.sparse.issparse(X):
        top = float(np.abs(X.data).max()) if X.nnz else 0.0
    else:
        xp = get_namespace(X)
        top = max(float(xp.max(X)), -float(xp.min(X))) if X.size else 0.0  # no |X| copy
    check_magnitude(top, n, d, X.dtype)


def _check_finite_and_magnitude(X, name):
    """The fit's checks of X -- every entry finite (scikit-learn's message otherwise) and
    no overflow (:func:`_check_overflow`) -- in one pass over a dense NumPy X. For a
    C-contiguous float32/float64 X that pass is the native :func:`column_sums_top`: X's
    column sums (finite only if every entry is) and max |x_ij|, and the sums are returned
    (the column means of a fit with free intercepts, the bits of ``X.sum(axis=0)``: the
    solver need not pass over X again; 0.7 ms instead of two passes of 1.7 ms on 500 x
    5000). Other contiguous X: s = sum x_ij^2 (one BLAS dot) is finite only if every entry
    is, and bounds max |x_ij| by sqrt(s). Where the sums or s are not finite or the bound
    is above the safe magnitude, the separate checks decide (and raise). Returns the
    column sums, or None."""
    if isinstance(X, np.ndarray) and X.ndim == 2 and X.size and X.flags.c_contiguous \
            and X.dtype in (np.float32, np.float64):
        sums, top = column_sums_top(X)
        limit = float(np.sqrt(np.finfo(X.dtype).max / max(*X.shape, 1)))
        if np.all(np.isfinite(sums)) and top <= limit:
            return sums
    else:
        v = X.ravel(order="K") if isinstance(X, np.ndarray) and (
            X.flags.c_contiguous or X.flags.f_contiguous) else None
        if v is not None and v.size:
            with np.errstate(all="ignore"):  # overflow, NaN: the checks below
                s = float(np.dot(v, v))
            limit = float(np.sqrt(np.finfo(X.dtype).max / max(*X.shape, 1)))
            if math.isfinite(s) and math.sqrt(s) <= 0.5 * limit:
                return None
    if not is_cupy_array(X):
        assert_all_finite(X, input_name="X", estimator_name=name)
    _check_overflow(X)
    return None


def guarded_fit(est, run, pen):
    """``run()`` (a fit of ``est`` with penalty ``pen``), so that a fit refused (bad y,
    weights, ...) or interrupted leaves a fitted model as it was: its state (the
    parameters are not changed by a fit) is put back whole (review: a y refused after the
    new X was checked kept the new X's n_features_in_ with the old coef_, and predict on
    the model's own data failed). After a fit, attributes of an earlier one that this fit
    does not make are dropped: ``task_covariance_`` (a penalty that does not learn it) and
    ``lipschitz_`` (a solver other than FISTA; a warm start would read it). Returns est."""
    before = dict(est.__dict__)
    try:
        run()
    except BaseException:
        est.__dict__.clear()
        est.__dict__.update(before)
        raise
    if not pen.learns_relation:
        est.__dict__.pop("task_covariance_", None)
    if getattr(est, "solver_", None) not in ("fista", "fista+bcd"):
        est.__dict__.pop("lipschitz_", None)
    return est


def check_magnitude(top, n, d, dtype):
    """The overflow test of _check_overflow from X's largest absolute value ``top``."""
    limit = float(np.sqrt(np.finfo(dtype).max / max(n, d, 1)))
    if top > limit:
        raise ValueError(f"X has values up to {top:.3g} in absolute value: sums of "
                         f"{max(n, d)} squares of such values overflow {dtype} (the largest "
                         f"safe magnitude here is {limit:.3g}); scale the features, e.g. "
                         "with sklearn.preprocessing.StandardScaler")


def check_solver(solver, closed_ok, pen):
    """Refuse a ``solver`` the problem does not allow (shared by the in-memory and the
    Dask fit): the closed form needs ``closed_ok``, L-BFGS a smooth penalty."""
    if solver == "closed_form" and not closed_ok:
        raise ValueError("solver='closed_form' needs squared loss, a smooth penalty "
                         "(ridge, mean, graph), every label present and one sample "
                         "weight per sample")
    if solver == "lbfgs" and not pen.smooth:
        raise ValueError(f"solver='lbfgs' needs a smooth penalty; {pen.name!r} is not "
                         "(use 'fista')")


def check_classification_loss(loss):
    if loss not in ("logistic", "multinomial"):
        raise ValueError(f"loss must be 'logistic' (one-vs-rest) or 'multinomial' "
                         f"(softmax per multi-class task), got {loss!r}")


class _BaseMultiTask(BaseEstimator):
    _loss_name = "squared"
    _mixed_types = False  # MultiTaskEstimator: regression and classification tasks

    def __init__(self, penalty="graph", alpha=1e-2, l2="auto", task_relation="auto", *,
                 fit_intercept=True, intercept_scaling=None, task_weight=None, max_iter=2000,
                 tol=1e-4, warm_start=False, solver="auto", device="auto", n_jobs=None,
                 verbose=0, missing_label=None):
        self.penalty = penalty
        self.alpha = alpha
        self.l2 = l2
        self.task_relation = task_relation
        self.fit_intercept = fit_intercept
        self.intercept_scaling = intercept_scaling
        self.task_weight = task_weight
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start
        self.solver = solver
        self.device = device
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.missing_label = missing_label

    # --------------------------------------------------------------- checks
    def _check_params(self):
        pen = get_penalty(self.penalty)
        for name in ("alpha", "l2", "tol"):
            v = getattr(self, name)
            if name == "l2" and isinstance(v, str) and v == "auto":
                continue
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not (
                    np.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0"
                                 + (" or 'auto'" if name == "l2" else "") + f", got {v!r}")
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, numbers.Integral) \
                or self.max_iter < 1:
            raise ValueError(f"max_iter must be an integer >= 1, got {self.max_iter!r}")
        for name in ("fit_intercept", "warm_start"):  # "yes" was taken as true (review)
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False, got "
                                 f"{getattr(self, name)!r}")
        if self.solver not in ("auto", "fista", "bcd", "lbfgs", "closed_form"):
            raise ValueError(f"solver must be 'auto', 'fista', 'bcd', 'lbfgs' or 'closed_form',"
                             f" got {self.solver!r}")
        s = self.intercept_scaling
        if s is not None and (isinstance(s, bool) or not isinstance(s, numbers.Real)
                              or not (np.isfinite(s) and s > 0)):
            raise ValueError(f"intercept_scaling must be None or a finite number > 0, got "
                             f"{s!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        effective_n_threads(self.n_jobs)
        if pen.uses_relation and isinstance(self.task_relation, str) \
                and self.task_relation == "learn":
            pen = MTRL()  # graph with a learnt relation is MTRL
        return pen

    def _resolved_l2(self, pen):
        """l2 as a number: ``"auto"`` is alpha for the penalties whose alpha term leaves a
        single task (and the tasks' common component) unpenalised -- ``mean`` and
        ``graph`` with a fixed relation -- and 0 for the others, whose alpha term already
        penalises every task (ridge, l21, trace, mtrl)."""
        if isinstance(self.l2, str):
            return float(self.alpha) if pen.name in ("mean", "graph") else 0.0
        return float(self.l2)

    def _validate_X(self, X, reset, finite=True):
        """X as an array the solvers take; ``finite=False``: NaN and infinity are left
        for the caller to refuse (the fit's one-pass :func:`_check_finite_and_magnitude`)."""
        if is_cupy_array(X):
            return self._validate_device_X(X, reset)
        X = validate_data(self, X, reset=reset, dtype=[np.float64, np.float32],
                          accept_sparse=("csr", "csc", "coo"), ensure_all_finite=finite)
        return X.tocsr() if scipy.sparse.issparse(X) else X

    def _validate_device_X(self, X, reset):
        """The checks of validate_data on a CuPy array, without leaving the device."""
        import cupy as cp

        if X.ndim != 2:
            raise ValueError(f"Expected a 2D array, got a CuPy array of shape {X.shape}")
        if X.dtype.kind not in "biuf":
            raise TypeError(f"X must hold real numbers, got dtype {X.dtype}")
        if X.dtype not in (cp.float32, cp.float64):
            X = X.astype(cp.float32)
        if X.shape[0] < 1 or X.shape[1] < 1:
            raise ValueError(f"X of shape {X.shape}: at least one sample and one feature are "
                             "needed")
        if not bool(cp.isfinite(X).all()):
            raise ValueError("Input X contains NaN or infinity")
        if reset:
            self.n_features_in_ = int(X.shape[1])
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        elif X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is "
                             f"expecting {self.n_features_in_} features as input")
        return X

    def _relation(self, pen, Yenc, mask, X, n_sub, n_tasks, owner, sw):
        if not pen.uses_relation:
            return None
        R = self.task_relation
        if R is None:
            return np.ones((n_sub, n_sub))
        if isinstance(R, str):
            if R != "auto":
                raise ValueError(f"task_relation must be an array, 'auto', 'learn' or None, got "
                                 f"{R!r}")
            # (the mask says which entries are labelled: no NaN-marked copy of the targets)
            return estimate_task_relation(Yenc, mask, X, sample_weight=sw)
        R = np.asarray(R, dtype=np.float64)
        if R.shape == (n_tasks, n_tasks) and n_tasks != n_sub:
            R = check_task_relation(R, n_tasks)
            R = R[np.ix_(owner, owner)].copy()
            R[owner[:, None] == owner[None, :]] = 0.0  # a task's own one-vs-rest sub-tasks
            np.fill_diagonal(R, 1.0)
            return R
        return check_task_relation(R, n_sub)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, sample_weight=None):
        """Fit all (sub-)tasks jointly. y: (n,) or (n, n_tasks); unlabelled entries are NaN,
        None or ``missing_label``. A dask array X (chunked by rows; y and sample_weight dask
        or NumPy) fits on the workers of the current dask.distributed Client without
        gathering the data (``mtlclassic.multitask._dask``).

        Every BLAS thread pool loaded in the process (NumPy's, SciPy's own copy inside
        L-BFGS-B, MKL, ...) is limited to ``n_jobs`` threads during the fit (threadpoolctl),
        so that the pools do not oversubscribe the cores together."""
        pen = self._check_params()  # n_jobs is checked before it sizes the pools

        def run():
            with _solver.blas_threads(effective_n_threads(self.n_jobs)):
                self._fit(X, y, sample_weight)

        return guarded_fit(self, run, pen)

    def _fit(self, X, y, sample_weight=None):
        if any(_dask.is_dask(a) for a in (X, y, sample_weight)):
            # the data stay on the dask.distributed workers (see _dask)
            return _dask.fit(self, X, y, sample_weight)
        pen = self._check_params()
        device = resolve_device(self.device, X, y)
        y = to_numpy(y) if is_cupy_array(y) else y
        if device == "cpu" and is_cupy_array(X):
            X = to_numpy(X)  # device='cpu' asked for: the data come to the host
        if is_cupy_array(sample_weight):
            sample_weight = to_numpy(sample_weight)
        X, Y2, one_d, miss, x_sums = self._validate_fit_inputs(X, y, type(self).__name__)
        n, T = Y2.shape
        # SW (n, T): a weight per entry; sw (n,): the per-sample weights when every task
        # shares them (the closed form, the Gram path and the relation estimate use them),
        # else None
        SW, sw = _labels.check_sample_weight(sample_weight, n, T)
        # the entries labelled with a positive weight, in bool arrays (the weights' sums
        # per task made an (n, T) float64 temporary: 2.2x X on School's wide targets)
        present = ~miss
        present &= SW > 0
        dead = np.flatnonzero(~present.any(axis=0))
        if dead.size:
            raise ValueError(f"task {dead[0]}: the sample weights of its labelled samples are "
                             "all zero; at least one non-zero weight is needed")
        miss = np.logical_not(present, out=present)  # a zero weight is an unlabelled entry
        del present
        if self._task_columns_fit(X, miss, sw, device):
            return self._fit_task_columns(X, Y2, miss, SW, sw, pen, one_d, x_sums)
        Yenc, mask, owner = self._encode(Y2, miss)
        n_sub = Yenc.shape[1]
        group = self._loss_groups(owner)
        rho_task = self._task_weights(SW, miss)
        rho = rho_task[owner]
        # n_t: the weighted count of labelled samples (= the count for unit weights), so
        # that an integer weight is the same as repeating the sample; class weights scale
        # the loss terms but not n_t, as in LogisticRegression(class_weight, C)
        # A (n, T') is built in place: every (n, T) array of the set-up that the solve
        # does not need is freed before it (tall X with T = 10 had eight of them alive,
        # 5.8x X's size at the peak)
        cw = self._class_weights(Y2, miss, SW, Yenc, mask, owner, group)
        if sw is not None and np.isscalar(cw) and cw == 1.0 and bool(mask.all()) \
                and bool(np.all(sw == sw[0])):
            # every row's weights alike (no or equal sample weights, every label present,
            # no class weights): A is a read-only broadcast of one row, no (n, T') array
            # (the native loss reads the row; the tall default classifier 3.0x -> 2.5x X).
            # The same values: n_t summed as the whole array's column sums are (in row
            # order; a single column pairwise)
            n_t = np.repeat(sw[:, None], min(n_sub, 2), axis=1).sum(axis=0)[:1]
            A = np.broadcast_to(sw[0] * (rho / n_t), (n, n_sub))
        else:
            A = SW[:, owner] if sw is None else np.repeat(sw[:, None], n_sub, axis=1)
            A *= mask
            n_t = A.sum(axis=0)
            if not np.isscalar(cw) or cw != 1.0:
                A *= cw
            A *= (rho / n_t)[None, :]
        del cw
        if sw is None:  # per-task weights: the relation estimate takes each row's mean weight
            sw_rel = (SW * ~miss).sum(axis=1) / np.maximum((~miss).sum(axis=1), 1)
        else:
            sw_rel = sw
        X, X_rel = self._with_intercept_column(X), X
        if device == "cuda":
            if scipy.sparse.issparse(X):
                raise ValueError("sparse X runs on the CPU only: use device='cpu' (or 'auto'),"
                                 " or densify X on the GPU")
            return self._fit_device(pen, X, Yenc, A, sw, rho, mask, owner, T, one_d, X_rel,
                                    sw_rel, group)
        sparse = scipy.sparse.issparse(X)
        # sparse X stays sparse (CSR): the solvers' products with it are sparse-dense
        # dense float32 X stays float32 for every solver, which computes in float64 all
        # the same: the working-set solver takes its columns to float64 a block at a time;
        # the closed form sums its moments over blocks of rows; FISTA and L-BFGS multiply
        # by blocks of rows of the centred X (_solver.CenteredDense). A float64 copy was
        # twice X's size (issue 14: "keep float32 data in float32 where the solver allows")
        Xd = X.astype(np.float64) if sparse else (
            X if X.dtype == np.float32 and X.flags.c_contiguous
            else np.asarray(X, dtype=np.float64))
        loss = _losses.native_loss(self._loss_name, self.n_jobs, group=group)
        # entries of zero weight count as present for the solvers' "every label present"
        # paths (closed form, Gram): they weigh nothing in either form
        # (no other (n, T') array where every label is present: mask is then all True)
        full = mask if not miss.any() else mask | (SW[:, owner] == 0) if sw is None \
            else mask | (sw == 0)[:, None]
        del SW, miss
        small = not sparse or Xd.shape[1] <= GRAM_MAX_SPARSE_D  # a dense d x d is cheap
        closed_ok = (self._loss_name == "squared" and pen.smooth and full.all()
                     and sw is not None and small)
        solver = self.solver
        pen_solve = pen
        if solver == "auto" and not pen.smooth and float(self.alpha) == 0 \
                and not pen.learns_relation:
            # alpha = 0 leaves only the ridge 1/2 l2 ||W||^2 of l21 / trace: a smooth
            # problem, solved exactly (squared loss) or by L-BFGS
            pen_solve = Ridge()
            closed_ok = (self._loss_name == "squared" and full.all() and sw is not None
                         and small)
        # working-set block coordinate descent (_workingset): l21 with squared or
        # logistic loss (no softmax task, no mix of squared and logistic columns); sparse
        # X in the residual form (no Gram form: missing labels, per-entry weights,
        # logistic loss) only while its working set may be made dense, else FISTA
        gram_ok = self._loss_name == "squared" and full.all() and sw is not None
        bcd_ok = (pen_solve.name == "l21" and float(self.alpha) > 0
                  and (group is None or np.all(np.asarray(group) == 1))
                  and (not sparse or gram_ok
                       or Xd.shape[0] * Xd.shape[1] <= _workingset.SPARSE_DENSE_MAX))
        bcd_after = False
        if solver == "auto":
            # logistic loss stays with FISTA by default: the working-set solver's
            # exp-heavy block steps were over 7x slower on dense solutions (HOG, 1000 x
            # 1764, 12 one-vs-rest sub-tasks, 816 active rows: FISTA 15 s, BCD > 100 s);
            # so does squared loss where the per-task Gram form applies (School: an
            # iteration costs T d^2, not n d T; see _solver.TaskGramOracle)
            task_gram = self._task_gram(Xd, A, group, full.all() and sw is not None)
            solver = "closed_form" if closed_ok else (
                "lbfgs" if pen_solve.smooth
                else "bcd" if bcd_ok and self._loss_name == "squared" and not task_gram
                else "fista")
            # FISTA depends on the conditioning (one feature in other units: thousands of
            # iterations), the BCD hardly: where FISTA on that form ends unconverged, the
            # BCD goes on from its point (see _solve)
            bcd_after = solver == "fista" and bcd_ok and task_gram \
                and self._loss_name == "squared"
        if solver == "bcd" and not bcd_ok:
            raise ValueError("solver='bcd' needs penalty='l21' with alpha > 0, squared or "
                             "logistic loss (no multinomial task, not mixed task types), "
                             "and, for sparse X with logistic loss, missing labels or "
                             "per-entry weights, n_samples x n_features <= "
                             f"{_workingset.SPARSE_DENSE_MAX}; use 'auto' or 'fista'")
        check_solver(solver, closed_ok, pen_solve)
        if solver != "bcd" and isinstance(Xd, np.ndarray) and Xd.dtype == np.float32 \
                and 2 * Xd.nbytes <= _solver.CONVERT_BELOW_BYTES:
            # a small X: its float64 copy (at most 8 MB) is faster than products by blocks
            Xd = np.asarray(Xd, dtype=np.float64)
        ctx = dict(Xd=Xd, Yenc=Yenc, A=A, loss=loss, sw=sw, rho=rho, mask=full, pen=pen_solve,
                   bcd_after=bcd_after,
                   curvature=self._curvature(group), group=group,
                   solver=solver, warm=False, fit_b=self._free_intercept(),
                   single=not sparse and X.dtype == np.float32,
                   # Xd converted from another dtype: this fit's own copy, free to change
                   own=not sparse and Xd is not X and X.dtype != np.float64,
                   # X's column sums from the check's pass (the sums of Xd: float32 X was
                   # summed in float64), unless a constant column was appended
                   x_sums=x_sums if X is X_rel else None)
        W0, b0 = self._initial_point(Xd.shape[1], n_sub, np, np.float64, ctx)
        R = self._relation(pen, Yenc, mask, X_rel, n_sub, T, owner, sw_rel)
        res, R = self._solve_path(ctx, pen_solve, R, W0, b0, n_sub)
        return self._set_fitted(res, R, solver, T, owner, one_d)

    @staticmethod
    def _implicit_centring(ctx, Xd, x_mean):
        """Whether the float64 Xd may be centred implicitly (_solver.CenteredDense); the
        answer kept in ``ctx`` for the fit's further solves (a learned relation's)."""
        key = ("implicit_centring", id(Xd))
        if key not in ctx:
            ctx[key] = _solver.implicit_centring_ok(Xd, x_mean)
        return ctx[key]

    def _free_intercept(self):
        """Whether the intercepts are free (unpenalised) variables of the solvers."""
        return bool(self.fit_intercept) and self.intercept_scaling is None

    def _class_weights(self, Y2, miss, SW, Yenc, mask, owner, group=None):
        """Multipliers of the loss terms (n, T'): 1 (regression; see the classifier)."""
        return 1.0

    def _declared_types(self, T):
        """The type of each of the T tasks ("regression" / "classification"), or None when
        the data decide them (MultiTaskEstimator's "auto")."""
        return ["regression" if self._loss_name == "squared" else "classification"] * T

    def _adopt_encoding(self, types, classes, scale, owner):
        """Keep what the encoding found (the dask fit finds it from block summaries)."""

    def _class_weight_specs(self, T):
        """class_weight as one spec per task, or None (no class weights)."""
        return None

    def _loss_groups(self, owner):
        """The softmax group layout of the columns (``_losses.softmax_groups``), or None
        when every column has an element-wise loss."""
        return None

    def _curvature(self, group):
        """A bound on the loss's second derivative in z: 1 (squared), 1/4 (logistic), 1/2
        for a softmax task (the largest eigenvalue of diag(p) - p p^T)."""
        if self._loss_name == "squared":
            return 1.0
        return 0.5 if group is not None and np.any(group >= 2) else 0.25

    def _intercept_column(self):
        """Whether the intercepts are penalised weights of a constant column (W's last row)."""
        return bool(self.fit_intercept) and self.intercept_scaling is not None

    def _with_intercept_column(self, X):
        """X, or [X, s] with the constant column s = intercept_scaling whose weights are the
        penalised intercepts (``intercept_ = s * w_const``, split off in _set_fitted)."""
        if not self._intercept_column():
            return X
        if scipy.sparse.issparse(X):
            col = scipy.sparse.csr_matrix(np.full((X.shape[0], 1), float(self.intercept_scaling),
                                                  dtype=X.dtype))
            return scipy.sparse.hstack([X, col], format="csr")
        xp = get_namespace(X)
        col = xp.full((X.shape[0], 1), float(self.intercept_scaling), dtype=X.dtype)
        return xp.concatenate([X, col], axis=1)

    def _solve_path(self, ctx, pen, R, W0, b0, n_sub):
        """The fit for a fixed relation R, or MTRL (R None, the penalty learns it): one
        solve of the equivalent squared-trace-norm problem, then Omega's closed form at the
        solution (see penalties.MTRL). Returns (_solver.Result, R)."""
        self.l2_ = self._resolved_l2(self._check_params())
        Q = pen.matrix(float(self.alpha), self.l2_, n_sub, R)
        res = self._solve(ctx, Q, W0, b0)
        if pen.learns_relation:
            Omega = MTRL.update(to_numpy(res.W).astype(np.float64))
            dg = np.sqrt(np.diag(Omega))
            self.task_covariance_ = Omega
            R = Omega / np.outer(dg, dg)
        return res, R

    @staticmethod
    def _on(ctx, M):
        """A host matrix moved to where the data live, in the device fit's dtype; on the
        host float64 -- every CPU solver keeps float32 X but computes in float64 (review:
        Q in float32 solved with l2 = 0.1 rounded to 0.10000000149)."""
        Xd = ctx["Xd"]
        if is_cupy_array(Xd):
            import cupy

            return cupy.asarray(M, dtype=Xd.dtype)
        return np.asarray(M, dtype=Xd.dtype if ctx.get("device") else np.float64)

    def _set_fitted(self, res, R, solver, T, owner, one_d):
        W, b = res.W, res.b
        self.n_iter_ = res.n_iter
        self.objective_trace_ = res.trace
        self.objective_ = float(res.objective)
        self.dual_gap_ = float(res.dual_gap)
        self._null_scale_ = float(res.scale)  # min_b F(0, b): converged <=> gap <= tol * it
        if not res.converged and solver == "closed_form":
            warnings.warn(f"{type(self).__name__}: the closed form's duality gap "
                          f"{self.dual_gap_:.3g} is above tol times min_b F(0, b) = "
                          f"{self.tol * self._null_scale_:.3g}: the direct solve is "
                          "inaccurate at this conditioning of X (features in very different "
                          "units), or the certificate is the rounding of X^T G at this scale "
                          "of X; scale the features, e.g. with "
                          "sklearn.preprocessing.StandardScaler", ConvergenceWarning)
        elif not res.converged:
            warnings.warn(f"{type(self).__name__}: solver {solver!r} did not converge in "
                          f"{res.n_iter} iterations (duality gap {self.dual_gap_:.3g}, "
                          f"objective {self.objective_:.6g}); raise max_iter or tol",
                          ConvergenceWarning)
        xp = get_namespace(W)
        if self._intercept_column():  # the constant column's weights are the intercepts
            W, b = W[:-1], float(self.intercept_scaling) * W[-1]
        self.coef_ = xp.ascontiguousarray(W.T)
        self.intercept_ = b
        self.task_relation_ = R
        self.n_tasks_ = T
        self.subtask_task_ = owner
        self.solver_ = getattr(res, "solver", solver)  # "fista+bcd": see _solve
        self._one_d = one_d
        return self

    def _fit_device(self, pen, X, Yenc, A, sw, rho, mask, owner, T, one_d, X_rel, sw_rel=None,
                    group=None):
        """The GPU fit: data, targets and weights on the device in float32 (float64 when
        X is a float64 CuPy array), FISTA with the fused CUDA loss kernel, GEMMs by cuBLAS,
        the L2,1 prox by its CUDA kernel; the small (T, T) matrices stay on the host."""
        import cupy as cp

        if self.solver in ("lbfgs", "closed_form", "bcd"):
            raise ValueError(f"solver={self.solver!r} runs on the CPU only; use 'auto' or "
                             "'fista' with device='cuda'")
        dt = cp.float64 if (is_cupy_array(X) and X.dtype == cp.float64) else cp.float32
        n, d = X.shape
        n_sub = Yenc.shape[1]
        item = np.dtype(dt).itemsize
        # X (unless already there), Y, A and FISTA's n x T' work arrays (the linear maps
        # at three points and their combination, the loss gradient): about 8 of them
        need = item * ((0 if is_cupy_array(X) and X.dtype == dt else n * d)
                       + (n * d if self._free_intercept() else 0)  # the centred copy
                       + 8 * n * n_sub + 8 * d * n_sub)
        free = device_free_bytes()
        if need > 0.9 * free:
            raise MemoryError(f"{type(self).__name__}: the GPU fit needs about {need / 2**30:.2f} "
                              f"GiB of device memory for {n} samples x {d} features x {n_sub} "
                              f"sub-tasks in {np.dtype(dt).name}, but {free / 2**30:.2f} GiB "
                              "are free; fit on the CPU (device='cpu') or on fewer samples")
        kind = _losses.KINDS[self._loss_name]
        if group is not None and np.any(group != 1):
            group_d = cp.asarray(group, dtype=cp.int32)

            def loss(Z, Y, W):
                return loss_grad_cuda(Z, Y, W, kind, group=group_d)
        else:
            def loss(Z, Y, W):
                return loss_grad_cuda(Z, Y, W, kind)
        return self._fit_arrays(cp, dt, loss, pen, X, Yenc, A, sw, rho, mask, owner, T, one_d,
                                X_rel, sw_rel, group)

    def _fit_arrays(self, xp, dt, loss, pen, X, Yenc, A, sw, rho, mask, owner, T, one_d,
                    X_rel=None, sw_rel=None, group=None):
        """The device fit's body for the namespace xp (CuPy there; NumPy in the tests, which
        run this same code in float32 on the CPU): FISTA, arrays in dtype dt. X carries the
        intercept column when intercept_scaling is set; X_rel (default X) is the data the
        "auto" task relation is estimated from."""
        X_rel = X if X_rel is None else X_rel
        Xd = xp.asarray(X, dtype=dt)
        ctx = dict(Xd=Xd, Yenc=xp.asarray(Yenc, dtype=dt), A=xp.asarray(A, dtype=dt),
                   loss=loss, sw=None if sw is None else xp.asarray(sw, dtype=dt), rho=rho,
                   mask=mask, pen=pen, curvature=self._curvature(group), group=group,
                   solver="fista", warm=False, fit_b=self._free_intercept(), device=True)
        W0, b0 = self._initial_point(Xd.shape[1], Yenc.shape[1], xp, dt, ctx)
        R = self._relation(pen, Yenc, mask, X_rel, Yenc.shape[1], T, owner,
                           sw if sw_rel is None else sw_rel)
        res, R = self._solve_path(ctx, pen, R, W0, b0, Yenc.shape[1])
        return self._set_fitted(res, R, "fista", T, owner, one_d)

    def _initial_point(self, d, n_sub, xp, dt, ctx):
        W0, b0 = xp.zeros((d, n_sub), dtype=dt), xp.zeros(n_sub, dtype=dt)
        coef = getattr(self, "coef_", None)
        column = self._intercept_column()
        if self.warm_start and coef is not None and coef.shape == (n_sub, d - column):
            ctx["warm"] = True
            on = to_numpy if xp is np else xp.asarray  # the previous fit may live elsewhere
            if column:
                last = on(self.intercept_)[:, None] / float(self.intercept_scaling)
                W0 = xp.array(xp.concatenate([xp.asarray(on(coef), dtype=dt),
                                              xp.asarray(last, dtype=dt)], axis=1).T)
            else:
                W0 = xp.array(on(coef).T, dtype=dt)
                if ctx["fit_b"]:  # else the intercepts stay at 0, whatever the last fit's
                    # were (fit_intercept switched off since: the working-set solver's
                    # residual form kept them, called converged -- review)
                    b0 = xp.array(on(self.intercept_), dtype=dt)
        return W0, b0

    def _task_weights(self, SW, miss, size=None):
        """rho_t of every task: the task_weight array, 1, or the task's labelled size
        (SW: the (n, T) entry weights; or ``size``, their labelled sums (T,), given)."""
        T = miss.shape[1] if size is None else len(size)
        if isinstance(self.task_weight, str):
            if self.task_weight != "size":
                raise ValueError(f"task_weight must be None, 'size' or an array of shape "
                                 f"({T},), got {self.task_weight!r}")
            # every labelled entry counts the same, as in a pooled (MALSAR-style) loss
            if size is None:
                SW = SW[:, None] if SW.ndim == 1 else SW
                size = (SW * ~miss).sum(axis=0)
            return size / size.mean()
        rho = _labels.check_weights(self.task_weight, T, "task_weight")
        if np.any(rho == 0):
            raise ValueError("task_weight must be > 0 for every task")
        return rho

    def _validate_fit_inputs(self, X, y, name):
        """X validated (sets n_features_in_), y as 2-D targets, the missing-entry mask, and
        X's column sums where the check's pass gave them (else None)."""
        if y is None:
            raise ValueError(f"{name} requires y to be passed, but the target y is None")
        X = self._validate_X(X, reset=True, finite=False)
        sums = _check_finite_and_magnitude(X, name)  # refused: fit puts the model back
        if X.shape[0] < 2:
            raise ValueError(f"n_samples = {X.shape[0]}: at least 2 samples are needed")
        Y2, one_d = _labels.as_2d_targets(y)
        if Y2.shape[0] != X.shape[0]:
            raise ValueError(f"X and Y have different numbers of samples: {X.shape[0]} and "
                             f"{Y2.shape[0]}")
        miss = _labels.missing_mask(Y2, self.missing_label)
        _labels.check_labelled(miss)
        return X, Y2, one_d, miss, sums

    #: whether a fit may take the per-task Gram form from the labels' columns
    #: (:meth:`_fit_task_columns`): the regressor, whose targets are the labels themselves
    _task_columns_ok = False

    def _task_columns_fit(self, X, miss, sw, device):
        """Whether the fit goes to :meth:`_fit_task_columns`: the regressor on dense host X
        (no intercept column) whose labels are missing or weighted per entry, where the
        per-task Gram form pays (:meth:`_solver.TaskGramOracle.useful`) and a solver that
        runs on it is asked for ("auto", "fista", "lbfgs")."""
        if not (self._task_columns_ok and device == "cpu" and isinstance(X, np.ndarray)
                and not self._intercept_column()
                and self.solver in ("auto", "fista", "lbfgs")):
            return False
        if sw is not None and not np.any(miss & (sw != 0)[:, None]):
            return False  # every label present (zero weights aside): the shared Gram form
        (n, d), T = X.shape, miss.shape[1]
        nnz = miss.size - np.count_nonzero(miss)
        # the columns hold 24 bytes a labelled entry (row, weight, target), the (n, T) form
        # 18 an entry (targets, weights, two masks): the columns where at most 3/4 are
        # labelled (School: one in 60)
        return 4 * nnz <= 3 * miss.size \
            and _solver.TaskGramOracle.useful_counts(n, d, T, nnz)

    def _fit_task_columns(self, X, Y2, miss, SW, sw, pen, one_d, x_sums):
        """The fit on the per-task Gram form (:class:`_solver.TaskGramOracle`: FISTA, or
        the exact minimiser of a smooth penalty) built from each task's labelled rows, their
        weights s_i rho_t / n_t and targets -- never the (n, T) arrays of targets and loss
        weights the data-form solvers read (School's wide targets: each 2.2x X; the fit
        held both, 5.8x X). They are made only where needed: the working-set BCD going on
        from an unconverged FISTA point; and the targets alone for a task relation
        estimated from non-numeric ones (numeric targets are read in place)."""
        n, T = Y2.shape
        owner = np.arange(T)
        rows, values = _labels.regression_columns(Y2, miss)
        # each task's weights (a gathered copy, scaled in place: 24 bytes a labelled
        # entry in all, with its row and target)
        s = [sw[r] if sw is not None else np.array(SW[r, t], dtype=np.float64)
             for t, r in enumerate(rows)]
        n_t = np.array([float(v.sum()) for v in s])  # the weighted count of labelled samples
        rho = self._task_weights(SW, miss, size=n_t)
        for t, v in enumerate(s):
            v *= rho[t] / n_t[t]
        columns = list(zip(rows, s, values))
        del rows, values, s
        Xd = X if X.dtype == np.float32 and X.flags.c_contiguous \
            else np.asarray(X, dtype=np.float64)
        pen_solve = pen
        if self.solver == "auto" and not pen.smooth and float(self.alpha) == 0 \
                and not pen.learns_relation:
            pen_solve = Ridge()  # as in _fit: the ridge part alone
        solver, bcd_after = self.solver, False
        if solver == "auto":
            solver = "lbfgs" if pen_solve.smooth else "fista"
            # where FISTA ends unconverged, the working-set BCD goes on from its point
            bcd_after = solver == "fista" and pen_solve.name == "l21" \
                and float(self.alpha) > 0
        check_solver(solver, False, pen_solve)

        def dense(weights=True):
            """The (n, T) targets, loss weights and labelled mask of the data form."""
            out = dict(Yenc=np.zeros((n, T)), mask=~miss)
            if weights:
                out["A"] = np.zeros((n, T))
            for t, (r, a, y) in enumerate(columns):
                out["Yenc"][r, t] = y
                if weights:
                    out["A"][r, t] = a
            return out

        ctx = dict(Xd=Xd, Yenc=None, A=None, mask=None, columns=columns, dense=dense,
                   loss=_losses.native_loss("squared", self.n_jobs), sw=sw, rho=rho,
                   pen=pen_solve, bcd_after=bcd_after, curvature=1.0, group=None,
                   solver=solver, warm=False, fit_b=self._free_intercept(),
                   single=Xd.dtype == np.float32, own=False, x_sums=x_sums)
        W0, b0 = self._initial_point(Xd.shape[1], T, np, np.float64, ctx)
        # a relation estimated from the targets: numeric ones read as they are (the mask
        # says which entries are labelled), others made into an (n, T) float64 array
        estimate = pen.uses_relation and isinstance(self.task_relation, str)
        targets = None
        if estimate:
            targets = Y2 if Y2.dtype.kind in "biuf" else dense(weights=False)["Yenc"]
        sw_rel = sw if sw is not None or not estimate else \
            (SW * ~miss).sum(axis=1) / np.maximum((~miss).sum(axis=1), 1)
        R = self._relation(pen, targets, ~miss if estimate else None, X, T, T, owner,
                           sw_rel)
        del targets
        res, R = self._solve_path(ctx, pen_solve, R, W0, b0, T)
        return self._set_fitted(res, R, solver, T, owner, one_d)

    def _task_gram(self, Xd, A, group, gram_ok):
        """Whether FISTA / L-BFGS run on the per-task Gram form (squared loss, labels
        missing or weights per entry, where :meth:`_solver.TaskGramOracle.useful`)."""
        return (self._loss_name == "squared" and not gram_ok
                and (group is None or np.all(np.asarray(group) == 1))
                and _solver.TaskGramOracle.useful(Xd, A))

    def _solve(self, ctx, Q, W0, b0, tol=None):
        """One convex solve for a fixed Q: a _solver.Result."""
        tol = float(self.tol) if tol is None else tol
        if "dask" in ctx:
            return _dask.solve(self, ctx, Q, W0, b0, tol)
        Xd, Yenc, A, loss, pen = ctx["Xd"], ctx["Yenc"], ctx["A"], ctx["loss"], ctx["pen"]
        # float32 X on the host: every solver computes in float64 (_solver.CenteredDense)
        host32 = isinstance(Xd, np.ndarray) and Xd.dtype == np.float32 \
            and not ctx.get("device")
        if Xd.dtype == np.float32 and not host32:
            # the device fit in float32 resolves the objective to about 1e-7
            tol = max(tol, 1e-6)
        alpha = float(self.alpha)
        Q = self._on(ctx, Q)
        if ctx["solver"] == "bcd":
            return self._solve_bcd(ctx, Q, W0, b0, tol)
        if ctx["solver"] == "closed_form":
            # the certificate of the direct solve: its duality gap (rounding size)
            oracle = _solver.DataOracle(Xd, Yenc, A, loss, Q, ctx["fit_b"], self._loss_name,
                                        group=ctx.get("group"))
            scale = oracle.null_objective()
            modes = None  # closed_form's choice; a Bartels-Stewart solve not certified is
            while True:  # solved again by modes (a feature in units 1e8 times the others')
                W, b = _solver.closed_form(Xd, Yenc, ctx["sw"], ctx["rho"], Q, ctx["fit_b"],
                                           modes=modes)
                # the loss and the dual point by blocks of rows: no (n, T) array (tall X
                # with many tasks: the predictions and the loss gradient were 2x X)
                blocked = oracle.certificate_blocks(W, b)
                if blocked is not None:
                    f, XtG, lstar = blocked
                else:
                    lin = oracle.linear(W, b)
                    f, aux = oracle.value(W, b, lin)
                    # (aux's G made the dual point in place: one (n, T) array fewer)
                    XtG, lstar = oracle.dual_point(W, b, lin, aux, overwrite=True)
                    lin = aux = None
                F = f + pen.value(W, alpha)
                gap, _ = _solver.gap_at_dual(pen, alpha, Q, XtG, lstar, F)
                # converged means certified, here too (a review found no test at all: any
                # gap passed): within tol, or within the rounding of the objective or of
                # the dual (below); an inaccurate solve shows here (Bartels-Stewart was 54 %
                # off with one feature in units 1e8 times the others')
                floor = 4.0 * np.finfo(np.float64).eps * max(abs(F), abs(F - gap)) \
                    if np.isfinite(gap) else 0.0  # as _solver._Certifier's, tol = 0
                ok = not np.isfinite(gap) or gap <= max(tol * scale, floor)
                if not ok and self._loss_name == "squared":
                    # the dual's own rounding where the penalty is negligible against X^T X
                    # (review: X in units 1e12 warned, the solution exact to 1e-15)
                    floor += _solver.quadratic_dual_floor(Xd, Yenc, A, W, b, Q, ctx["fit_b"])
                    ok = gap <= max(tol * scale, floor)
                bartels_stewart = modes is None and (scipy.sparse.issparse(Xd) or Xd.shape[0]
                                                     >= Xd.shape[1]) and \
                    _solver._distinct_modes(ctx["rho"], Q) > _solver.MODES_MAX
                if ok or not bartels_stewart:
                    break
                modes = True
            return _solver.Result(W=W, b=b, n_iter=1, converged=bool(ok), trace=[F],
                                  objective=F, dual_gap=gap if np.isfinite(gap) else np.nan,
                                  scale=scale)
        lip = getattr(self, "lipschitz_", None) if ctx["warm"] else None
        columns = ctx.get("columns")  # the per-task columns' fit (_fit_task_columns)
        use_gram = (columns is None and self._loss_name == "squared" and ctx["mask"].all()
                    and ctx["sw"] is not None and Xd.shape[0] >= Xd.shape[1]
                    and (not scipy.sparse.issparse(Xd) or Xd.shape[1] <= GRAM_MAX_SPARSE_D))
        # (the per-task Gram form is a host (NumPy) oracle: not in the device fit's body)
        task_gram = columns is not None or not use_gram and not ctx.get("device") \
            and self._task_gram(Xd, A, ctx.get("group"), False)
        if use_gram:
            oracle = _solver.GramOracle(Xd, Yenc, ctx["sw"], self._on(ctx, ctx["rho"]), Q,
                                        ctx["fit_b"])
            b0 = b0 * 0
        elif task_gram:  # built once per fit (a learned relation re-solves for new Q)
            oracle = ctx.get("task_gram")
            if oracle is None:
                oracle = ctx["task_gram"] = _solver.TaskGramOracle(
                    Xd, Yenc, A, Q, ctx["fit_b"], columns=columns)
            oracle.Q = Q
            b0 = b0 * 0
        x_mean = None
        if not (use_gram or task_gram):
            if ctx["fit_b"]:
                # free intercepts: solve in X - mean(X) and b' = b + mean(X) W, the same
                # objective at every point; uncentred features otherwise couple b and W
                # into a badly conditioned problem (features of mean 50 took FISTA 2000
                # iterations instead of 100). Any mean works (a reparametrisation): the
                # sample-weighted one, or the plain one for per-entry weights. Sparse X is
                # centred implicitly (_solver.CenteredSparse), never densified.
                sw = ctx["sw"]
                if scipy.sparse.issparse(Xd):
                    x_mean = (np.asarray(Xd.T @ sw).ravel() / sw.sum() if sw is not None
                              else np.asarray(Xd.mean(axis=0)).ravel())
                    Xd = _solver.CenteredSparse(Xd, x_mean)
                else:
                    sums = ctx.get("x_sums")
                    if host32 and sums is not None \
                            and (sw is None or bool(np.all(sw == 1))):
                        x_mean = sums / Xd.shape[0]  # the check's float64 sums: no pass
                    else:
                        x_mean = _solver.column_mean(Xd, sw)
                    if host32:  # centred by blocks of rows, in float64
                        Xd = _solver.CenteredDense(Xd, x_mean)
                    elif ctx.pop("own", False) and isinstance(Xd, np.ndarray) \
                            and Xd.flags.writeable:
                        Xd -= x_mean  # this fit's own float64 copy: centred in place
                        ctx["x_sums"] = None  # no longer Xd's
                    elif isinstance(Xd, np.ndarray) and Xd.dtype == np.float64 \
                            and Xd.nbytes > _solver.SMALL_COPY_BYTES \
                            and (Xd.flags.c_contiguous or Xd.flags.f_contiguous) \
                            and self._implicit_centring(ctx, Xd, x_mean):
                        # centred implicitly: no copy of X beside the caller's. A strided
                        # view (X[::4]) keeps the copy (products with it were 1.2-1.35x
                        # slower), and so does a small X (at most 2 MB): its copy costs
                        # little, and it is exact (review: a 3 x 5 trace fit at tol 1e-10
                        # stalled on the correction's rounding, 3,000 iterations not 35)
                        Xd = _solver.CenteredDense(Xd, x_mean)
                    else:
                        Xd = Xd - x_mean
                b0 = b0 + x_mean @ W0
            elif host32:
                Xd = _solver.CenteredDense(Xd, np.zeros(Xd.shape[1]))  # (products in float64)
            oracle = _solver.DataOracle(Xd, Yenc, A, loss, Q, ctx["fit_b"], self._loss_name,
                                        group=ctx.get("group"))
        if ctx["solver"] == "lbfgs" and task_gram:  # a quadratic: solved exactly
            res = _solver.smooth_task_gram(oracle, pen, alpha, Q, W0, tol, self.max_iter)
        elif ctx["solver"] == "lbfgs":
            # float32 data: the ridge L-BFGS may iterate in float32 (certified in float64);
            # the preconditioner is kept for the next fit of a warm-started path (the CV
            # grid), used only on the same data
            cache = getattr(self, "_eig_cache", None) if self.warm_start else None
            cache = {} if cache is None else cache
            res = _solver.lbfgs(oracle, pen, alpha, Q, W0, b0, oracle.fit_intercept,
                                self.max_iter, tol, single=ctx.get("single", False),
                                cache=cache)
            self._eig_cache = cache if self.warm_start else None
        else:
            # the bound of the problem the oracle solves: the Gram forms' centred K (the
            # intercept eliminated), else [X 1] on the centred X
            cap = oracle.lipschitz_bound() if task_gram or use_gram else \
                _solver.lipschitz_estimate(Xd, A, Q, ctx.get("curvature", 1.0), ctx["fit_b"])
            if not (task_gram or use_gram or ctx.get("device")) \
                    and _solver.RowBlockedOracle.applies(oracle, Yenc.shape[1]):
                # the (n, T) arrays not small beside X: none kept (evaluated by row blocks,
                # in float64; a device fit keeps its maps on the device, in its precision)
                oracle = _solver.RowBlockedOracle(oracle)
            res = _solver.fista(oracle, pen, alpha, Q, W0, b0, self.max_iter, tol,
                                n_jobs=self.n_jobs, verbose=self.verbose, lipschitz=lip,
                                lipschitz_cap=cap)
            self.lipschitz_ = res.lipschitz
        if use_gram or task_gram:
            res.b = oracle.intercept(res.W)
            if task_gram and ctx.get("bcd_after") and not res.converged:
                more = self._solve_bcd(ctx, Q, res.W, res.b, tol)
                more.n_iter += res.n_iter
                more.solver = "fista+bcd"
                return more
        elif x_mean is not None:
            res.b = res.b - x_mean @ res.W
        return res

    def _solve_bcd(self, ctx, Q, W0, b0, tol):
        """l21 by working-set block coordinate descent (``_workingset``): the Gram form
        when the loss is squared with every label present and one weight per sample, else
        the residual form; free intercepts in centred coordinates (X - mean(X), never
        formed; b' = b + mean(X) W)."""
        if ctx["Yenc"] is None:  # the per-task columns' fit: the data form's arrays now
            ctx.update(ctx.pop("dense")())
        Xd, sw = ctx["Xd"], ctx["sw"]
        gram = self._loss_name == "squared" and ctx["mask"].all() and sw is not None
        x_mean = np.zeros(Xd.shape[1])
        if ctx["fit_b"]:
            if scipy.sparse.issparse(Xd):
                w = sw if sw is not None else np.ones(Xd.shape[0])
                x_mean = np.asarray(Xd.T @ w).ravel() / w.sum()
            else:
                # a sum over the rows in order, as the sparse product above sums its stored
                # entries: sparse and dense X get the same bits, so the same iterates
                # (no weights: the same sum without an (n, d) temporary, x * 1 being x)
                if sw is None or np.all(sw == 1):  # the check's sums where it took them
                    sums = ctx.get("x_sums")
                    x_mean = (sums if sums is not None
                              else Xd.sum(axis=0, dtype=np.float64)) / Xd.shape[0]
                else:
                    # a block of rows at a time (no (n, d) temporary: the weighted copy of
                    # a tall X was the fit's peak, 2.8x X), each block's running sum
                    # carried into its first row: the row-order sums, so the bits, of
                    # (X * sw[:, None]).sum(axis=0) for C-ordered X (review: 2e-8 apart
                    # otherwise; a Fortran-ordered X's full sum is pairwise, 1e-12 apart),
                    # for float32 X (converted a block at a time) as for float64
                    acc = np.zeros(Xd.shape[1])
                    step = _solver._row_step64(Xd)
                    for i in range(0, Xd.shape[0], step):
                        B = np.multiply(Xd[i:i + step], sw[i:i + step, None],
                                        dtype=np.float64)
                        B[0] += acc
                        acc = B.sum(axis=0)
                    B = None  # (not held through the solve: review, +0.25x X at the peak)
                    x_mean = acc / sw.sum()
        # the loss pass on one thread below 2^16 entries: the solver evaluates it on
        # (n, T) arrays a few times per 5 epochs, where starting threads costs more than
        # the pass (2 threads: 2.5 ms a call on a loaded 2-core machine, n = 500, T = 10);
        # the same bits either way
        loss = ctx["loss"] if ctx["Yenc"].size >= 2 ** 16 else \
            _losses.native_loss(self._loss_name, None)
        res = _workingset.workingset_l21(
            Xd, x_mean, ctx["Yenc"], ctx["A"], loss, self._loss_name,
            float(self.alpha), float(np.asarray(Q)[0, 0]) if Q.size else 0.0, ctx["fit_b"],
            W0, b0 + x_mean @ W0, self.max_iter, tol, sw=sw if gram else None,
            rho=ctx["rho"] if gram else None, verbose=self.verbose,
            cache=getattr(self, "_gram_cache", None) if ctx["warm"] else None,
            keep=bool(self.warm_start))
        # kept for the next fit of a warm-started path (used only on the same data)
        self._gram_cache = res.gram_cache if self.warm_start else None
        res.b = res.b - x_mean @ res.W
        return res

    def _decision(self, X):
        """X W + b where X lives: CuPy X gives CuPy scores (a CPU-fitted model's weights
        are moved to the GPU), NumPy X gives NumPy scores in float64, a dask X a lazy dask
        array of them computed block by block on its row chunks."""
        check_is_fitted(self, "coef_")
        if _dask.is_dask(X):
            cupy_blocks = is_cupy_array(X._meta) and X.dtype in (np.float32, np.float64)
            return _dask.map_predict(self, self._decision, X, self.coef_.shape[0],
                                     X.dtype if cupy_blocks else np.float64)
        X = self._validate_X(X, reset=False)
        if is_cupy_array(X):
            import cupy

            coef = cupy.asarray(self.coef_, dtype=X.dtype)
            return X @ coef.T + cupy.asarray(self.intercept_, dtype=X.dtype)
        coef = to_numpy(self.coef_).astype(np.float64, copy=False)
        if scipy.sparse.issparse(X):  # a sparse-dense product: X is never densified
            return np.asarray(X.astype(np.float64) @ coef.T) + to_numpy(self.intercept_)
        # (float32 X by blocks of rows in float64: NumPy's mixed product made a float64
        # copy of X, twice its size, at every predict)
        return _solver.x_dot(X, coef.T) + to_numpy(self.intercept_)

    def _score_targets(self, P, y, sample_weight):
        """y as 2-D targets checked against the predictions P, its missing mask, weights."""
        Y2, _ = _labels.as_2d_targets(to_numpy(y) if is_cupy_array(y) else y)
        if Y2.shape[0] != len(P) or Y2.shape[1] != self.n_tasks_:
            raise ValueError(f"y has shape {np.shape(y)}, but X has {len(P)} samples and the "
                             f"model {self.n_tasks_} task(s)")
        miss = _labels.missing_mask(Y2, self.missing_label)
        SW, _ = _labels.check_sample_weight(sample_weight, len(Y2), Y2.shape[1])
        return Y2, miss, SW

    @staticmethod
    def _scored_tasks(miss, SW):
        """(task, labelled rows) of every task with a labelled sample of non-zero weight."""
        out = [(t, ~miss[:, t]) for t in range(miss.shape[1])]
        out = [(t, rows) for t, rows in out if SW[rows, t].sum() > 0]
        if not out:
            raise ValueError("score: no task has a labelled sample (with non-zero weight) in "
                             "y; every entry is missing")
        return out

    def __getstate__(self):
        """Pickles hold NumPy arrays: a GPU-fitted model loads anywhere."""
        state = super().__getstate__()
        state.pop("_gram_cache", None)  # solver caches, not part of the model
        state.pop("_eig_cache", None)
        return {k: to_numpy(v) if is_cupy_array(v) else v for k, v in state.items()}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        tags.input_tags.sparse = True
        return tags


def task_proba(z, softmax):
    """Class probabilities (n, K) of one task from its scores: (n,) binary -> sigmoid;
    (n, K) -> softmax, or (one-vs-rest) the K sigmoids normalised to sum to one, as
    ``OneVsRestClassifier``. NumPy out (CuPy scores come to the host); dask scores give
    a lazy dask array, computed block by block."""
    if _dask.is_dask(z):
        return _dask.map_rows(functools.partial(task_proba, softmax=softmax), z,
                              2 if z.ndim == 1 else z.shape[1], np.float64)
    z = to_numpy(z) if is_cupy_array(z) else z
    if z.ndim == 1:
        p = _losses._expit(z)
        return np.column_stack([1 - p, p])
    if softmax:
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    p = _losses._expit(z)
    s = p.sum(axis=1, keepdims=True)
    return np.where(s > 0, p / np.where(s > 0, s, 1), 1.0 / p.shape[1])


class MultiTaskRegressor(RegressorMixin, _BaseMultiTask):
    __doc__ = """Multi-task linear regression with coupled tasks (squared loss).
""" + _OBJECTIVE_DOC + """
    Parameters
    ----------
    penalty : {"ridge", "mean", "graph", "l21"} or Penalty, default="graph"
    alpha : float >= 0, default=1e-2
    l2 : float >= 0 or "auto", default="auto"
        The extra ridge 1/2 l2 ||W||^2 (for ``mean``: the shrinkage of the common model
        w_0). "auto" is ``alpha`` for ``mean`` and ``graph`` and 0 for the other
        penalties, so that no default configuration leaves a task unpenalised: the alpha
        term of ``mean`` and ``graph`` penalises only differences between tasks -- on a
        single task, or on the tasks' common component, it is zero, and a default fit
        would be unregularised least squares / logistic regression (and without a
        duality-gap certificate, Q being singular); ``ridge``, ``l21``, ``trace`` and
        ``mtrl`` penalise every task through alpha already. The value used is ``l2_``.
    task_relation : (T, T) array, "auto" or None, default="auto"
        For ``graph``: "auto" estimates R (label correlation where tasks share samples,
        else correlation of per-task weights shrunk towards the pooled model by maximum
        marginal likelihood; see ``estimate_task_relation``); None is the complete graph.
    fit_intercept : bool, default=True
    intercept_scaling : float > 0 or None, default=None
        None: the per-task intercepts are free (unpenalised). A number s: each intercept is
        the weight of a constant feature of value s, penalised with the other weights, so
        the penalty couples the intercepts too (``mean`` shrinks them towards a shared
        intercept, like a random intercept); a larger s penalises them less. The same
        device as scikit-learn's ``LogisticRegression(intercept_scaling)`` for liblinear.
    task_weight : (T,) array, "size" or None
        rho_t. None weighs every task the same whatever its size; "size" weighs each task
        by its number of labelled samples (over their mean), so that every labelled entry
        counts the same -- the pooled loss of MALSAR, suited when the metric pools all
        test entries.
    max_iter : int, default=2000
        Iterations of FISTA / L-BFGS.
    tol : float, default=1e-4
        Stopping tolerance on the duality gap, relative to the objective of the
        intercept-only model: the fit stops when ``dual_gap_ <= tol * min_b F(0, b)``
        (for squared loss with free intercepts, min_b F(0, b) = sum_t rho_t / (2 n_t)
        ||y_t - mean(y_t)||^2 -- scikit-learn's ``MultiTaskLasso`` scale up to its factor
        2), which certifies that ``objective_`` is within that much of the optimum. Gaps
        below the rounding of the objective (a few ulps) count as converged. A smooth
        penalty with a singular task matrix (``mean`` or ``graph`` with ``l2=0``) has no
        finite dual: the solvers then stop on the gradient norm relative to its value at
        zero (no bound on the error) and ``dual_gap_`` is nan. ``ConvergenceWarning``
        when ``max_iter`` is reached first.
    warm_start : bool, default=False
        Start from the previous fit's coef_ / intercept_ (and FISTA's step). Only the
        point carries over: FISTA restarts its momentum (as after an adaptive restart),
        which is what a change of alpha calls for, the old momentum pointing towards the
        old optimum. The working-set solver also keeps the Gram columns it computed while
        the data stay the same (a path over alpha).
    solver : {"auto", "fista", "bcd", "lbfgs", "closed_form"}
        "auto" uses the exact closed form (a Sylvester equation, by a Cholesky solve per
        mode of the task matrix -- Bartels-Stewart beyond 32 distinct modes, checked by
        its certificate -- or in sample space when n_samples < n_features) for
        squared loss when every label is present and the
        penalty is smooth, L-BFGS for other smooth problems,
        working-set block coordinate descent ("bcd", ``_workingset``: Massias et al.,
        Celer, ICML 2018; Bertrand et al., skglm, NeurIPS 2022) for ``l21`` with squared
        loss (FISTA for sparse X with missing labels or per-entry weights beyond 2^25
        entries), and FISTA for ``l21`` with logistic loss (where "bcd" is available but
        was measured far slower on dense solutions), ``trace`` and ``mtrl``. "bcd" needs
        ``l21``, squared or logistic loss, no multinomial task. FISTA and L-BFGS with
        squared loss run on the Gram matrix when every label is present and n >= d, and
        on one Gram matrix per task when labels are missing (or weights are per entry)
        and the T (d, d) matrices are no larger than X and cheap to build -- tasks on
        samples of their own, as School's (``_solver.TaskGramOracle``; the smooth
        penalties then solved exactly, a linear system); then "auto" prefers FISTA to
        "bcd" for ``l21`` and goes on with "bcd" from FISTA's point where FISTA ends
        unconverged (badly scaled features; ``solver_`` "fista+bcd", ``n_iter_`` the
        sum of both).
    device : {"auto", "cpu"}; verbose
    n_jobs : int or None, default=None
        Threads of the native kernels (loss pass, L2,1 prox) and of every BLAS pool
        during the fit (threadpoolctl: NumPy's OpenBLAS and the separate OpenBLAS of
        SciPy's L-BFGS-B, which would otherwise each start one thread per core and
        oversubscribe them together). None is 1, -1 all cores.
    missing_label : value marking unlabelled entries besides NaN

    Attributes
    ----------
    coef_ : (n_tasks, n_features); intercept_ : (n_tasks,); task_relation_; n_iter_;
    l2_ : the l2 used; objective_trace_; objective_ : the final objective F; dual_gap_ : its duality gap
    (an upper bound of objective_ - min F; nan where no certificate exists);
    n_features_in_; feature_names_in_
    """

    _loss_name = "squared"
    _task_columns_ok = True

    def _encode(self, Y2, miss):
        return _labels.encode_regression(Y2, miss), ~miss, np.arange(Y2.shape[1])

    def predict(self, X):
        """(n,) or (n, n_tasks) predictions; a dask X gives a lazy dask array."""
        Z = self._decision(X)
        if self._one_d:
            return Z[:, 0] if _dask.is_dask(Z) else Z.ravel()
        return Z

    def score(self, X, y, sample_weight=None):
        """Mean over tasks of R^2 on each task's labelled samples; a task without a labelled
        sample (of non-zero weight) in these rows is skipped (ValueError if every task is).
        ``sample_weight``: (n,) or (n, n_tasks). On a dask X the sums are reduced on the
        cluster (``_dask.score``): neither X nor the predictions are gathered."""
        if _dask.is_dask(X):
            return _dask.score(self, X, y, sample_weight, [True] * self.n_tasks_)
        P, y, sample_weight = _dask.compute_small(self.predict(X), y, sample_weight)
        P = to_numpy(P)
        Y2, miss, sw = self._score_targets(P, y, sample_weight)
        P2 = P.reshape(len(P), -1)
        Yf = np.asarray(np.where(miss, 0, Y2), dtype=np.float64)
        scores = [r2_score(Yf[rows, t], P2[rows, t], sample_weight=sw[rows, t])
                  for t, rows in self._scored_tasks(miss, sw)]
        return float(np.mean(scores))


class MultiTaskClassifier(ClassifierMixin, _BaseMultiTask):
    __doc__ = """Multi-task linear classification with coupled one-vs-rest sub-tasks
    (logistic loss).  Each task (a column of Y) with K classes becomes one sub-task (K = 2)
    or K one-vs-rest sub-tasks; all sub-tasks of all tasks are fitted jointly.
""" + _OBJECTIVE_DOC + """
    Parameters are those of :class:`MultiTaskRegressor` (labels may be of any type), and

    loss : {"logistic", "multinomial"}, default="logistic"
        "logistic": every K-class task is K one-vs-rest logistic sub-tasks. "multinomial":
        a K-class task (K > 2) has the softmax cross-entropy
        log sum_k exp(z_k) - z_y over its K columns (binary tasks stay logistic); the K
        columns are still that task's sub-tasks for the penalty's coupling, and
        ``predict_proba`` is their softmax. One task with ``penalty="ridge"`` is
        ``LogisticRegression(C=1 / (alpha * n))`` (multinomial). Better calibrated
        probabilities than one-vs-rest.

    class_weight : None, "balanced", dict or list of those (one per task), default=None
        scikit-learn's meaning, per task. A dict {class: weight} multiplies the loss of every
        labelled entry of that class (classes not named weigh 1) in each of the task's
        sub-tasks; "balanced" weighs each sub-task's positives and negatives by
        n / (2 n_pos) and n / (2 n_neg) over its labelled entries (weighted by
        ``sample_weight``): ``LogisticRegression(class_weight="balanced")`` for a binary task,
        what ``OneVsRestClassifier`` gives each one-vs-rest problem of a multi-class task.
        A single dict needs a single task; a list gives one spec per task. Class weights
        scale the loss terms but not n_t, so one binary task with ``penalty="ridge"`` equals
        ``LogisticRegression(C=1 / (alpha * n), class_weight=...)``.

    ``fit(X, y, sample_weight)`` takes ``sample_weight`` of shape (n,) or (n, n_tasks) (a
    weight per entry); a zero weight is the same as an unlabelled entry.

    Attributes
    ----------
    classes_ : array of classes (one task) or list of arrays (one per task)
    coef_ : (n_subtasks, n_features); intercept_ : (n_subtasks,); subtask_task_ : the task
    of each sub-task; task_relation_; n_iter_; objective_trace_; objective_; dual_gap_
    """

    _loss_name = "logistic"

    def __init__(self, penalty="graph", alpha=1e-2, l2="auto", task_relation="auto", *,
                 loss="logistic", class_weight=None, fit_intercept=True, intercept_scaling=None,
                 task_weight=None, max_iter=2000, tol=1e-4, warm_start=False, solver="auto",
                 device="auto", n_jobs=None, verbose=0, missing_label=None):
        super().__init__(penalty=penalty, alpha=alpha, l2=l2, task_relation=task_relation,
                         fit_intercept=fit_intercept, intercept_scaling=intercept_scaling,
                         task_weight=task_weight, max_iter=max_iter, tol=tol,
                         warm_start=warm_start, solver=solver, device=device, n_jobs=n_jobs,
                         verbose=verbose, missing_label=missing_label)
        self.class_weight = class_weight
        self.loss = loss

    def _check_params(self):
        check_classification_loss(self.loss)
        return super()._check_params()

    def _encode(self, Y2, miss):
        # int8 targets, no mask array where every label is present (_labels)
        Yenc, mask, classes, owner = _labels.encode_classification(Y2, miss, compact=True)
        self._classes = classes
        return Yenc, mask, owner

    def _adopt_encoding(self, types, classes, scale, owner):
        self._classes = classes

    def _class_weight_specs(self, T):
        if self.class_weight is None:
            return None
        return _labels.check_class_weight(self.class_weight, T)

    def _class_weights(self, Y2, miss, SW, Yenc, mask, owner, group=None):
        """Loss multipliers from ``class_weight`` (see _labels.class_weight_matrix)."""
        specs = self._class_weight_specs(Y2.shape[1])
        if specs is None:
            return 1.0
        softmax = [] if group is None else list(np.unique(owner[group >= 2]))
        return _labels.class_weight_matrix(specs, Y2, miss, SW, self._classes, owner,
                                           softmax_tasks=softmax)

    def _loss_groups(self, owner):
        if self.loss == "logistic":
            return None
        counts = np.bincount(owner)
        return _losses.softmax_groups(owner, np.flatnonzero(counts >= 2))

    def fit(self, X, y, sample_weight=None):
        super().fit(X, y, sample_weight)
        self.classes_ = self._classes[0] if self._one_d else self._classes
        del self._classes
        return self

    def _task_classes(self):
        return [self.classes_] if self._one_d else self.classes_

    def decision_function(self, X):
        """Per task: (n,) for a binary task, (n, K) for K classes; a list for several tasks."""
        Z = self._decision(X)
        out = []
        for t in range(self.n_tasks_):
            cols = np.flatnonzero(self.subtask_task_ == t)
            out.append(Z[:, cols[0]] if len(cols) == 1 else Z[:, cols])
        return out[0] if self._one_d else out

    def predict_proba(self, X):
        """Per task: (n, K) probabilities; a list for several tasks. A binary task: the
        sigmoid of its score. A K-class task: the softmax of its K scores with
        ``loss="multinomial"``, else the K one-vs-rest sigmoids normalised to sum to one
        (as ``OneVsRestClassifier``)."""
        dec = self.decision_function(X)
        dec = [dec] if self._one_d else dec
        softmax = getattr(self, "loss", "logistic") == "multinomial"
        out = [task_proba(z, softmax) for z in dec]
        return out[0] if self._one_d else out

    def predict(self, X):
        """Predicted labels per task; a dask X gives a lazy dask array (of the classes'
        dtype, object when the tasks' classes differ in type)."""
        if _dask.is_dask(X):
            check_is_fitted(self, "coef_")
            kinds = {np.asarray(c).dtype for c in self._task_classes()}
            return _dask.map_predict(self, self.predict, X,
                                     None if self._one_d else self.n_tasks_,
                                     kinds.pop() if len(kinds) == 1 else object)
        dec = self.decision_function(X)
        dec = [dec] if self._one_d else dec
        preds = []
        for z, cls in zip(dec, self._task_classes()):
            idx = (z > 0).astype(int) if z.ndim == 1 else z.argmax(axis=1)
            if is_cupy_array(idx):  # numeric labels stay on the GPU, others come back
                import cupy

                preds.append(cupy.asarray(cls)[idx] if cls.dtype.kind in "biuf"
                             else cls[idx.get()])
            else:
                preds.append(cls[idx])
        if self._one_d:
            return preds[0]
        if all(is_cupy_array(p) for p in preds):
            import cupy

            return cupy.stack(preds, axis=1)
        preds = [to_numpy(p) for p in preds]
        dtypes = {p.dtype for p in preds}
        out = np.empty((len(preds[0]), len(preds)), dtype=dtypes.pop() if len(dtypes) == 1
                       else object)
        for t, p in enumerate(preds):
            out[:, t] = p
        return out

    def score(self, X, y, sample_weight=None):
        """Mean over tasks of the accuracy on each task's labelled samples; a task without a
        labelled sample (of non-zero weight) in these rows is skipped (ValueError if every
        task is). ``sample_weight``: (n,) or (n, n_tasks). On a dask X the sums are
        reduced on the cluster (``_dask.score``): neither X nor the predictions are
        gathered."""
        if _dask.is_dask(X):
            return _dask.score(self, X, y, sample_weight, [False] * self.n_tasks_)
        P, y, sample_weight = _dask.compute_small(self.predict(X), y, sample_weight)
        P = to_numpy(P)
        Y2, miss, sw = self._score_targets(P, y, sample_weight)
        P2 = P.reshape(len(P), -1)
        accs = [float(np.average(np.asarray(Y2[rows, t] == P2[rows, t], dtype=np.float64),
                                 weights=sw[rows, t]))
                for t, rows in self._scored_tasks(miss, sw)]
        return float(np.mean(accs))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        return tags
