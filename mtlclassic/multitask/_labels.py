"""Target encoding: wide (n, T) targets with missing entries -> sub-task matrices.

Regression: each column is a sub-task. Classification: a column with K classes becomes
one sub-task (K = 2, y in {-1, +1} for classes_[1]) or K one-vs-rest sub-tasks.
"""

import numbers

import numpy as np
from sklearn.utils.multiclass import type_of_target


def missing_mask(Y, missing_label=None):
    """True where an entry is unlabelled: NaN, None, or equal to ``missing_label``."""
    Y = np.asarray(Y)
    if Y.dtype.kind == "f":
        miss = np.isnan(Y)
    elif Y.dtype.kind == "O":
        miss = np.array([[v is None or (isinstance(v, float) and math_isnan(v)) for v in row]
                         for row in Y], dtype=bool).reshape(Y.shape)
    else:
        miss = np.zeros(Y.shape, dtype=bool)
    if missing_label is not None:
        with np.errstate(invalid="ignore"):
            miss |= np.asarray(Y == missing_label, dtype=bool)
    return miss


def math_isnan(v):
    return v != v


def as_2d_targets(Y):
    Y = np.asarray(Y)
    if Y.ndim == 1:
        return Y[:, None], True
    if Y.ndim != 2:
        raise ValueError(f"Y must be 1-D (one task) or 2-D (n_samples, n_tasks), got shape "
                         f"{Y.shape}")
    return Y, False


def check_labelled(miss, task_names=None):
    for t in range(miss.shape[1]):
        if miss[:, t].all():
            raise ValueError(f"task {t} has no labelled sample (every entry of column {t} of "
                             "Y is missing)")


def encode_regression(Y, miss):
    Yf = np.asarray(Y, dtype=np.float64).copy() if Y.dtype.kind != "O" else \
        np.where(miss, 0.0, Y).astype(np.float64)
    Yf[miss] = 0.0
    if not np.all(np.isfinite(Yf)):
        raise ValueError("Y contains infinity")
    return Yf


def encode_classification(Y, miss):
    """Returns (Yenc (n, T') in {-1, +1}, mask (n, T'), classes_ list, subtask_task (T',))."""
    n, T = Y.shape
    cols, masks, classes, owner = [], [], [], []
    for t in range(T):
        lab = ~miss[:, t]
        values = Y[lab, t]
        kind = type_of_target(values)
        if kind in ("continuous", "continuous-multioutput"):
            raise ValueError(f"task {t}: the targets are continuous; MultiTaskClassifier needs "
                             "class labels (use MultiTaskRegressor for continuous targets)")
        try:
            cls = np.unique(values)
        except TypeError as exc:
            raise ValueError(f"task {t}: labels of mixed types cannot be ordered ({exc})") \
                from None
        if len(cls) < 2:
            raise ValueError(f"task {t} has only one class ({cls[0]!r}) among its labelled "
                             "samples; a classifier needs at least two")
        classes.append(cls)
        idx = np.searchsorted(cls, values)
        if len(cls) == 2:
            col = np.zeros(n)
            col[lab] = np.where(idx == 1, 1.0, -1.0)
            cols.append(col)
            masks.append(lab)
            owner.append(t)
        else:
            for k in range(len(cls)):
                col = np.zeros(n)
                col[lab] = np.where(idx == k, 1.0, -1.0)
                cols.append(col)
                masks.append(lab)
                owner.append(t)
    return np.stack(cols, axis=1), np.stack(masks, axis=1), classes, np.array(owner)


def check_weights(w, n, name):
    if w is None:
        return np.ones(n)
    w = np.asarray(w, dtype=np.float64)
    if isinstance(w, numbers.Number) or w.ndim == 0:
        w = np.full(n, float(w))
    if w.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"{name} must be finite and non-negative")
    return w
