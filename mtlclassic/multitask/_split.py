"""A scikit-learn cross-validation splitter for multi-task targets with missing entries."""

import numbers

import numpy as np
from sklearn.model_selection import BaseCrossValidator
from sklearn.utils import check_random_state

from . import _labels


class MultiTaskKFold(BaseCrossValidator):
    """K folds of samples that spread every task's labelled samples over the folds.

    ``KFold`` and ``StratifiedKFold`` look at the rows only: a task labelled on a few rows
    may then have none in some test fold (its score is undefined) or none of a class in some
    training fold. This splitter deals each task's labelled rows round-robin over the folds,
    rarest task first, stratified by class for classification targets (each class's rows
    dealt in turn), so every fold holds about ``1 / n_splits`` of every task's labels and of
    every class: iterative stratification over the (task, class) labels (Sechidis,
    Tsoumakas & Vlahavas, ECML PKDD 2011). Rows labelled in no task are dealt last.

    Use it wherever scikit-learn takes ``cv``: ``GridSearchCV(MultiTaskClassifier(), grid,
    cv=MultiTaskKFold(3))``, ``cross_val_score``, ``cross_validate``,
    ``RandomizedSearchCV``. (An integer ``cv`` makes scikit-learn's ``check_cv`` call
    ``type_of_target(y)``, which fails on targets holding None, NaN or mixed label types
    before any estimator code runs.)

    Parameters
    ----------
    n_splits : int >= 2, default=5
    shuffle : bool, default=True
        Shuffle each task's rows before dealing them.
    random_state : int, RandomState or None, default=0
    stratify : {"auto", True, False}, default="auto"
        Deal each class in turn; "auto": for columns that are not floating point with
        non-integer values (i.e. class labels).
    missing_label : value marking unlabelled entries besides NaN/None/``pd.NA``

    ``split(X, y)`` takes ``y`` of shape (n,) or (n, n_tasks).
    """

    def __init__(self, n_splits=5, *, shuffle=True, random_state=0, stratify="auto",
                 missing_label=None):
        self.n_splits = n_splits
        self.shuffle = shuffle
        self.random_state = random_state
        self.stratify = stratify
        self.missing_label = missing_label

    def get_n_splits(self, X=None, y=None, groups=None):
        return self.n_splits

    def fold_of_rows(self, y):
        """The fold (0..n_splits-1) of every row of ``y``."""
        k = self.n_splits
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 2:
            raise ValueError(f"n_splits must be an integer >= 2, got {k!r}")
        if self.stratify not in ("auto", True, False):
            raise ValueError(f"stratify must be 'auto', True or False, got {self.stratify!r}")
        Y2, _ = _labels.as_2d_targets(np.asarray(y, dtype=object)
                                      if not hasattr(y, "dtype") else np.asarray(y))
        n = Y2.shape[0]
        if n < k:
            raise ValueError(f"n_splits={k} is more than the {n} samples")
        miss = _labels.missing_mask(Y2, self.missing_label)
        rng = check_random_state(self.random_state)
        # one "label" per (task, class) -- per task for a regression column -- and the rows
        # holding it; then iterative stratification (Sechidis, Tsoumakas & Vlahavas 2011):
        # the label with fewest rows left goes first, each of its rows to the fold that
        # still wants most of that label (then of the row's other labels, then rows), which
        # updates what the fold wants of the row's other labels
        members = []
        for t in range(Y2.shape[1]):
            rows = np.flatnonzero(~miss[:, t])
            members += [rows[g] for g in self._strata(Y2[rows, t]) if len(g)]
        labels_of = [[] for _ in range(n)]
        for lab, rows in enumerate(members):
            for r in rows:
                labels_of[r].append(lab)
        want = np.array([[len(rows) / k] * k for rows in members]).reshape(len(members), k)
        want_rows = np.full(k, n / k)
        left = np.array([len(rows) for rows in members], dtype=float)
        fold = np.full(n, -1)
        jitter = rng.random(k) * 1e-9 if self.shuffle else np.zeros(k)
        while members and left.max() > 0:
            lab = int(np.argmin(np.where(left > 0, left, np.inf)))
            rows = members[lab]
            rows = rows[fold[rows] < 0]
            if self.shuffle:
                rows = rng.permutation(rows)
            for r in rows:
                # this label's want first, then the row's other labels', then rows
                others = want[labels_of[r]].sum(axis=0)
                score = (np.floor(want[lab]) * (n + 1) + others) * (n + 1) + want_rows + jitter
                f = int(np.argmax(score))
                fold[r] = f
                want_rows[f] -= 1
                for other in labels_of[r]:
                    want[other, f] -= 1
                    left[other] -= 1
        rest = np.flatnonzero(fold < 0)
        if self.shuffle:
            rest = rng.permutation(rest)
        for r in rest:
            f = int(np.argmax(want_rows))
            fold[r] = f
            want_rows[f] -= 1
        return fold

    def _strata(self, values):
        """Index groups of ``values`` dealt one after the other (one per class)."""
        strat = self.stratify
        if strat == "auto":
            v = np.asarray(values)
            if v.dtype.kind == "f":
                strat = bool(np.all(v == np.round(v)))
            else:
                strat = v.dtype.kind != "c"
        if not strat or len(values) == 0:
            return [np.arange(len(values))]
        keys = np.array([str(v) for v in values])
        _, inv = np.unique(keys, return_inverse=True)
        return [np.flatnonzero(inv == c) for c in range(inv.max() + 1)]

    def _iter_test_masks(self, X=None, y=None, groups=None):
        if y is None:
            raise ValueError("MultiTaskKFold.split needs y (the multi-task targets)")
        fold = self.fold_of_rows(y)
        for f in range(self.n_splits):
            yield fold == f

    def split(self, X, y=None, groups=None):
        """Yield (train, test) row indices, one pair per fold."""
        return super().split(X, y, groups)
