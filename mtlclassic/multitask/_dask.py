"""Fits on Dask arrays with ``dask.distributed``: the data stay on the workers.

X (n, d) and Y (n, T) chunked by rows are turned once into row blocks that live on the
workers, each a dict ``{X: X_b (n_b, d), Y: Y_b (n_b, T'), A: A_b (n_b, T'), sw, swr}``
(targets encoded, A the loss weights s_i rho_t / n_t of ``_losses``, 0 where unlabelled).
The solver's state -- W (d, T'), b (T',), the (T', T') matrices -- stays on the client.
One fit serves MultiTaskRegressor, MultiTaskClassifier and MultiTaskEstimator (mixed task
types): before the blocks are made, one pass sums per-task label statistics over the
blocks -- the classes and their weighted counts of a classification task, (count, mean,
squared deviations) of a regression task (the std of ``scale_targets``), and for
``task_types="auto"`` (a first pass over Y only) the counts that decide
``type_of_target`` (``_labels.type_counts``) -- and each block is encoded with the
global result (``_labels.encode_tasks``).

* :class:`DaskOracle`: :class:`_solver.DataOracle`'s interface on the blocks. Per block a
  worker forms Z_b = X_b W + b, runs the fused native loss pass (``_losses.native_loss``,
  ``loss_grad_cuda`` for CuPy chunks) and keeps G_b = dL/dZ_b; the client receives the
  sums over blocks (a tree reduction): the loss, the column sums of G and X^T G (d, T').
  The linear map's value ``lin`` is a :class:`Lin` handle on the per-block Z futures,
  which FISTA combines linearly (``lin + beta (lin - lin_prev)``) without a pass; the
  combination is evaluated inside the next block task. One round trip per evaluation,
  and FISTA asks for two at once (:meth:`DaskOracle.values`): the candidate's loss and,
  speculatively, the loss fused with the gradient X^T G at the extrapolated point that
  follows if the candidate is accepted -- one round trip per FISTA iteration, plus one
  per duality-gap check (every 5th iteration) and, for the classification losses, the
  local Lipschitz refresh every 20th (less often while it holds); L-BFGS: loss and
  gradient fused.
* squared loss with every label present: the weighted means (one pass), then the centred
  moments K = X^T S X, H = X^T S Y, diag(Y^T S Y) (a second pass), and the solve on the
  client (:func:`_solver.closed_form`'s Sylvester equation or FISTA on
  :class:`_solver.GramOracle`): no pass per iteration.
* mixed task types: the grouped native loss with squared columns (group -1) among the
  logistic / softmax ones; the null objective, the dual point's feasibility and the
  Lipschitz bounds per column type, as DataOracle's "mixed" kind.
* the duality gap (so ``tol`` keeps its meaning): the dual point is made feasible for the
  free intercepts with global column sums (and, for softmax tasks, a global max), then
  each block applies DataOracle's own dual on its rows (``fit_intercept=False``: no
  further change) and the client adds the parts.
* the "auto" task relation (label correlations; per-task ridge fits of disjoint tasks)
  from moments summed over the blocks.
* predictions on a dask X (:func:`map_predict`, :func:`map_rows`): ``predict``,
  ``decision_function`` and ``predict_proba`` are lazy dask arrays, the fitted model's
  in-memory method mapped over X's row chunks (explicit dtype, meta and chunks: nothing
  runs before ``compute``); ``score`` (:func:`score`) sums per block what R^2 and the
  accuracy need and reduces the sums on the cluster (T-sized results to the client).

CuPy chunks run the same code: every block function takes its namespace from its block.
"""

import contextvars
import copy
import math
import uuid
import warnings

import numpy as np
import scipy.linalg

from ..backend import get_namespace, is_cupy_array, to_numpy
from . import _labels, _losses, _solver
from ._relation import label_sums, pair_sums


def is_dask(x):
    """Whether x is a dask collection: True for a dask array; a dask DataFrame or Series
    (or any other dask collection) is refused with a TypeError."""
    if not type(x).__module__.startswith("dask."):
        return False
    import dask.array as da

    if not isinstance(x, da.Array):
        raise TypeError(f"dask input must be a dask array, got {type(x).__module__}."
                        f"{type(x).__name__}: convert a dask DataFrame or Series with "
                        ".to_dask_array(lengths=True) (X, y and sample_weight alike)")
    return True


def get_client():
    """The current ``distributed.Client``; a clear error without one."""
    try:
        from distributed import get_client as _get
    except ImportError:
        raise ImportError("fitting on dask arrays needs dask.distributed: pip install "
                          "'mtlclassic[dask]' (or distributed)") from None
    try:
        return _get()
    except ValueError:
        raise ValueError("fitting on dask arrays needs a dask.distributed Client: "
                         "`from distributed import Client; client = Client()` (or the "
                         "address of a cluster) before fit") from None


# ----------------------------------------------------------------- worker side
def _add(a, b):
    """Sum of two partial results (nested dicts / tuples of arrays and numbers); keys
    starting with "max" take the maximum, "classes" entries merge class counts."""
    if isinstance(a, dict):
        return {k: (_merge_classes(a[k], b[k]) if k == "classes" else
                    _merge_moments(a[k], b[k]) if k == "moments" else
                    np.maximum(a[k], b[k]) if k.startswith("max") else _add(a[k], b[k]))
                for k in a}
    if isinstance(a, (tuple, list)):
        return type(a)(_add(x, y) for x, y in zip(a, b))
    return None if a is None else a + b


def _merge_classes(a, b):
    """Per task (classes, weighted counts) of two blocks -> of both."""
    out = []
    for (ca, na), (cb, nb) in zip(a, b):
        if len(ca) == 0 or len(cb) == 0:
            out.append((ca, na) if len(cb) == 0 else (cb, nb))
            continue
        cls, inv = np.unique(np.concatenate([ca, cb]), return_inverse=True)
        out.append((cls, np.bincount(inv, weights=np.concatenate([na, nb]),
                                     minlength=len(cls))))
    return out


def _merge_moments(a, b):
    """Per column (count, mean, sum of squared deviations) of two blocks -> of both (Chan,
    Golub & LeVeque's pairwise update: no cancellation as in sums of squares)."""
    na, ma, sa = a
    nb, mb, sb = b
    n = na + nb
    safe = np.where(n > 0, n, 1.0)
    delta = mb - ma
    return n, ma + delta * nb / safe, sa + sb + delta * delta * na * nb / safe


def _sum_parts(item, *parts):
    """The sum of partial results (their ``item``-th entries when item is not None)."""
    parts = [p[item] for p in parts] if item is not None else parts
    out = parts[0]
    for p in parts[1:]:
        out = _add(out, p)
    return out


#: float32 blocks on the CPU: products accumulated in float64 when the solve's tol is below
#: this (float32 products put a relative error of ~1e-7 on Z = X W, hence on the loss: at
#: tol 1e-5 / 1e-6 FISTA then took 3x / 4x the in-memory iterations; at the default 1e-4,
#: 1.2x on one problem and 1.9x on another)
PRECISE_BELOW = 1e-3
_PRECISE = contextvars.ContextVar("mtlclassic_dask_precise", default=False)


def _call(fn, precise, *args, **kw):
    """fn(*args, **kw) on a worker with :func:`_mm`'s precision set for this call."""
    token = _PRECISE.set(precise)
    try:
        return fn(*args, **kw)
    finally:
        _PRECISE.reset(token)


def _slab_rows(d):
    return max(64, (1 << 17) // max(d, 1))  # a float64 slab of about 1 MB


def _mm(A, B):
    """A @ B for data A (a block X_b or its transpose) and a small B, float64 out on the
    CPU. float32 data multiply in float32 (B cast down: a BLAS call, not NumPy's mixed-type
    loop, 4-12x slower; as on the GPU), or, where the solve asks for it (``_PRECISE``, see
    :data:`PRECISE_BELOW`), in float64 slab by slab: a cache-sized float64 copy of a few
    hundred rows at a time (as fast as the float32 product for a few columns of B; the
    transposed product's slab sums added in order: the same bits on every run)."""
    xp = get_namespace(A)
    if A.dtype != xp.float32:
        return A @ B
    if xp is not np or not _PRECISE.get():
        out = A @ xp.asarray(B, dtype=xp.float32)
        return out.astype(xp.float64) if xp is np else out
    B = np.asarray(B, dtype=np.float64)
    if A.flags.f_contiguous and not A.flags.c_contiguous:  # X_b^T: slabs of X_b's rows
        X = A.T
        S = _slab_rows(X.shape[1])
        out = np.zeros((X.shape[1],) + B.shape[1:])
        for i in range(0, X.shape[0], S):
            out += X[i:i + S].astype(np.float64).T @ B[i:i + S]
        return out
    S = _slab_rows(A.shape[1])
    out = np.empty((A.shape[0],) + B.shape[1:])
    for i in range(0, A.shape[0], S):
        out[i:i + S] = A[i:i + S].astype(np.float64) @ B
    return out


class _Data32:
    """X for a per-block DataOracle: its products through :func:`_mm`."""

    def __init__(self, X):
        self.X, self.shape, self.dtype = X, X.shape, X.dtype

    @property
    def T(self):
        return _Data32(self.X.T)

    def __matmul__(self, B):
        return _mm(self.X, B)


def _xp_of(blk):
    return get_namespace(blk["X"])


def _weights(SWb, n, T):
    if SWb is None:
        return np.ones((n, T))
    w = np.asarray(SWb, dtype=np.float64)
    return np.repeat(w[:, None], T, axis=1) if w.ndim == 1 else w


def _blk_types(Yb, SWb, missing_label):
    """Per task, the counts of ``_labels.type_counts`` on its labelled values (entries of
    zero weight are unlabelled, as in memory): summed over the blocks, they decide
    ``type_of_target`` on the whole column (MultiTaskEstimator's task_types="auto")."""
    Y2 = np.asarray(Yb)
    n, T = Y2.shape
    miss = _labels.missing_mask(Y2, missing_label) | (_weights(SWb, n, T) == 0)
    cs = [_labels.type_counts(Y2[~miss[:, t], t]) for t in range(T)]
    return {k: np.array([c[k] for c in cs], dtype=np.int64) for k in cs[0]} if T else {}


def _blk_check(Xb, Yb, SWb, missing_label, types, prefix=False):
    """One block's share of the input checks and label statistics: per classification
    task its classes and their weighted counts, per regression task (count, mean, sum of
    squared deviations) of its labelled values (the std of ``scale_targets``). ``prefix``:
    name the regression tasks in their errors (MultiTaskEstimator's messages)."""
    xp = get_namespace(Xb)
    Y2 = np.asarray(Yb)
    _labels.check_real_targets(Y2)
    n, T = Y2.shape
    miss0 = _labels.missing_mask(Y2, missing_label)
    SW = _weights(SWb, n, T)
    bad_w = int(np.sum(~np.isfinite(SW) | (SW < 0)))
    miss = miss0 | (SW == 0)
    out = {"labelled": (~miss0).sum(axis=0), "weight": (SW * ~miss).sum(axis=0),
           "open": (miss0 & (SW > 0)).sum(axis=0), "bad_w": bad_w,
           "rows_differ": int(SWb is not None and np.ndim(SWb) == 2
                              and not np.all(SW == SW[:, :1])),
           "nonfinite": int(xp.sum(~xp.isfinite(Xb))) if Xb.size else 0,
           "max_abs": float(xp.max(xp.abs(Xb))) if Xb.size else 0.0,
           # the totals whose overflow the client refuses, as the in-memory checks do
           "sw_sum": _labels.weight_sum(SWb) if SWb is not None and not bad_w else 0.0,
           "max_sw": float(np.max(SW)) if SW.size else 0.0, "yy": 0.0, "max_y": 0.0}
    reg = [t for t in range(T) if types[t] == "regression"]
    if reg:
        try:
            Yr = _labels.encode_regression(Y2[:, reg], miss[:, reg])  # refuses infinity
        except (TypeError, ValueError) as e:
            if not prefix:
                raise
            raise ValueError(f"the regression tasks {reg}: {e}") from None
        out["yy"] = _labels.squares_sum(Yr)
        out["max_y"] = float(np.abs(Yr).max()) if Yr.size else 0.0
        mom = np.zeros((3, T))
        for k, t in enumerate(reg):
            y = Yr[~miss[:, t], k]
            if len(y):
                mom[:, t] = len(y), y.mean(), np.sum((y - y.mean()) ** 2)
        out["moments"] = tuple(mom)
    if len(reg) < T:
        cl = []
        for t in range(T):
            if types[t] == "regression":
                cl.append((np.empty(0), np.empty(0)))
                continue
            lab = ~miss[:, t]
            values = Y2[lab, t]
            try:
                cls, inv = np.unique(values, return_inverse=True)
            except TypeError:
                _labels.task_classes(values, t)  # raises the mixed-types message
                raise
            cl.append((cls, np.bincount(inv.ravel(), weights=SW[lab, t], minlength=len(cls))))
        out["classes"] = cl
    return out


def _blk_make(Xb, Yb, SWb, meta):
    """A stored row block: encoded targets, loss weights A, per-sample weights."""
    xp = get_namespace(Xb)
    Y2 = np.asarray(Yb)
    n, T = Y2.shape
    miss0 = _labels.missing_mask(Y2, meta["missing_label"])
    SW = _weights(SWb, n, T)
    miss = miss0 | (SW == 0)
    owner = meta["owner"]
    Yenc, mask, _, _, _ = _labels.encode_tasks(Y2, miss, meta["types"], meta["target_scale"],
                                               meta["classes"])
    CW = 1.0
    if meta["cw_specs"] is not None:
        CW = _labels.class_weight_matrix(meta["cw_specs"], Y2, miss, SW, meta["classes"],
                                         owner, softmax_tasks=meta["softmax_tasks"],
                                         counts=meta["cw_counts"])
    A = mask * SW[:, owner] * CW * meta["scale"][None, :]
    X = Xb if Xb.dtype in (np.float32, np.float64) else Xb.astype(np.float64)
    if meta["intercept_scaling"] is not None:
        X = xp.concatenate([X, xp.full((n, 1), meta["intercept_scaling"], dtype=X.dtype)], 1)
    sw = None if meta["sw"] == "none" else SW[:, 0].copy()
    swr = sw if sw is not None else (SW * ~miss).sum(axis=1) / np.maximum((~miss).sum(1), 1)
    dt = X.dtype if xp is not np else np.float64  # the CPU solvers run in float64
    return {"X": X, "Y": xp.asarray(Yenc, dtype=dt), "A": xp.asarray(A, dtype=dt),
            "sw": None if sw is None else xp.asarray(sw, dtype=dt), "swr": swr, "mask": mask}


def _loss(xp, kind, group):
    if xp is np:
        return _losses.native_loss(kind, 1, group=group)
    from ..backend.kernels import loss_grad_cuda

    g = None if group is None or not np.any(np.asarray(group) != 1) else \
        xp.asarray(group, dtype=xp.int32)
    return lambda Z, Y, A: loss_grad_cuda(Z, Y, A, _losses.KINDS[kind], group=g)


def _dt(blk):
    return blk["A"].dtype


def _z(blk, terms):
    """Z_b = sum_k c_k Z_k of a Lin's terms; zeros for none."""
    xp = _xp_of(blk)
    if not terms:
        return xp.zeros(blk["Y"].shape, dtype=_dt(blk))
    Z = terms[0][0] * terms[0][1]
    for c, Zk in terms[1:]:
        Z = Z + c * Zk
    return Z


def _blk_linear(blk, W, c):
    xp = _xp_of(blk)
    dt = _dt(blk)
    return _mm(blk["X"], xp.asarray(W, dtype=dt)) + xp.asarray(c, dtype=dt)


def _blk_value(blk, terms, kind, group, fused):
    """(G_b, partial sums): loss, column sums of G and of its two signs, X_b^T G_b."""
    xp = _xp_of(blk)
    lv, G = _loss(xp, kind, group)(_z(blk, terms), blk["Y"], blk["A"])
    Gp = xp.where(G > 0, G, 0.0)
    s = {"loss": float(lv), "gsum": to_numpy(G.sum(axis=0)),
         "gpos": to_numpy(Gp.sum(axis=0)), "gneg": to_numpy(-(G - Gp).sum(axis=0)),
         "xtg": to_numpy(_mm(blk["X"].T, G)) if fused else None}
    return G, s


def _blk_xtg(blk, vt):
    return to_numpy(_mm(blk["X"].T, vt[0]))


def _oracle(blk, kind, group, fit_intercept=False):
    """DataOracle on one block (its element-wise parts: curvature, dual on these rows)."""
    X = blk["X"]
    X = _Data32(X) if isinstance(X, np.ndarray) and X.dtype == np.float32 else X
    return _solver.DataOracle(X, blk["Y"], blk["A"], None, None, fit_intercept, kind,
                              group=group)


def _feasible(blk, G, kind, group, glob):
    """The dual point G' made feasible for free intercepts with the global factors of
    DataOracle.dual_point: squared G - A c (also the squared columns, group -1, of mixed
    task types); logistic G+ a+ + G- a-; a softmax task's
    columns a (q' - e_k), q' = (1 - theta) (q + delta) + theta pi clipped to [0, 1]."""
    xp = get_namespace(G)
    A, Y = blk["A"], blk["Y"]
    if kind == "squared":
        return G - A * xp.asarray(glob["c"], dtype=G.dtype)
    Gp = xp.where(G > 0, G, 0.0)
    out = Gp * xp.asarray(glob["ap"], dtype=G.dtype) + (G - Gp) * xp.asarray(glob["an"],
                                                                            dtype=G.dtype)
    if glob.get("c") is not None:  # mixed task types: the squared columns as above
        sq = xp.asarray(np.asarray(group) == -1)
        out = xp.where(sq, G - A * xp.asarray(glob["c"], dtype=G.dtype), out)
    for j, K, delta, pi, th in glob["softmax"]:
        a, onehot, q = _softmax_q(blk, G, j, K)
        base = q + xp.asarray(delta, dtype=G.dtype)
        qn = xp.where(a[:, None] > 0, (1.0 - th) * base + th * xp.asarray(pi, dtype=G.dtype),
                      0.0)
        out[:, j:j + K] = a[:, None] * (xp.clip(qn, 0.0, 1.0) - onehot)
    return out


def _softmax_q(blk, G, j, K):
    xp = get_namespace(G)
    A, Y = blk["A"], blk["Y"]
    a = xp.where(A[:, j] > 0, A[:, j], 0.0)
    safe = xp.where(a > 0, a, 1.0)[:, None]
    onehot = xp.where((Y[:, j:j + K] > 0) & (a[:, None] > 0), 1.0, 0.0)
    return a, onehot, xp.where(a[:, None] > 0, G[:, j:j + K] / safe + onehot, 0.0)


def _blk_softmax_need(blk, vt, softmax):
    """Per softmax task, the max over rows of the mixing weight theta it needs (see
    DataOracle._softmax_dual)."""
    xp = _xp_of(blk)
    top = np.zeros(len(softmax))
    for i, (j, K, delta, pi, _) in enumerate(softmax):
        a, _, q = _softmax_q(blk, vt[0], j, K)
        base = q + xp.asarray(delta, dtype=q.dtype)
        pi = xp.asarray(pi, dtype=q.dtype)
        need = xp.where(base < 0, -base / xp.where(pi - base > 0, pi - base, 1.0), 0.0)
        need = xp.where(a[:, None] > 0, need, 0.0)
        if need.size:
            top[i] = float(xp.max(need))
    return {"max_need": top}


def _blk_dual(blk, vt, kind, group, glob):
    """((X_b^T G'_b, column sums of G'_b, L*_b(G'_b)), L*_b) for the feasible dual point
    G' (L*_b(s G'_b) as a function of s)."""
    G = _feasible(blk, vt[0], kind, group, glob) if glob is not None else vt[0]
    XtG, lstar = _oracle(blk, kind, group).dual_point(None, None, None, (G,))
    # squared loss: L*(s G') = q s^2 + c s, known from its values at 1 and 1/2
    half = float(lstar(0.5)) if kind == "squared" else 0.0
    return (to_numpy(XtG), to_numpy(G.sum(axis=0)), float(lstar(1.0)), half), lstar


def _blk_lstar(dual, s):
    return float(dual[1](s))


def _blk_weights(blk, terms, kind, group, mode, ccol=None):
    """The (rows, k) weight columns of the matrices [X_c 1]^T diag(w) [X_c 1] whose top
    eigenvalues bound the Lipschitz constants: "global" (lipschitz_estimate's; its
    curvature factor comes last): w = max_t A_t, or max_t c_t A_t with per-column
    curvature bounds ``ccol``; "local": w_t = A_t l''(z_t) at the block's ``terms``;
    "both": the global column then the local ones; "columns": w_t = c_t A_t."""
    xp = _xp_of(blk)
    dt = _dt(blk)
    A = blk["A"] if ccol is None else blk["A"] * xp.asarray(ccol, dtype=dt)
    Wt = []
    if mode in ("global", "both"):
        Wt.append(A.max(axis=1, keepdims=True))
    if mode in ("local", "both"):
        Wt.append(_oracle(blk, kind, group)._curvature_weights(_z(blk, terms)))
    if mode == "columns":
        Wt.append(A)
    return Wt[0] if len(Wt) == 1 else xp.concatenate(Wt, axis=1)


def _blk_power(blk, terms, V, m, kind, group, fit_intercept, mode, ccol=None):
    """A block's share of one power-iteration product [X_c 1]^T diag(w_t) [X_c 1] v_t,
    X_c = X - 1 m^T, w the columns of :func:`_blk_weights`: (X^T U, 1^T U) with
    U = w * ([X_c 1] V) (the client subtracts m (1^T U))."""
    xp = _xp_of(blk)
    X = blk["X"]
    dt = _dt(blk)
    Wt = _blk_weights(blk, terms, kind, group, mode, ccol)
    V = xp.asarray(V, dtype=dt)
    U = Wt * (_mm(X, V[:-1]) - xp.asarray(m @ to_numpy(V[:-1]), dtype=dt)
              + (V[-1] if fit_intercept else 0.0))
    return to_numpy(_mm(X.T, U)), to_numpy(U.sum(axis=0))


def _blk_grams(blk, terms, kind, group, m, fit_intercept, mode, ccol=None, exact=False):
    """A block's share of H_k = [X_c 1]^T diag(w_k) [X_c 1] for each weight column w_k of
    :func:`_blk_weights` (k, d', d') float64 (d' = d + 1 with an intercept). The block is
    centred before the product (no cancellation of large means) and multiplied in its own
    precision (float32 blocks: float32 BLAS, a symmetric rank-k update per column;
    the partial sums add in float64), in float64 with ``exact``."""
    xp = _xp_of(blk)
    X = blk["X"].astype(xp.float64) if exact else blk["X"]
    Xc = X - xp.asarray(m, dtype=X.dtype)
    if fit_intercept:
        Xc = xp.concatenate([Xc, xp.ones((len(Xc), 1), dtype=X.dtype)], axis=1)
    S = xp.sqrt(_blk_weights(blk, terms, kind, group, mode, ccol)).astype(X.dtype)
    out = []
    for k in range(S.shape[1]):
        Xw = Xc * S[:, k:k + 1]
        out.append(to_numpy(Xw.T @ Xw).astype(np.float64))
    return np.stack(out)


def _blk_colstats(blk, group):
    """Column sums for the null objective and the dual point's global factors."""
    xp = _xp_of(blk)
    A, Y = blk["A"], blk["Y"]
    Yl = xp.where(A > 0, Y, 0.0)
    out = {"A": A.sum(axis=0), "AY": (A * Yl).sum(axis=0), "AYY": (A * Yl * Yl).sum(axis=0),
           "Apos": xp.where(Y > 0, A, 0.0).sum(axis=0), "Aneg": xp.where(Y < 0, A, 0.0).sum(0),
           "nc": xp.zeros(Y.shape[1], dtype=A.dtype)}
    g = np.ones(Y.shape[1], dtype=int) if group is None else np.asarray(group)
    for j in np.flatnonzero(g >= 2):
        K = int(g[j])
        a = xp.where(A[:, j] > 0, A[:, j], 0.0)
        out["nc"][j:j + K] = (xp.where(Y[:, j:j + K] > 0, 1.0, 0.0) * a[:, None]).sum(axis=0)
    return {k: to_numpy(v).astype(np.float64) for k, v in out.items()}


def _blk_means(blk, use_sw):
    X, Y = blk["X"], blk["Y"]
    w = blk["sw"] if use_sw else get_namespace(X).ones(X.shape[0], dtype=_dt(blk))
    return {"n": float(w.sum()), "x": to_numpy(_mm(X.T, w)).astype(np.float64),
            "y": to_numpy(w @ Y).astype(np.float64)}


def _blk_moments(blk, xm, ym):
    xp = _xp_of(blk)
    dt = _dt(blk)
    Xc = blk["X"].astype(dt) - xp.asarray(xm, dtype=dt)  # the Gram form in float64
    Yc = blk["Y"] - xp.asarray(ym, dtype=dt)
    XS = Xc.T * blk["sw"]
    return {"K": to_numpy(XS @ Xc), "H": to_numpy(XS @ Yc),
            "yy": to_numpy(blk["sw"] @ (Yc * Yc))}


def _task_weights(blk, weights):
    """(X float64, Y float64, L (rows, T')): the per-entry weights of the per-task moments:
    the loss weights A ("loss"; TaskGramOracle), or the labelled rows' sample weights
    ("relation"; the task relation's per-task ridge fits)."""
    X = to_numpy(blk["X"]).astype(np.float64)
    Y = to_numpy(blk["Y"]).astype(np.float64)
    if weights == "loss":
        L = to_numpy(blk["A"]).astype(np.float64)
    else:
        w = blk["swr"]
        L = (blk["mask"] & (w > 0)[:, None]) * w[:, None]
    return X, np.where(L > 0, Y, 0.0), L


def _blk_task_means(blk, d, weights):
    """Per task t the L_t-weighted sums for the means of x (its first d columns) and y_t."""
    X, Y, L = _task_weights(blk, weights)
    return {"n": L.sum(axis=0), "x": L.T @ X[:, :d], "y": (L * Y).sum(axis=0)}


def _blk_task_moments(blk, d, xm, ym, weights):
    """A block's share of the per-task centred moments of :func:`_solver.task_moments`
    (x's first d columns)."""
    X, Y, L = _task_weights(blk, weights)
    K, H, yy = _solver.task_moments(X[:, :d], Y, L, xm, ym)
    return {"K": K, "H": H, "yy": yy}


# ------------------------------------------------------------- client side
class Lin:
    """The value of the linear map X W + b on the blocks: sum_k c_k Z_k over per-block
    future lists Z_k (``terms``: [(c_k, [Z_k of block 0, ...])]). FISTA combines it
    linearly (+, -, * by a scalar) at no cost; the block tasks evaluate the sum."""

    def __init__(self, terms):
        self.terms = terms

    def _merged(self, terms):
        out = {}
        for c, futs in terms:
            key = id(futs)
            out[key] = (out[key][0] + c, futs) if key in out else (c, futs)
        return Lin([(c, f) for c, f in out.values() if c != 0.0])

    def __add__(self, other):
        return self._merged(self.terms + other.terms)

    def __sub__(self, other):
        return self._merged(self.terms + [(-c, f) for c, f in other.terms])

    def __mul__(self, s):
        return Lin([(float(s) * c, f) for c, f in self.terms])

    __rmul__ = __mul__

    def block(self, i):
        return [(c, f[i]) for c, f in self.terms]


class DaskData:
    """The row blocks on the workers (futures of :func:`_blk_make`'s dicts), their sizes,
    and the sums over them that several solves share (cached)."""

    def __init__(self, client, blocks, n, d, n_sub, group, kind, has_sw, full,
                 dtype=np.float64):
        self.client, self.blocks, self.dtype = client, blocks, np.dtype(dtype)
        self.n, self.d, self.n_sub, self.group, self.kind = n, d, n_sub, group, kind
        self.has_sw, self.full = has_sw, full
        self._cache = {}
        self.round_trips = 0  # gathers to the client (each waits for the workers)
        self.precise = False  # float32 blocks: float64 products (set by each solve)

    def map(self, fn, *args, per_block=None, **kw):
        """Submit fn(block_i, *per_block(i), *args, **kw) for every block (futures), with
        :func:`_mm`'s precision (``precise``)."""
        extra = per_block or (lambda i: ())
        return [self.client.submit(_call, fn, self.precise, b, *extra(i), *args, pure=False,
                                   **kw)
                for i, b in enumerate(self.blocks)]

    def reduce(self, futs, item=None, fan_in=16):
        """Sum of the blocks' results (of their ``item``-th entry) by a tree of sum tasks
        of ``fan_in`` inputs each on the workers; only the total comes to the client (one
        round trip)."""
        return self.reduce_many([futs], item, fan_in)[0]

    def reduce_many(self, lists, item=None, fan_in=16):
        """:meth:`reduce` of several lists of block results, gathered in one round trip."""
        roots = []
        for futs in lists:
            it = item
            while len(futs) > 1 or it is not None:
                futs = [self.client.submit(_sum_parts, it, *futs[i:i + fan_in], pure=False)
                        for i in range(0, len(futs), fan_in)]
                it = None
            roots.append(futs[0])
        self.round_trips += 1
        return self.client.gather(roots)

    def cached(self, key, fn):
        if key not in self._cache:
            self._cache[key] = fn()
        return self._cache[key]

    def colstats(self):
        return self.cached("colstats", lambda: self.reduce(self.map(_blk_colstats,
                                                                    self.group)))

    def means(self, use_sw):
        def f():
            s = self.reduce(self.map(_blk_means, use_sw))
            return s["x"] / s["n"], s["y"] / s["n"], s["n"]
        return self.cached(("means", use_sw), f)

    def moments(self, fit_intercept):
        """(n, x_mean, y_mean, K, H, yy): the centred moments of the Gram form."""
        def f():
            xm, ym, n = self.means(True)
            if not fit_intercept:
                xm, ym = np.zeros_like(xm), np.zeros_like(ym)
            s = self.reduce(self.map(_blk_moments, xm, ym))
            return n, xm, ym, s["K"], s["H"], s["yy"]
        return self.cached(("moments", fit_intercept), f)

    def task_moments(self, fit_intercept):
        """(K (T, d, d), H, yy, x_means (T, d), y_means): the per-task centred moments of
        :class:`_solver.TaskGramOracle`, in two passes (the means, then the moments)."""
        def f():
            xm, ym, _ = self.task_means(self.d, "loss")
            if not fit_intercept:
                xm, ym = np.zeros_like(xm), np.zeros_like(ym)
            m = self.reduce(self.map(_blk_task_moments, self.d, xm, ym, "loss"))
            return m["K"], m["H"], m["yy"], xm, ym
        return self.cached(("task_moments", fit_intercept), f)

    def task_means(self, d, weights):
        """(x_means (T', d), y_means, weight sums) per task (see :func:`_task_weights`)."""
        m = self.reduce(self.map(_blk_task_means, d, weights))
        nt = np.where(m["n"] > 0, m["n"], 1.0)
        return m["x"] / nt[:, None], m["y"] / nt, m["n"]


class _Aux:
    def __init__(self, futs, s, WQ):
        self.futs, self.s, self.WQ = futs, s, WQ


class DaskOracle:
    """:class:`_solver.DataOracle` on Dask blocks (see the module docstring), on data
    centred by ``x_mean`` (m): Z = X W + b - m W, X_c^T G = X^T G - m (1^T G).

    ``fused``: every value also returns X^T G (L-BFGS needs it at every point); else only
    at FISTA's extrapolated points (whose ``lin`` is a combination, and whose gradient is
    always taken next); elsewhere :meth:`grad` sums X^T G in one more round trip."""

    offset = 0.0
    check_every = 5
    speculate = True  # an evaluation costs a round trip: FISTA fuses two in one
    local_rounds = 3
    gram_max_d = 2048  # the Lipschitz bound from the exact (d+1)^2 matrix up to this d
    gram_max_entries = 1 << 23  # and its local per-column matrices with it (64 MB)
    task_gram_max_entries = 1 << 23  # squared loss, labels missing: T d^2 (see solve)

    def __init__(self, data, Q, fit_intercept, kind, x_mean, fused=False):
        self.data, self.Q, self.fit_intercept, self.kind = data, Q, fit_intercept, kind
        self.m = np.zeros(data.d) if x_mean is None else np.asarray(x_mean, np.float64)
        self.fused = fused
        self.group = data.group
        self.softmax = [] if self.group is None else [
            (int(j), int(self.group[j])) for j in np.flatnonzero(np.asarray(self.group) >= 2)]
        # the column types, as DataOracle's: squared (kind, or group -1 among logistic
        # columns: mixed task types), element-wise logistic, softmax
        g = np.ones(data.n_sub, dtype=int) if self.group is None else np.asarray(self.group)
        self.sq = np.full(data.n_sub, kind == "squared") | (g == -1)
        single = np.ones(data.n_sub, dtype=bool)
        for j, K in self.softmax:
            single[j:j + K] = False
        self.single = single & ~self.sq
        self.mixed = kind != "squared" and bool(self.sq.any())
        self.col_curv = np.where(self.sq, 1.0, np.where(single, 0.25, 0.5))
        self._power_V = self._lip_sq = self._primed = self._gram_start = None
        if data.dtype == np.float32 and not data.precise:
            # float32 products: f is known to a few float32 ulps of its scale, not float64
            # ones; FISTA's step test and the certificate's floor allow that rounding
            self.offset = float(np.finfo(np.float32).eps / np.finfo(np.float64).eps) \
                * abs(self.null_objective())

    # -- the map and the loss
    def linear(self, W, b):
        return Lin([(1.0, self.data.map(_blk_linear, W, b - self.m @ W))])

    def value(self, W, b, lin):
        return self.values([(W, b, lin, False)])[0]

    def values(self, points, check=False):
        """[value(W, b, lin)] at several points (W, b, lin, need_grad) in one round trip
        (FISTA's speculation, see :func:`_solver.fista`); X^T G is summed with the loss
        where ``need_grad``, where the point is a combination (an extrapolated point,
        whose gradient is always taken next) or for L-BFGS (``fused``). ``check`` (a
        duality gap follows at the first point) changes nothing here: the blocks keep
        their loss gradients, from which :meth:`dual_point` works."""
        out, lists = [], []
        for W, b, lin, need_grad in points:
            fused = need_grad or self.fused or len(lin.terms) != 1 \
                or lin.terms[0][0] != 1.0
            lists.append(self.data.map(_blk_value, self.kind, self.group, fused,
                                       per_block=lambda i, lin=lin: (lin.block(i),)))
        for (W, _, _, _), futs, s in zip(points, lists, self.data.reduce_many(lists, 1)):
            WQ = W @ self.Q
            out.append((s["loss"] + 0.5 * float(np.sum(WQ * W)), _Aux(futs, s, WQ)))
        return out

    def _xtg(self, aux):
        if aux.s["xtg"] is None:
            aux.s["xtg"] = self.data.reduce(self.data.map(_blk_xtg,
                                                          per_block=lambda i: (aux.futs[i],)))
        return aux.s["xtg"] - np.outer(self.m, aux.s["gsum"])

    def grad(self, W, b, lin, aux):
        gb = aux.s["gsum"] if self.fit_intercept else np.zeros_like(b)
        return self._xtg(aux) + aux.WQ, gb

    def grad_at_zero_norm(self):
        _, aux = self.value(np.zeros((self.data.d, self.data.n_sub)),
                            np.zeros(self.data.n_sub), Lin([]))
        g0b = float(np.sum(aux.s["gsum"] ** 2)) if self.fit_intercept else 0.0
        return math.sqrt(float(np.sum(self._xtg(aux) ** 2)) + g0b)

    def null_objective(self):
        """min_b F(0, b) from column sums (DataOracle.null_objective's formulas)."""
        c = self.data.colstats()
        A, AY, AYY = c["A"], c["AY"], c["AYY"]
        if self.kind == "squared":
            if not self.fit_intercept:
                return 0.5 * float(AYY.sum())
            return 0.5 * float(np.sum(AYY - AY ** 2 / np.where(A > 0, A, 1.0)))
        single, sq, out = self.single, self.sq, 0.0
        if self.mixed:  # the squared columns as above
            out = 0.5 * float(np.sum(AYY[sq] if not self.fit_intercept else
                                     AYY[sq] - AY[sq] ** 2 / np.where(A[sq] > 0, A[sq], 1.0)))
        if not self.fit_intercept:
            out += math.log(2.0) * float(A[single].sum())
        else:
            P, N = c["Apos"][single], c["Aneg"][single]
            tot = P + N
            tot = np.where(tot > 0, tot, 1.0)
            out -= float(np.sum(_solver._entropy_terms(P / tot, np) * tot))
        for j, K in self.softmax:
            if not self.fit_intercept:
                out += math.log(K) * float(A[j])
                continue
            n_c = c["nc"][j:j + K]
            tot = float(n_c.sum())
            if tot > 0:
                f = n_c / tot
                out -= float(np.sum(np.where(f > 0, n_c * np.log(np.where(f > 0, f, 1.0)),
                                             0.0)))
        return out

    # -- the duality gap
    def dual_point(self, W, b, lin, aux):
        glob = None
        if self.fit_intercept:
            c = self.data.colstats()
            gsum, A = aux.s["gsum"], c["A"]
            if self.kind == "squared":
                glob = {"c": gsum / np.where(A > 0, A, 1.0)}
            else:
                sp, sn = aux.s["gpos"], aux.s["gneg"]
                glob = {"ap": np.where(sp > sn, sn / np.where(sp > 0, sp, 1.0), 1.0),
                        "an": np.where(sn > sp, sp / np.where(sn > 0, sn, 1.0), 1.0),
                        "c": gsum / np.where(A > 0, A, 1.0) if self.mixed else None,
                        "softmax": []}
                for j, K in self.softmax:
                    tot = float(A[j]) if A[j] > 0 else 1.0
                    n_c = c["nc"][j:j + K]
                    # sum_i a_i q_i = 1^T G + n_c, so delta = (n_c - sum a q) / tot
                    glob["softmax"].append((j, K, -gsum[j:j + K] / tot, n_c / tot, 0.0))
                if self.softmax:  # theta per task: a max over all rows
                    need = self.data.reduce(self.data.map(
                        _blk_softmax_need, glob["softmax"], per_block=lambda i: (aux.futs[i],)))
                    glob["softmax"] = [g[:4] + (min(1.0, float(th)),) for g, th in
                                       zip(glob["softmax"], need["max_need"])]
        duals = self.data.map(_blk_dual, self.kind, self.group, glob,
                              per_block=lambda i: (aux.futs[i],))
        XtG, gsum, l1, lh = self.data.reduce(duals, 0)
        XtG = XtG - np.outer(self.m, gsum)
        q = 2.0 * (l1 - 2.0 * lh)  # squared loss: the quadratic's coefficients

        def lstar(s):  # at s = 1 known already; at the shrunk scale, one more round trip
            if s == 1.0:
                return l1
            if self.kind == "squared":
                return q * s * s + (l1 - q) * s
            return self.data.reduce([self.data.client.submit(_blk_lstar, f, float(s),
                                                             pure=False) for f in duals])

        return XtG, lstar

    # -- Lipschitz constants
    def _power(self, terms_of, V, mode, n_power, ccol=None):
        lam = np.zeros(V.shape[1])
        for _ in range(n_power):
            # norms scaled by max |v| (as _solver.lipschitz_estimate's): with X of 1e80 the
            # squares of these vectors overflow, and the estimate became 0
            nv = _solver._scaled_norm(V, np, axis=0)
            V = V / np.where(nv > 0, nv, 1.0)
            XtU, top = self.data.reduce(self.data.map(
                _blk_power, V, self.m, self.kind, self.group, self.fit_intercept, mode, ccol,
                per_block=terms_of))
            XtU = XtU - np.outer(self.m, top)  # X_c^T U
            V = np.concatenate([XtU, top[None, :] if self.fit_intercept else 0.0 * top[None]])
            lam = _solver._scaled_norm(V, np, axis=0)
        return lam, V

    def _grams(self, terms_of, mode, ccol=None, exact=False):
        """The top eigenpairs of the matrices of :func:`_blk_grams` summed over the blocks
        (one pass): (lam (k,), V (d + 1, k)), V as the power iteration's vectors."""
        H = self.data.reduce(self.data.map(
            _blk_grams, self.kind, self.group, self.m, self.fit_intercept, mode, ccol, exact,
            per_block=terms_of))
        lam, vec = np.linalg.eigh(H)
        V = vec[:, :, -1].T
        if not self.fit_intercept:
            V = np.concatenate([V, np.zeros((1, V.shape[1]))])
        return np.maximum(lam[:, -1], 0.0), V

    def lipschitz_estimate(self, curvature, n_power=40, seed=0, lin0=None):
        """:func:`_solver.lipschitz_estimate`'s bound on the blocks. With at most
        ``gram_max_d`` features its matrix [X_c 1]^T diag(w) [X_c 1] ((d + 1)^2 numbers) is
        summed over the blocks in one pass and its top eigenvalue found on the client --
        exact where the in-memory estimate runs ``n_power`` power iterations (one pass each
        here: 40 passes were 84 % of a 3e6-row fit); times the same 1.05. Beyond, the same
        power iteration on the blocks (same start, same rounds).
        With ``lin0`` (the map at FISTA's start) the first :meth:`local_lipschitz` comes
        from the same pass -- the T per-column matrices with the local weights, while
        (1 + T) (d + 1)^2 numbers stay under ``gram_max_entries``; else it starts its power
        iteration from the top eigenvector found -- or runs in the same power rounds (more
        columns, no more round trips), and is kept for FISTA's first call, which is at that
        point."""
        both = lin0 is not None and self._power_V is None
        ccol = None
        if np.ndim(curvature):  # one bound per column (mixed task types): max_t c_t A_t
            ccol, curvature = np.asarray(curvature, dtype=np.float64), 1.0
        terms_of = lambda i: (None if lin0 is None else lin0.block(i),)  # noqa: E731
        if self.data.d <= self.gram_max_d:
            d1 = self.data.d + 1
            mode = "both" if both and (1 + self.data.n_sub) * d1 * d1 \
                <= self.gram_max_entries else "global"
            lam, V = self._grams(terms_of, mode, ccol)
            if mode == "both":
                self._power_V = V[:, 1:]
                self._primed = self._local_value(lam[1:])
            elif both:
                self._gram_start = V[:, :1]
        else:
            rng = np.random.default_rng(seed)
            v = rng.standard_normal(self.data.d)
            v0 = float(rng.standard_normal()) if self.fit_intercept else 0.0
            V = np.append(v, v0)[:, None]
            if both:
                V = np.concatenate([V, self._start_V()], axis=1)
            lam, V = self._power(terms_of, V, "both" if both else "global", n_power, ccol)
            if both:
                self._power_V = V[:, 1:]
                self._primed = self._local_value(lam[1:])
        return curvature * float(lam[0]) * 1.05 + _solver._qmax(self.Q)

    def _start_V(self):
        return np.random.default_rng(1).standard_normal((self.data.d + 1, self.data.n_sub))

    def _local_value(self, lam):
        L = float(lam.max()) * 1.05 + _solver._qmax(self.Q) if lam.size else \
            _solver._qmax(self.Q)
        if self.kind == "squared":
            self._lip_sq = L
        return L

    def local_lipschitz(self, lin, n_power=None):
        """DataOracle.local_lipschitz on the blocks (warm-started power iteration)."""
        if self.kind == "squared" and self._lip_sq is not None:
            return self._lip_sq
        if self._primed is not None:  # computed with lipschitz_estimate at FISTA's start
            L, self._primed = self._primed, None
            return L
        V = self._power_V
        if V is None and self._gram_start is not None:
            # from the global matrix's top eigenvector: every column's matrix is that one
            # reweighted by its curvature (<= the global weight)
            V = np.repeat(self._gram_start, self.data.n_sub, axis=1)
            n_power = 2 * self.local_rounds if n_power is None else n_power
        elif V is None:
            V = self._start_V()
            n_power = 40 if n_power is None else n_power
        # a refresh starts from the last vectors: 3 rounds (a round trip each) follow
        # the slowly moving curvature (the in-memory oracle, where a round costs no
        # latency, takes 10)
        n_power = self.local_rounds if n_power is None else n_power
        lam, self._power_V = self._power(lambda i: (lin.block(i),), V, "local", n_power)
        return self._local_value(lam)

    def exact_lipschitz(self, lin=None):
        """The bound computed exactly in float64 (debug use); with ``lin`` the local one."""
        lam, _ = self._grams(lambda i: (None if lin is None else lin.block(i),),
                             "columns" if lin is None else "local", self.col_curv, exact=True)
        return float(lam.max()) + _solver._qmax(self.Q)


# ------------------------------------------------------------------- the fit
def known_chunks(a, name):
    """A dask ``a`` of unknown row-chunk sizes refused with the remedy named."""
    if is_dask(a) and any(math.isnan(c) for c in a.chunks[0]):
        raise ValueError(f"{name}: a dask array of unknown chunk sizes; call "
                         f"{name}.compute_chunk_sizes() first")


def _as_dask(a, rows, name):
    import dask.array as da

    if is_dask(a):
        return a
    return da.from_array(np.asarray(a) if not is_cupy_array(a) else a,
                         chunks=(rows,) + tuple(-1 for _ in range(np.ndim(a) - 1)))


def _check_inputs(est, X, y, sample_weight):
    import dask.array as da

    name = type(est).__name__
    if y is None:
        raise ValueError(f"{name} requires y to be passed, but the target y is None")
    if not is_dask(X):
        X = da.from_array(np.asarray(X), chunks=("auto", -1))
    if X.ndim != 2:
        raise ValueError(f"Expected a 2D array, got a dask array of shape {X.shape}")
    if any(math.isnan(c) for c in X.chunks[0]):
        raise ValueError("X: a dask array of unknown chunk sizes; call "
                         "X.compute_chunk_sizes() first")
    if type(X._meta).__module__.startswith("scipy.sparse"):
        raise TypeError("X: a dask array of sparse chunks; the distributed fit needs dense "
                        "chunks (X.map_blocks(lambda b: b.toarray()))")
    if X.dtype.kind not in "biuf":
        raise TypeError(f"X must hold real numbers, got dtype {X.dtype}")
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    n, d = X.shape
    if n < 2 or d < 1:
        raise ValueError(f"X of shape {X.shape}: at least 2 samples and one feature are "
                         "needed")
    if X.numblocks[1] > 1:
        warnings.warn(f"X is chunked along its {d} columns ({X.numblocks[1]} chunks): the "
                      "fit needs whole rows per block, so the columns are rechunked into one "
                      "(chunk X by rows only to avoid this copy)", UserWarning)
        X = X.rechunk({1: -1})
    if is_dask(y):
        if y.ndim not in (1, 2):
            raise ValueError(f"Y must be 1-D (one task) or 2-D (n_samples, n_tasks), got "
                             f"shape {y.shape}")
        if any(math.isnan(c) for c in y.chunks[0]):
            raise ValueError("y: a dask array of unknown chunk sizes; call "
                             "y.compute_chunk_sizes() first")
        one_d = y.ndim == 1
        Y = y[:, None] if one_d else y
        if Y.shape[1] == 0:
            raise ValueError(f"Y of shape {Y.shape} has no task: at least one column is "
                             "needed")
    else:
        Y, one_d = _labels.as_2d_targets(y)
    if Y.shape[0] != n:
        raise ValueError(f"X and Y have different numbers of samples: {n} and {Y.shape[0]}")
    T = Y.shape[1]
    Y = _as_dask(Y, X.chunks[0], "y").rechunk((X.chunks[0], -1))
    SW = None
    if sample_weight is not None:
        if hasattr(sample_weight, "tocsr"):
            raise ValueError("sample_weight is a sparse matrix: give a dense (n,) or (n, T) "
                             "array (sample_weight.toarray())")
        if np.ndim(sample_weight) == 0:
            sample_weight = np.full(n, float(sample_weight))
        known_chunks(sample_weight, "sample_weight")
        if tuple(sample_weight.shape) not in ((n,), (n, T)) if hasattr(sample_weight, "shape") \
                else np.shape(sample_weight) not in ((n,), (n, T)):
            raise ValueError(f"sample_weight must have shape ({n},) or ({n}, {T}) (one weight "
                             f"per sample, or per sample and task), got "
                             f"{np.shape(sample_weight)}")
        if np.dtype(sample_weight.dtype if hasattr(sample_weight, "dtype") else
                    np.asarray(sample_weight).dtype).kind not in "biuf":
            raise ValueError("sample_weight must hold real numbers")
        SW = _as_dask(sample_weight, X.chunks[0], "sample_weight")
        SW = SW.rechunk((X.chunks[0],) + ((-1,) if SW.ndim == 2 else ()))
    return X, Y, SW, one_d


def fit(est, X, y, sample_weight=None):
    """``est.fit(X, y, sample_weight)`` with X a dask array (see the module docstring)."""
    pen = est._check_params()
    client = get_client()
    X, Y, SW, one_d = _check_inputs(est, X, y, sample_weight)
    if est.device == "cuda" and not is_cupy_array(X._meta):
        raise ValueError("device='cuda' with a dask array: give it CuPy chunks "
                         "(X.map_blocks(cupy.asarray)); NumPy chunks fit on the CPU")
    n, d = X.shape
    T = Y.shape[1]
    est.n_features_in_ = int(d)
    if hasattr(est, "feature_names_in_"):
        del est.feature_names_in_
    xb = client.compute(list(X.to_delayed().ravel()))
    yb = client.compute(list(Y.to_delayed().ravel()))
    sb = [None] * len(xb) if SW is None else client.compute(list(SW.to_delayed().ravel()))
    first = DaskData(client, xb, n, d, 0, None, None, False, False)
    types = est._declared_types(T)
    auto = types is None
    if auto:  # type_of_target per column from counts summed over the blocks (Y only)
        tc = first.reduce([client.submit(_blk_types, yy, s, est.missing_label, pure=False)
                           for yy, s in zip(yb, sb)])
        types = ["regression" if _labels.continuous_from_counts(
            {k: v[t] for k, v in tc.items()}) else "classification" for t in range(T)]
    classify = "classification" in types
    st = first.reduce([client.submit(_blk_check, x, yy, s, est.missing_label, types,
                                     est._mixed_types, pure=False)
                       for x, yy, s in zip(xb, yb, sb)])
    if st["nonfinite"]:
        raise ValueError("Input X contains NaN or infinity")
    from ._estimators import check_magnitude

    check_magnitude(st["max_abs"], n, d, X.dtype)
    _labels.check_labelled((st["labelled"] == 0)[None, :])
    if st["bad_w"]:
        raise ValueError("sample_weight must be finite and non-negative")
    _labels.check_weight_sum(st["sw_sum"], st["max_sw"], "sample_weight")
    if not np.isfinite(st["yy"]):  # each block's squares were finite, their sum is not
        _labels.raise_targets_overflow(st["max_y"])
    dead = np.flatnonzero(st["weight"] == 0)
    if dead.size:
        raise ValueError(f"task {dead[0]}: the sample weights of its labelled samples are "
                         "all zero; at least one non-zero weight is needed")
    classes, counts = [None] * T, None
    softmax_tasks = []
    if classify:
        if auto:
            from ._mixed import warn_many_classes

            for t in range(T):
                if types[t] == "classification" and tc["notnumber"][t] == 0:
                    warn_many_classes(t, len(st["classes"][t][0]))
        classes = [_labels.task_classes(cls, t) if types[t] == "classification" else None
                   for t, (cls, _) in enumerate(st["classes"])]
        counts = [c for _, c in st["classes"]]
    owner = np.concatenate([[t] * (1 if c is None or len(c) == 2 else len(c))
                            for t, c in enumerate(classes)]).astype(int)
    scale = np.ones(T)
    if getattr(est, "scale_targets", False) and "moments" in st:
        # the std of each regression task's labelled values (np.std's, to rounding)
        cnt, _, m2 = st["moments"]
        for t in range(T):
            if types[t] == "regression":
                sd = math.sqrt(m2[t] / cnt[t]) if cnt[t] > 0 else 0.0
                scale[t] = sd if np.isfinite(sd) and sd > 0 else 1.0
    est._adopt_encoding(types, classes, scale, owner)
    group = est._loss_groups(owner)
    if group is not None:
        softmax_tasks = list(np.unique(owner[group >= 2]))
    specs = est._class_weight_specs(T)
    rho = est._task_weights(None, None, size=st["weight"])[owner]
    n_t = st["weight"][owner]
    has_sw = not st["rows_differ"]
    meta = {"missing_label": est.missing_label, "owner": owner, "classes": classes,
            "types": types, "target_scale": scale,
            "cw_specs": specs, "cw_counts": counts, "softmax_tasks": softmax_tasks,
            "scale": rho / n_t, "sw": "per-sample" if has_sw else "none",
            "intercept_scaling": float(est.intercept_scaling)
            if est._intercept_column() else None}
    blocks = [client.submit(_blk_make, x, yy, s, meta, pure=False)
              for x, yy, s in zip(xb, yb, sb)]
    # the computed chunks live on in the blocks (the same arrays): their own futures go,
    # else the workers count (and spill to disk) every chunk twice
    del xb, yb, sb, first
    n_sub = len(owner)
    d_fit = d + (1 if meta["intercept_scaling"] is not None else 0)
    full = not np.any(st["open"])
    data = DaskData(client, blocks, n, d_fit, n_sub, group, "squared" if not classify
                    else "logistic", has_sw, full, X.dtype)
    from .penalties import Ridge

    closed_ok = est._loss_name == "squared" and pen.smooth and full and has_sw
    solver, pen_solve = est.solver, pen
    if solver == "auto" and not pen.smooth and float(est.alpha) == 0 \
            and not pen.learns_relation:
        pen_solve = Ridge()
        closed_ok = est._loss_name == "squared" and full and has_sw
    if solver == "auto":
        solver = "closed_form" if closed_ok else ("lbfgs" if pen_solve.smooth else "fista")
    from ._estimators import check_solver  # (_estimators imports this module)

    check_solver(solver, closed_ok, pen_solve)
    ctx = dict(dask=data, rho=rho, pen=pen_solve, curvature=est._curvature(group),
               group=group, solver=solver, warm=False, fit_b=est._free_intercept(),
               Xd=np.empty((0, d_fit)))
    W0, b0 = est._initial_point(d_fit, n_sub, np, np.float64, ctx)
    R = relation(est, pen, data, T, owner)
    res, R = est._solve_path(ctx, pen_solve, R, W0, b0, n_sub)
    return est._set_fitted(res, R, solver, T, owner, one_d)


def solve(est, ctx, Q, W0, b0, tol):
    """One convex solve for a fixed Q on the blocks (``_BaseMultiTask._solve``'s body)."""
    data, pen, alpha = ctx["dask"], ctx["pen"], float(est.alpha)
    if data.dtype == np.float32:
        tol = max(tol, 1e-6)  # float32 data: the in-memory floor
    # float32 blocks on the CPU: float64 products where float32 ones would slow FISTA
    data.precise = data.dtype == np.float32 and tol < PRECISE_BELOW
    Q = np.asarray(Q, dtype=np.float64)
    fit_b, rho = ctx["fit_b"], np.asarray(ctx["rho"], dtype=np.float64)
    squared_full = est._loss_name == "squared" and data.full and data.has_sw
    # squared loss, labels missing: per-task Gram matrices while they are small (each
    # iteration then costs no pass over the blocks)
    task_gram = (est._loss_name == "squared" and data.group is None
                 and not (squared_full and data.n >= data.d)
                 and data.n_sub * data.d * data.d <= DaskOracle.task_gram_max_entries)
    if ctx["solver"] == "closed_form" or (squared_full and data.n >= data.d):
        n, xm, ym, K, H, yy = data.moments(fit_b)
        oracle = _solver.GramOracle.from_moments(K, H, yy, xm, ym, n, rho, Q)
        if ctx["solver"] == "closed_form":
            W = _solver._closed_form_modes(K / n, H / n, rho, Q)
            lin = oracle.linear(W, None)
            f, aux = oracle.value(W, None, lin)
            F = f + pen.value(W, alpha)
            gap, _ = _solver.duality_gap(oracle, pen, alpha, Q, W, None, lin, aux, F)
            return _solver.Result(W=W, b=oracle.intercept(W), n_iter=1, converged=True,
                                  trace=[F], objective=F,
                                  dual_gap=gap if np.isfinite(gap) else np.nan,
                                  scale=oracle.null_objective())
        b0 = b0 * 0
        x_mean = None
    elif task_gram:  # labels missing: one Gram matrix per task, no pass per iteration
        oracle = _solver.TaskGramOracle.from_moments(*data.task_moments(fit_b), Q)
        b0 = b0 * 0
        x_mean = None
    else:
        x_mean = data.means(data.has_sw)[0] if fit_b else None
        if x_mean is not None:
            b0 = b0 + x_mean @ W0
        oracle = DaskOracle(data, Q, fit_b, est._loss_name, x_mean,
                            fused=ctx["solver"] == "lbfgs")
    if ctx["solver"] == "lbfgs" and task_gram:  # a quadratic: solved exactly
        res = _solver.smooth_task_gram(oracle, pen, alpha, Q, W0, tol, est.max_iter)
    elif ctx["solver"] == "lbfgs":
        res = _solver.lbfgs(oracle, pen, alpha, Q, W0, b0, oracle.fit_intercept,
                            est.max_iter, tol)
    else:
        if isinstance(oracle, DaskOracle):
            cap = oracle.lipschitz_estimate(ctx["curvature"], lin0=oracle.linear(W0, b0))
        elif task_gram:
            cap = oracle.lipschitz_bound()
        else:  # Gram form: the data term's Hessian is c K
            cap = float(np.max(oracle.c)) * float(np.linalg.eigvalsh(oracle.K).max()) * 1.05 \
                + _solver._qmax(Q)
        lip = getattr(est, "lipschitz_", None) if ctx["warm"] else None
        res = _solver.fista(oracle, pen, alpha, Q, W0, b0, est.max_iter, tol,
                            n_jobs=est.n_jobs, verbose=est.verbose, lipschitz=lip,
                            lipschitz_cap=cap)
        est.lipschitz_ = res.lipschitz
    if not isinstance(oracle, DaskOracle):
        res.b = oracle.intercept(res.W)
    elif x_mean is not None:
        res.b = res.b - x_mean @ res.W
    return res


# ----------------------------------------------------------- task relation
def _blk_rel1(blk):
    """Labelled, weighted column sums for the label means (_relation.label_sums)."""
    wy, w = label_sums(to_numpy(blk["Y"]), blk["mask"], blk["swr"])
    return {"wy": wy, "w": w}


def _blk_rel2(blk, mean):
    """The pair sums of estimate_task_relation on a block (_relation.pair_sums)."""
    return pair_sums(to_numpy(blk["Y"]), blk["mask"], blk["swr"], mean)


def relation(est, pen, data, T, owner):
    """est._relation for the blocks: the label correlations of
    :func:`_relation.estimate_task_relation` from sums over blocks (two passes), and for
    task pairs without shared labelled rows, the hierarchical per-task ridge weights
    from per-task moments (two more passes; d x d per sub-task)."""
    from ._relation import MAX_RELATION_FEATURES, relation_from_sums, shrunk_from_moments

    R = est.task_relation
    if not (pen.uses_relation and isinstance(R, str) and R == "auto"):
        return est._relation(pen, None, None, None, data.n_sub, T, owner, None)
    s1 = data.reduce(data.map(_blk_rel1))
    mean = s1["wy"] / np.maximum(s1["w"], 1e-300)
    R, disjoint = relation_from_sums(data.reduce(data.map(_blk_rel2, mean)))
    if disjoint.any():
        d = data.d - (1 if est._intercept_column() else 0)
        if d > MAX_RELATION_FEATURES:
            warnings.warn(f"estimate_task_relation: {int(disjoint.sum()) // 2} pair(s) of "
                          f"tasks share no labelled rows; their relation would need per-task "
                          f"ridge fits with {d} x {d} systems (more than "
                          f"{MAX_RELATION_FEATURES} features): left at 0; pass "
                          "task_relation explicitly (or None) to couple them", UserWarning)
            return R
        xm, ym, nt = data.task_means(d, "relation")
        mo = data.reduce(data.map(_blk_task_moments, d, xm, ym, "relation"))
        W = shrunk_from_moments(mo["K"], mo["H"].T, mo["yy"], nt)
        C = np.corrcoef(W.T) if W.shape[1] > 1 else np.ones((1, 1))
        R[disjoint] = np.nan_to_num(C)[disjoint]
    return R


def prepare_cv(X, y, sample_weight):
    """For the CV estimators: X persisted on the workers (rows chunked, columns whole), y
    and sample_weight computed to NumPy (the folds are drawn on the client)."""
    client = get_client()
    if X.ndim == 2 and X.numblocks[1] > 1:
        warnings.warn("X is chunked along its columns: rechunked into whole rows",
                      UserWarning)
        X = X.rechunk({1: -1})
    X = client.persist(X)
    y = y.compute() if is_dask(y) else y
    if is_dask(sample_weight):
        sample_weight = sample_weight.compute()
    return X, y, sample_weight


def cv_scatter(X, Y2, folds):
    """For the CV estimators' held-out scores on the cluster: the targets (n, T) and each
    labelled entry's fold (-1: unlabelled) persisted on the workers once, chunked as X's
    rows, so that no fold's (n, T) predictions come to the client (:func:`score_sums`)."""
    import dask.array as da

    rows = X.chunks[0]
    Yd = da.from_array(Y2, chunks=(rows, -1))
    Fd = da.from_array(folds.astype(np.int16), chunks=(rows, -1))
    return tuple(get_client().persist([Yd, Fd]))


def fold_targets(dist, f):
    """Fold ``f``'s training targets for float Y: the persisted Y of :func:`cv_scatter`
    with that fold's held-out entries NaN (missing), persisted on the workers."""
    import dask.array as da

    Yd, Fd = dist
    return get_client().persist(da.where(Fd == f, np.nan, Yd))


def predict_input(est, X):
    """A dask X checked for a fitted model's predictions (2-D, its number of features), its
    columns in one chunk (whole rows per block)."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(est, "coef_")
    if X.ndim != 2:
        raise ValueError(f"Expected a 2D array, got a dask array of shape {X.shape}")
    if X.shape[1] != est.n_features_in_:
        raise ValueError(f"X has {X.shape[1]} features, but {type(est).__name__} is "
                         f"expecting {est.n_features_in_} features as input")
    if X.dtype.kind not in "biuf":
        raise TypeError(f"X must hold real numbers, got dtype {X.dtype}")
    return X.rechunk({1: -1}) if X.numblocks[1] > 1 else X


def map_rows(fn, A, n_out, dtype, like=None):
    """fn over the row blocks of the dask array A (n,) or (n, k) (one column chunk): a lazy
    (n,) (``n_out`` None) or (n, n_out) dask array of ``dtype``, with the row chunks of A.
    Its meta is an empty array of ``like``'s kind (CuPy for CuPy chunks; NumPy by
    default), so that dask never calls fn to guess it."""
    dtype = np.dtype(dtype)
    xp = get_namespace(like) if like is not None and dtype.kind in "biuf" else np
    meta = xp.empty((0,) if n_out is None else (0, 0), dtype=dtype)
    kw = {}
    if A.ndim == 2 and n_out is None:
        kw["drop_axis"] = 1
    elif A.ndim == 1 and n_out is not None:
        kw["new_axis"] = 1
    chunks = (A.chunks[0],) if n_out is None else (A.chunks[0], (int(n_out),))
    name = f"{getattr(fn, '__name__', 'rows')}-{uuid.uuid4().hex}"  # never a shared key
    return A.map_blocks(_RowFn(fn, n_out, dtype), dtype=dtype, meta=meta, chunks=chunks,
                        name=name, **kw)


class _RowFn:
    """fn on a row block; an empty block (a boolean-filtered array's) gives an empty
    result of the output's shape and dtype without calling fn (scikit-learn's checks
    refuse 0 samples)."""

    def __init__(self, fn, n_out, dtype):
        self.fn, self.n_out, self.dtype = fn, n_out, dtype

    def __call__(self, block):
        if block.shape[0] == 0:
            xp = get_namespace(block) if self.dtype.kind in "biuf" else np
            return xp.empty((0,) if self.n_out is None else (0, int(self.n_out)),
                            dtype=self.dtype)
        return self.fn(block)


def map_predict(est, fn, X, n_out, dtype):
    """fn (a fitted model's method on in-memory rows, by name) over the row blocks of a
    dask X: a lazy (n,) or (n, n_out) dask array; nothing is computed, X is never
    gathered. The graph holds a copy of the model as it is now: refitting ``est`` before
    the result is computed does not change it."""
    X = predict_input(est, X)
    frozen = copy.deepcopy(est)
    return map_rows(getattr(frozen, fn.__name__), X, n_out, dtype, like=X._meta)


def compute_small(*arrays):
    """Dask arrays among ``arrays`` (per-row predictions, labels, weights: n x T, never X)
    computed together in one pass on the cluster; the others unchanged."""
    if not any(is_dask(a) for a in arrays):
        return arrays
    import dask

    return dask.compute(*arrays)


def _blk_score(Pb, Yb, SWb, missing_label, r2):
    """A row block's sums for ``score``, per task t: the labelled rows (count), for R^2
    (``r2[t]``) the weighted (sum of weights, mean, squared deviations) of y and the
    weighted squared residuals, for accuracy the weighted hits; the sum of weights of
    the labelled rows is the first entry of "moments" for both."""
    Y2 = np.asarray(Yb)
    Y2 = Y2[:, None] if Y2.ndim == 1 else Y2
    n, T = Y2.shape
    P2 = np.asarray(to_numpy(Pb))
    P2 = P2[:, None] if P2.ndim == 1 else P2
    miss = _labels.missing_mask(Y2, missing_label)
    SW, _ = _labels.check_sample_weight(SWb, n, T)
    out = {"count": np.zeros(T), "hit": np.zeros(T), "res": np.zeros(T)}
    W, mean, m2 = np.zeros(T), np.zeros(T), np.zeros(T)
    for t in range(T):
        rows = ~miss[:, t]
        w = SW[rows, t]
        out["count"][t], W[t] = rows.sum(), w.sum()
        if r2[t]:
            yt = np.asarray(Y2[rows, t], dtype=np.float64)
            pt = np.asarray(P2[rows, t], dtype=np.float64)
            if not np.all(np.isfinite(yt)):  # as r2_score in memory
                raise ValueError("y: Input contains infinity or a value too large for "
                                 "dtype('float64') (a labelled regression target)")
            if W[t] > 0:
                mean[t] = (w @ yt) / W[t]
                m2[t] = w @ (yt - mean[t]) ** 2
            out["res"][t] = w @ (yt - pt) ** 2
        else:
            out["hit"][t] = w @ np.asarray(Y2[rows, t] == P2[rows, t], dtype=np.float64)
    out["moments"] = (W, mean, m2)
    return out


def score(est, X, y, sample_weight, r2):
    """``est.score`` on a dask X, reduced on the cluster (:func:`score_sums`): neither X
    nor the (n, T) predictions are gathered. The same scores as in memory: sklearn's
    r2_score (a constant y scores 1 if predicted exactly, else 0; under two labelled rows
    nan) and the weighted accuracy per task with a labelled row of non-zero weight,
    averaged."""
    tot = score_sums(est, X, y, sample_weight, r2)
    W, _, m2 = tot["moments"]
    scores = []
    for t in range(len(W)):
        if not W[t] > 0:
            continue  # no labelled row of non-zero weight: skipped, as in memory
        if not r2[t]:
            scores.append(tot["hit"][t] / W[t])
            continue
        if tot["count"][t] < 2:
            from sklearn.exceptions import UndefinedMetricWarning

            warnings.warn("R^2 score is not well-defined with less than two samples.",
                          UndefinedMetricWarning)
            scores.append(np.nan)
            continue
        num, den = tot["res"][t], m2[t]
        scores.append(1.0 - num / den if num != 0 and den != 0 else
                      (0.0 if num != 0 else 1.0))
    if not scores:
        raise ValueError("score: no task has a labelled sample (with non-zero weight) in "
                         "y; every entry is missing")
    return float(np.mean(scores))


def score_sums(est, X, y, sample_weight, r2):
    """Per task, the sums a score needs (:func:`_blk_score`: labelled rows, weighted
    moments of y, weighted squared residuals for R^2 where ``r2[t]``, weighted hits
    otherwise), summed on the cluster: the lazy predictions, y and the sample weights
    (dask or in memory; chunked as X's rows) meet block by block and a tree of sum tasks
    adds them (the moments of y pairwise); the client gets (T,)-sized sums."""
    import dask

    P = est.predict(X)
    rows = P.chunks[0]
    if any(math.isnan(c) for c in rows):
        raise ValueError("X: a dask array of unknown chunk sizes; call "
                         "X.compute_chunk_sizes() first")
    n, T = P.shape[0], est.n_tasks_
    known_chunks(y, "y")
    known_chunks(sample_weight, "sample_weight")
    if is_dask(y):
        Y = y[:, None] if y.ndim == 1 else y
    else:
        Y, _ = _labels.as_2d_targets(to_numpy(y) if is_cupy_array(y) else y)
    if Y.ndim != 2 or Y.shape[0] != n or Y.shape[1] != T:
        raise ValueError(f"y has shape {tuple(np.shape(y))}, but X has {n} samples and the "
                         f"model {T} task(s)")
    Y = _as_dask(Y, rows, "y").rechunk((rows, -1))
    parts_sw = [None] * len(rows)
    if sample_weight is not None:
        if is_dask(sample_weight):
            if tuple(sample_weight.shape) not in ((n,), (n, T)):
                raise ValueError(f"sample_weight must have shape ({n},) or ({n}, {T}) (one "
                                 f"weight per sample, or per sample and task), got "
                                 f"{sample_weight.shape}")
            SW = sample_weight
        else:
            SW = _labels.check_sample_weight(sample_weight, n, T)[0]
        SW = _as_dask(SW, rows, "sample_weight")
        SW = SW.rechunk((rows,) + ((-1,) if SW.ndim == 2 else ()))
        parts_sw = list(SW.to_delayed().ravel())
    blk = dask.delayed(_blk_score, pure=True)
    parts = [blk(p, yb, s, est.missing_label, list(r2)) for p, yb, s in
             zip(P.to_delayed().ravel(), Y.to_delayed().ravel(), parts_sw)]
    while len(parts) > 1:
        parts = [dask.delayed(_sum_parts, pure=True)(None, *parts[i:i + 16])
                 for i in range(0, len(parts), 16)]
    return parts[0].compute()
