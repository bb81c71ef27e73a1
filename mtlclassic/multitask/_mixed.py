"""MultiTaskEstimator: regression and classification tasks in one coupled model."""

import numbers
import warnings

import numpy as np
from sklearn.metrics import r2_score
from sklearn.utils import ClassifierTags
from sklearn.utils._available_if import available_if
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted

from ..backend import get_namespace, to_numpy
from . import _labels, _losses
from ._estimators import (_OBJECTIVE_DOC, _BaseMultiTask, check_classification_loss,
                          task_proba)

TASK_TYPES = ("regression", "classification")

#: "auto" warns when a numeric column read as classification has more classes than this
MANY_CLASSES = 50


def warn_many_classes(t, k):
    """The "auto" warning for a numeric task read as classification with k classes."""
    if k > MANY_CLASSES:
        warnings.warn(f"task {t}: read as classification with {k} classes "
                      "(integer-valued numbers); pass task_types to fit it "
                      "as regression", UserWarning)


def infer_task_type(values):
    """"regression" when scikit-learn's ``type_of_target`` calls the labelled values
    continuous (floats that are not all integers), else "classification"."""
    kind = type_of_target(values)
    if kind == "unknown" and all(isinstance(v, numbers.Real) and not isinstance(v, bool)
                                 for v in values):
        kind = type_of_target(np.asarray(values, dtype=np.float64))  # object-held numbers
    return "regression" if kind in ("continuous", "continuous-multioutput") else \
        "classification"


class MultiTaskEstimator(_BaseMultiTask):
    __doc__ = """Multi-task linear model of mixed task types: regression tasks (squared
    loss) and classification tasks (logistic one-vs-rest, or softmax) in one objective,
    coupled by one penalty -- e.g. 10 landmark coordinates and 4 face attributes.
""" + _OBJECTIVE_DOC + """
    with l the squared loss on the sub-task of a regression task and the logistic (or,
    ``loss="multinomial"``, the softmax) loss on those of a classification task; every
    penalty (ridge, mean, graph, l21, trace, mtrl) couples all sub-tasks.

    **Scaling of the regression columns** (``scale_targets=True``): each regression task
    is fitted on y_t / sigma_t, sigma_t the standard deviation of its labelled values, so
    that the squared loss of the intercept-only model is 1/2 per sample -- the order of
    the logistic loss's log 2 -- and one ``alpha`` weighs both kinds of task alike (without
    it, a coordinate in pixels would have a loss ~sigma_t^2 larger and would take all the
    shared penalty's attention). ``coef_``, ``intercept_`` and the predictions are in the
    original units (the fitted weights times sigma_t); the penalty acts on the scaled ones,
    which is what ``objective_`` reports. ``scale_targets=False`` fits the raw targets.

    Identities (tested): every task a regression task (``scale_targets=False``) is
    :class:`MultiTaskRegressor`; every task a classification task is
    :class:`MultiTaskClassifier`; with an uncoupled penalty (``ridge``) the fit equals
    separate regressor and classifier fits of the two groups of tasks (the regressor on
    y_t / sigma_t when scaling).

    Parameters
    ----------
    penalty, alpha, l2, task_relation, fit_intercept, intercept_scaling, task_weight,
    max_iter, tol, warm_start, solver, device, n_jobs, verbose, missing_label
        As in :class:`MultiTaskRegressor` (``solver="closed_form"`` needs every task a
        regression task).
    task_types : "auto" or sequence of {"regression", "classification"}, default="auto"
        The type of each task (column of y). "auto": scikit-learn's ``type_of_target`` on
        the task's labelled values -- continuous (floats not all integers) is regression,
        anything else (strings, integers, integer-valued floats) classification; a
        numeric task read as classification with more than 50 classes warns. Give the
        types explicitly when integer-valued targets (e.g. pixel coordinates) are meant
        as regression.
    loss : {"logistic", "multinomial"}, default="logistic"
        The loss of the classification tasks, as in :class:`MultiTaskClassifier`.
    class_weight : None, "balanced", dict or list, default=None
        As in :class:`MultiTaskClassifier`, for the classification tasks; "balanced"
        applies to every classification task; in a list, a regression task's entry must
        be None.
    scale_targets : bool, default=True
        Divide each regression task by the standard deviation of its labelled values
        during the fit (see above).

    Attributes
    ----------
    task_types_ : list of "regression" / "classification", one per task
    classes_ : list, one per task: the classes of a classification task, None for a
        regression task
    target_scale_ : (n_tasks,) sigma_t of each regression task (1 for classification
        tasks and without scaling)
    coef_ : (n_subtasks, n_features); intercept_ : (n_subtasks,) (original units);
    subtask_task_ : the task of each sub-task; task_relation_; n_iter_; objective_;
    dual_gap_; objective_trace_; l2_; n_features_in_; feature_names_in_
    """

    _mixed_types = True

    def __init__(self, penalty="graph", alpha=1e-2, l2="auto", task_relation="auto", *,
                 task_types="auto", loss="logistic", class_weight=None, scale_targets=True,
                 fit_intercept=True, intercept_scaling=None, task_weight=None, max_iter=2000,
                 tol=1e-4, warm_start=False, solver="auto", device="auto", n_jobs=None,
                 verbose=0, missing_label=None):
        super().__init__(penalty=penalty, alpha=alpha, l2=l2, task_relation=task_relation,
                         fit_intercept=fit_intercept, intercept_scaling=intercept_scaling,
                         task_weight=task_weight, max_iter=max_iter, tol=tol,
                         warm_start=warm_start, solver=solver, device=device, n_jobs=n_jobs,
                         verbose=verbose, missing_label=missing_label)
        self.task_types = task_types
        self.loss = loss
        self.class_weight = class_weight
        self.scale_targets = scale_targets

    # --------------------------------------------------------------- checks
    def _check_params(self):
        check_classification_loss(self.loss)
        if not isinstance(self.scale_targets, (bool, np.bool_)):
            raise ValueError(f"scale_targets must be True or False, got {self.scale_targets!r}")
        tt = self.task_types
        if not (isinstance(tt, str) and tt == "auto"):
            if isinstance(tt, str) or not hasattr(tt, "__len__"):
                raise ValueError("task_types must be 'auto' or a sequence of 'regression' / "
                                 f"'classification' (one per task), got {tt!r}")
            bad = [v for v in tt if not (isinstance(v, str) and v in TASK_TYPES)]
            if bad:
                raise ValueError(f"task_types: each entry must be 'regression' or "
                                 f"'classification', got {bad[0]!r}")
        return super()._check_params()

    def _resolve_types(self, Y2, miss):
        T = Y2.shape[1]
        if isinstance(self.task_types, str):
            types = []
            for t in range(T):
                values = Y2[~miss[:, t], t]
                try:
                    kind = infer_task_type(values)
                except (TypeError, ValueError):
                    kind = "classification"  # unorderable labels: named by the encoder
                if kind == "classification" and len(values) and all(
                        isinstance(v, numbers.Number) for v in values[:100]):
                    warn_many_classes(t, len(np.unique(np.asarray(values, dtype=np.float64))))
                types.append(kind)
            return types
        return self._declared_types(T)

    def _declared_types(self, T):
        """The task types given (checked against T tasks); None for "auto"."""
        if isinstance(self.task_types, str):
            return None
        types = list(self.task_types)
        if len(types) != T:
            raise ValueError(f"task_types has {len(types)} entries but y has {T} task(s)")
        return types

    # ------------------------------------------------------------- encoding
    def _encode(self, Y2, miss):
        types = self._resolve_types(Y2, miss)
        Yenc, mask, owner, classes, scale = _labels.encode_tasks(
            Y2, miss, types, scale_targets=self.scale_targets)
        self._adopt_encoding(types, classes, scale, owner)
        return Yenc, mask, owner

    def _adopt_encoding(self, types, classes, scale, owner):
        """Keep the encoding for the fit (the dask fit finds it from block summaries)."""
        self._types, self._classes_all, self._scale = types, classes, scale
        self._owner_fit = owner
        # the element-wise kernel's loss: squared only when no task is a classification one
        self._loss_name = "squared" if "classification" not in types else "logistic"

    def _class_weights(self, Y2, miss, SW, Yenc, mask, owner, group=None):
        specs = self._class_weight_specs(Y2.shape[1])
        if specs is None:
            return 1.0
        softmax = [] if group is None else list(np.unique(owner[group >= 2]))
        return _labels.class_weight_matrix(specs, Y2, miss, SW, self._classes_all, owner,
                                           softmax_tasks=softmax)

    def _class_weight_specs(self, T):
        """class_weight as one spec per task (None for the regression tasks), or None."""
        if self.class_weight is None:
            return None
        cw = self.class_weight
        if isinstance(cw, str) and cw == "balanced":
            cw = [None if ty == "regression" else "balanced" for ty in self._types]
        elif isinstance(cw, dict):
            cls_tasks = [t for t in range(T) if self._types[t] == "classification"]
            if len(cls_tasks) != 1:
                raise ValueError(f"class_weight: a single dict is ambiguous for "
                                 f"{len(cls_tasks)} classification tasks; give a list with "
                                 "one entry per task (None for regression tasks)")
            cw = [cw if t in cls_tasks else None for t in range(T)]
        specs = _labels.check_class_weight(cw, T)
        for t, spec in enumerate(specs):
            if spec is not None and self._types[t] == "regression":
                raise ValueError(f"class_weight[{t}]: task {t} is a regression task; its "
                                 "entry must be None")
        return specs

    def _loss_groups(self, owner):
        if self._loss_name == "squared":
            return None
        reg = [t for t, ty in enumerate(self._types) if ty == "regression"]
        counts = np.bincount(owner, minlength=len(self._types))
        multinomial = [t for t, ty in enumerate(self._types) if ty == "classification"
                       and counts[t] >= 2] if self.loss == "multinomial" else []
        group = _losses.mixed_groups(owner, reg, multinomial)
        return group if np.any(group != 1) else None

    def _curvature(self, group):
        """Per column: 1 (squared), 1/4 (logistic), 1/2 (softmax)."""
        if self._loss_name == "squared":
            return 1.0
        if group is None:
            return 0.25
        return np.where(group == -1, 1.0, np.where(group == 1, 0.25, 0.5))

    def _initial_point(self, d, n_sub, xp, dt, ctx):
        W0, b0 = super()._initial_point(d, n_sub, xp, dt, ctx)
        if ctx["warm"]:  # coef_ is in the original units; the solver works on y / sigma
            s = xp.asarray(self._scale[self._owner_fit], dtype=dt)
            W0, b0 = W0 / s, b0 / s
        return W0, b0

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, sample_weight=None):
        """Fit every task jointly. y: (n,) or (n, n_tasks), each column a regression or a
        classification task (``task_types``); unlabelled entries are NaN, None or
        ``missing_label``. ``sample_weight``: (n,) or (n, n_tasks). A dask array X
        (chunked by rows) fits on the workers of the current dask.distributed Client
        without gathering the data, as the regressor and classifier do (``_dask``): the
        "auto" task types, the std of ``scale_targets`` and the classes come from
        summaries of the row blocks."""
        try:
            super().fit(X, y, sample_weight)
            self.task_types_ = self._types
            self.classes_ = self._classes_all
            self.target_scale_ = self._scale
        finally:
            for name in ("_types", "_classes_all", "_scale", "_owner_fit"):
                self.__dict__.pop(name, None)
        s = self.target_scale_[self.subtask_task_]
        if np.any(s != 1.0):  # back to the original units
            xp = get_namespace(self.coef_)
            self.coef_ = self.coef_ * xp.asarray(s, dtype=self.coef_.dtype)[:, None]
            self.intercept_ = self.intercept_ * xp.asarray(s, dtype=self.intercept_.dtype)
        return self

    # ------------------------------------------------------------- predict
    def decision_function(self, X):
        """Per task: a regression task's predictions (n,), a binary task's score (n,), a
        K-class task's K scores (n, K); a list for several tasks."""
        Z = self._decision(X)
        out = []
        for t in range(self.n_tasks_):
            cols = np.flatnonzero(self.subtask_task_ == t)
            out.append(Z[:, cols[0]] if len(cols) == 1 else Z[:, cols])
        return out[0] if self._one_d else out

    def _has_classification(self):
        return "classification" in getattr(self, "task_types_", ())

    @available_if(_has_classification)
    def predict_proba(self, X):
        """Per task: (n, K) class probabilities of a classification task (as
        :meth:`MultiTaskClassifier.predict_proba`), None for a regression task; a list for
        several tasks. Only on a model fitted with a classification task."""
        dec = self.decision_function(X)
        dec = [dec] if self._one_d else dec
        out = [None if ty == "regression" else task_proba(z, self.loss == "multinomial")
               for z, ty in zip(dec, self.task_types_)]
        return out[0] if self._one_d else out

    def predict(self, X):
        """(n, n_tasks) (or (n,) for a 1-D y): each regression task's value in its original
        units, each classification task's predicted class. Numeric classes and regression
        values share one float array; classes of other types (e.g. str) make an object
        array whose columns each hold their task's type. A dask X gives a lazy dask array
        (computed block by block)."""
        from . import _dask

        if _dask.is_dask(X):
            check_is_fitted(self, "coef_")
            kinds = [np.dtype(np.float64) if ty == "regression" else np.asarray(c).dtype
                     for ty, c in zip(self.task_types_, self.classes_)]
            dtype = kinds[0] if self._one_d else (
                np.result_type(*kinds) if all(k.kind in "biuf" for k in kinds) else object)
            return _dask.map_predict(self, self.predict, X,
                                     None if self._one_d else self.n_tasks_, dtype)
        dec = self.decision_function(X)
        dec = [dec] if self._one_d else dec
        preds = []
        for z, ty, cls in zip(dec, self.task_types_, self.classes_):
            z = to_numpy(z)
            if ty == "regression":
                preds.append(np.asarray(z, dtype=np.float64))
            else:
                preds.append(cls[(z > 0).astype(int) if z.ndim == 1 else z.argmax(axis=1)])
        if self._one_d:
            return preds[0]
        numeric = all(p.dtype.kind in "biuf" for p in preds)
        out = np.empty((len(preds[0]), len(preds)),
                       dtype=np.result_type(*preds) if numeric else object)
        for t, p in enumerate(preds):
            out[:, t] = p
        return out

    def score(self, X, y, sample_weight=None):
        """Mean over tasks of R^2 (regression tasks) and accuracy (classification tasks) on
        each task's labelled samples; a task without a labelled sample (of non-zero
        weight) in these rows is skipped (ValueError if every task is). ``sample_weight``:
        (n,) or (n, n_tasks). On a dask X the sums are reduced on the cluster
        (``_dask.score``): neither X nor the predictions are gathered."""
        from . import _dask

        if _dask.is_dask(X):
            return _dask.score(self, X, y, sample_weight,
                               [ty == "regression" for ty in self.task_types_])
        P, y, sample_weight = _dask.compute_small(self.predict(X), y, sample_weight)
        Y2, miss, sw = self._score_targets(P, y, sample_weight)
        P2 = P.reshape(len(P), -1)
        scores = []
        for t, rows in self._scored_tasks(miss, sw):
            if self.task_types_[t] == "regression":
                yt = np.asarray(Y2[rows, t], dtype=np.float64)
                scores.append(r2_score(yt, np.asarray(P2[rows, t], dtype=np.float64),
                                       sample_weight=sw[rows, t]))
            else:
                scores.append(float(np.average(np.asarray(Y2[rows, t] == P2[rows, t],
                                                          dtype=np.float64),
                                               weights=sw[rows, t])))
        return float(np.mean(scores))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags = ClassifierTags(multi_class=True)  # the classification tasks
        return tags
