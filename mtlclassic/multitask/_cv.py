"""Cross-validated multi-task estimators: a warm-started path over a log grid of alpha."""

import numbers
import warnings

import numpy as np
import scipy.sparse
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.model_selection import KFold, StratifiedKFold

from ..backend import is_cupy_array
from . import _dask, _labels, _solver
from ._estimators import MultiTaskClassifier, MultiTaskRegressor, guarded_fit
from .penalties import get_penalty

_BASE_PARAMS = ("penalty", "l2", "task_relation", "fit_intercept", "intercept_scaling",
                "task_weight", "max_iter", "tol", "solver", "device", "verbose",
                "missing_label")


def entry_folds(Y2, miss, n_folds, classification, random_state, min_heldout=1):
    """Fold index (0..n_folds-1) of every labelled entry, -1 where unlabelled: each task's
    labelled samples are split on their own (stratified by class for classification), so
    tasks with few labels still contribute to every fold.

    A task with too few labelled samples for ``n_folds`` folds of ``min_heldout`` held-out
    samples each (or, stratified, a class with fewer than ``n_folds`` samples) is split into
    fewer folds, with a warning naming the task and its count; fewer than 2 is an error."""
    folds = np.full(Y2.shape, -1, dtype=int)
    reduced = []
    for t in range(Y2.shape[1]):
        rows = np.flatnonzero(~miss[:, t])
        k = min(n_folds, len(rows) // min_heldout)
        if classification:
            labels = Y2[rows, t].astype(str)
            smallest = np.unique(labels, return_counts=True)[1].min()
            k = min(k, smallest)
            if k < 2:
                raise ValueError(f"cv={n_folds}: task {t} has a class with a single "
                                 "labelled sample; stratified cross-validation needs at "
                                 "least 2 per class")
            split = StratifiedKFold(k, shuffle=True, random_state=random_state).split(rows, labels)
        else:
            if k < 2:
                raise ValueError(f"cv={n_folds}: task {t} has {len(rows)} labelled sample(s), "
                                 f"too few for 2 folds of {min_heldout} held-out sample(s) "
                                 "each")
            split = KFold(k, shuffle=True, random_state=random_state).split(rows)
        if k < n_folds:
            reduced.append(f"task {t}: {k} folds ({len(rows)} labelled)")
        for f, (_, test) in enumerate(split):
            folds[rows[test], t] = f
    if reduced:
        warnings.warn(f"cv={n_folds}: too few labelled samples for {n_folds} folds in "
                      + "; ".join(reduced) + (" (an R^2 needs 2 held-out samples per fold)"
                                              if min_heldout > 1 else "")
                      + "; those tasks are scored in fewer folds", UserWarning)
    return folds


class _CVMixin:
    """fit(): score each (alpha, l2, intercept_scaling) on held-out labelled entries, fold
    by fold, alphas from large to small with warm starts; then refit on everything with the
    best triple."""

    def __init__(self, penalty="graph", alphas=10, l2="auto", task_relation="auto", *, l2s=None,
                 intercept_scalings=None, cv=5, scoring=None, eps_decades=3.0, random_state=0,
                 fit_intercept=True, intercept_scaling=None, task_weight=None,
                 max_iter=2000, tol=1e-4, solver="auto", device="auto", n_jobs=None,
                 verbose=0, missing_label=None):
        super().__init__(penalty=penalty, l2=l2, task_relation=task_relation,
                         fit_intercept=fit_intercept, intercept_scaling=intercept_scaling,
                         task_weight=task_weight, max_iter=max_iter, tol=tol, solver=solver,
                         device=device, n_jobs=n_jobs, verbose=verbose,
                         missing_label=missing_label)
        del self.alpha, self.warm_start
        self.alphas = alphas
        self.l2s = l2s
        self.intercept_scalings = intercept_scalings
        self.cv = cv
        self.scoring = scoring
        self.eps_decades = eps_decades
        self.random_state = random_state

    def _grid_alphas(self, X, Y2, miss):
        if not isinstance(self.alphas, numbers.Integral) or isinstance(self.alphas, bool):
            a = np.asarray(self.alphas, dtype=np.float64).ravel()
            if a.size == 0 or not np.all(np.isfinite(a)) or np.any(a < 0):
                raise ValueError(f"alphas must be a positive int or non-negative numbers, got "
                                 f"{self.alphas!r}")
            return np.sort(a)[::-1]
        if self.alphas < 1:
            raise ValueError(f"alphas must be >= 1, got {self.alphas}")
        # the largest useful alpha: the scale of the data-term gradient at W = 0
        Yn = np.where(miss, 0.0, self._numeric_targets(Y2, miss))
        Yn = np.where(miss, 0.0, Yn - np.nanmean(np.where(miss, np.nan, Yn), axis=0))
        n_t = np.maximum((~miss).sum(axis=0), 1)
        M = Yn / n_t
        # (X - mean(X))^T M without centring X (sparse X stays sparse)
        if _dask.is_dask(X):  # one pass on the workers; (d, T) results come back
            import dask

            x_mean, XtM = dask.compute(X.mean(axis=0), X.T @ M)
        elif isinstance(X, np.ndarray) and X.dtype == np.float32:  # by row blocks, in float64
            x_mean, XtM = _solver.column_mean(X), _solver.xt_dot(X, M)
        else:
            x_mean, XtM = X.mean(axis=0), X.T @ M
        G = np.asarray(XtM) - np.outer(np.asarray(x_mean).ravel(), M.sum(axis=0))
        g = np.abs(G).max() if G.size else 1.0
        top = max(float(g), 1e-12)
        return top * np.logspace(0, -self.eps_decades, int(self.alphas))

    def _grid(self, X, Y2, miss):
        """The alpha path and the (l2, intercept_scaling) pairs scored along it."""
        alphas = self._grid_alphas(X, Y2, miss)
        if self.l2s is None:
            l2s = [self.l2 if isinstance(self.l2, str) else float(self.l2)]
        else:
            l2s = [float(v) for v in np.atleast_1d(self.l2s)]
            if not l2s or any(not np.isfinite(v) or v < 0 for v in l2s):
                raise ValueError(f"l2s must be non-negative numbers, got {self.l2s!r}")
        if self.intercept_scalings is None:
            scalings = [self.intercept_scaling]
        else:
            scalings = [float(v) for v in np.atleast_1d(self.intercept_scalings)]
            if not scalings or any(not np.isfinite(v) or v <= 0 for v in scalings):
                raise ValueError(f"intercept_scalings must be positive numbers, got "
                                 f"{self.intercept_scalings!r}")
        return alphas, [(l2, s) for l2 in l2s for s in scalings]

    def _fold_path(self, X, Y2, folds, f, alphas, l2, scaling, sample_weight, dist=None):
        base = self._base().set_params(l2=l2, intercept_scaling=scaling, warm_start=True)
        held = folds == f
        if dist is not None and Y2.dtype.kind == "f":
            # dask X, numeric targets: the fold's training targets made on the workers
            # from the persisted Y and folds, once per fold (not sent by each fit)
            Ytr = _dask.fold_targets(dist, f)
        else:
            Ytr = Y2.copy().astype(object) if Y2.dtype.kind not in "f" else Y2.copy()
            Ytr[held] = None if Ytr.dtype == object else np.nan
        pen = get_penalty(self.penalty)
        # an estimated ("auto") relation depends on the fold's data, not on alpha: estimate
        # it once, at the first alpha, and reuse it along the path
        reuse = (pen.uses_relation and not pen.learns_relation
                 and isinstance(self.task_relation, str) and self.task_relation == "auto")
        scores = []
        for a in alphas:
            base.set_params(alpha=a)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                base.fit(X, Ytr, sample_weight=sample_weight)
            if reuse:
                base.set_params(task_relation=base.task_relation_)
                reuse = False
            if dist is not None:  # dask X: summed on the cluster, the held-out entries
                # weighted 1 (unweighted scores, as in memory)
                Yd, Fd = dist
                tot = _dask.score_sums(base, X, Yd, (Fd == f).astype(np.float64),
                                       [not self._classification] * Y2.shape[1])
                scores.append(self._heldout_from_sums(tot, self._scoring()))
                continue
            P = np.asarray(base.predict(X)).reshape(X.shape[0], -1)
            scores.append(self._heldout_score(Y2, P, held, self._scoring()))
        return scores

    def _scoring(self):
        s = self._scorings[0] if self.scoring is None else self.scoring
        if not isinstance(s, str) or s not in self._scorings:
            raise ValueError(f"scoring must be None or one of {self._scorings}, got "
                             f"{self.scoring!r}")
        return s

    def _fit_cv(self, X, y, sample_weight):
        base = self._base()
        base._check_params()
        if is_cupy_array(X) or self.device == "cuda":
            raise ValueError(f"{type(self).__name__} cross-validates on the CPU: pass NumPy "
                             "arrays with device='auto' or 'cpu', then refit the chosen alpha "
                             "with MultiTaskRegressor/Classifier(device='cuda')")
        if _dask.is_dask(X):
            # X stays on the workers (persisted once for all the fold fits); the targets
            # (n, T) come to the client, where the folds are drawn
            _dask.known_chunks(X, "X")
            X, y, sample_weight = _dask.prepare_cv(X, y, sample_weight)
            Y2, one_d = _labels.as_2d_targets(y)
            if Y2.shape[0] != X.shape[0]:
                raise ValueError(f"X and Y have different numbers of samples: {X.shape[0]} "
                                 f"and {Y2.shape[0]}")
            miss = _labels.missing_mask(Y2, self.missing_label)
            _labels.check_labelled(miss)
        else:
            X, Y2, one_d, miss, _ = base._validate_fit_inputs(X, y, type(self).__name__)
        base._encode(Y2, miss)  # label checks (continuous targets, single classes)
        self._scoring()
        if hasattr(self.cv, "split") and not isinstance(self.cv, str):
            folds = self._splitter_folds(X, Y2, miss)
        else:
            if isinstance(self.cv, bool) or not isinstance(self.cv, numbers.Integral) \
                    or self.cv < 2:
                raise ValueError(f"cv must be an integer >= 2 or a splitter (e.g. "
                                 f"MultiTaskKFold), got {self.cv!r}")
            min_heldout = 2 if (not self._classification and self._scoring() == "r2") else 1
            folds = entry_folds(Y2, miss, self.cv, self._classification, self.random_state,
                                min_heldout)
        dist = None
        if _dask.is_dask(X):
            Xa = X  # checked by each fit, on the workers
            dist = _dask.cv_scatter(X, Y2, folds)
        else:
            # dense float32 X stays float32: each fold's fit computes with it in float64
            # by blocks of rows (a float64 copy was twice its size, alive through the grid)
            Xa = X.astype(np.float64) if scipy.sparse.issparse(X) else \
                X if isinstance(X, np.ndarray) and X.dtype == np.float32 else \
                np.asarray(X, dtype=np.float64)
            if not np.all(np.isfinite(Xa.data if scipy.sparse.issparse(Xa) else Xa)):
                raise ValueError("X contains NaN or infinity")
        alphas, pairs = self._grid(Xa, Y2, miss)
        n_folds = folds.max() + 1
        # never more joblib workers than fold paths to run (each is a whole process)
        n_workers = min(effective_n_jobs(self.n_jobs), len(pairs) * n_folds)
        if _dask.is_dask(X):
            n_workers = 1  # each fit already runs on every worker of the dask cluster
        res = Parallel(n_jobs=n_workers)(
            delayed(self._fold_path)(Xa, Y2, folds, f, alphas, l2, s, sample_weight, dist)
            for l2, s in pairs for f in range(n_folds))
        S = np.array(res).reshape(len(pairs), n_folds, len(alphas))
        mean = S.mean(axis=1)
        if np.all(np.isnan(mean)):
            raise ValueError(f"cv={self.cv}: no held-out fold could be scored (too few "
                             "held-out samples per task and fold); use a smaller cv")
        i, j = np.unravel_index(np.nanargmax(mean), mean.shape)
        self.alpha_, (self.l2_, self.intercept_scaling_) = float(alphas[j]), pairs[i]
        self.alphas_ = alphas
        # one row per (l2, intercept_scaling) pair, one column per alpha
        self.cv_results_ = {"alphas": alphas, "l2s": np.array([p[0] for p in pairs]),
                            "intercept_scalings": [p[1] for p in pairs],
                            "mean_score": mean, "std_score": S.std(axis=1), "fold_scores": S}
        best = self._base().set_params(alpha=self.alpha_, l2=self.l2_,
                                       intercept_scaling=self.intercept_scaling_).fit(
            X, y, sample_weight=sample_weight)
        for k, v in vars(best).items():
            if k.endswith("_") or k == "_one_d":
                setattr(self, k, v)
        return self

    def _splitter_folds(self, X, Y2, miss):
        """Entry folds from a scikit-learn splitter over rows (``cv.split(X, Y)``): every
        labelled entry of a row is held out in the row's test fold."""
        row_fold = np.full(Y2.shape[0], -1)
        for f, (_, test) in enumerate(self.cv.split(X, np.where(miss, None, Y2))):
            if np.any(row_fold[test] >= 0):
                raise ValueError("cv: a splitter whose test folds overlap cannot be used")
            row_fold[test] = f
        if row_fold.max() < 1:
            raise ValueError("cv: the splitter gave fewer than 2 folds")
        return np.where(miss, -1, row_fold[:, None])

    def _base(self):
        names = _BASE_PARAMS + (("class_weight", "loss") if self._classification else ())
        return self._base_class(alpha=1.0, **{k: getattr(self, k) for k in names})


class MultiTaskRegressorCV(_CVMixin, MultiTaskRegressor):
    """:class:`MultiTaskRegressor` with ``alpha`` (and optionally ``l2``) chosen by
    cross-validation on held-out labelled entries.

    Parameters (besides those of MultiTaskRegressor, whose ``alpha`` is not used)
    ----------
    alphas : int or array, default=10
        An int gives a log grid from the data's largest useful alpha down ``eps_decades``
        decades; the path runs from large to small alpha with warm starts.
    l2s : array or None
        Grid of ``l2`` (e.g. for the mean penalty); None keeps ``l2``.
    intercept_scalings : array or None
        Grid of ``intercept_scaling`` (penalised intercepts; see MultiTaskRegressor);
        None keeps ``intercept_scaling``.
    cv : int or splitter, default=5
        An int: folds drawn per task among its labelled samples. A scikit-learn splitter
        over rows (e.g. :class:`MultiTaskKFold`, ``GroupKFold`` with ``split`` taking
        ``(X, y)``): each row's labelled entries are held out together in its test fold.
    scoring : {"r2", "neg_mean_squared_error"} or None (= "r2")
        "r2": the mean over tasks of each task's held-out R^2 (every task counts the
        same); "neg_mean_squared_error": minus the MSE pooled over all held-out entries
        (every entry counts the same, the metric of pooled studies such as School's nMSE).
    n_jobs : int, default=None
        joblib workers over folds (a Dask joblib backend distributes them).

    Attributes: ``alpha_``, ``l2_``, ``intercept_scaling_``, ``alphas_``, ``cv_results_``
    (``mean_score``, ``std_score``: one row per (``l2s[i]``, ``intercept_scalings[i]``)
    pair, one column per alpha; ``fold_scores``) plus the refitted model's.
    """

    _base_class = MultiTaskRegressor
    _classification = False
    _scorings = ("r2", "neg_mean_squared_error")

    @staticmethod
    def _numeric_targets(Y2, miss):
        return np.where(miss, 0.0, Y2).astype(np.float64)

    @staticmethod
    def _heldout_score(Y2, P, held, scoring):
        if scoring == "neg_mean_squared_error":
            Yf = np.where(held, Y2, 0.0).astype(np.float64)
            return -float(np.sum(np.where(held, (Yf - P) ** 2, 0.0)) / held.sum())
        scores = []
        for t in range(Y2.shape[1]):
            rows = held[:, t]
            if rows.sum() < 2:
                continue
            y = Y2[rows, t].astype(np.float64)
            ss = np.sum((y - y.mean()) ** 2)
            scores.append(1 - np.sum((y - P[rows, t]) ** 2) / ss if ss > 0 else 0.0)
        return float(np.mean(scores)) if scores else np.nan

    @staticmethod
    def _heldout_from_sums(tot, scoring):
        """:meth:`_heldout_score` from the held-out entries' sums (``_dask.score_sums``)."""
        W, _, m2 = tot["moments"]
        if scoring == "neg_mean_squared_error":
            return -float(tot["res"].sum() / W.sum())
        scores = [1 - tot["res"][t] / m2[t] if m2[t] > 0 else 0.0
                  for t in range(len(W)) if W[t] >= 2]
        return float(np.mean(scores)) if scores else np.nan

    def fit(self, X, y, sample_weight=None):
        # a refused or interrupted search leaves a fitted model as it was (review)
        return guarded_fit(self, lambda: self._fit_cv(X, y, sample_weight),
                           self._base()._check_params())


class MultiTaskClassifierCV(_CVMixin, MultiTaskClassifier):
    """:class:`MultiTaskClassifier` with ``alpha`` (and optionally ``l2``) chosen by
    stratified cross-validation on held-out labelled entries; ``loss`` and ``class_weight``
    as in :class:`MultiTaskClassifier` (the held-out score is unweighted). ``scoring``: "accuracy"
    (default; the mean over tasks of each task's held-out accuracy) or "pooled_accuracy"
    (the fraction of all held-out entries predicted right). Other parameters and the
    attributes as :class:`MultiTaskRegressorCV`."""

    _base_class = MultiTaskClassifier
    _classification = True
    _scorings = ("accuracy", "pooled_accuracy")

    def __init__(self, penalty="graph", alphas=10, l2="auto", task_relation="auto", *, l2s=None,
                 intercept_scalings=None, cv=5, scoring=None, eps_decades=3.0, random_state=0,
                 loss="logistic", class_weight=None, fit_intercept=True,
                 intercept_scaling=None, task_weight=None, max_iter=2000, tol=1e-4,
                 solver="auto", device="auto", n_jobs=None, verbose=0, missing_label=None):
        _CVMixin.__init__(self, penalty=penalty, alphas=alphas, l2=l2,
                          task_relation=task_relation, l2s=l2s,
                          intercept_scalings=intercept_scalings, cv=cv, scoring=scoring,
                          eps_decades=eps_decades, random_state=random_state,
                          fit_intercept=fit_intercept, intercept_scaling=intercept_scaling,
                          task_weight=task_weight, max_iter=max_iter, tol=tol, solver=solver,
                          device=device, n_jobs=n_jobs, verbose=verbose,
                          missing_label=missing_label)
        self.class_weight = class_weight
        self.loss = loss

    @staticmethod
    def _numeric_targets(Y2, miss):
        out = np.zeros(Y2.shape)
        for t in range(Y2.shape[1]):
            lab = ~miss[:, t]
            cls, idx = np.unique(Y2[lab, t].astype(str), return_inverse=True)
            out[lab, t] = idx / max(len(cls) - 1, 1)
        return out

    @staticmethod
    def _heldout_score(Y2, P, held, scoring):
        if scoring == "pooled_accuracy":
            return float(np.mean(Y2[held].astype(str) == P[held].astype(str)))
        scores = [float(np.mean(Y2[held[:, t], t].astype(str) == P[held[:, t], t].astype(str)))
                  for t in range(Y2.shape[1]) if held[:, t].any()]
        return float(np.mean(scores)) if scores else np.nan

    @staticmethod
    def _heldout_from_sums(tot, scoring):
        """:meth:`_heldout_score` from the held-out entries' sums (``_dask.score_sums``)."""
        W = tot["moments"][0]
        if scoring == "pooled_accuracy":
            return float(tot["hit"].sum() / W.sum())
        scores = [tot["hit"][t] / W[t] for t in range(len(W)) if W[t] > 0]
        return float(np.mean(scores)) if scores else np.nan

    def fit(self, X, y, sample_weight=None):
        # a refused or interrupted search leaves a fitted model as it was (review)
        return guarded_fit(self, lambda: self._fit_cv(X, y, sample_weight),
                           self._base()._check_params())
