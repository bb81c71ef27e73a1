"""Task relations: estimation from labels, the signed Laplacian, long-to-wide layout."""

import numpy as np

from ..backend import to_numpy


def signed_laplacian(R):
    """``L = D - R`` with ``D = diag(sum_t |r_st|)`` and R's diagonal ignored.

    ``tr(W L W^T) = 1/2 sum_{s,t} |r_st| ||w_s - sign(r_st) w_t||^2`` for W of shape
    (d, T): positively related tasks are pulled together, negatively related ones towards
    opposite weights (Kunegis et al., "Spectral analysis of signed graphs", SDM 2010).
    """
    R = np.array(R, dtype=np.float64)
    np.fill_diagonal(R, 0.0)
    return np.diag(np.abs(R).sum(axis=1)) - R


def check_task_relation(R, n_tasks, name="task_relation"):
    """A finite, symmetric (n_tasks, n_tasks) matrix with entries in [-1, 1] scale-free."""
    R = np.asarray(R, dtype=np.float64)
    if R.shape != (n_tasks, n_tasks):
        raise ValueError(f"{name} must have shape ({n_tasks}, {n_tasks}), got {R.shape}")
    if not np.all(np.isfinite(R)):
        raise ValueError(f"{name} contains NaN or infinity")
    if not np.allclose(R, R.T, rtol=1e-10, atol=1e-12):
        raise ValueError(f"{name} must be symmetric")
    return R


def estimate_task_relation(Y, mask=None, X=None, min_overlap=3, alpha=1.0,
                           sample_weight=None):
    """Estimate a task correlation matrix from wide-format targets.

    For tasks s, t labelled together on at least ``min_overlap`` rows, ``r_st`` is the
    Pearson correlation of their targets on those rows. Other pairs (disjoint tasks such
    as School's schools) use the correlation of independently fitted ridge weights
    ``w_t = (X_t^T S X_t + alpha n_t I)^-1 X_t^T S y_t`` when X is given, else 0. Constant
    targets give 0. The diagonal is 1. Sample weights weight the correlations and fits
    (a weight of 2 counts as a repeated sample).

    Parameters
    ----------
    Y : (n, T) array of numeric targets (NaN = unlabelled when mask is None)
    mask : (n, T) bool array, optional; True where labelled
    X : (n, d) array, optional
    """
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    M = ~np.isnan(Y) if mask is None else np.asarray(mask, dtype=bool)
    T = Y.shape[1]
    sw = np.ones(len(Y)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    # weighted Pearson correlation of every pair on the rows labelled in both, all pairs at
    # once: sums over the overlap are products of masked matrices. Each column is centred
    # first by its own labelled mean, so the one-pass formula does not cancel.
    L = (M & (sw > 0)[:, None]).astype(np.float64)
    w = sw * (sw > 0)
    Yc = np.where(L > 0, Y, 0.0)
    col_w = (w[:, None] * L).sum(axis=0)
    Yc = np.where(L > 0, Yc - (w @ (L * Yc)) / np.maximum(col_w, 1e-300), 0.0)
    Lw = L * w[:, None]
    count = L.T @ L
    Wsum = Lw.T @ L
    Sa = (Lw * Yc).T @ L                       # [s, t]: sum of y_s over the overlap
    Saa = (Lw * Yc * Yc).T @ L
    Sab = (Lw * Yc).T @ Yc
    with np.errstate(invalid="ignore", divide="ignore"):
        ma = Sa / Wsum
        va = Saa / Wsum - ma * ma
        vb = va.T
        cov = Sab / Wsum - ma * ma.T
        # constant targets on the overlap give 0 (tolerance: rounding of the one-pass sums)
        ok = (va > 1e-12 * Saa / Wsum) & (vb > 1e-12 * Saa.T / Wsum)
        C = np.where(ok, cov / np.sqrt(np.where(ok, va * vb, 1.0)), 0.0)
    overlap = count >= min_overlap
    R = np.where(overlap, np.clip(C, -1.0, 1.0), 0.0)
    np.fill_diagonal(R, 1.0)
    disjoint = ~overlap
    np.fill_diagonal(disjoint, False)
    if disjoint.any() and X is not None:
        X = to_numpy(X).astype(np.float64, copy=False)  # CuPy X comes to the host here
        W = np.zeros((X.shape[1], T))
        for t in range(T):
            rows = M[:, t] & (sw > 0)
            if rows.sum() == 0:
                continue
            Xt, yt, wt = X[rows], Y[rows, t], sw[rows]
            Xc = Xt - np.average(Xt, axis=0, weights=wt)
            yc = yt - np.average(yt, weights=wt)
            W[:, t] = np.linalg.solve((Xc.T * wt) @ Xc + alpha * wt.sum() * np.eye(X.shape[1]),
                                      (Xc.T * wt) @ yc)
        C = np.corrcoef(W.T) if T > 1 else np.ones((1, 1))
        R[disjoint] = np.nan_to_num(C)[disjoint]
    return R


def long_to_wide(X, y, task_ids):
    """One row per (sample, task) -> wide layout.

    Returns ``X`` unchanged (rows are samples), ``Y`` of shape (n, T) with ``y`` in column
    ``task`` of each row and NaN elsewhere, and the sorted task labels. Suits data where
    each sample belongs to one task (School: one task per school).
    """
    X = np.asarray(X)
    y = np.asarray(y, dtype=np.float64)
    task_ids = np.asarray(task_ids)
    if not (len(X) == len(y) == len(task_ids)):
        raise ValueError(f"X, y and task_ids must have the same length, got {len(X)}, "
                         f"{len(y)}, {len(task_ids)}")
    tasks, col = np.unique(task_ids, return_inverse=True)
    Y = np.full((len(y), len(tasks)), np.nan)
    Y[np.arange(len(y)), col] = y
    return X, Y, tasks
