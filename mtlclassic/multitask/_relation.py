"""Task relations: estimation from labels, the signed Laplacian, long-to-wide layout."""

import warnings

import numpy as np
import scipy.sparse

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


#: Disjoint tasks' relation needs d x d ridge systems: above this many features it is left
#: at 0 (with a warning) rather than cost O(d^3) time and d^2 memory
MAX_RELATION_FEATURES = 4096
#: ... and for sparse X, task rows are densified one task at a time up to this total
MAX_RELATION_DENSE_BYTES = 2**30


def estimate_task_relation(Y, mask=None, X=None, min_overlap=3, alpha=1.0,
                           sample_weight=None):
    """Estimate a task correlation matrix from wide-format targets.

    For tasks s, t labelled together on at least ``min_overlap`` rows, ``r_st`` is the
    Pearson correlation of their targets on those rows. Other pairs (disjoint tasks such
    as School's schools) use, when X is given (else 0), the correlation of per-task
    weights estimated under a hierarchical model: each task's ridge fit is shrunk towards
    the pooled model (``alpha`` sets the pooled fit's ridge, times the mean task size) by
    an amount chosen by maximum marginal likelihood, so that a handful of samples per task
    gives weights close to the shared model when the tasks agree and keeps them apart
    when they differ (empirical Bayes, as in a random-effects model; see
    ``_shrunk_task_weights``; with more than ``MAX_RELATION_FEATURES`` features, or sparse X
    whose rows would densify to more than ``MAX_RELATION_DENSE_BYTES``, those pairs stay 0
    with a warning). Constant targets give 0. The diagonal is 1. Sample weights weight the correlations and fits
    (a weight of 2 counts as a repeated sample).

    Parameters
    ----------
    Y : (n, T) array of numeric targets (NaN = unlabelled when mask is None)
    mask : (n, T) bool array, optional; True where labelled
    X : (n, d) array, optional
    """
    Y = np.asarray(Y)
    if mask is None or Y.dtype.kind not in "biuf":
        Y = np.asarray(Y, dtype=np.float64)  # (else converted a block of rows at a time)
    if Y.ndim == 1:
        Y = Y[:, None]
    if mask is None:
        M = ~np.isnan(Y)
    else:
        M = np.asarray(mask, dtype=bool)
        M = M[:, None] if M.ndim == 1 else M
        if M.shape != Y.shape:
            raise ValueError(f"mask must have Y's shape {Y.shape}, got {np.shape(mask)}")
    T = Y.shape[1]
    sw = np.ones(len(Y)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    # weighted Pearson correlation of every pair on the rows labelled in both, all pairs at
    # once: sums over the overlap are products of masked matrices. Each column is centred
    # first by its own labelled mean, so the one-pass formula does not cancel.
    if len(Y) >= min_overlap and np.all(sw > 0) and M.all():
        # every entry labelled (every pair overlaps): the same sums, by row blocks
        return relation_from_sums(_full_sums(Y, sw), min_overlap)[0]
    R, disjoint = relation_from_sums(_masked_sums(Y, M, sw), min_overlap)
    if disjoint.any() and X is not None:
        d = X.shape[1]
        dense_bytes = 8 * X.shape[0] * d if scipy.sparse.issparse(X) else 0
        if d > MAX_RELATION_FEATURES or dense_bytes > MAX_RELATION_DENSE_BYTES:
            warnings.warn(f"estimate_task_relation: {int(disjoint.sum()) // 2} pair(s) of tasks "
                          f"share no labelled rows; their relation would need per-task ridge "
                          f"fits with {d} x {d} systems"
                          + (f" on {dense_bytes / 2**30:.1f} GiB of densified task rows"
                             if dense_bytes > MAX_RELATION_DENSE_BYTES else "")
                          + f" (more than {MAX_RELATION_FEATURES} features or "
                          f"{MAX_RELATION_DENSE_BYTES / 2**30:.1f} GiB): left at 0; pass "
                          "task_relation explicitly (or None) to couple them", UserWarning)
            return R
        if not scipy.sparse.issparse(X):
            X = to_numpy(X).astype(np.float64, copy=False)
        W = _shrunk_task_weights(Y, M, X, sw, alpha)
        C = np.corrcoef(W.T) if T > 1 else np.ones((1, 1))
        R[disjoint] = np.nan_to_num(C)[disjoint]
    return R


def label_sums(Y, M, sw):
    """The first pass of the pair sums on a block of rows: (sum_i w_i L_it y_it, sum_i w_i
    L_it) per column, L the labelled indicator (M and sw > 0), w = sw on it. Sums over
    blocks give each column's labelled weighted mean (here and in the Dask fit)."""
    L, w, Yl = _labelled(Y, M, sw)
    return w @ Yl, w @ L


def pair_sums(Y, M, sw, mean):
    """The sums of :func:`relation_from_sums` on a block of rows, the labels centred by
    ``mean`` (from :func:`label_sums`): L^T L, (L w)^T L, (L w Y_c)^T L, (L w Y_c^2)^T L
    and (L w Y_c)^T Y_c; sums over blocks give the whole (here and in the Dask fit)."""
    L, w, Yc = _labelled(Y, M, sw)
    Yc -= mean
    Yc *= L  # centred, 0 where unlabelled
    Lw = L * w[:, None]
    out = {"count": L.T @ L, "Wsum": Lw.T @ L}
    Lw *= Yc
    out["Sa"] = Lw.T @ L  # [s, t]: the sum of y_s on the overlap
    out["Sab"] = Lw.T @ Yc
    Lw *= Yc
    out["Saa"] = Lw.T @ L
    return out


def _labelled(Y, M, sw):
    """(L float64, w, Y in float64 with its unlabelled entries 0) of a block of rows."""
    w = sw * (sw > 0)
    Lb = M & (w > 0)[:, None]
    return Lb.astype(np.float64), w, np.where(Lb, np.asarray(Y, dtype=np.float64), 0.0)


def _masked_sums(Y, M, sw, block_bytes=1 << 18):
    """The sums of :func:`relation_from_sums` with labels missing (M False) or zero
    weights, over blocks of rows (:func:`label_sums`, then :func:`pair_sums`). The
    whole-array expressions made about ten (n, T) float64 temporaries: 19x X's size at
    the peak of the default regressor on School-like targets (tasks on their own rows,
    T = 30 on 12 features)."""
    n, T = Y.shape
    # at least 256 rows a block: each block costs five T x T products (wide targets in
    # blocks of a few rows: 5.8x slower at T = 3,000 -- review)
    step = max(256, block_bytes // (8 * max(T, 1)))
    parts = [slice(i, i + step) for i in range(0, n, step)]
    col_s, col_w = np.zeros(T), np.zeros(T)
    for p in parts:
        s, c = label_sums(Y[p], M[p], sw[p])
        col_s += s
        col_w += c
    mean = col_s / np.maximum(col_w, 1e-300)
    out = {k: np.zeros((T, T)) for k in ("count", "Wsum", "Sa", "Saa", "Sab")}
    for p in parts:
        for k, v in pair_sums(Y[p], M[p], sw[p], mean).items():
            out[k] += v
    return out


def _full_sums(Y, w, block_bytes=1 << 20):
    """The sums of :func:`relation_from_sums` when every entry is labelled (L = 1), over
    blocks of rows: no (n, T) temporaries (tall targets with many tasks: they were 2.5x
    X's size at the peak of a default fit)."""
    n, T = Y.shape
    mean = (w @ Y) / w.sum()
    Sa, Saa, Sab = np.zeros(T), np.zeros(T), np.zeros((T, T))
    step = max(1, block_bytes // (8 * max(T, 1)))
    for i in range(0, n, step):
        B = Y[i:i + step] - mean
        Bw = B * w[i:i + step, None]
        Sa += Bw.sum(axis=0)
        Sab += Bw.T @ B
        Bw *= B
        Saa += Bw.sum(axis=0)
    one = np.ones(T)
    return {"count": np.full((T, T), float(n)), "Wsum": np.full((T, T), float(w.sum())),
            "Sa": np.outer(Sa, one), "Saa": np.outer(Saa, one), "Sab": Sab}


def relation_from_sums(s, min_overlap=3):
    """(R, disjoint) from the pair sums of the labels centred by their labelled means (L
    the labelled indicator, w the weights, Y_c the centred labels): ``count`` = L^T L,
    ``Wsum`` = (L w)^T L, ``Sa`` = (L w Y_c)^T L, ``Saa`` = (L w Y_c^2)^T L, ``Sab`` =
    (L w Y_c)^T Y_c, all (T, T): R the weighted Pearson correlations of pairs with at least
    ``min_overlap`` shared rows (0 elsewhere, 1 on the diagonal), disjoint the other
    off-diagonal pairs. Sums over row blocks give the same (the Dask fit)."""
    count, Wsum, Sa, Saa, Sab = s["count"], s["Wsum"], s["Sa"], s["Saa"], s["Sab"]
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
    return R, disjoint


def _best_lambda(spectra, total_n, trace, grid):
    """The marginal-likelihood choice of lambda on the grid (see _shrunk_task_weights)."""
    scale = max(trace / total_n, 1e-12)  # a typical squared row norm
    best = (-np.inf, scale)
    for lam in grid * scale:
        q = sum(rr - float(np.sum(p * p / (g + lam))) for g, p, rr in spectra)
        logdet = sum(float(np.sum(np.log1p(g / lam))) for g, _, _ in spectra)
        if q <= 0:
            continue
        ll = -0.5 * (total_n * np.log(q / total_n) + logdet)
        if ll > best[0]:
            best = (ll, lam)
    return best[1]


def shrunk_from_moments(AtA, Atb, btb, n, alpha=1.0, grid=np.logspace(-4, 4, 33)):
    """:func:`_shrunk_task_weights` from per-task moments: AtA (T, d, d), Atb (T, d),
    btb (T,) of each task's centred, sqrt(weight)-scaled rows A_t, b_t, and n (T,) the
    tasks' weights (0: a task without rows). Returns W (d, T)."""
    T, d = Atb.shape
    live = [t for t in range(T) if n[t] > 0]
    n_mean = sum(n[t] for t in live) / len(live)
    w0 = np.linalg.solve(sum(AtA[t] for t in live) + alpha * n_mean * np.eye(d),
                         sum(Atb[t] for t in live))
    spectra = []
    for t in live:  # r = b - A w0: A^T r and r.r from the moments
        g, V = np.linalg.eigh(AtA[t])
        Atr = Atb[t] - AtA[t] @ w0
        spectra.append((np.maximum(g, 0.0), V.T @ Atr,
                        float(btb[t] - 2 * w0 @ Atb[t] + w0 @ AtA[t] @ w0)))
    lam = _best_lambda(spectra, float(sum(n[t] for t in live)),
                       float(sum(np.trace(AtA[t]) for t in live)), grid)
    W = np.zeros((d, T))
    for t in live:
        W[:, t] = w0 + np.linalg.solve(AtA[t] + lam * np.eye(d), Atb[t] - AtA[t] @ w0)
    return W


def _shrunk_task_weights(Y, M, X, sw, alpha, grid=np.logspace(-4, 4, 33)):
    """Per-task weights under the hierarchical model w_t = w_0 + delta_t, delta_t ~ N(0,
    sigma^2 / lam I), y_t = X_t w_t + N(0, sigma^2): w_0 the pooled ridge fit (ridge alpha
    times the mean task size), lam by maximum marginal likelihood (sigma^2 profiled out)
    on a log grid, then each task's posterior mean ``w_0 + (X_t^T S X_t + lam I)^-1
    X_t^T S (y_t - X_t w_0)``. Every task's data are centred by its own means; a sample
    weight scales its row by its square root, which is exactly a repeated sample. Returns
    W of shape (d, T)."""
    T, d = Y.shape[1], X.shape[1]
    parts = []
    for t in range(T):
        rows = M[:, t] & (sw > 0)
        if not rows.any():
            parts.append(None)
            continue
        Xt, yt, wt = X[rows], Y[rows, t], sw[rows]
        if scipy.sparse.issparse(Xt):  # one task's rows at a time (sparse X)
            Xt = Xt.toarray().astype(np.float64)
        r = np.sqrt(wt)
        parts.append(((Xt - np.average(Xt, axis=0, weights=wt)) * r[:, None],
                      (yt - np.average(yt, weights=wt)) * r, float(wt.sum())))
    live = [p for p in parts if p is not None]
    n_mean = sum(n for _, _, n in live) / len(live)
    w0 = np.linalg.solve(sum(A.T @ A for A, _, _ in live) + alpha * n_mean * np.eye(d),
                         sum(A.T @ b for A, b, _ in live))
    # the marginal likelihood of the residuals r_t = b_t - A_t w_0 ~ N(0, sigma^2 (I +
    # A_t A_t^T / lam)), through the smaller of A_t A_t^T and A_t^T A_t: quadratic form
    # r.r - p^T (A^T A + lam I)^-1 p with p = A^T r (Woodbury), log-determinant
    # sum log(1 + g / lam) over the eigenvalues g (Sylvester's identity)
    spectra, total_n, trace = [], 0.0, 0.0
    for A, b, n in live:
        res = b - A @ w0
        if A.shape[0] < d:  # A A^T = U diag(g) U^T: p = g^(1/2) U^T r
            g, U = np.linalg.eigh(A @ A.T)
            g = np.maximum(g, 0.0)
            p = np.sqrt(g) * (U.T @ res)
        else:  # A^T A = V diag(g) V^T: p = V^T A^T r
            g, V = np.linalg.eigh(A.T @ A)
            g = np.maximum(g, 0.0)
            p = V.T @ (A.T @ res)
        spectra.append((g, p, float(res @ res)))
        total_n += n
        trace += float(np.sum(A * A))
    lam = _best_lambda(spectra, total_n, trace, grid)
    W = np.zeros((d, T))
    for t, part in enumerate(parts):
        if part is not None:
            A, b, _ = part
            W[:, t] = w0 + np.linalg.solve(A.T @ A + lam * np.eye(d), A.T @ (b - A @ w0))
    return W


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
