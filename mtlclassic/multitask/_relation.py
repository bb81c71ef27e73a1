"""Task relations: estimation from labels, the signed Laplacian, long-to-wide layout."""

import numpy as np


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


def estimate_task_relation(Y, mask=None, X=None, min_overlap=3, alpha=1.0):
    """Estimate a task correlation matrix from wide-format targets.

    For tasks s, t labelled together on at least ``min_overlap`` rows, ``r_st`` is the
    Pearson correlation of their targets on those rows. Other pairs (disjoint tasks such
    as School's schools) use the correlation of independently fitted ridge weights
    ``w_t = (X_t^T X_t + alpha n_t I)^-1 X_t^T y_t`` when X is given, else 0. Constant
    targets give 0. The diagonal is 1.

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
    R = np.eye(T)
    need_weights = []
    for s in range(T):
        for t in range(s + 1, T):
            both = M[:, s] & M[:, t]
            if both.sum() >= min_overlap:
                a, b = Y[both, s], Y[both, t]
                sa, sb = a.std(), b.std()
                r = 0.0 if sa == 0 or sb == 0 else float(np.mean((a - a.mean()) * (b - b.mean()))
                                                          / (sa * sb))
                R[s, t] = R[t, s] = r
            else:
                need_weights.append((s, t))
    if need_weights and X is not None:
        X = np.asarray(X, dtype=np.float64)
        W = np.zeros((X.shape[1], T))
        for t in range(T):
            rows = M[:, t]
            if rows.sum() == 0:
                continue
            Xt, yt = X[rows], Y[rows, t]
            Xc, yc = Xt - Xt.mean(axis=0), yt - yt.mean()
            W[:, t] = np.linalg.solve(Xc.T @ Xc + alpha * len(yt) * np.eye(X.shape[1]),
                                      Xc.T @ yc)
        C = np.corrcoef(W.T) if T > 1 else np.ones((1, 1))
        C = np.nan_to_num(C)
        for s, t in need_weights:
            R[s, t] = R[t, s] = C[s, t]
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
