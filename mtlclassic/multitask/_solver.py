"""Solvers for F(W, b) = loss(X W + b) + 1/2 tr(W Q W^T) + g(W).

Every solver stops on a **certificate**: the duality gap P(W, b) - D(G) >= F(W, b) - F*
at a dual point G built from the loss gradient (Fenchel duality: D(G) = -L*(G) -
h*(-X^T G), h the whole penalty, G's columns summing to 0 for free intercepts; see
:func:`duality_gap`). The conjugates are cheap for every convex problem here: squared
and logistic loss; ridge / mean / graph (1/2 tr(V Q^-1 V^T), Q positive definite), L2,1
(row norms), trace (singular values), MTRL (singular values, a sorted threshold). "Converged"
means gap <= tol * min_b F(0, b), so the objective is within that of the optimum. Where no
dual point exists (a smooth penalty with a singular Q: mean or graph with l2 = 0) the
solvers fall back to a KKT residual that does not bound the error, and report the gap as
nan.

* :func:`fista`: accelerated proximal gradient (Beck & Teboulle, SIAM J. Imaging Sci.
  2009) with backtracking whose step can grow back up to a cap from a Lipschitz estimate
  (:func:`lipschitz_estimate`), function-value adaptive restart (O'Donoghue & Candes,
  Found. Comput. Math. 2015: an accelerated step that would raise F is discarded and
  momentum reset, so the accepted objective never rises beyond rounding) and warm starts.
  Per iteration: one GEMM for Z = X W and one for X^T G (:class:`DataOracle`), or, for
  squared loss with every label present and n >= d, a single d x d x T GEMM on the Gram
  matrix (:class:`GramOracle`); the map at the extrapolated point is a combination of
  known ones.
* :func:`lbfgs`: scipy's L-BFGS-B on the smooth problems, stopped by the same gap; for
  separable ones (ridge: diagonal Q, element-wise loss) :func:`_lbfgs_columns`, one
  preconditioned L-BFGS per column, batched; for those coupled through a positive definite
  Q (graph, mean) :func:`_lbfgs_modes`, one preconditioned L-BFGS whose initial inverse
  Hessian works in Q's eigenbasis.
* :func:`closed_form`: squared loss, quadratic penalty, every entry labelled: the
  Sylvester equation (X^T S X / n) W + W Q D_rho^-1 = X^T S Y / n on centred data,
  n = sum of the sample weights, solved in Q's eigenbasis (a Cholesky solve per mode).
"""

import contextlib
import math
import os
import threading
import warnings

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.special
import scipy.optimize  # loads SciPy's own BLAS (L-BFGS-B) before the pools are listed
from threadpoolctl import ThreadpoolController

from ..backend import get_namespace, to_numpy


_CONTROLLER = None


def blas_threads(n_threads):
    """Context manager limiting every BLAS pool of the process (NumPy's OpenBLAS, the
    separate OpenBLAS that SciPy's L-BFGS-B links, MKL, ...) to ``n_threads``. The pools
    are listed once (threadpoolctl's scan costs milliseconds; a limit on known pools
    costs microseconds), after NumPy and SciPy's optimiser are loaded."""
    global _CONTROLLER
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    # never more BLAS threads than CPUs: more only add memory (each OpenBLAS thread holds
    # its own buffers) and contention
    return _CONTROLLER.limit(limits=max(1, min(int(n_threads), _CPUS)), user_api="blas")


_CPUS = os.cpu_count() or 1  # (asked once: 58 us a call, at every product by blocks)


class _OneBlasThread:
    """One BLAS thread in every pool while any product by blocks runs (see
    :func:`_block_threads`): the pools' thread counts set directly (~6 us, where a
    threadpoolctl limit costs ~30 us, a large share of a small product) and counted, so
    that products run concurrently in threads restore the counts once the last one ends
    (nested limits restored out of order left the process on one thread; review)."""

    _lock = threading.Lock()
    _depth = 0
    _saved = ()

    def __enter__(self):
        cls = type(self)
        with cls._lock:
            if cls._depth == 0:
                global _CONTROLLER
                if _CONTROLLER is None:
                    _CONTROLLER = ThreadpoolController()
                pools = [c for c in _CONTROLLER.lib_controllers if c.user_api == "blas"]
                cls._saved = [(c, c.num_threads) for c in pools]
                for c, k in cls._saved:
                    if k != 1:
                        c.set_num_threads(1)
            cls._depth += 1
        return self

    def __exit__(self, *exc):
        cls = type(self)
        with cls._lock:
            cls._depth -= 1
            if cls._depth == 0:
                for c, k in cls._saved:
                    if k != 1:
                        c.set_num_threads(k)
                cls._saved = ()
        return False


def _block_threads(B, n_rows, step):
    """The BLAS threads of a product by blocks of ``step`` of ``n_rows`` rows with
    right-hand side B: one where there are several blocks and B is narrow (at most 32
    columns; a bandwidth-bound product, which gained nothing from a second thread), since
    every block's call wakes and joins the pool: on a 2-core machine with the other core
    busy, 2,000 x 1,000 float32 X times 3 columns by blocks took 64 ms on 2 threads
    against 2.5 ms on one (8 ms for the product with a float64 copy). One block: as it
    is."""
    narrow = np.ndim(B) < 2 or np.shape(B)[-1] <= 32
    return _OneBlasThread() if narrow and n_rows > step else contextlib.nullcontext()


#: beyond this many distinct eigenvalues of the task matrix the d x d closed form is solved
#: by Bartels-Stewart (one Schur decomposition whatever T) rather than a Cholesky
#: factorisation per eigenvalue (T d^3 / 3 flops: even at ~40 on 3000 x 500, 3.6x slower at
#: T = 200 with a graph relation; review); its result is certified by the caller and
#: solved again by modes where it is not (a feature in units 1e8 times the others')
MODES_MAX = 32


def closed_form(X, Y, sw, rho, Q, fit_intercept, modes=None):
    """Exact minimiser for squared loss with all labels present; sw: sample weights (n,),
    rho: task weights (T,), Q: (T, T). The normal equations are the Sylvester equation
    A W + W Q R^-1 = C, A = X_c^T S X_c / n, C = X_c^T S Y_c / n, R = diag(rho). Sparse X:
    through its Gram matrix (d x d dense); dense X with n < d: in sample space
    (:func:`_closed_form_samples`, n x n), else by Q's modes on the d x d A
    (:func:`_closed_form_modes`: a Cholesky solve per mode)."""
    n = sw.sum()  # n_t, the same for every task when all labels are present
    if scipy.sparse.issparse(X):  # the centred Gram matrices without densifying X
        g = GramOracle(X, Y, sw, np.ones(Y.shape[1]), Q, fit_intercept)
        x_mean, y_mean, A, C = g.x_mean, g.y_mean, g.K / n, g.H / n
    else:
        # (float32 X stays float32: its means and moments are summed in float64 by
        # blocks of rows, no float64 copy)
        x_mean = column_mean(X, sw) if fit_intercept else np.zeros(X.shape[1])
        y_mean = sw @ Y / n if fit_intercept else np.zeros(Y.shape[1])
        if X.shape[0] < X.shape[1]:
            W = _closed_form_samples(X, x_mean, Y - y_mean, sw / n, rho, Q)
            b = (y_mean - x_mean @ W) if fit_intercept else np.zeros(Y.shape[1])
            return W, b
        A, C, _ = centred_moments(X, Y, sw, x_mean, y_mean)
        A /= n
        C /= n
    if modes is None:
        modes = _distinct_modes(rho, Q) <= MODES_MAX
    W = _closed_form_modes(A, C, rho, Q) if modes else \
        scipy.linalg.solve_sylvester(A, Q / rho[None, :], C)
    b = (y_mean - x_mean @ W) if fit_intercept else np.zeros(Y.shape[1])
    return W, b


def centred_moments(X, Y, sw, x_mean, y_mean):
    """(K, H, yy) = (X_c^T S X_c, X_c^T S Y_c, diag(Y_c^T S Y_c)) of dense NumPy X (n, d)
    and Y (n, T), X_c = X - x_mean, Y_c = Y - y_mean, S = diag(sw), summed over blocks of
    rows centred (and scaled by sqrt(sw)) one at a time: K by BLAS syrk (half a general
    product's flops), no centred or weighted copy of X (those were 2x X's size beside X
    at the peak of the closed form and the Gram form). Eight blocks: each syrk a wide
    update, each block an eighth of X (in float64; a quarter of a float32 X)."""
    n, d = X.shape
    w0 = float(sw[0]) if n else 1.0
    equal = bool(np.all(sw == w0))
    syrk = scipy.linalg.blas.get_blas_funcs("syrk", (np.zeros(1),))
    C = np.zeros((d, d), order="F")
    H = np.zeros((d, Y.shape[1]))
    yy = np.zeros(Y.shape[1])
    step = max(1, -(-n // 8))
    for i in range(0, n, step):
        B = np.array(X[i:i + step], dtype=np.float64)
        B -= x_mean
        Yb = np.asarray(Y[i:i + step], dtype=np.float64) - y_mean
        if not equal:
            r = np.sqrt(sw[i:i + step])[:, None]
            B *= r
            Yb *= r
        C = syrk(w0 if equal else 1.0, B, trans=1, beta=1.0, c=C, overwrite_c=True)
        H += B.T @ Yb
        Yb *= Yb
        yy += Yb.sum(axis=0)
    if equal:
        H *= w0
        yy *= w0
    return _symmetrised(C), H, yy


def _symmetrised(C, block=256):
    """syrk's upper triangle copied onto its lower one in place, a block of columns at a
    time: no d x d temporary (np.triu(C) + np.triu(C, 1).T made three, 3x a float32 X's
    size beside it at 3,000 x 1,764)."""
    d = C.shape[0]
    for j0 in range(0, d, block):
        j1 = min(j0 + block, d)
        D = C[j0:j1, j0:j1]
        D[:] = np.triu(D) + np.triu(D, 1).T
        C[j1:, j0:j1] = C[j0:j1, j1:].T
    return C


def _distinct_modes(rho, Q):
    """How many factorisations :func:`_closed_form_modes` would take."""
    lam = np.maximum(_task_modes(rho, Q)[1], 0.0)
    return len(_mode_runs(lam))


def _mode_runs(lam):
    """[(start, stop)]: the runs of equal eigenvalues (to a few ulps) of ascending lam."""
    tie = 64.0 * np.finfo(np.float64).eps * float(lam.max(initial=0.0))
    runs, start = [], 0
    while start < len(lam):
        stop = start + 1
        while stop < len(lam) and lam[stop] - lam[start] <= tie:
            stop += 1
        runs.append((start, stop))
        start = stop
    return runs


def _closed_form_modes(A, C, rho, Q):
    """A W + W Q R^-1 = C (A symmetric positive semi-definite, d x d) by Q's modes: with
    R^-1/2 Q R^-1/2 = U diag(lam) U^T and P = R^1/2 U the columns of V = W P solve
    (A + lam_k I) v_k = (C P)_k -- each by Cholesky, whose error is that of the diagonally
    scaled matrix (the accuracy of scikit-learn's Ridge) where the Bartels-Stewart solver
    (orthogonal Schur transforms) mixed the scales: one feature in units 1e8 times the
    others' left its coefficients 54 % off (review), now ~1e-8 -- and in T d^3 / 3 flops
    instead of ~25 d^3; modes of one eigenvalue (to a few ulps: ridge's all, mean's all
    but one) share one factorisation, so ridge costs one whatever T. A mode the
    factorisation refuses (lam_k = 0 on a singular A: an unpenalised mode) is solved in the
    least-squares, minimum-norm sense. W = V U^T R^-1/2."""
    r, lam, U = _task_modes(rho, Q)
    lam = np.maximum(lam, 0.0)  # Q is positive semi-definite: rounding only below 0
    CP = C @ (U * r[:, None])
    V = np.empty_like(CP)
    # one d x d work array beside A, factorised in place (A + lam I with an identity and
    # cho_factor's copy made four: 4.7x a float32 X's size at 3,000 x 1,764)
    M = np.empty_like(A, order="F")
    diag = M.reshape(-1, order="F")[::A.shape[0] + 1]  # a view of M's diagonal
    for start, stop in _mode_runs(lam):  # lam ascending (eigh): runs of equal values
        np.copyto(M, A)
        diag += lam[start]
        try:
            V[:, start:stop] = scipy.linalg.cho_solve(
                scipy.linalg.cho_factor(M, overwrite_a=True, check_finite=False),
                CP[:, start:stop], check_finite=False)
        except np.linalg.LinAlgError:
            np.copyto(M, A)  # (the failed factorisation overwrote it)
            diag += lam[start]
            V[:, start:stop] = scipy.linalg.lstsq(M, CP[:, start:stop], overwrite_a=True,
                                                  check_finite=False)[0]
    return (V @ U.T) / r[None, :]


def _task_modes(rho, Q):
    """(r, lam, U): r = sqrt(rho) and the eigenpairs R^-1/2 Q R^-1/2 = U diag(lam) U^T
    (lam ascending) in which the closed forms' columns decouple."""
    r = np.sqrt(np.asarray(rho, dtype=np.float64))
    lam, U = np.linalg.eigh((Q / r[:, None]) / r[None, :])
    return r, lam, U


def _column_blocks(X, mean, sq, block_bytes=1 << 22):
    """(columns, diag(sq) (X[:, columns] - mean[columns])) in float64 over blocks of X's
    columns: the centred, scaled X of the sample-space closed form a block at a time (the
    whole one and its centred copy were 2.2x a float64 X's size, 4.5x a float32 X's)."""
    n, d = X.shape
    step = max(1, min(block_bytes // (8 * max(n, 1)), -(-d // 8)))
    for j in range(0, d, step):
        cols = slice(j, min(j + step, d))
        B = np.array(X[:, cols], dtype=np.float64)
        B -= mean[cols]
        B *= sq
        yield cols, B


def _closed_form_samples(X, x_mean, Yc, w, rho, Q):
    """The Sylvester equation of :func:`closed_form` for n < d in sample space. With X_s =
    diag(sqrt(w)) X_c, Y_s likewise (A = X_s^T X_s, C = X_s^T Y_s) and the eigenpairs
    R^-1/2 Q R^-1/2 = U diag(lam) U^T (Q R^-1 = P diag(lam) P^-1, P = R^1/2 U), the columns
    of W P decouple: (A + lam_k I) v_k = X_s^T (Y_s P)_k, solved by the push-through
    identity v_k = X_s^T (K + lam_k I)^-1 (Y_s P)_k with K = X_s X_s^T (n x n, its eigenpairs
    once). Then W = V P^-1 = V U^T R^-1/2. n^2 d + n^3 + d n T flops where Bartels-Stewart
    costs ~25 d^3 (20 x 5000: 42 s -> milliseconds). A zero lam_k (an unpenalised mode:
    Q singular) gives the minimum-norm solution of that mode (K's zero eigenvalues
    dropped), where the d x d equation has no unique solution."""
    r, lam, U = _task_modes(rho, Q)
    sq = np.sqrt(w)[:, None]
    Ys = Yc * sq
    n, d = X.shape
    syrk = scipy.linalg.blas.get_blas_funcs("syrk", (np.zeros(1),))
    K = np.zeros((n, n), order="F")
    for _, B in _column_blocks(X, x_mean, sq):  # K = X_s X_s^T, by blocks of columns
        K = syrk(1.0, B, beta=1.0, c=K, overwrite_c=True)
    mu, E = np.linalg.eigh(_symmetrised(K))
    Z = E.T @ (Ys @ (U * r[:, None]))  # Y_s P in K's eigenbasis, (n, T)
    den = mu[:, None] + np.maximum(lam, 0.0)[None, :]
    tiny = np.finfo(np.float64).eps * max(float(mu.max(initial=0.0)), 1e-300) * len(mu)
    Z = np.where(den > tiny, Z / np.where(den > tiny, den, 1.0), 0.0)
    EZ = E @ Z
    V = np.empty((d, Z.shape[1]))
    for cols, B in _column_blocks(X, x_mean, sq):  # V = X_s^T (E Z)
        V[cols] = B.T @ EZ
    return (V @ U.T) / r[None, :]


#: X^T G as (G^T X)^T from this many columns of a C-contiguous X up (:func:`xt_dot`)
XT_DOT_MIN_COLS = 64
#: X^T G with a Fortran-ordered X (X^T C-contiguous: a working set's gathered columns),
#: and X W with X in any layout, take the transposed form (:func:`_transposed_pays`)
#: from this many entries of X up, with both of X's sides at least TRANSPOSED_MIN_SIDE
#: and 2 to TRANSPOSED_MAX_COLS columns in G or W
TRANSPOSED_MIN_ENTRIES = 1 << 20
TRANSPOSED_MIN_SIDE = 300
TRANSPOSED_MAX_COLS = 32


def _transposed_pays(X, B):
    """Whether X^T B or X B (X a 2-D NumPy array, B 2-D) is faster computed through the
    transposed product ((B^T X)^T, (B^T X^T)^T): OpenBLAS runs a product whose result has
    a few rows (T) and many columns 1.2-2.6x faster than the same product the other way
    round once X is large (medians on 1 and 2 threads over n 100-100,000, d 20-10,000, T
    1-276: level at T = 1; slower below about 1M entries of X, with a side under 300 --
    0.4-0.6x on 100,000 x 20 and 100,000 x 64, 0.74-0.95x on 8,000 x 256 -- and level
    to 0.9x from T = 100 up); float64 only (float32 products were 1.3-2x slower this way),
    plain NumPy arrays only (a subclass keeps its own product and type)."""
    return (type(X) is np.ndarray and type(B) is np.ndarray and X.ndim == 2 and B.ndim == 2
            and X.dtype == B.dtype == np.float64 and 2 <= B.shape[1] <= TRANSPOSED_MAX_COLS
            and X.size >= TRANSPOSED_MIN_ENTRIES and min(X.shape) >= TRANSPOSED_MIN_SIDE)


#: a block of rows' product X_b V (a power round) is taken as (V^T X_b^T)^T from this many
#: columns of X up, with 2 to TRANSPOSED_MAX_COLS columns in V
BLOCK_TRANSPOSED_MIN_COLS = 240


def _block_transposed_pays(Xb, V):
    """Whether a dense float64 block of rows' product X_b V is faster as (V^T X_b^T)^T:
    a power round over 4 MB blocks (medians, 1 thread) took 0.63-0.86x the time on 4,200 x
    1,764 (T = 12), 3,000 x 2,916 (15), 20,000 x 500 (10) and 2,000 x 240 (10), level on
    256-512 columns with T = 32, but 1.1-1.4x on narrow X (100,000 x 20 or 64, School's
    7,405 x 27; review: 8,000 x 128 with T = 16-32) and with T = 276."""
    return (type(Xb) is np.ndarray and type(V) is np.ndarray and Xb.dtype == V.dtype
            == np.float64 and V.ndim == 2 and Xb.shape[1] >= BLOCK_TRANSPOSED_MIN_COLS
            and 2 <= V.shape[1] <= TRANSPOSED_MAX_COLS)


def xt_dot(X, G):
    """X^T G for X (n, d) and G (n, T) (2-D), computed as (G^T X)^T (returned C-contiguous)
    for a C-contiguous NumPy X of at least ``XT_DOT_MIN_COLS`` columns: with a narrow G,
    OpenBLAS's product with a transposed X was measured 1.3-2.4x slower on one thread and
    up to 2.9x on two (500 x 5000, 2000 x 240, 6000 x 1764, 20000 x 500; T 3-10; level at
    T = 1 and slower at d = 27); and for a Fortran-ordered X (a working set's columns,
    gathered as X^T's rows) where :func:`_transposed_pays` (n < d's sub-problems: 2,720 x
    500 with T = 10, 2.8 -> 1.1 ms). Other arrays (CuPy, Dask, sparse, other layouts):
    X.T @ G."""
    if _widened(X, G):  # float32 X, float64 G: by blocks of rows (no float64 copy of X)
        out = np.zeros((X.shape[1],) + G.shape[1:])
        with _block_threads(G, X.shape[0], _row_step64(X)):
            for i, Xb in _row_blocks64(X):
                out += xt_dot(Xb, G[i:i + Xb.shape[0]])
        return out
    if isinstance(X, np.ndarray) and isinstance(G, np.ndarray) and X.ndim == 2 \
            and G.ndim == 2 and ((X.flags.c_contiguous and X.shape[1] >= XT_DOT_MIN_COLS)
                                 or (X.flags.f_contiguous and _transposed_pays(X, G))):
        return np.ascontiguousarray((G.T @ X).T)
    return X.T @ G


def x_dot(X, W):
    """X W for X (n, d) and W (d, T) or (d,); float32 NumPy X with float64 W by blocks of
    rows converted to float64 (NumPy's mixed product converts the whole X first: a
    float64 copy, twice the float32 X's size), the same values as on X in float64. Where
    :func:`_transposed_pays`, as (W^T X^T)^T (returned C-contiguous): 1.3-2.5x faster
    (500 x 5000, 6000 x 1764, 20000 x 500 with T = 3-20)."""
    if not _widened(X, W):
        if _transposed_pays(X, W):
            return np.ascontiguousarray((W.T @ X.T).T)
        return X @ W
    out = np.empty((X.shape[0],) + W.shape[1:])
    with _block_threads(W, X.shape[0], _row_step64(X)):
        for i, Xb in _row_blocks64(X):
            np.matmul(Xb, W, out=out[i:i + Xb.shape[0]])
    return out


def _widened(X, B):
    """Whether X @ B (or X^T B) would convert a float32 NumPy X to float64 whole, and X is
    not small: its float64 copy over ``SMALL_COPY_BYTES`` (below, the copy is cheaper
    than the blocks' Python calls, and its memory negligible)."""
    return isinstance(X, np.ndarray) and X.dtype == np.float32 and X.ndim == 2 \
        and np.result_type(B) == np.float64 and 2 * X.nbytes > SMALL_COPY_BYTES


#: a float32 X whose float64 copy is at most this is copied whole by a product (x_dot,
#: xt_dot, column sums: :func:`_widened`) rather than taken by blocks of rows
SMALL_COPY_BYTES = 1 << 21

#: a float32 X whose float64 copy is at most this is converted to float64 by the
#: estimators for the closed form, FISTA and L-BFGS (not the working-set solver), as before
#: :class:`CenteredDense`: every product by blocks converts its rows again, which narrow
#: products (a few sub-tasks) pay most where X is small -- a 150 x 12 CV grid took 4x as
#: long, 1,000 x 300 and 2,000 x 300 logistic l21 fits 1.35-1.9x (reviews); level from
#: 6,000 x 300 on. Below 8 MB the copy is small in absolute terms.
CONVERT_BELOW_BYTES = 1 << 23


def _row_step64(X, block_bytes=1 << 22):
    """The rows of a block of :func:`_row_blocks64`."""
    return max(1, min(block_bytes, X.nbytes // 4) // (8 * max(X.shape[1], 1)))


def _row_blocks64(X, block_bytes=1 << 22):
    """(first row, float64 copy of the block) over blocks of X's rows of ~block_bytes, at
    most a quarter of X's own size."""
    step = _row_step64(X, block_bytes)
    for i in range(0, X.shape[0], step):
        yield i, np.asarray(X[i:i + step], dtype=np.float64)


class CenteredSparse:
    """X - 1 m^T for a sparse X, never formed: ``C @ W = X @ W - m^T W`` and
    ``C.T @ G = X^T G - m (1^T G)`` (1-D or 2-D right-hand sides), what the solvers need of
    their data matrix, so sparse data are solved in centred coordinates as dense data are."""

    def __init__(self, X, mean, transposed=False):
        self.X, self.mean, self.transposed = X, np.asarray(mean, dtype=np.float64), transposed
        self.dtype = X.dtype
        self.shape = X.shape[::-1] if transposed else X.shape

    @property
    def T(self):
        return CenteredSparse(self.X, self.mean, not self.transposed)

    def __matmul__(self, B):
        B = np.asarray(B)
        if self.transposed:  # (X - 1 m^T)^T B = X^T B - m (1^T B)
            return np.asarray(xt_dot(self.X, B)) - np.multiply.outer(self.mean, B.sum(axis=0))
        return np.asarray(x_dot(self.X, B)) - self.mean @ B

    def toarray(self):
        D = self.X.toarray() - self.mean
        return D.T if self.transposed else D


class CenteredDense:
    """X - 1 m^T in float64 for a dense NumPy X, never formed whole.

    float64 X: ``C @ W = X W - 1 (m^T W)`` and ``C.T @ G = X^T G - m (1^T G)``, products
    with X itself and a rank-one correction (as :class:`CenteredSparse`); the linear map
    folds it into the intercepts (:meth:`affine`). The centred copy the solvers made was
    one more X beside the caller's (a logistic fit on 20,000 x 20, T = 10: 2 of its 11.6
    (n, T) arrays). The correction loses the digits of the offset, |m_j| against the
    centred column's spread (the copy loses none): :func:`implicit_centring_ok` keeps the
    copy where that ratio is large.

    float32 X: ``C @ W`` and ``C.T @ G`` (1-D or 2-D right-hand sides) run over blocks of
    X's rows, each converted to float64 and centred -- the values of the centred float64
    copy the solvers used to make (twice the float32 X's size, beside it) without that
    copy.
    Blocks of ~2 MB in float64, cache-sized, converted and centred in one native pass
    (:func:`kernels.centred_rows`, 3 ms for 4,200 x 1,764 where NumPy's cast and
    subtraction took 5.8), into one reused buffer; X_c^T G summed as G^T X_c: each product
    then costs what the product with a float64 copy did (4,200 x 1,764, T = 12, one thread:
    10.3-10.8 ms against 10.9-13.6; 2,000 x 240, 500 x 5,000, 100,000 x 20 likewise), where
    NumPy blocks of 4 MB were 1.5x slower. A W whose non-zero rows are under half of its
    rows (L2,1 iterates) takes those columns only (an FISTA l21 fit on 4,200 x 1,764 HOG
    features: 7.0 -> 3.9 s, the copy's column gathers gone). ``astype(np.float32)``: the
    centred float32 copy the L-BFGS iterations run on."""

    block_bytes = 1 << 21

    def __init__(self, X, mean, transposed=False):
        self.X, self.mean, self.transposed = X, np.asarray(mean, dtype=np.float64), transposed
        self.dtype = np.dtype(np.float64)
        self.shape = X.shape[::-1] if transposed else X.shape
        self.ndim = 2
        n, d = X.shape
        # blocks of at most ~2 MB, a constant beside X (each block costs Python calls:
        # capped at an eighth of X's rows, 1,000 x 300 took 8 blocks and its logistic
        # FISTA fit was 1.6x slower; review)
        self._step = max(1, min(self.block_bytes // (8 * max(d, 1)), max(n, 1)))

    @property
    def T(self):
        return CenteredDense(self.X, self.mean, not self.transposed)

    def blocks(self, cols=None):
        """(first row, centred float64 block of rows), over X's rows (``cols``: those
        columns only): one buffer, refilled for each block by the native one-pass
        conversion (:func:`kernels.centred_rows`) -- use each block before the next."""
        from ..backend import kernels

        X = self.X
        mean = self.mean if cols is None else np.ascontiguousarray(self.mean[cols])
        native = X.dtype == np.float32 and X.flags.c_contiguous
        if native and cols is not None:
            cols = np.ascontiguousarray(cols, dtype=np.int64)
        width = X.shape[1] if cols is None else len(cols)
        rows = min(self._step, X.shape[0])
        # one buffer kept between products of this object (no 2 MB allocation each time;
        # no speed difference was measurable at 1,000 x 300)
        buf = self._buf if getattr(self, "_buf", None) is not None \
            and self._buf.size >= rows * width else np.empty(rows * max(width, 1))
        self._buf = None  # (taken: a product run meanwhile gets its own)
        buf = buf[:rows * width].reshape(rows, width)
        if native:  # the arguments checked once (raises as the kernel would), then the
            kernels.centred_rows(X, 0, mean, buf[:0], cols)  # native call per block
            convert = kernels.require_cpu().centred_rows
        for i in range(0, X.shape[0], self._step):
            B = buf[:min(self._step, X.shape[0] - i)]
            if native:
                convert(X, i, mean, B, cols)
            else:
                Xb = X[i:i + self._step]
                np.subtract(Xb if cols is None else Xb[:, cols], mean, out=B)
            yield i, B
        self._buf = buf.base if buf.base is not None else buf  # given back

    def affine(self, W, b):
        """X_c W + b (n, T): float64 X as X W + (b - m^T W), one pass over the product."""
        if self.transposed or self.X.dtype != np.float64:
            Z = self @ W
            Z += b
            return Z
        Z = _row_sparse_product(self.X, W)
        Z += b - self.mean @ W
        return Z

    def __matmul__(self, B):
        B = np.asarray(B)
        n, d = self.X.shape
        if self.X.dtype == np.float64:  # products with X and the rank-one correction
            if self.transposed:  # X^T B - m (1^T B)
                out = xt_dot(self.X, B) if B.ndim == 2 else self.X.T @ B
                if not (out.dtype == np.float64 and out.flags.writeable):
                    out = np.array(out, dtype=np.float64)
                out -= np.multiply.outer(self.mean, B.sum(axis=0))
                return out
            out = _row_sparse_product(self.X, B) if B.ndim == 2 else self.X @ B
            out = out if out.flags.writeable and out.dtype == np.float64 \
                else np.array(out, dtype=np.float64)
            out -= self.mean @ B
            return out
        if self.transposed:  # X_c^T B, summed as its transpose B^T X_c (one pass each)
            out = np.zeros(B.shape[1:] + (d,))
            with _block_threads(B, n, self._step):
                for i, Xb in self.blocks():
                    out += B[i:i + Xb.shape[0]].T @ Xb
            return np.ascontiguousarray(out.T)
        cols = None
        if B.ndim == 2 and B.shape[0] >= 8:  # row-sparse W: its non-zero rows only
            rows = np.flatnonzero(np.any(B != 0, axis=1))
            if 2 * rows.size < B.shape[0]:
                cols, B = rows, B[rows]
        out = np.empty((n,) + B.shape[1:], dtype=np.result_type(B.dtype, np.float64))
        with _block_threads(B, n, self._step):
            for i, Xb in self.blocks(cols):
                np.matmul(Xb, B, out=out[i:i + Xb.shape[0]])
        return out

    def fortran_product(self, B):
        """X_c B (n, k) in Fortran order (for LAPACK to overwrite; no C-ordered copy),
        B (d, k)."""
        B = np.asarray(B, dtype=np.float64)
        out = np.empty((B.shape[1], self.X.shape[0]))  # its transpose, C-ordered
        for i, Xb in self.blocks():
            np.matmul(B.T, Xb.T, out=out[:, i:i + Xb.shape[0]])
        return out.T

    def astype(self, dtype):
        out = np.empty(self.X.shape, dtype=dtype)
        for i, Xb in self.blocks():
            out[i:i + Xb.shape[0]] = Xb
        return out.T if self.transposed else out

    def toarray(self):
        return self.astype(np.float64)

    def weighted_squares(self, w):
        """sum_i w_i (x_ij - m_j)^2 (d,): the Jacobi preconditioner's diagonal."""
        out = np.zeros(self.X.shape[1])
        for i, Xb in self.blocks():
            out += np.einsum("ij,ij,i->j", Xb, Xb, w[i:i + Xb.shape[0]])
        return out


def implicit_centring_ok(X, mean, ratio=8.0, block_bytes=1 << 22):
    """Whether :class:`CenteredDense` may centre the float64 NumPy X implicitly: every
    |m_j| at most ``ratio`` times the root mean square of the centred column j (one
    pass over X by blocks of rows). Its products then lose at most log10(1 + ratio)
    digits to the offset's cancellation; a larger offset (a feature in units of 1e8 about
    its mean) keeps the explicit copy."""
    n, d = X.shape
    step = max(1, block_bytes // (8 * max(d, 1)))
    sq = np.zeros(d)
    for i in range(0, n, step):
        R = X[i:i + step] - mean
        sq += np.einsum("ij,ij->j", R, R)
    rms = np.sqrt(sq / max(n, 1))
    return bool(np.all(np.abs(mean) <= ratio * rms))


def weighted_column_sums(X, w):
    """w^T X (k, d) for weights w (n, k) (or (n,): then (d,)): float32 NumPy X by blocks
    of rows converted to float64 (NumPy's mixed product converts the whole X first: a
    float64 copy, twice its size); other X as w^T X."""
    if not _widened(X, w):
        return (X.T @ w).T
    out = np.zeros(w.shape[1:] + (X.shape[1],))
    with _block_threads(w, X.shape[0], _row_step64(X)):
        for i, Xb in _row_blocks64(X):
            out += w[i:i + Xb.shape[0]].T @ Xb
    return out


def column_mean(X, sw=None):
    """The (sample-weighted) column means of X in float64: X's plain means (float32 X
    summed in float64 by blocks of rows), or sw^T X / sum(sw)."""
    if sw is not None:
        return weighted_column_sums(X, sw) / sw.sum()
    if _widened(X, np.zeros(1)):
        return weighted_column_sums(X, np.ones(X.shape[0])) / X.shape[0]
    return np.asarray(X.mean(axis=0, dtype=np.float64)).ravel()


def _debug_steps_default():
    return os.environ.get("MTLCLASSIC_CHECK_STEPS", "") not in ("", "0")


#: Debug check of the step rule: when true (or the environment variable
#: MTLCLASSIC_CHECK_STEPS=1 at import), FISTA computes the exact Lipschitz bound of its
#: smooth part (a dense eigendecomposition: small problems only) and raises an
#: AssertionError if it ever accepts a step above 2 / L, the step beyond which a gradient
#: step on a quadratic diverges.
CHECK_STEPS = _debug_steps_default()

#: Lanczos steps of each refresh of the local Lipschitz estimate (logistic and softmax
#: losses, every 20 to REFRESH_MAX FISTA iterations; :meth:`DataOracle._lanczos`) from the
#: last refresh's vectors, where their basis is small beside X (:func:`_lanczos_pays`);
#: elsewhere, and with 0, the 10 power rounds of before (the first estimate always runs 40
#: power rounds from a random start). Why 7 (products; the power rounds took 10): from
#: start vectors made nearly orthogonal to the top eigenvector (components 1e-8 to 1e-1;
#: 200 random problems, 2 sub-tasks each) 7 steps ended below half the top eigenvalue in
#: 3.8 % of the cases, 10 power rounds in 7.2 %, 5 and 6 steps in 12.5 % and 7.5 %; along
#: 3,600 refreshes of random logistic fits (warm starts included) 5 steps already matched
#: the power rounds' lowest ratio to the top eigenvalue (0.87-0.98).
LANCZOS_STEPS = 7

#: FISTA's refreshes of the local Lipschitz estimate (logistic and softmax losses): the
#: first after REFRESH_EVERY iterations, then at intervals that double up to REFRESH_MAX
#: while the estimate moves by under 1 % and no step is rejected (REFRESH_MAX =
#: REFRESH_EVERY: the fixed interval of before, but for a refresh that falls on an
#: iteration that restarts the momentum: it comes at the next one, where it was skipped)
REFRESH_EVERY, REFRESH_MAX = 20, 80


def _lanczos_pays(X, T):
    """Whether a refresh runs Lanczos steps rather than 10 power rounds: where the basis's
    LANCZOS_STEPS vectors ((d + 1, T) float64 each) take at most a quarter of X's data
    bytes. Wider (d T large beside X's data: sparse or short X with many features) the
    basis's memory and the Gram-Schmidt work on it outgrow the products (a review: 2,000 x
    100,000 CSR with T = 20, a refresh 774 ms and 550 MB against 344 ms and 62 MB for the
    power rounds); there the power rounds stay."""
    basis = 8 * max(LANCZOS_STEPS, 2) * (X.shape[1] + 1) * T
    return 4 * basis <= _data_bytes(X)


def _scaled_norm(v, xp, axis=None):
    """||v||_2 (along ``axis``) as max|v| * ||v / max|v|||: no overflow of the squares for
    entries above sqrt(max float) (X of magnitude 1e80 gives power-iteration vectors of
    1e160 and more, whose squares overflow to inf; the plain norm then made the estimate
    0 and FISTA's step 1/0); a float64 result."""
    top = xp.max(xp.abs(v), axis=axis, keepdims=axis is not None)
    top = xp.where(top > 0, top, 1.0).astype(xp.float64)
    w = v / top
    return (top * xp.sqrt(xp.sum(w * w, axis=axis, keepdims=axis is not None,
                                 dtype=xp.float64))).reshape(-1) if axis is not None \
        else float(top) * math.sqrt(float(xp.sum(w * w, dtype=xp.float64)))


def _positive(L):
    """A Lipschitz bound usable as a step's inverse: L, or 1 where it is 0 (no curvature:
    every step passes the sufficient-decrease test) or not finite."""
    return L if L > 0 and math.isfinite(L) else 1.0


def lipschitz_estimate(X, A, Q, curvature, fit_intercept, n_power=40, seed=0):
    """Estimate of the Lipschitz constant of the smooth part's gradient:
    curvature * lambda_max([X 1]^T diag(max_t A_it) [X 1]) + lambda_max(Q) (curvature: 1
    for squared, 1/4 for logistic loss; an array of one per column replaces it by
    max_t c_t A_it; the data term's Hessian is below curvature * that
    matrix for every sub-task, so the sum bounds the true constant), by ``n_power`` power
    iterations from a random start times 1.05.

    The power-iteration value ||M v|| (v of unit norm) never exceeds lambda_max; it falls
    below lambda_max / 2 only with probability of order sqrt(d) 2^-n_power (Kuczynski &
    Wozniakowski, SIAM J. Matrix Anal. Appl. 1992), negligible for n_power = 40. FISTA
    never lets its step grow beyond 1 / (this estimate), so no accepted step exceeds 2 / L
    (the divergence threshold of a gradient step on a quadratic)."""
    xp = get_namespace(X)
    if np.ndim(curvature):  # one bound per column (a model of mixed task types)
        w = (A * xp.asarray(curvature, dtype=A.dtype)).max(axis=1)
        curvature = 1.0
    else:
        w = A.max(axis=1)
    rng = np.random.default_rng(seed)
    v = xp.asarray(rng.standard_normal(X.shape[1]), dtype=X.dtype)
    v0 = float(rng.standard_normal()) if fit_intercept else 0.0
    lam = 0.0
    for _ in range(n_power):
        nv = math.hypot(_scaled_norm(v, xp), v0)
        if nv == 0 or not math.isfinite(nv):
            break
        v, v0 = v / nv, v0 / nv
        wu = w * (X @ v + v0)
        v = X.T @ wu
        v0 = float(wu.sum()) if fit_intercept else 0.0
        lam = math.hypot(_scaled_norm(v, xp), v0)
    return curvature * lam * 1.05 + _qmax(Q)



def quadratic_dual_floor(X, Y, A, W, b, Q, fit_intercept):
    """The rounding floor of the duality gap of a quadratic penalty 1/2 tr(W Q W^T) with
    squared loss: the residual Z - Y is rounded by about eps (||Y|| + sqrt(d) || |X| |W| ||
    + sqrt(n) ||b||) (Frobenius norms; the rounding of Z = X W + b), G = A (Z - Y) by A's
    largest entry times that, and the conjugate 1/2 tr(V Q^-1 V^T) at V = X^T G by up to
    1/2 lambda_max(X_c^T diag(a) X_c) max(a) ||dZ||^2 / lambda_min(Q) (a = max_t A_it;
    second order in dZ, but 1 / lambda_min(Q) is huge where the penalty is negligible
    against X^T X: X in units 1e12 and more, an alpha near 0). Below it a gap cannot be
    told from rounding; 0 where Q is singular (no finite dual then). Costs 20 power
    iterations with X: computed only where the gap is above tol."""
    lam_q = float(np.linalg.eigvalsh(to_numpy(Q)).min()) if np.size(Q) else 0.0
    if not lam_q > 0:
        return 0.0
    eps = float(np.finfo(np.float64).eps)
    n, d = X.shape
    absW = np.abs(np.asarray(W, dtype=np.float64))
    if scipy.sparse.issparse(X):
        xw = _scaled_norm(np.ravel(abs(X) @ absW), np)
    else:  # || |X| |W| ||_F by blocks of rows (no |X| copy)
        step = max(1, -(-n // 8))
        xw = math.sqrt(sum(_scaled_norm(np.abs(X[i:i + step]) @ absW, np) ** 2
                           for i in range(0, n, step)))
    dz = eps * (_scaled_norm(np.asarray(Y, dtype=np.float64).ravel(), np)
                + math.sqrt(d) * xw + math.sqrt(n) * _scaled_norm(np.ravel(b), np))
    mean = column_mean(X) if fit_intercept else np.zeros(d)
    lam_x = lipschitz_estimate(CenteredSparse(X, mean), A, np.zeros((1, 1)), 1.0, False,
                               n_power=20)
    return 0.5 * lam_x * float(np.max(A)) * dz * dz / lam_q


def _qmax(Q):
    Q = to_numpy(Q)
    return max(float(np.linalg.eigvalsh(Q).max()), 0.0) if Q.size else 0.0


def objective(X, Y, A, loss, Q, penalty, alpha, W, b):
    Z = X @ W + b
    lv, _ = loss(Z, Y, A)
    xp = get_namespace(W)
    return lv + 0.5 * float(xp.sum((W @ Q) * W)) + penalty.value(W, alpha)


def _blocked_products(G, H, col_scale, shift=None, block=1 << 17, h_shift=None):
    """sum_it G_it H_it col_scale_t (with ``shift``: (G - shift)_it (H - shift)_it; with
    ``h_shift``: G_it (H - h_shift)_it) over row blocks of ``block`` entries, each block's
    products summed pairwise as by ``np.sum``: no (n, T) temporary."""
    step = max(1, block // max(G.shape[1], 1))
    total = 0.0
    for i in range(0, G.shape[0], step):
        if shift is None and h_shift is None:
            P = G[i:i + step] * H[i:i + step]
        elif shift is None:
            P = H[i:i + step] - h_shift
            P *= G[i:i + step]
        else:
            P = G[i:i + step] - shift
            P *= H[i:i + step] - shift
        P *= col_scale
        total += float(np.sum(P))
    return total


def _part_sums(G, block=1 << 17):
    """(sum of the positive parts, sum of the negative parts' magnitudes) of each column of
    the NumPy array G (n, T), by blocks of ``block`` entries of rows: (T,) temporaries
    only (the logistic dual point's scaling; tall X with many tasks: its (n, T) arrays,
    not X, set the fit's peak memory)."""
    T = G.shape[1]
    sp, sn = np.zeros(T), np.zeros(T)
    step = max(1, block // max(T, 1))
    for i in range(0, G.shape[0], step):
        Gb = G[i:i + step]
        sp += np.maximum(Gb, 0.0).sum(axis=0)
        sn -= np.minimum(Gb, 0.0).sum(axis=0)  # (not sp - sum G: it cancels)
    return sp, sn


def _sum(x):
    """A float64 sum (float32 device arrays are accumulated in float64)."""
    return float(get_namespace(x).sum(x, dtype=np.float64))


def _entropy_terms(p, xp):
    """p log p + (1 - p) log(1 - p) elementwise, 0 log 0 = 0."""
    q = 1.0 - p
    return (xp.where(p > 0, p * xp.log(xp.where(p > 0, p, 1.0)), 0.0)
            + xp.where(q > 0, q * xp.log(xp.where(q > 0, q, 1.0)), 0.0))


def _one_row(A):
    """Whether the NumPy array A is a broadcast of one row (stride 0 over its rows)."""
    return isinstance(A, np.ndarray) and A.ndim == 2 and A.shape[0] > 1 and A.strides[0] == 0


class DataOracle:
    """Smooth part on the data: the linear map is Z = X W + b (one GEMM), the loss is
    evaluated on Z and the gradient is X^T G (the second GEMM) plus W Q. ``kind``
    ("squared" or "logistic") is the loss of the columns; ``group`` (the layout of
    ``loss.h``) marks softmax tasks (K >= 2, then K - 1 zeros) and, in a model of mixed
    task types, squared-loss columns (-1) among logistic ones. The duality gap sums each
    column's (or softmax task's) loss conjugate. ``self.kind`` is "squared", "logistic"
    (no squared column) or "mixed"."""

    curvature = {"squared": 1.0, "logistic": 0.25}  # softmax tasks: 1/2 (see group)
    offset = 0.0  # f is a sum of non-negative terms: its rounding is relative to |f|
    check_every = 5  # FISTA's duality-gap period: the gap costs one GEMM (X^T G) here

    def __init__(self, X, Y, A, loss, Q, fit_intercept, kind="squared", group=None):
        self.X, self.Y, self.A, self.loss, self.Q = X, Y, A, loss, Q
        self.fit_intercept = fit_intercept
        if kind not in self.curvature:
            raise ValueError(f"kind must be 'squared' or 'logistic', got {kind!r}")
        xp = get_namespace(X)
        # A a read-only broadcast of one row (every row's weights alike): so is labelled
        # (an (n, T) bool array otherwise)
        self.labelled = np.broadcast_to(A[:1] > 0, A.shape) if _one_row(A) else A > 0
        self.all_labelled = bool(xp.all(self.labelled))
        # A_safe (A, 1 where unlabelled): made on first use (a property), not by a fit that
        # takes the loss by blocks of rows (_RowBlockedLoss), where it was X's size with
        # many sub-tasks and labels missing
        self._A_safe = A if self.all_labelled else None
        # A's row when every row is that one (unit or no sample weights, every label
        # present): the squared dual's sums then come from T x T products, no temporary
        self._a_row = A[0] if self.all_labelled and A.shape[0] and (
            _one_row(A) or bool(xp.all(A == A[0]))) else None
        self._XtA = None
        # softmax tasks (group layout of _losses.softmax_groups): (first column, K) each
        n_cols = Y.shape[1]
        g = np.ones(n_cols, dtype=int) if group is None else np.asarray(to_numpy(group))
        self.softmax = [(int(j), int(g[j])) for j in np.flatnonzero(g >= 2)]
        sq = np.full(n_cols, kind == "squared") | (g == -1)  # squared-loss columns
        single = np.ones(n_cols, dtype=bool)
        for j, K in self.softmax:
            single[j:j + K] = False
        self._col_curv = np.where(sq, 1.0, np.where(single, 0.25, 0.5))
        self.kind = "squared" if sq.all() else ("logistic" if not sq.any() else "mixed")
        if self.kind != "squared":
            # the element-wise logistic columns, and (mixed) the squared ones
            self.single = xp.asarray(single & ~sq)
            self.sq = xp.asarray(sq) if self.kind == "mixed" else None

    @property
    def A_safe(self):
        """A with 1 where unlabelled (a safe divisor)."""
        if self._A_safe is None:
            self._A_safe = get_namespace(self.A).where(self.labelled, self.A, 1.0)
        return self._A_safe

    def linear(self, W, b):
        if isinstance(self.X, CenteredDense):  # (the correction folded into b)
            return self.X.affine(W, b)
        Z = _row_sparse_product(self.X, W)
        if _writable(Z, b):
            Z += b  # in place: no second (n, T) array
            return Z
        return Z + b

    def value(self, W, b, lin):
        lv, G = self.loss(lin, self.Y, self.A)
        WQ = W @ self.Q
        xp = get_namespace(W)
        return lv + 0.5 * float(xp.sum(WQ * W)), (G, WQ)

    def grad(self, W, b, lin, aux):
        G, WQ = aux
        gb = G.sum(axis=0) if self.fit_intercept else get_namespace(b).zeros_like(b)
        return xt_dot(self.X, G) + WQ, gb

    def grad_at_zero_norm(self):
        xp = get_namespace(self.X)
        _, G0 = self.loss(xp.zeros(self.Y.shape, dtype=self.A.dtype), self.Y, self.A)
        g0b = _sum(G0.sum(axis=0) ** 2) if self.fit_intercept else 0.0
        return math.sqrt(_sum(xt_dot(self.X, G0) ** 2) + g0b)

    def null_objective(self):
        """min over b of F(0, b) (b = 0 when the intercepts are not free variables): the
        scale of ``tol``."""
        xp = get_namespace(self.X)
        if self.kind == "squared" and self._a_row is not None \
                and isinstance(self.Y, np.ndarray):
            # every label present, A's rows alike: by row blocks, no (n, T) temporary
            mean = self.Y.mean(axis=0) if self.fit_intercept else 0.0
            return 0.5 * _blocked_products(self.Y, self.Y, self._a_row, shift=mean)
        if self.kind == "squared" and isinstance(self.Y, np.ndarray) \
                and isinstance(self.A, np.ndarray):
            return self._null_squared_blocks()
        if self.kind == "logistic" and isinstance(self.Y, np.ndarray) \
                and isinstance(self.A, np.ndarray):
            # the element-wise columns' counts by row blocks: no (n, T) temporaries (three
            # were the peak of a logistic fit on tall X with many tasks)
            out = self._null_logistic_blocks()
            A, Y = self.A, self.Y
        else:
            A, Y = self.A, xp.where(self.labelled, self.Y, 0.0)
            if self.kind == "squared":
                return self._null_squared(A, Y, xp)
            out = 0.0
            if self.kind == "mixed":
                out = self._null_squared(xp.where(self.sq, A, 0.0), Y, xp)
            # logistic columns as below, a softmax task per group
            out += self._null_logistic(xp.where(self.single, A, 0.0), Y, xp)
        if self.softmax:
            for j, K in self.softmax:
                a = A[:, j]
                if not self.fit_intercept:
                    out += math.log(K) * _sum(a)
                    continue
                n_c = _sum_cols(xp.where(Y[:, j:j + K] > 0, a[:, None], 0.0))
                tot = float(_sum(n_c))
                if tot > 0:
                    f = n_c / tot
                    out -= float(_sum(xp.where(f > 0, n_c * xp.log(xp.where(f > 0, f, 1.0)),
                                               0.0)))
        return out

    def _null_squared_blocks(self, block=1 << 17):
        """:meth:`_null_squared` of NumPy arrays by blocks of ``block`` entries of rows: (T,)
        temporaries only (with weights or missing labels it made three (n, T) ones, the
        peak of a weighted fit on tall X)."""
        A, Y, lab = self.A, self.Y, self.labelled
        n, T = Y.shape
        step = max(1, block // max(T, 1))

        def targets(i):  # the block's targets, 0 where unlabelled (NaN-free)
            Yb = Y[i:i + step]
            return Yb if self.all_labelled else np.where(lab[i:i + step], Yb, 0.0)

        mean = 0.0
        if self.fit_intercept:
            s, w = np.zeros(T), np.zeros(T)
            for i in range(0, n, step):
                Ab = A[i:i + step]
                s += (Ab * targets(i)).sum(axis=0)
                w += Ab.sum(axis=0)
            mean = s / np.where(w > 0, w, 1.0)
        total = 0.0
        for i in range(0, n, step):
            R = targets(i) - mean
            R *= R
            R *= A[i:i + step]
            total += float(np.sum(R))
        return 0.5 * total

    def _null_squared(self, A, Y, xp):
        if self.fit_intercept:
            Y = Y - _sum_cols(A * Y) / xp.where(_sum_cols(A) > 0, _sum_cols(A), 1.0)
        return 0.5 * _sum(A * Y * Y)

    def _null_logistic_blocks(self, block=1 << 17):
        """:meth:`_null_logistic` of the element-wise logistic columns (``single``), the
        label weights summed by blocks of rows (NumPy Y and A; A is 0 where unlabelled)."""
        Y, A = self.Y, self.A
        T = Y.shape[1]
        single = np.asarray(self.single, dtype=bool)
        if not self.fit_intercept:
            return math.log(2.0) * float(np.sum(A[:, single])) if single.any() else 0.0
        P, N = np.zeros(T), np.zeros(T)
        step = max(1, block // max(T, 1))
        for i in range(0, Y.shape[0], step):
            Yb, Ab = Y[i:i + step], A[i:i + step]
            P += np.where(Yb > 0, Ab, 0.0).sum(axis=0)
            N += np.where(Yb < 0, Ab, 0.0).sum(axis=0)
        P, N = P[single], N[single]
        tot = P + N
        tot = np.where(tot > 0, tot, 1.0)
        return -_sum(_entropy_terms(P / tot, np) * tot)

    def _null_logistic(self, A, Y, xp):
        if not self.fit_intercept:
            return math.log(2.0) * _sum(A)
        P = _sum_cols(xp.where(Y > 0, A, 0.0))
        N = _sum_cols(xp.where(Y < 0, A, 0.0))
        tot = P + N
        tot = xp.where(tot > 0, tot, 1.0)
        return -_sum(_entropy_terms(P / tot, xp) * tot)

    def certificate_blocks(self, W, b):
        """Squared loss on NumPy or SciPy-sparse X: (f, X^T G, L*(s G) as a function of
        s) of :meth:`value` and :meth:`dual_point` at (W, b), summed by blocks of rows of
        X -- no (n, T) array (the closed form's certificate on tall X with many tasks held
        the predictions and the loss gradient: 2x X at T = d / 2). With R = Z - Y and
        G = A R on the labelled entries, the dual point G - A c (c = 1^T G / 1^T A per
        column, the intercepts' feasibility) has X^T (G - A c) = X^T G - (X^T A) c,
        sum (G - A c)^2 / A = sum G^2 / A - 2 c 1^T G + c^2 1^T A and sum (G - A c) y =
        sum G y - c 1^T (A y). None where not applicable (another loss or array type)."""
        blocks = _row_blocks_of(self.X, width=W.shape[1]) \
            if self.kind == "squared" and isinstance(self.Y, np.ndarray) \
            and isinstance(self.A, np.ndarray) and isinstance(W, np.ndarray) else None
        if blocks is None:
            return None
        d, T = W.shape
        f = 0.0
        XtG, XtA, xsum = np.zeros((d, T)), np.zeros((d, T)), np.zeros(d)
        sG, sGG, sGY, sA, sAY = (np.zeros(T) for _ in range(5))
        Wf = np.asarray(W, dtype=np.float64)
        # with free intercepts the sums G y and A y are taken of y less its weighted mean
        # mu (the feasible G - A c has column sums 0: sum (G - A c) y = sum (G - A c) (y -
        # mu))
        mu = self._target_means() if self.fit_intercept else None  # (_target_means)
        # a row-sparse W (L2,1 iterates): its non-zero rows' columns of each block only
        nz = _nonzero_rows(Wf)
        centre = None
        for i, Xb, mean in blocks():
            Z = Xb @ Wf if nz is None else Xb[:, nz] @ Wf[nz]
            Z = Z if Z.dtype == np.float64 and Z.flags.writeable else np.array(Z, np.float64)
            Z += b if mean is None else b - mean @ Wf
            rows = slice(i, i + Z.shape[0])
            Ab, Yb = self.A[rows], self.Y[rows]
            if not self.all_labelled:
                Yb = np.where(self.labelled[rows], Yb, 0.0)
            Z -= Yb  # R
            G = Ab * Z
            f += 0.5 * float(np.sum(G * Z))
            XtG += np.asarray(Xb.T @ G) if scipy.sparse.issparse(Xb) else (G.T @ Xb).T
            sG += G.sum(axis=0)
            if mu is not None:  # (the targets less their mean: see above)
                Yb = Yb - mu
            sGY += (G * Yb).sum(axis=0)
            G *= G
            G /= self.A_safe[rows]
            sGG += G.sum(axis=0)
            if self.fit_intercept:
                if self._a_row is not None:  # X^T A = (X^T 1) a: column sums, no product
                    xsum += np.asarray(Xb.sum(axis=0, dtype=np.float64)).ravel()
                else:
                    XtA += np.asarray(Xb.T @ Ab) if scipy.sparse.issparse(Xb) \
                        else (Ab.T @ Xb).T
                sA += Ab.sum(axis=0)
                sAY += (Ab * Yb).sum(axis=0)
            centre = mean
        if self.fit_intercept and self._a_row is not None:
            XtA = np.multiply.outer(xsum, np.asarray(self._a_row, dtype=np.float64))
        if centre is not None:  # (X - 1 m^T)^T B = X^T B - m 1^T B
            XtG -= np.multiply.outer(centre, sG)
            XtA = XtA - np.multiply.outer(centre, sA)
        q, lin_term = 0.5 * sGG, sGY
        if self.fit_intercept:
            c = sG / np.where(sA > 0, sA, 1.0)
            XtG -= XtA * c
            q = 0.5 * (sGG - 2.0 * c * sG + c * c * sA)
            lin_term = sGY - c * sAY
        q, lin_term = float(np.sum(q)), float(np.sum(lin_term))
        f += 0.5 * float(np.sum((Wf @ self.Q) * Wf))
        return f, XtG, lambda s: s * s * q + s * lin_term

    def _target_means(self, block=1 << 17):
        """Each column's weighted mean of its labelled targets, sum A y / sum A (0 where
        no weight), by blocks of rows; kept. With free intercepts the feasible dual point
        G has column sums 0, so its conjugate's sum G y is taken as sum G (y - mean):
        of targets offset by 1e8 the products G y were 1e8x the sum they make, and their
        rounding (7e-8 of the conjugate) outweighed the gap -- a negative gap."""
        if getattr(self, "_y_means", None) is None:
            xp = get_namespace(self.Y)
            n, T = self.Y.shape
            s, w = xp.zeros(T), xp.zeros(T)
            step = max(1, block // max(T, 1))
            for i in range(0, n, step):
                Yb, Ab = self.Y[i:i + step], self.A[i:i + step]
                if not self.all_labelled:
                    Yb = xp.where(self.labelled[i:i + step], Yb, 0.0)
                s += (Ab * Yb).sum(axis=0)
                w += Ab.sum(axis=0)
            self._y_means = s / xp.where(w > 0, w, 1.0)
        return self._y_means

    def dual_point(self, W, b, lin, aux, overwrite=False):
        """(X^T G, L*(s G) as a function of s) for the dual point G: the loss gradient
        dL/dZ at (W, b), made feasible for the free intercepts (columns summing to 0): for
        squared loss by subtracting A_t times a constant per column, for logistic loss
        (whose conjugate lives on a box) by shrinking the larger of the column's positive
        and negative parts, for a softmax task as in :meth:`_softmax_dual`. L* is the sum
        of the columns' (tasks') conjugates. ``overwrite``: the caller is done with
        ``aux``; the feasible G of squared or logistic loss (and, logistic, the
        probabilities the conjugate takes) may then be made in its G's place."""
        G = aux[0]
        xp = get_namespace(G)
        if self.fit_intercept:
            Gs = Gl = G
            if self.kind != "logistic":
                c = G.sum(axis=0) / xp.where(_sum_cols(self.A) > 0, _sum_cols(self.A), 1.0)
                if overwrite and self.kind == "squared":
                    Gs = G
                    Gs -= self.A * c if self._a_row is None else self._a_row * c
                else:
                    Gs = self.A * c
                    Gs = xp.subtract(G, Gs, out=Gs)  # G - A c (one (n, T) array)
            if self.kind != "squared":
                if xp is np:  # the sums by blocks of rows: no (n, T) temporaries
                    sp, sn = _part_sums(G)
                else:
                    sp = xp.maximum(G, 0.0).sum(axis=0)
                    sn = -xp.minimum(G, 0.0).sum(axis=0)
                ap = xp.where(sp > sn, sn / xp.where(sp > 0, sp, 1.0), 1.0)
                an = xp.where(sn > sp, sp / xp.where(sn > 0, sn, 1.0), 1.0)
                if overwrite and self.kind == "logistic" and not self.softmax \
                        and xp is np and G.flags.writeable:
                    # in G's place, by blocks of rows: no (n, T) array (a softmax task's
                    # dual point is made from the unscaled G below)
                    step = max(1, (1 << 16) // max(G.shape[1], 1))
                    for i in range(0, G.shape[0], step):
                        Gb = G[i:i + step]
                        Gb *= np.where(Gb > 0, ap, an)
                    Gl = G
                else:  # each entry scaled by its sign's factor: one (n, T) array
                    Gl = xp.where(G > 0, ap, an)
                    Gl *= G
            G = Gs if self.kind == "squared" else (
                Gl if self.kind == "logistic" else xp.where(self.sq, Gs, Gl))
        if self.kind == "squared":
            XtG = xt_dot(self.X, G)
            # one (n, T) temporary for both sums (tall X with many tasks: these arrays,
            # not X, set the fit's peak memory)
            # (free intercepts: sum G y as sum G (y - mean), see _target_means)
            mu = self._target_means() if self.fit_intercept else None
            if self._a_row is not None and isinstance(G, np.ndarray):
                # sum G^2 / a and sum G y a block of rows at a time, without an (n, T)
                # temporary (tall X with many tasks: these arrays, not X, set the peak)
                q = 0.5 * _blocked_products(G, G, 1.0 / self._a_row)
                lin_term = _blocked_products(G, self.Y, 1.0, h_shift=mu)
                return XtG, lambda s: s * s * q + s * lin_term
            tmp = xp.multiply(G, G)
            tmp /= self.A_safe
            q = 0.5 * _sum(tmp)
            if mu is None:
                tmp = xp.multiply(G, self.Y, out=tmp)
            else:
                tmp = xp.subtract(self.Y, mu, out=tmp)
                tmp *= G
            if not self.all_labelled:
                tmp = xp.where(self.labelled, tmp, 0.0)
            lin_term = _sum(tmp)
            del tmp
            return XtG, lambda s: s * s * q + s * lin_term
        q = lin_term = 0.0
        if self.kind == "mixed":  # the squared columns' conjugate: 1/2 G^2 / A + G y
            sq_lab = self.labelled & self.sq
            q = 0.5 * _sum(xp.where(self.sq, G * G / self.A_safe, 0.0))
            Yc = self.Y - self._target_means() if self.fit_intercept else self.Y
            lin_term = _sum(xp.where(sq_lab, G * Yc, 0.0))
        # logistic columns: G = -A y p with p in [0, 1]: L*(G) = sum A (p log p + (1 - p)
        # log(1 - p))
        Gf = G  # the columns made feasible above (the logistic ones' p comes from them)
        parts = [self._softmax_dual(aux[0], j, K, xp) for j, K in self.softmax]
        if parts:  # softmax tasks: their columns of G replaced by a feasible softmax dual point
            G = xp.array(G)  # the other columns as made feasible above
            for (j, K), (Gg, _, _) in zip(self.softmax, parts):
                G[:, j:j + K] = Gg
        XtG = xt_dot(self.X, G)
        if xp is np:  # the same values in one (n, T) array (tall X with many tasks: these
            # arrays, not X, set the fit's peak memory): in G's place when G is this
            # call's own (the feasible point made above, done with once X^T G is taken)
            mine = G is Gf and (G is not aux[0] or (overwrite and not self.softmax)) \
                and self.kind == "logistic" and G.flags.writeable
            p = np.multiply(Gf, self.Y, out=G if mine else None)
            del G
            np.negative(p, out=p)
            p /= self.A_safe
            np.clip(p, 0.0, 1.0, out=p)
            if not self.all_labelled:
                p[~self.labelled] = 0.0
            A1 = self.A if bool(np.all(self.single)) else np.where(self.single, self.A, 0.0)
        else:
            p = xp.clip(-Gf * self.Y / self.A_safe, 0.0, 1.0)
            p = xp.where(self.labelled, p, 0.0)
            A1 = xp.where(self.single, self.A, 0.0)
        # the closure holds these (n, T) arrays only, never the oracle: on Dask blocks it
        # is kept on the workers between duality-gap checks, where a reference to X would
        # pin every block's X in memory (spilling them could then free nothing)
        onehots = [(qg, a, self._onehot(qg, a, Gg)) for Gg, qg, a in parts]

        def entropies(s):  # sum A1 (sp log sp + (1 - sp) log(1 - sp))
            if xp is not np:
                return _sum(A1 * _entropy_terms(s * p, xp))
            # by blocks of 2^14 entries of rows: no (n, T) temporaries (_entropy_terms
            # makes eight of the block's size: blocks of 2^16 were 1.7 (n, T) arrays at
            # the peak of a fit with 100 sub-tasks on 3,000 rows)
            step = max(1, (1 << 14) // max(p.shape[1], 1))
            return sum(_sum(A1[i:i + step] * _entropy_terms(s * p[i:i + step], np))
                       for i in range(0, p.shape[0], step))

        def lstar(s):
            out = s * s * q + s * lin_term + entropies(s)
            for qg, a, e in onehots:  # s G = a (q_s - e_k), q_s = s q + (1 - s) e_k
                qs = s * qg + (1.0 - s) * e
                out += _sum(a[:, None] * xp.where(qs > 0, qs * xp.log(xp.where(qs > 0, qs, 1.0)),
                                                  0.0))
            return out

        return XtG, lstar

    def _onehot(self, q, a, Gg):
        """e_k of each row, recovered from G = a (q - e_k)."""
        xp = get_namespace(q)
        safe = xp.where(a > 0, a, 1.0)[:, None]
        return xp.where(a[:, None] > 0, q - Gg / safe, 0.0)

    def _softmax_dual(self, G, j, K, xp):
        """A dual point of softmax task (columns j..j+K-1): G = a (q - e_k) with every q in
        the simplex and, for free intercepts, every column summing to 0. From the gradient's
        q = p (softmax of the scores): q + delta (delta shared by the rows, so that the
        class masses match, rows still summing to 1), mixed with the class frequencies pi
        by the smallest theta >= 0 that keeps q >= 0 -- exact feasibility, and q = p at the
        optimum (delta = 0). Returns (G_group, q, a)."""
        a = xp.where(self.labelled[:, j], self.A[:, j], 0.0)
        safe = xp.where(a > 0, a, 1.0)[:, None]
        onehot = xp.where((self.Y[:, j:j + K] > 0) & (a[:, None] > 0), 1.0, 0.0)
        q = xp.where(a[:, None] > 0, G[:, j:j + K] / safe + onehot, 0.0)
        if self.fit_intercept:
            tot = float(_sum(a))
            n_c = _sum_cols(a[:, None] * onehot)
            pi = n_c / (tot if tot > 0 else 1.0)
            delta = (n_c - _sum_cols(a[:, None] * q)) / (tot if tot > 0 else 1.0)
            base = q + delta
            need = xp.where(base < 0, -base / xp.where(pi - base > 0, pi - base, 1.0), 0.0)
            need = xp.where(a[:, None] > 0, need, 0.0)
            theta = min(1.0, float(xp.max(need))) if need.size else 0.0
            q = xp.where(a[:, None] > 0, (1.0 - theta) * base + theta * pi, 0.0)
            q = xp.clip(q, 0.0, 1.0)
        return a[:, None] * (q - onehot), q, a

    def _curvature_weights(self, lin):
        """A_it l''(z_it) (n, T): sub-task t's data Hessian is [X 1]^T diag(column t)
        [X 1] (logistic: l'' = p (1 - p) <= 1/4; squared: 1)."""
        if self.kind == "squared":
            return self.A
        xp = get_namespace(lin)
        if not self.softmax:
            # p (1 - p) = 1 / (2 + 2 cosh z), in one (n, T) array (p and 1 - p took two:
            # the peak of a logistic fit on tall X with many tasks, where these arrays, not
            # X, set the memory)
            Wt = xp.clip(lin, -500.0, 500.0)
            xp.cosh(Wt, out=Wt)
            Wt *= 2.0
            Wt += 2.0
            xp.divide(1.0, Wt, out=Wt)
            if _writable(Wt, self.A):
                Wt *= self.A
            else:
                Wt = self.A * Wt
            return Wt if self.kind == "logistic" else xp.where(self.sq, self.A, Wt)
        # p = 1 / (1 + exp(-z)) in one array
        p = xp.clip(lin, -500.0, 500.0)
        xp.negative(p, out=p)
        xp.exp(p, out=p)
        p += 1.0
        xp.divide(1.0, p, out=p)
        # a softmax task's Hessian a (diag(p) - p p^T) x x^T is below the block-diagonal
        # 2 a diag(p (1 - p)) x x^T (diagonally dominant difference), p its softmax
        factor = xp.ones(lin.shape[1], dtype=lin.dtype)
        for j, K in self.softmax:
            z = lin[:, j:j + K]
            e = xp.exp(z - z.max(axis=1, keepdims=True))
            p[:, j:j + K] = e / e.sum(axis=1, keepdims=True)
            factor[j:j + K] = 2.0
        Wt = self.A * (p * (1.0 - p)) * factor
        return Wt if self.kind == "logistic" else xp.where(self.sq, self.A, Wt)

    def local_lipschitz(self, lin, n_power=None):
        """Lipschitz estimate of the smooth part's gradient at the current point: the
        data Hessian is block-diagonal over sub-tasks, so its top eigenvalue is the
        largest of the T blocks' [X 1]^T diag(A_t l''(z_t)) [X 1], found on all blocks at
        once (two GEMMs per product with the blocks, like one gradient): first by 40 power
        rounds from a random start, then at each refresh by ``LANCZOS_STEPS`` Lanczos
        steps (:meth:`_lanczos`) from the last vectors; times 1.05, plus lambda_max(Q). For
        logistic loss the curvature p (1 - p) of confident predictions is far below its
        global bound 1/4, so the local constant is often far below the global one; FISTA
        refreshes it every 20 iterations (less often while it holds: ``REFRESH_MAX``) and
        lets its step grow up to its inverse, the backtracking test (exact up to rounding)
        guarding moves into more curved regions.
        For squared loss (constant curvature) it is computed once, with 40 rounds from a
        random start (see :func:`lipschitz_estimate` on the probability of an
        underestimate)."""
        if self.kind == "squared" and getattr(self, "_lip_sq", None) is not None:
            return self._lip_sq
        xp = get_namespace(lin)
        Wt = self._curvature_weights(lin)
        V = getattr(self, "_power_V", None)
        if V is None:
            rng = np.random.default_rng(1)
            V = xp.asarray(rng.standard_normal((self.X.shape[1] + 1, Wt.shape[1])),
                           dtype=self.X.dtype)
            n_power = 40 if n_power is None else n_power
        blocks = _row_blocks_of(self.X, width=Wt.shape[1]) if xp is np else None
        if n_power is None and LANCZOS_STEPS and _lanczos_pays(self.X, V.shape[1]):
            # a refresh: Lanczos from the last vectors
            lam, V = self._lanczos(V, Wt, blocks, LANCZOS_STEPS)
        else:
            lam = xp.zeros(Wt.shape[1], dtype=xp.float64)
            for _ in range(10 if n_power is None else n_power):
                nv = _scaled_norm(V, xp, axis=0).astype(V.dtype)
                V = self._hessian_product(V / xp.where(nv > 0, nv, 1.0), Wt, blocks)
                lam = _scaled_norm(V, xp, axis=0)
        self._power_V = V
        L = float(lam.max()) * 1.05 + _qmax(self.Q) if lam.size else _qmax(self.Q)
        if self.kind == "squared":
            self._lip_sq = L
        return L

    def _hessian_product(self, V, Wt, blocks):
        """[X 1]^T diag(Wt_t) [X 1] v_t for every column v_t of V ((d + 1, T)): one power
        round, by ``blocks`` of X's rows where given (:meth:`_power_round_blocks`)."""
        if blocks is not None:  # no (n, T) array beside Wt
            return self._power_round_blocks(blocks, V, Wt)
        xp = get_namespace(V)
        U = self.X @ V[:-1]
        if not _writable(U, Wt):
            U = U + 0.0
        if self.fit_intercept:
            U += V[-1]
        U *= Wt  # Wt (X v + v0), in one (n, T) array
        top = U.sum(axis=0, keepdims=True) if self.fit_intercept else 0.0 * V[-1:]
        return xp.concatenate([xt_dot(self.X, U), top], axis=0)

    def _lanczos(self, V, Wt, blocks, k):
        """The top Ritz value and vector of every sub-task's block H_t = [X 1]^T diag(Wt_t)
        [X 1] on the Krylov space span(v_t, H_t v_t, ..., H_t^(k-1) v_t), all T at once:
        k products with H (as k power rounds), an orthonormal basis by classical
        Gram-Schmidt done twice, and the Rayleigh-Ritz step on the k x k matrices Q_t^T H_t
        Q_t (Lanczos, with full reorthogonalisation: Golub & Van Loan, Matrix
        Computations, 4th ed., 10.1). The Ritz value is at least the power iteration's
        ||H v|| after k - 1 rounds from the same start (it is the best Rayleigh quotient on
        a space that holds H^(k-1) v, whose quotient is at least that norm), and converges
        much faster where the top eigenvalue is separated: from the last refresh's vector,
        3 steps matched the top eigenvalue to 1e-5 on the HOG logistic fits where 10 power
        rounds stopped 5e-4 below it. k is at least 2 (one step would return v itself, and
        every refresh the same quotient). Memory: the k basis vectors and 3-4 more (d + 1,
        T) arrays at the peak (the power rounds: about 4 in all; see
        :func:`_lanczos_pays`). Returns (the T Ritz values as a float64 array, the Ritz
        vectors (d + 1, T)); a sub-task whose matrix is not finite gets nan and keeps its
        vector."""
        xp = get_namespace(V)
        k = max(int(k), 2)
        T = V.shape[1]
        nv = _scaled_norm(V, xp, axis=0).astype(V.dtype)
        Q = [V / xp.where(nv > 0, nv, 1.0)]
        M = np.zeros((T, k, k))  # M_t = Q_t^T H_t Q_t, its upper triangle filled as it comes

        def dots(a, b):  # the T column products a_t . b_t, in float64 on the host
            return to_numpy(xp.einsum("dt,dt->t", a, b, dtype=xp.float64))

        for j in range(k):
            U = self._hessian_product(Q[j], Wt, blocks)  # H q_j
            for i in range(j + 1):
                M[:, i, j] = dots(Q[i], U)
            if j + 1 == k:
                break
            size = _scaled_norm(U, xp, axis=0)
            for _ in range(2):  # Gram-Schmidt twice: orthogonal to rounding
                for q in Q:
                    U -= xp.asarray(dots(q, U), dtype=U.dtype) * q
            nu = _scaled_norm(U, xp, axis=0)
            # a Krylov space already invariant (nu at rounding level of H q): a zero vector
            keep = xp.asarray(nu > 1e-12 * size, dtype=U.dtype)
            U /= xp.where(nu > 0, nu, 1.0).astype(U.dtype)
            U *= keep
            Q.append(U)
            U = None
        M = np.triu(M) + np.triu(M, 1).transpose(0, 2, 1)
        ok = np.isfinite(M).all(axis=(1, 2))
        M[~ok] = 0.0
        lam, Y = np.linalg.eigh(M)
        top = np.where(ok, lam[:, -1], np.nan)
        Y = xp.asarray(Y[:, :, -1].T, dtype=V.dtype)  # (k, T): each sub-task's combination
        R = Y[0] * Q[0]
        for i in range(1, k):
            R += Y[i] * Q[i]
        R = xp.where(xp.asarray(ok), R, V)
        return top, R

    def _power_round_blocks(self, blocks, V, Wt):
        """One power round [X 1]^T diag(Wt) [X 1] V of :meth:`local_lipschitz`, over
        ``blocks`` of X's rows (:func:`_row_blocks_of`): (n, T) products never formed."""
        d, T = self.X.shape[1], V.shape[1]
        out, top = np.zeros((d, T)), np.zeros(T)
        Vx = V[:-1]
        shift = None  # what each row of X v gains: the intercept's v0, less m^T v if centred
        for i, Xb, mean in blocks():
            if shift is None:  # (every block has the same mean)
                shift = (V[-1] if self.fit_intercept else 0.0) \
                    - (mean @ Vx if mean is not None else 0.0)
            U = (Vx.T @ Xb.T).T if _block_transposed_pays(Xb, Vx) else Xb @ Vx
            U = U if U.dtype == np.float64 and U.flags.writeable else np.array(U, np.float64)
            U += shift
            U *= Wt[i:i + U.shape[0]]
            out += np.asarray(Xb.T @ U) if scipy.sparse.issparse(Xb) else (U.T @ Xb).T
            s = U.sum(axis=0)
            if mean is not None:
                out -= np.multiply.outer(mean, s)
            top += s
        return np.concatenate([out, top[None] if self.fit_intercept else 0.0 * V[-1:]],
                              axis=0)

    def exact_lipschitz(self, lin=None):
        """The Lipschitz bound of lipschitz_estimate computed exactly (dense; debug use);
        with ``lin`` (logistic loss) the local one at that point."""
        X = self.X.toarray() if hasattr(self.X, "toarray") else \
            to_numpy(self.X).astype(np.float64)
        if self.fit_intercept:
            X = np.column_stack([X, np.ones(X.shape[0])])
        if lin is None:  # 1 (squared), 1/4 (logistic), 1/2 (softmax) per column
            Wt = self._col_curv * to_numpy(self.A).astype(np.float64)
        else:
            Wt = to_numpy(self._curvature_weights(lin)).astype(np.float64)
        top = max(float(np.linalg.eigvalsh((X.T * w) @ X).max()) for w in Wt.T)
        return top + _qmax(self.Q)


def _row_blocks_of(X, block_bytes=1 << 22, width=1, out_bytes=1 << 18):
    """A generator function over blocks of X's rows, (first row, block, mean): the
    block of X as stored (a view; CSR rows of sparse X) and the mean X is centred by
    (None: not centred), for NumPy, SciPy-sparse, :class:`CenteredDense` and
    :class:`CenteredSparse` X; None for other X (the caller takes X whole). float32
    CenteredDense blocks come converted and centred (mean None). Blocks of at most
    ``block_bytes`` of X and rows of ``out_bytes`` of a product of ``width`` columns."""
    if isinstance(X, CenteredDense):
        if X.transposed:
            return None
        if X.X.dtype != np.float64:
            return lambda: ((i, B, None) for i, B in X.blocks())
        inner, mean = X.X, X.mean
    elif isinstance(X, CenteredSparse):
        if X.transposed:
            return None
        inner, mean = X.X, X.mean
    elif isinstance(X, np.ndarray) or scipy.sparse.issparse(X):
        inner, mean = X, None
    else:
        return None
    if scipy.sparse.issparse(inner):
        inner = inner.tocsr()
        per_row = 12.0 * max(inner.nnz, 1) / max(inner.shape[0], 1)
    else:
        per_row = 8.0 * max(inner.shape[1], 1)
    step = max(1, int(min(block_bytes // per_row, out_bytes // (8 * max(width, 1)))))
    return lambda: ((i, inner[i:i + step], mean) for i in range(0, inner.shape[0], step))


def _nonzero_rows(W):
    """The indices of W's non-zero rows where at most half are (a row-sparse L2,1
    iterate: products over those rows' columns only), else None."""
    if W.shape[0] < 8:
        return None
    nz = np.flatnonzero(np.any(W != 0, axis=1))
    return nz if 2 * nz.size < W.shape[0] else None


def _row_sparse_product(M, W):
    """M @ W (:func:`x_dot`: float32 M by blocks of rows in float64); for NumPy arrays
    whose W has non-zero rows in under half of its rows (L2,1 and trace iterates are
    row-sparse), M[:, rows] @ W[rows]: the same product without the flops of the zero
    rows."""
    rows = _nonzero_rows(W) if isinstance(M, np.ndarray) and isinstance(W, np.ndarray) \
        else None
    return x_dot(M, W) if rows is None else x_dot(M[:, rows], W[rows])


def _sum_cols(M):
    return M.sum(axis=0)


class GramOracle:
    """Squared loss with every label present, in Gram form (for n >> d): on data centred
    with the sample weights, sum_t c_t (1/2 w_t^T K w_t - w_t^T h_t + 1/2 ||y_t||_S^2)
    with K = X^T S X, H = X^T S Y, c_t = rho_t / n. The linear map is K W (one d x d x T
    GEMM per iteration, independent of n); the intercept is recovered afterwards as
    b = mean(y) - mean(x) W, which is its optimum for any W, so the objective values are
    those of the full problem."""

    fit_intercept = False
    kind = "squared"
    check_every = 1  # the gap needs no GEMM in Gram form

    def __init__(self, X, Y, sw, rho, Q, fit_intercept):
        xp = get_namespace(X)
        n = sw.sum()
        if scipy.sparse.issparse(X):  # centred implicitly: X is never densified
            self.x_mean = np.asarray(X.T @ sw).ravel() / n if fit_intercept else \
                np.zeros(X.shape[1])
            self.y_mean = sw @ Y / n if fit_intercept else np.zeros(Y.shape[1])
            Y = Y - self.y_mean
            XS = X.T.multiply(sw[None, :]).tocsr()
            self.K = np.asarray((XS @ X).todense()) - n * np.outer(self.x_mean, self.x_mean)
            self.H = np.asarray(XS @ Y) - np.outer(self.x_mean, sw @ Y)
        else:
            if fit_intercept:
                self.x_mean = column_mean(X, sw) if isinstance(X, np.ndarray) else sw @ X / n
                self.y_mean = sw @ Y / n
            else:
                self.x_mean = xp.zeros(X.shape[1], dtype=X.dtype)
                self.y_mean = xp.zeros(Y.shape[1], dtype=X.dtype)
            if isinstance(X, np.ndarray):  # by row blocks: no centred or weighted copy
                self.K, self.H, yy = centred_moments(X, Y, sw, self.x_mean, self.y_mean)
                self._finish(yy, n, rho, Q)
                return
            if fit_intercept:
                X, Y = X - self.x_mean, Y - self.y_mean
            XS = X.T * sw
            self.K, self.H = XS @ X, XS @ Y
        self._finish(sw @ (Y * Y), n, rho, Q)

    @classmethod
    def from_moments(cls, K, H, yy, x_mean, y_mean, n, rho, Q):
        """The oracle from the centred moments K = X^T S X (d, d), H = X^T S Y (d, T),
        yy = diag(Y^T S Y) (T,) of data centred by their weighted means x_mean, y_mean and
        n = sum of the weights (how the Dask fit builds it: sums over row blocks)."""
        self = cls.__new__(cls)
        self.K, self.H, self.x_mean, self.y_mean = K, H, x_mean, y_mean
        self._finish(yy, n, rho, Q)
        return self

    def _finish(self, yy, n, rho, Q):
        self.c = rho / n
        self.yy = yy  # ||y_t||_S^2 of the centred targets
        self.const = 0.5 * _sum(self.c * self.yy)
        # f = 1/2 w^T K w - w^T h + const cancels terms of about const's size: its rounding
        # is relative to them, not to |f|
        self.offset = 4.0 * self.const
        self.Q = Q

    @classmethod
    def from_parts(cls, K, H, c, yy, Q):
        """A Gram-form oracle from its parts (K = X^T S X and H = X^T S Y on centred data,
        c_t = rho_t / n, yy_t = ||y_t||_S^2): the working-set solver's sub-problems."""
        self = cls.__new__(cls)
        self.K, self.H, self.c, self.yy, self.Q = K, H, c, yy, Q
        self.const = 0.5 * _sum(c * yy)
        self.offset = 4.0 * self.const
        self.x_mean = self.y_mean = None
        return self

    def linear(self, W, b):
        return _row_sparse_product(self.K, W)

    def value(self, W, b, lin):
        WQ = W @ self.Q
        xp = get_namespace(W)
        f = _sum(self.c * (0.5 * xp.sum(W * lin, axis=0) - xp.sum(W * self.H, axis=0)))
        return f + self.const + 0.5 * float(xp.sum(WQ * W)), WQ

    def grad(self, W, b, lin, aux):
        return (lin - self.H) * self.c + aux, get_namespace(b).zeros_like(b)

    def grad_at_zero_norm(self):
        return math.sqrt(_sum((self.H * self.c) ** 2))

    def null_objective(self):
        return self.const

    def dual_point(self, W, b, lin, aux):
        """The dual point G = c_t S (X w_t - y_t) (centred data: feasible for the
        intercepts) in Gram form: X^T G = (K W - H) c and L*(s G) = sum_t c_t (s^2 / 2
        ||r_t||_S^2 + s r_t^T S y_t), r_t = X w_t - y_t, both from K W, H and ||y_t||_S^2."""
        xp = get_namespace(W)
        wKw = xp.sum(W * lin, axis=0)
        wh = xp.sum(W * self.H, axis=0)
        rr = _sum(self.c * (wKw - 2.0 * wh + self.yy))
        ry = _sum(self.c * (wh - self.yy))
        return (lin - self.H) * self.c, lambda s: 0.5 * s * s * rr + s * ry

    def local_lipschitz(self, lin):
        return None  # squared loss: constant curvature

    def conjugate_rounding(self, W):
        """An estimate of ||dV||_F^2, dV the rounding of the dual point's X^T G = (K W -
        H) c: eps sqrt(d) (|K| |W| + |H|) c (per task for per-task K)."""
        absW = np.abs(np.asarray(W, dtype=np.float64))
        KW = np.einsum("tij,jt->it", np.abs(self.K), absW) if np.ndim(self.K) == 3 \
            else np.abs(self.K) @ absW
        dv = float(np.finfo(np.float64).eps) * math.sqrt(W.shape[0]) \
            * (KW + np.abs(self.H)) * self.c
        return float(np.sum(dv * dv))

    def lipschitz_bound(self, n_power=40, seed=0):
        """max_t c_t lambda_max(K) + lambda_max(Q) by ``n_power`` power iterations on the
        centred K (d x d) from a random start, times 1.05 (as :func:`lipschitz_estimate`,
        whose [X 1] on uncentred X is not this problem's curvature: a feature of mean 2012
        and spread 7 raised it a million-fold, and FISTA's capped step with it)."""
        xp = get_namespace(self.K)
        d = self.K.shape[0]
        if d == 0:
            return _qmax(self.Q)
        v = xp.asarray(np.random.default_rng(seed).standard_normal(d), dtype=self.K.dtype)
        lam = 0.0
        for _ in range(n_power):
            nv = _scaled_norm(v, xp)
            if nv == 0 or not math.isfinite(nv):
                break
            v = self.K @ (v / nv)
            lam = _scaled_norm(v, xp)
        return float(xp.max(self.c)) * lam * 1.05 + _qmax(self.Q)

    def exact_lipschitz(self, lin=None):
        K = to_numpy(self.K).astype(np.float64)
        c = float(np.max(to_numpy(self.c)))
        return c * float(np.linalg.eigvalsh(K).max()) + _qmax(self.Q)

    def intercept(self, W):
        return self.y_mean - self.x_mean @ W


def task_moments(X, Y, L, x_mean, y_mean):
    """Per-task centred moments of dense X (n, d), Y and weights L (n, T), centred by the
    given per-task means x_mean (T, d), y_mean (T,): K_t = sum_i L_it (x_i - m_t)(x_i -
    m_t)^T, h_t = sum_i L_it (x_i - m_t)(y_it - ybar_t), yy_t = sum_i L_it (y_it - ybar_t)^2
    (float64; one product over each task's weighted rows). The Dask fit sums them per row
    block; :class:`TaskGramOracle` takes the same sums from :func:`task_columns`."""
    d, T = X.shape[1], L.shape[1]
    K, H, yy = np.zeros((T, d, d)), np.zeros((d, T)), np.zeros(T)
    for t in range(T):
        rows = np.flatnonzero(L[:, t] > 0)
        if rows.size:
            K[t], H[:, t], yy[t] = _task_moment(
                np.asarray(X[rows], dtype=np.float64), L[rows, t],
                np.asarray(Y[rows, t], dtype=np.float64), x_mean[t], y_mean[t])
    return K, H, yy


def _task_moment(Xt, a, y, m, ybar):
    """(K_t, h_t, yy_t) of :func:`task_moments` from a task's rows Xt (float64), their
    weights a and targets y."""
    Xt = Xt - m
    yt = y - ybar
    XA = Xt.T * a
    return XA @ Xt, XA @ yt, a @ (yt * yt)


def task_columns(A, Y):
    """The targets and weights per task, for :class:`TaskGramOracle`: for each column t of
    A (n, T), (rows, a, y) -- its rows of positive weight, their weights and targets in
    float64 -- one task at a time (a generator). The estimators make them from the labels
    directly where the per-task Gram form is chosen (no (n, T) array: School's wide
    targets and weights are 2.2x X each)."""
    for t in range(A.shape[1]):
        rows = np.flatnonzero(A[:, t] > 0)
        yield (rows, np.asarray(A[rows, t], dtype=np.float64),
               np.asarray(Y[rows, t], dtype=np.float64))


#: the fewest rows of one task gathered at a time by the per-task Gram build (which takes
#: a task's rows in at most 8 blocks: tall X with labels missing here and there had its
#: whole rows, centred and weighted, as three copies of most of X at once)
TASK_ROWS = 1 << 12


class TaskGramOracle(GramOracle):
    """Squared loss with any per-entry weights A (missing labels, per-entry sample
    weights) in Gram form, one Gram matrix per sub-task: the free intercept b_t is at its
    optimum ybar_t - m_t^T w_t for every W (m_t, ybar_t: the A_t-weighted means of x and
    y_t), so the data term is sum_t 1/2 w_t^T K_t w_t - w_t^T h_t + 1/2 yy_t with

        K_t = sum_i A_it (x_i - m_t)(x_i - m_t)^T,   h_t = sum_i A_it (x_i - m_t)(y_it - ybar_t),
        yy_t = sum_i A_it (y_it - ybar_t)^2,

    the objective values of the full problem at every W. For tasks on their own samples
    (School: 139 tasks, each row labelled in one) an iteration costs T d^2 flops
    whatever n is, where the data form costs n d T (an n x T array of mostly zero
    weights): :meth:`useful` says when the estimators pick it. The dual point is
    GramOracle's per task: G_it = A_it (x_i - m_t)^T w_t - (y_it - ybar_t)), which sums
    to zero per task (feasible for the intercepts); X^T G = K W - H, and L*(s G) from
    w_t^T K_t w_t, w_t^T h_t and yy_t."""

    def __init__(self, X, Y, A, Q, fit_intercept, columns=None):
        """From targets Y and weights A (n, T), or -- ``columns`` given (Y and A then
        unused, None) -- from their per-task rows, weights and targets
        (:func:`task_columns`)."""
        columns = task_columns(A, Y) if columns is None else list(columns)
        d, T = X.shape[1], A.shape[1] if A is not None else len(columns)
        self.K = np.zeros((T, d, d))
        self.H = np.zeros((d, T))
        self.x_mean, self.y_mean = np.zeros((T, d)), np.zeros(T)
        sparse = scipy.sparse.issparse(X)
        if sparse:
            X = scipy.sparse.csr_matrix(X, dtype=np.float64)
        with blas_threads(1):  # one BLAS thread: the same bits for every n_jobs
            yy = self._build(X, columns, fit_intercept, sparse)
        self._finish(yy, 1.0, np.ones(T), Q)

    def _build(self, X, columns, fit_intercept, sparse):
        yy = np.zeros(self.H.shape[1])
        for t, (rows, a, y) in enumerate(columns):
            if rows.size == 0:
                continue
            if not sparse:  # a task's rows in at most 8 blocks of TASK_ROWS or more,
                # gathered in float64 (blocks of 4,096 rows of 100 features made the build
                # 1.5x slower -- review)
                step = max(TASK_ROWS, -(-rows.size // 8))
                parts = [slice(i, i + step) for i in range(0, rows.size, step)]

                def gathered(p):
                    return np.asarray(X[rows[p]], dtype=np.float64)

                if fit_intercept:  # the a-weighted means
                    s = float(a.sum())
                    self.x_mean[t] = sum(gathered(p).T @ a[p] for p in parts) / s
                    self.y_mean[t] = float(a @ y) / s
                for p in parts:
                    Kp, Hp, yyp = _task_moment(gathered(p), a[p], y[p], self.x_mean[t],
                                               self.y_mean[t])
                    self.K[t] += Kp
                    self.H[:, t] += Hp
                    yy[t] += yyp
                continue
            Xt = X[rows]
            if fit_intercept:  # the a-weighted means
                s = float(a.sum())
                self.x_mean[t] = np.asarray(Xt.T @ a).ravel() / s
                self.y_mean[t] = float(a @ y) / s
            m = self.x_mean[t]
            # centred implicitly: sum_i a_i (x_i - m)(x_i - m)^T = ... - s m m^T
            yt = y - self.y_mean[t]
            XA = Xt.T.multiply(a[None, :]).tocsr()
            self.K[t] = np.asarray((XA @ Xt).todense()) - a.sum() * np.outer(m, m)
            self.H[:, t] = XA @ yt  # (a^T y_c = 0: no mean term)
            yy[t] = a @ (yt * yt)
        return yy

    @classmethod
    def from_moments(cls, K, H, yy, x_mean, y_mean, Q):
        """The oracle from its per-task moments (how the Dask fit builds it: sums over
        row blocks): K (T, d, d), H (d, T), yy (T,), the means x_mean (T, d), y_mean (T,)."""
        self = cls.__new__(cls)
        self.K, self.H, self.x_mean, self.y_mean = K, H, x_mean, y_mean
        self._finish(yy, 1.0, np.ones(len(yy)), Q)
        return self

    @staticmethod
    def useful_counts(n, d, T, nnz):
        """:meth:`useful` for dense X of n x d and T tasks with ``nnz`` weighted entries."""
        return T * d <= n and nnz * d <= 40 * n * T

    @staticmethod
    def useful(X, A):
        """Whether the per-task Gram form pays for dense X and weights A (n, T): its T
        (d, d) matrices take no more memory than X (T d <= n) and building them (nnz(A)
        d^2 flops) costs at most as much as 20 iterations of the data form (2 n d T each)
        -- tasks on few rows each, as School's. With every label present and one weight
        per sample the shared-Gram :class:`GramOracle` is used instead. Sparse X (built
        with sparse products, centred implicitly) while d <= 4096."""
        if not (isinstance(X, np.ndarray) or scipy.sparse.issparse(X)) \
                or not isinstance(A, np.ndarray):
            return False
        n, d = X.shape
        T = A.shape[1]
        if scipy.sparse.issparse(X) and d > 4096:
            return False
        return TaskGramOracle.useful_counts(n, d, T, np.count_nonzero(A))

    def linear(self, W, b):
        """K_t w_t for every t (d, T): a batched matrix-vector product (einsum, no BLAS
        threads: the same bits for every n_jobs)."""
        return np.einsum("tij,jt->it", self.K, W)

    def lipschitz_bound(self):
        """max_t lambda_max(K_t) + lambda_max(Q): exact (the T matrices are small)."""
        lam = np.linalg.eigvalsh(self.K)[:, -1] if self.K.size else np.zeros(1)
        return float(max(lam.max(), 0.0)) + _qmax(self.Q)

    def exact_lipschitz(self, lin=None):
        return self.lipschitz_bound()

    def intercept(self, W):
        return self.y_mean - np.einsum("td,dt->t", self.x_mean, W)

    def minimiser(self, max_unknowns=1024):
        """For the smooth penalties (everything in Q): the minimiser of sum_t 1/2 w_t^T
        K_t w_t - h_t^T w_t + 1/2 tr(W Q W^T), from K_t w_t + (W Q)_t = h_t: T systems
        (K_t + Q_tt I) w_t = h_t for a diagonal Q, else the (d T)-unknown system
        (blockdiag(K_t) + Q kron I_d) vec(W) = vec(H) (Cholesky; None beyond
        ``max_unknowns``: a Cholesky of 1024 unknowns costs about L-BFGS's fit, one of
        4096 was measured 6x slower). The caller certifies it (the duality gap)."""
        with blas_threads(1):  # the same bits for every n_jobs
            return self._minimiser(max_unknowns)

    def _minimiser(self, max_unknowns):
        T, d = self.K.shape[0], self.K.shape[1]
        Q = np.asarray(to_numpy(self.Q), dtype=np.float64)
        if T and not np.count_nonzero(Q - np.diag(np.diag(Q))):
            M = self.K + np.diag(Q)[:, None, None] * np.eye(d)
            try:
                return np.linalg.solve(M, self.H.T[:, :, None])[:, :, 0].T
            except np.linalg.LinAlgError:
                return None
        if d * T > max_unknowns:
            return None
        M = np.kron(Q, np.eye(d))
        for t in range(T):
            M[t * d:(t + 1) * d, t * d:(t + 1) * d] += self.K[t]
        try:
            with warnings.catch_warnings():  # ill-conditioned: the gap decides
                warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
                w = scipy.linalg.solve(M, self.H.T.ravel(), assume_a="pos")
        except (np.linalg.LinAlgError, ValueError):
            return None
        return w.reshape(T, d).T


def smooth_task_gram(oracle, penalty, alpha, Q, W0, tol, max_iter):
    """A smooth penalty on :class:`TaskGramOracle`: its exact minimiser, certified by the
    duality gap as any fit; L-BFGS from there when the certificate fails (a singular or
    ill-conditioned system, a singular Q without a finite dual)."""
    W = oracle.minimiser()
    if W is not None and np.all(np.isfinite(W)):
        lin = oracle.linear(W, None)
        f, aux = oracle.value(W, None, lin)
        F = f + penalty.value(W, alpha)
        cert = _Certifier(oracle, penalty, alpha, Q, tol, np.float64)
        ok = cert(W, None, lin, aux, F)
        lam_q = float(np.linalg.eigvalsh(to_numpy(Q)).min()) if np.size(Q) else 0.0
        if not ok and math.isfinite(cert.gap) and lam_q > 0:
            # the conjugate 1/2 tr(V Q^-1 V^T)'s own rounding, large where the penalty is
            # negligible against K (X in units 1e15: gap 2.7 on an exact solution)
            floor = 4.0 * cert.eps * (abs(F) + oracle.offset) \
                + 0.5 * oracle.conjugate_rounding(W) / lam_q
            ok = cert.gap <= max(tol * cert.scale, floor)
        if ok:
            return Result(W=W, b=np.zeros(W.shape[1]), n_iter=1, converged=True, trace=[F],
                          objective=F, dual_gap=cert.gap, scale=cert.scale)
        W0 = W
    return lbfgs(oracle, penalty, alpha, Q, W0, np.zeros(W0.shape[1]), False, max_iter, tol)


def duality_gap(oracle, penalty, alpha, Q, W, b, lin, aux, P, overwrite=False):
    """Duality gap P(W, b) - D(G) >= P(W, b) - P* (Fenchel: D(G) = -L*(G) - h*(-X^T G),
    h the whole penalty, G feasible for the free intercepts) at the oracle's dual point,
    also shrunk by the penalty's ``dual_scale`` onto h*'s domain; the better of the two.
    Returns (gap, D); gap is ``inf`` when no feasible dual point is available (a smooth
    penalty with a singular Q, or an unpenalised problem). ``overwrite``: the caller is
    done with ``aux`` (see :meth:`DataOracle.dual_point`; other oracles ignore it)."""
    XtG, lstar = oracle.dual_point(W, b, lin, aux, overwrite=True) \
        if overwrite and isinstance(oracle, DataOracle) else oracle.dual_point(W, b, lin, aux)
    return gap_at_dual(penalty, alpha, Q, XtG, lstar, P)


def gap_at_dual(penalty, alpha, Q, XtG, lstar, P):
    """The duality gap of :func:`duality_gap` from an oracle's dual point (X^T G, s ->
    L*(s G)): for callers that use X^T G further (the working-set solver scores the rows
    by it). Returns (gap, D)."""
    best, _ = best_dual(penalty, alpha, Q, XtG, lstar)
    return P - best, best


def best_dual(penalty, alpha, Q, XtG, lstar):
    """(D, s): the better dual value D(s G) of s = 1 and the penalty's ``dual_scale``
    (:func:`gap_at_dual`), and that s (nan when neither is finite)."""
    summary = penalty.dual_summary(XtG, Q)  # h* is even: the sign of V = -X^T G is moot
    best, best_s = -math.inf, math.nan
    for s in {1.0, float(penalty.dual_scale(summary, alpha))}:
        h = penalty.conjugate(summary, s, alpha, Q)
        if math.isfinite(h) and -lstar(s) - h > best:
            best, best_s = -lstar(s) - h, s
    return best, best_s


class _Certifier:
    """The stopping test shared by the solvers: converged when the duality gap is at most
    ``tol * scale`` with scale = min_b F(0, b) (the objective of the model that predicts
    the intercepts only), or at most the rounding error of the objective in the iterates'
    precision, which no smaller gap can be told from."""

    def __init__(self, oracle, penalty, alpha, Q, tol, dtype):
        self.oracle, self.penalty, self.alpha, self.Q = oracle, penalty, alpha, Q
        self.scale = oracle.null_objective()
        self.scale = self.scale if self.scale > 0 else 1.0
        self.tol = tol
        self.eps = float(np.finfo(dtype).eps)
        self.gap, self.dual = math.inf, -math.inf

    def __call__(self, W, b, lin, aux, P, overwrite=False):
        gap, D = duality_gap(self.oracle, self.penalty, self.alpha, self.Q, W, b, lin, aux, P,
                             overwrite=overwrite)
        return self._judge(gap, D, P)

    def at_dual(self, XtG, lstar, P):
        """The same test from the oracle's dual point (X^T G, s -> L*(s G)), already built;
        the dual point that gave the gap is ``dual_s`` G."""
        D, self.dual_s = best_dual(self.penalty, self.alpha, self.Q, XtG, lstar)
        return self._judge(P - D, D, P)

    def _judge(self, gap, D, P):
        self.gap, self.dual = gap, D
        floor = 4.0 * self.eps * (max(abs(P), abs(D) if math.isfinite(D) else 0.0)
                                  + getattr(self.oracle, "offset", 0.0))
        return gap <= max(self.tol * self.scale, floor)

    @property
    def available(self):
        return math.isfinite(self.gap)


class Result:
    """What a solver returns: W, b, n_iter, converged, trace (objective after each
    accepted step), objective, dual_gap (nan when no certificate exists), lipschitz (FISTA:
    the final estimate, for warm starts) and steps (FISTA: accepted step sizes, recorded
    under CHECK_STEPS: (step, L) pairs) and scale (min_b F(0, b), the unit of tol)."""

    def __init__(self, **kw):
        self.lipschitz, self.steps, self.scale = None, [], math.nan
        self.__dict__.update(kw)


def fista(oracle, penalty, alpha, Q, W0, b0, max_iter, tol, n_jobs=None, verbose=0,
          lipschitz=None, lipschitz_cap=1.0, check_every=None):
    """FISTA with backtracking, capped step growth and function-value adaptive restart.

    Step rule: the step 1/Lip is accepted when the sufficient-decrease test f(x+) <= f(y)
    + <g, x+ - y> + Lip/2 ||x+ - y||^2 holds up to the rounding of f (a few ulps, nothing
    more: a larger slack lets a too-long step through once the decrease is below it);
    otherwise Lip doubles. Between iterations Lip shrinks by 0.9, but never below
    ``lipschitz_cap`` (the estimate of :func:`lipschitz_estimate`), so the step never
    exceeds 1 / cap <= 2 / L.

    Stopping: the duality gap (see :class:`_Certifier`) every ``check_every`` iterations
    and at the first (default: the oracle's, every iteration in Gram form, where the gap
    costs no GEMM, every 5th on the data, where it costs one X^T G); where no certificate exists (a smooth penalty with singular Q), the
    previous rule: relative objective change and gradient-mapping norm (relative to the
    gradient at zero) both below tol, which does not bound the error.

    A warm start (W0, b0, ``lipschitz``) restarts the momentum: only the point and the
    step carry over.

    An oracle whose evaluations cost a round trip (``oracle.speculate``: the Dask blocks)
    is asked for the candidate's value and, in the same round trip (``oracle.values``),
    for the value and gradient at the next extrapolated point that the candidate implies
    if it is accepted (the momentum coefficient depends on the iteration count only): one
    round trip per accepted step instead of two. A rejected step or a restart discards
    that evaluation; the iterates are the same as without it."""
    xp = get_namespace(W0)
    speculate = getattr(oracle, "speculate", False)
    check_every = oracle.check_every if check_every is None else int(check_every)
    W, b = W0.copy(), b0.copy()
    lin = oracle.linear(W, b)
    # (the start's gradient is taken next: summed with its value where that saves a trip)
    f, aux = oracle.values([(W, b, lin, True)])[0] if speculate else oracle.value(W, b, lin)
    F = f + penalty.value(W, alpha)
    kkt_scale = None  # the gradient norm at zero: the fallback rule's unit, when needed
    cert = _Certifier(oracle, penalty, alpha, Q, tol, W.dtype)
    # the duality gap may take W's loss gradient for its dual point (DataOracle: no (n, T)
    # array of its own; the speculating oracles keep theirs), which is then recomputed
    # after a restart: where the (n, T) arrays are large (over 1 MB; on small problems the
    # recomputations cost up to 25 % an iteration -- review)
    spend = isinstance(oracle, DataOracle) and not speculate \
        and 8 * int(np.prod(W.shape[1:])) * oracle.X.shape[0] > (1 << 20)
    eps = cert.eps
    # a smooth part without curvature (every feature constant: the centred K is 0, and Q
    # 0) has a constant gradient: any step passes the sufficient-decrease test; 1 is taken
    # (review: a bound of 0 made the step 1/0)
    global_cap = float(lipschitz_cap) if lipschitz_cap > 0 else 1.0
    local = oracle.local_lipschitz(lin)
    cap = global_cap if local is None else _positive(min(local, global_cap))
    Lip = max(float(lipschitz) if lipschitz is not None else cap, cap)
    L_check = oracle.exact_lipschitz() if CHECK_STEPS and oracle.kind == "squared" else None
    steps = []
    t = 1.0
    Yw, Yb, linY, fY, auxY = W, b, lin, f, aux
    trace = [F]
    converged = False
    certified = None  # None: not known yet whether a certificate exists
    # the local Lipschitz estimate's refreshes (logistic, softmax): every REFRESH_EVERY
    # iterations, the interval doubling (up to REFRESH_MAX) while the estimate holds to 1 %
    # and no step was rejected; a rejected step brings the next one within REFRESH_EVERY
    every, next_refresh, rejected = REFRESH_EVERY, REFRESH_EVERY, False
    it = 0
    for it in range(1, max_iter + 1):
        gW, gb = oracle.grad(Yw, Yb, linY, auxY)
        if Yw is not W and not CHECK_STEPS:
            # the extrapolated point's map and loss gradient are spent: freed before the
            # candidate's (two (n, T) arrays fewer at the peak; a restart takes W's)
            linY = auxY = None
        elif spend and not CHECK_STEPS:
            # Yw is W (the start, or no momentum): W's loss gradient is not needed again --
            # a restart needs Yw other than W, an accepted candidate brings its own, and
            # where it is needed (beta 0 after a spent gap) it is made again
            auxY = aux = None
        t_new = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
        beta = (t - 1.0) / t_new
        # whether an accepted candidate's duality gap is taken (the speculating oracle then
        # sums what its dual point needs with the candidate's value)
        check = certified is not False and (it == 1 or it % check_every == 0)
        while True:
            # (a rejected candidate's map and loss gradient freed before the next one's)
            linn = auxn = ahead = None
            step = 1.0 / Lip
            Wn, gn = penalty.prox_value(Yw - step * gW, step * alpha, alpha, n_jobs=n_jobs)
            bn = Yb - step * gb
            linn = oracle.linear(Wn, bn)
            ahead = None
            if not speculate:
                fn, auxn = oracle.value(Wn, bn, linn)
            elif beta == 0.0:  # the next extrapolated point is the candidate itself
                (fn, auxn), = oracle.values([(Wn, bn, linn, True)], check=check)
                ahead = (Wn, bn, linn, fn, auxn)
            else:  # the same expressions as the extrapolation below: the same point
                Ya, Yab = Wn + beta * (Wn - W), bn + beta * (bn - b)
                linYa = linn + beta * (linn - lin)
                (fn, auxn), (fa, auxa) = oracle.values([(Wn, bn, linn, False),
                                                        (Ya, Yab, linYa, True)], check=check)
                ahead = (Ya, Yab, linYa, fa, auxa)
            dW, db = Wn - Yw, bn - Yb
            sq = float(xp.sum(dW * dW) + xp.sum(db * db))
            bound = fY + float(xp.sum(gW * dW) + xp.sum(gb * db)) + 0.5 * Lip * sq
            # slack: the rounding of f and of the bound's terms, a few ulps of their size
            if fn <= bound + 8.0 * eps * (abs(fY) + abs(fn) + oracle.offset) or sq == 0.0:
                break
            Lip *= 2.0
            rejected, next_refresh = True, min(next_refresh, it + REFRESH_EVERY)
        Fn = fn + gn
        if Fn > F and Yw is not W:  # adaptive restart: drop the step, restart momentum
            t = 1.0
            # (the rejected candidate's map and loss gradient: freed before W's is made)
            linn = auxn = ahead = None
            if aux is None:  # spent by the duality gap: W's loss gradient again
                aux = oracle.value(W, b, lin)[1]
            Yw, Yb, linY, fY, auxY = W, b, lin, f, aux
            lin_prev = None  # (no extrapolation from it: not kept through the next step)
            continue
        if CHECK_STEPS:
            # squared loss: L of the whole problem; logistic: the local one where the
            # gradient step was taken
            L_here = L_check if L_check is not None else oracle.exact_lipschitz(linY)
            steps.append((step, L_here))
            assert step <= 2.0 / L_here * (1 + 1e-12), \
                f"FISTA accepted step {step:.4g} > 2 / L = {2.0 / L_here:.4g}"
        # (a plain proximal-gradient step from W, taken right after a restart, is accepted:
        # with the backtracking bound it cannot raise F beyond floating-point rounding)
        rel = abs(F - Fn) / max(abs(Fn), 1e-12)
        # the extrapolated point is spent (it was W's map and loss gradient where Yw was W:
        # held, they kept a fourth (n, T) array alive through the duality gap's)
        linY = auxY = None
        # (the previous map only where an extrapolation from it follows: not through the
        # duality gap where the next point is the iterate itself)
        W_prev, b_prev = W, b
        lin_prev = lin if beta != 0.0 and ahead is None else None
        W, b, lin, f, aux, F = Wn, bn, linn, fn, auxn, Fn
        # (the names of the candidate let go: auxn kept W's loss gradient alive through the
        # extrapolated point's after the duality gap had spent aux -- one (n, T) array)
        linn = auxn = None
        trace.append(F)
        if certified is not False and (it == 1 or it % check_every == 0):
            ok = cert(W, b, lin, aux, F, overwrite=spend)
            if spend:  # its dual point was made in aux's place (no (n, T) array of its
                aux = None  # own)
            certified = cert.available
            if ok:
                converged = True
        elif certified is False and rel < tol:
            if kkt_scale is None:
                kkt_scale = max(oracle.grad_at_zero_norm(), 1e-12)
            converged = Lip * math.sqrt(sq) / kkt_scale < tol
        if spend and beta != 0.0:
            # W's loss gradient is needed again only after a restart (one more loss pass
            # then; no GEMM): not kept through the next step, one (n, T) array fewer
            aux = None
        if verbose:
            print(f"iter {it}: objective {F:.10g}, duality gap {cert.gap:.3e}, "
                  f"rel change {rel:.2e}, step {1 / Lip:.3g}")
        if converged:
            break
        if oracle.kind != "squared" and it >= next_refresh:
            # follow the local curvature (before the extrapolated point's map and loss
            # gradient exist: two (n, T) arrays fewer beside the power iteration's)
            new = _positive(min(oracle.local_lipschitz(lin), global_cap))
            steady = not rejected and abs(new - cap) <= 0.01 * cap
            every = min(2 * every, REFRESH_MAX) if steady else REFRESH_EVERY
            cap, next_refresh, rejected = new, it + every, False
        t = t_new
        if ahead is not None:  # evaluated with the candidate (see the docstring)
            Yw, Yb, linY, fY, auxY = ahead
            lin_prev = None
        elif beta == 0.0:  # no momentum yet: the extrapolated point is the iterate
            if aux is None:
                aux = oracle.value(W, b, lin)[1]
            Yw, Yb, linY, fY, auxY = W, b, lin, f, aux
            lin_prev = None  # (not kept through the next step: one (n, T) array fewer)
        else:
            # the map is linear, so its value at the extrapolated point costs no GEMM
            Yw = W + beta * (W - W_prev)
            Yb = b + beta * (b - b_prev)
            linY = _extrapolated(lin, lin_prev, beta)
            lin_prev = None
            fY, auxY = oracle.value(Yw, Yb, linY)
        Lip = max(0.9 * Lip, cap)  # let the step grow back, never beyond 1 / cap
    linY = auxY = lin_prev = None  # (an unused extrapolated point: not through the gap)
    if not converged and certified is not False:
        if aux is None:
            aux = oracle.value(W, b, lin)[1]
        cert(W, b, lin, aux, F, overwrite=spend)  # the final point's gap, for dual_gap_
    return Result(W=W, b=b, n_iter=it, converged=converged, trace=trace, objective=F,
                  dual_gap=cert.gap if cert.available else math.nan, lipschitz=Lip,
                  steps=steps, scale=cert.scale)


def _writable(Z, other):
    """Whether ``Z op= other`` may update the array Z in place: a writeable NumPy or CuPy
    array whose dtype the result keeps."""
    # (CuPy's flags have no ``writeable``: its arrays are always writeable)
    return hasattr(Z, "flags") and getattr(Z.flags, "writeable", True) \
        and hasattr(other, "dtype") \
        and Z.dtype == get_namespace(Z).result_type(Z.dtype, other.dtype)


def _extrapolated(lin, lin_prev, beta):
    """lin + beta (lin - lin_prev), written over ``lin_prev`` (its last use) when that is
    an array of its own: the same operations in the same order, so the same bits, with no
    (n, T) temporaries."""
    xp = get_namespace(lin)
    own = hasattr(lin_prev, "flags") and type(lin_prev) is type(lin) \
        and getattr(lin_prev.flags, "writeable", True) and lin_prev.flags.owndata \
        and lin_prev.shape == lin.shape and lin_prev.dtype == lin.dtype \
        and not xp.shares_memory(lin, lin_prev)
    if not own:
        return lin + beta * (lin - lin_prev)
    out = xp.subtract(lin, lin_prev, out=lin_prev)
    out *= beta
    out += lin
    return out


def lbfgs(oracle, penalty, alpha, Q, W0, b0, fit_intercept, max_iter, tol, columns=True,
          single=False, cache=None):
    """L-BFGS (Liu & Nocedal, Math. Program. 1989; scipy's L-BFGS-B) on the smooth
    problems (ridge, mean, graph penalties): same oracles, same objective. Stops when the
    duality gap certifies the point (see :class:`_Certifier`; checked after every
    iteration once the gradient's share of it is below the threshold, one extra GEMM at
    most); where no certificate exists (singular Q), when the
    largest gradient entry falls below tol times the gradient norm at zero.

    A separable problem (dense X, element-wise loss, diagonal Q: the ridge penalty; see
    :func:`_separable`) goes to :func:`_lbfgs_columns`, one preconditioned L-BFGS per
    column, stopped by the same certificate (``columns=False`` skips it; ``single``: its
    iterations may use a float32 copy of X, see there); should its line
    search stall short of the certificate (a tol at the rounding level of the per-column
    objectives), scipy's L-BFGS-B goes on from its point. A coupled one (positive
    definite Q: graph, mean; :func:`_modal`) goes to :func:`_lbfgs_modes` likewise.

    ``cache``: a dict the caller keeps between fits on the same data (a warm-started path,
    the CV grid): the preconditioner's eigenpairs are kept there and reused while X, the
    curvature weights and the precision are the same (:class:`_Eigenpairs`)."""

    fast = None if not columns else _lbfgs_columns if _separable(oracle, Q) else \
        _lbfgs_modes if _modal(oracle, Q) else None
    if fast is not None:
        n, d = oracle.X.shape
        # its products with X have T' columns: bandwidth-bound, they gained nothing from
        # a second BLAS thread (HOG, 2,100 x 2,916 x 15 float32, 2-core VM: 8.6 ms on 1
        # thread, 9.1 ms on 2; 10.4 and 16.2 ms with other jobs running, and the whole fit
        # 6x slower on 2 threads as the spinning BLAS threads took the cores its
        # element-wise work needs): one thread below 1e9 flops per product
        small = 2.0 * n * d * W0.shape[1] < 1e9
        # (the range finder runs on the same threads as the iterations: on 2 threads where
        # the fit runs on 1 it took 0.145 instead of 0.225 s (10,000 x 400), but n_jobs = 1
        # and 2 no longer gave the same bits)
        eig = _Eigenpairs(cache)
        with blas_threads(1) if small else contextlib.nullcontext():
            res = fast(oracle, penalty, alpha, Q, W0, b0, fit_intercept, max_iter, tol,
                       single=single, eig=eig)
        if res.converged or res.n_iter >= max_iter:
            return res
        more = lbfgs(oracle, penalty, alpha, Q, res.W, res.b, fit_intercept,
                     max_iter - res.n_iter, tol, columns=False)
        trace, n_iter = res.trace + more.trace[1:], res.n_iter + more.n_iter
        if not more.converged and not more.objective < res.objective:
            # uncertified either way: the better point stands (the loss by blocks of rows
            # shifts offset targets, whose rounding the whole-array oracle of the fallback
            # carries: it went on from a point 1e-11 off the optimum to one 1e-9 off --
            # review)
            more = res
        more.n_iter, more.trace = n_iter, trace
        return more
    d, T = W0.shape
    cert = _Certifier(oracle, penalty, alpha, Q, tol, np.float64)

    def unpack(x):
        W = x[:d * T].reshape(d, T)
        b = x[d * T:] if fit_intercept else np.zeros(T)
        return W, b

    last = {}

    def evaluate(x):
        W, b = unpack(x)
        lin = oracle.linear(W, b)
        f, aux = oracle.value(W, b, lin)
        last.update(x=x.copy(), W=W, b=b, lin=lin, aux=aux, f=f)
        return W, b, lin, f, aux

    def fun(x):
        W, b, lin, f, aux = evaluate(x)
        gW, gb = oracle.grad(W, b, lin, aux)
        last["gW"] = gW
        g = np.concatenate([gW.ravel(), gb]) if fit_intercept else gW.ravel()
        return f, g

    def certify(x, screen=False):
        if "x" not in last or not np.array_equal(last["x"], x):
            fun(x)
        if screen and "gW" in last:
            # for a smooth penalty the gap at the unmodified dual point G = dL/dZ is
            # 1/2 ||grad_W F||^2_{Q^-1} (+ the intercept gradient's share): while that
            # alone exceeds the threshold the point cannot be certified, and the full
            # gap (one more GEMM for logistic loss) is not worth computing
            h = penalty.conjugate(penalty.dual_summary(last["gW"], Q), 1.0, alpha, Q)
            if h > cert.tol * cert.scale:
                return False
        return cert(last["W"], last["b"], last["lin"], last["aux"], last["f"])

    x0 = np.concatenate([W0.ravel(), b0]) if fit_intercept else W0.ravel().copy()
    trace = [fun(x0)[0]]
    state = {"converged": certify(x0)}
    available = cert.available
    if state["converged"]:
        W, b = unpack(x0)
        return Result(W=W.copy(), b=np.array(b, dtype=np.float64), n_iter=0, converged=True,
                      trace=trace, objective=trace[0], dual_gap=cert.gap, scale=cert.scale)

    def callback(intermediate_result):
        trace.append(float(intermediate_result.fun))
        if available and certify(intermediate_result.x, screen=penalty.smooth):
            state["converged"] = True
            raise StopIteration

    gtol = 0.0 if available else tol * max(oracle.grad_at_zero_norm(), 1e-12)
    res = scipy.optimize.minimize(
        fun, x0, jac=True, method="L-BFGS-B", callback=callback,
        options={"maxiter": max_iter, "gtol": gtol,
                 "ftol": 0.0 if available else 64 * np.finfo(float).eps, "maxcor": 20})
    if available:
        converged = state["converged"] or certify(res.x)
    else:
        converged = bool(res.success)
    W, b = unpack(res.x)
    return Result(W=W.copy(), b=np.array(b, dtype=np.float64), n_iter=max(int(res.nit), 1),
                  converged=converged, trace=trace, objective=float(res.fun),
                  dual_gap=cert.gap if available else math.nan, scale=cert.scale)


def _element_wise_on_cpu(oracle, softmax=False):
    """An in-memory DataOracle on the CPU (dense or sparse X) with an element-wise loss
    (squared and / or logistic columns; and softmax tasks if ``softmax``): what the
    preconditioned L-BFGS solvers evaluate (:func:`_column_loss` per column in
    :func:`_lbfgs_columns`; the oracle's fused native loss in :func:`_lbfgs_modes`, which
    alone takes softmax tasks)."""
    X = oracle.X if isinstance(oracle, DataOracle) else None
    cpu_data = isinstance(X, (np.ndarray, CenteredSparse, CenteredDense)) \
        or scipy.sparse.issparse(X)
    return cpu_data and oracle.kind in ("logistic", "squared", "mixed") \
        and (softmax or not oracle.softmax) \
        and isinstance(oracle.A, np.ndarray) and len(X.shape) == 2


class _Eigenpairs:
    """The preconditioners' eigenpairs (:func:`_top_eigenpairs`), kept in ``cache`` (a
    dict, or None) for the next fit on the same data:
    keyed by X's shape, dtype and type, X r for a fixed random r (any change of X changes
    it but for changes orthogonal to r, of probability 0), the weights w and the rank. A CV
    grid of 8 alphas x 5 folds rebuilt them 41 times (9 of its 13 s)."""

    def __init__(self, cache=None):
        self.cache = cache

    def __call__(self, Xm, w, k):
        key = None
        if self.cache is not None:
            r = np.random.default_rng(12345).standard_normal((Xm.shape[1], 1))
            key = (Xm.shape, str(Xm.dtype), type(Xm).__name__, k,
                   np.asarray(Xm @ r.astype(Xm.dtype)).ravel(), np.array(w))
            old = self.cache.get(("eigenpairs", str(Xm.dtype)))
            if old is not None and len(old[0]) == len(key) and all(
                    np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b
                    for a, b in zip(old[0], key)):
                return old[1]
        out = _top_eigenpairs(Xm, w, k)
        if self.cache is not None:  # one entry per precision: float32 and float64 phases
            self.cache[("eigenpairs", str(Xm.dtype))] = (key, out)
        return out

    def cached(self, Xm, w, k):
        """Whether __call__ would return kept eigenpairs (no range finder)."""
        entry = None if self.cache is None else self.cache.get(("eigenpairs", str(Xm.dtype)))
        if entry is None:
            return False
        old = entry[0]
        return old[0] == Xm.shape and old[1] == str(Xm.dtype) and old[3] == k \
            and np.array_equal(old[5], w)


def _affordable_rank(X, rank):
    """The preconditioner's rank: ``rank``, at most min(n, d), and at most the values X
    stores per column, so that its d x (rank + 10) basis is no larger than X (sparse X
    of 2^20 columns and 50 values a row: 5.5 GB and 63 s at rank 100, where scipy's
    L-BFGS-B fitted in 3 s); where that cap leaves fewer than 10, none is built."""
    n, d = X.shape
    k = int(min(rank, d, n))
    inner = X.X if isinstance(X, CenteredSparse) else X
    if scipy.sparse.issparse(inner) and inner.nnz // max(d, 1) < k:
        k = int(inner.nnz // max(d, 1))
        k = k if k >= 10 else 0
    return k


def _eigenpairs_after(X, k, T):
    """After how many iterations on the diagonal preconditioner (:class:`_DiagonalInverse`)
    the L-BFGS solvers build the eigenpairs (0: at once). Dense X: at once (a lazy start
    measured 2.5-3x slower on 20,000 x 1,000 with five columns 1,000x the others and 1-4
    sub-tasks, its range finder costing only ~15-20 iterations there; review). Sparse X,
    as in ski rental: once the iterations have cost what the range finder costs, ~5
    products with X of k + 10 columns against two of T per iteration (an easy sparse
    10,000 x 100,000 fit certifies in 2-7 iterations, 0.14-0.23 s, where building them
    first took 4.5 s); at once where they cost under ~1e8 flops."""
    if isinstance(X, (np.ndarray, CenteredDense)):
        return 0
    inner = X.X if isinstance(X, CenteredSparse) else X
    if 10.0 * inner.nnz * (k + 10) < 1e8:  # a few milliseconds: at once
        return 0
    return int(math.ceil(5.0 * (k + 10) / (2.0 * T)))


class _DiagonalInverse:
    """P^-1 for P = diag(X^T diag(w) X) (x) I + I (x) diag(q) on (d + nb, T) arrays (the
    Jacobi preconditioner: entry (j, t) gets 1 / (D_j + q_t); an intercept row ``sb``):
    the L-BFGS solvers' stand-in before (or instead of) the eigenpairs. Unlike a scalar it
    puts features of very different scales on one footing (sparse X with five columns
    1,000x the others: a scalar one left the gap at 0.79 after 2,000 iterations; review)."""

    def __init__(self, Xm, w, q, sb, nb):
        inner = Xm.X if isinstance(Xm, CenteredSparse) else Xm
        if scipy.sparse.issparse(inner):
            # in float64: the centring below cancels (a float32 column of mean 1e5 and unit
            # spread gave 2802 for 524; review)
            inner = inner.astype(np.float64)
            sq = np.asarray(inner.multiply(inner).T @ w).ravel()
            if isinstance(Xm, CenteredSparse):  # sum w (x - m)^2
                m = Xm.mean
                sq = sq - 2.0 * m * np.asarray(inner.T @ w).ravel() + m * m * w.sum()
        elif isinstance(Xm, CenteredDense):
            sq = Xm.weighted_squares(w)
        else:
            sq = np.einsum("ij,ij,i->j", Xm, Xm, w.astype(Xm.dtype), dtype=np.float64)
        self.D = np.maximum(sq, 1e-12 * max(float(sq.max()), 1e-300))
        self.sb, self.nb, self.d = sb, nb, len(self.D)
        self.set_q(q)

    def set_q(self, q):
        self.S = 1.0 / (self.D[:, None] + np.asarray(q, dtype=np.float64)[None, :])

    def __call__(self, G):
        out = np.empty_like(G)
        out[:self.d] = self.S * G[:self.d]
        if self.nb:
            out[self.d] = self.sb * G[self.d]
        return out

    def quadratic(self, G):
        Gw = G[:self.d]
        out = (self.S * Gw * Gw).sum(axis=0)
        return out + self.sb * G[self.d] * G[self.d] if self.nb else out


def _separable(oracle, Q):
    """Whether the problem splits into one independent smooth problem per column: an
    element-wise loss on CPU data (:func:`_element_wise_on_cpu`) and a diagonal, positive
    definite Q (the ridge penalty). Then :func:`_lbfgs_columns` solves it."""
    if not _element_wise_on_cpu(oracle):
        return False
    Q = np.asarray(to_numpy(Q), dtype=np.float64)
    return Q.size > 0 and np.count_nonzero(Q - np.diag(np.diag(Q))) == 0 \
        and float(np.diag(Q).min()) > 0


def _modal(oracle, Q):
    """Whether :func:`_lbfgs_modes` applies: the conditions of :func:`_separable` but any
    symmetric positive definite Q (graph, mean: the tasks coupled through Q only), and
    softmax tasks allowed (their K columns are coupled anyway: ridge with
    ``loss="multinomial"`` comes here too)."""
    if not _element_wise_on_cpu(oracle, softmax=True):
        return False
    Q = np.asarray(to_numpy(Q), dtype=np.float64)
    if Q.size == 0 or not np.all(np.isfinite(Q)):
        return False
    mu = np.linalg.eigvalsh((Q + Q.T) / 2)
    return float(mu.min()) > 1e-12 * max(float(mu.max()), 0.0)


class _LowRankInverse:
    """P^-1 for P = M (x) I + I (x) diag(q) on (d + nb, T) arrays, M = V diag(lam) V^T +
    lam_tail (I - V V^T) (the top eigenpairs of X^T diag(w) X and a constant beyond):
    column t gets (M + q_t I)^-1, exact on span(V); an intercept row (nb = 1) gets
    ``sb``. The initial inverse Hessian of the preconditioned L-BFGS solvers."""

    def __init__(self, V, lam, lam_tail, q, sb, nb):
        self.V, self.lam, self.lam_tail, self.sb, self.nb = V, lam, lam_tail, sb, nb
        self.d = V.shape[0]
        self.set_q(q)

    def set_q(self, q):
        self.s2 = 1.0 / (self.lam[:, None] + q[None, :])
        self.s02 = 1.0 / (self.lam_tail + q)

    def __call__(self, G):
        d, V = self.d, self.V
        Gw = G[:d]
        VG = (Gw.T @ V).T  # the transposed products keep G's Fortran order: 2x faster
        out = np.empty_like(G)
        out[:d] = self.s02 * Gw
        out[:d] += (((self.s2 - self.s02) * VG).T @ V.T).T
        if self.nb:
            out[d] = self.sb * G[d]
        return out

    def quadratic(self, G):
        """The column sums of G * P^-1 G, from V^T G alone."""
        d, V = self.d, self.V
        Gw = G[:d]
        VG = (Gw.T @ V).T
        out = self.s02 * _cdot(Gw, Gw) + ((self.s2 - self.s02) * VG * VG).sum(axis=0)
        return out + self.sb * G[d] * G[d] if self.nb else out


class _ModalInverse:
    """P^-1 for P = M (x) I + I (x) Q on (d + nb, T) arrays (tasks coupled through Q =
    U diag(mu) U^T): ``inner`` (a :class:`_LowRankInverse` or :class:`_DiagonalInverse`
    with q = mu) applied in Q's eigenbasis, G -> inner(G U) U^T; two T x T products
    around it."""

    couples = True  # :func:`_two_loop` scales it as D P^-1 D

    def __init__(self, inner, U):
        self.inner, self.U = inner, U

    def __call__(self, G):
        return np.asfortranarray(self.inner(np.asfortranarray(G @ self.U)) @ self.U.T)

    def quadratic(self, G):
        """Column t of the sums G * P^-1 G (their total is G's P^-1 norm)."""
        return _cdot(G, self(G))


def _null_intercepts(kind, Y, A, block=1 << 16):
    """The intercepts minimising F(0, b) (W = 0 leaves them decoupled): the weighted mean
    of each column (squared loss) or the log-odds of its weighted class counts (logistic;
    0 when a column has one class only). Y is 0 where A is; ``kind`` as in
    :func:`_column_loss`. The sums by blocks of ``block`` entries of rows: no (n, T)
    temporary (one was the peak of the default classifier on 8,000 x 256 with 276
    sub-tasks once its iterations kept no map)."""
    n, T = Y.shape
    sq = np.full(T, kind == "squared") if isinstance(kind, str) \
        else np.asarray(kind, dtype=bool)
    AY, SA, P, N = (np.zeros(T) for _ in range(4))
    step = max(1, block // max(T, 1))
    for i in range(0, n, step):
        Yb, Ab = Y[i:i + step], A[i:i + step]
        if sq.any():
            AY += (Ab * Yb).sum(axis=0)
            SA += Ab.sum(axis=0)
        if not sq.all():
            P += np.where(Yb > 0, Ab, 0.0).sum(axis=0)
            N += np.where(Yb < 0, Ab, 0.0).sum(axis=0)
    ok = (P > 0) & (N > 0)
    return np.where(sq, AY / np.where(SA > 0, SA, 1.0),
                    np.where(ok, np.log(np.where(ok, P, 1.0) / np.where(ok, N, 1.0)), 0.0))


def _quadratic_gradient(Xm, G, x, q, nb):
    """The gradient at x = [W; b] (Fortran-ordered (d + nb, T)) of the loss with dL/dZ = G
    plus 1/2 sum_t q_t ||w_t||^2 (q a vector; or, q a (T, T) matrix, 1/2 tr(W q W^T)):
    [X^T G + q W (W q); column sums of G], in x's order (for dense X as (G^T X)^T: 1.6x
    faster than X^T G with OpenBLAS here)."""
    d = x.shape[0] - nb
    g = np.empty_like(x)
    if isinstance(Xm, np.ndarray):
        g[:d] = (G.T.astype(Xm.dtype) @ Xm).T
    else:
        XT = Xm.T
        g[:d] = XT @ G.astype(XT.dtype, copy=False)
    g[:d] += x[:d] @ q if np.ndim(q) == 2 else q * x[:d]
    if nb:
        g[d] = G.sum(axis=0)
    return g


def _two_loop(g, S, Yl, R, gam, h0, dot):
    """The L-BFGS two-loop recursion (Nocedal, Math. Comp. 1980): H g from the curvature
    pairs (S, Yl) with R = 1 / s^T y and the initial inverse Hessian D h0 D, D = diag(gam)
    ^1/2 (gam * h0 where h0 acts on each column alone). ``dot`` is the inner product:
    column sums (one recursion per column, R and gam per column: block-diagonal BFGS
    updates, which keep H symmetric positive definite over any such h0, also one that
    couples the columns) or their total (one recursion for all)."""
    r = g.copy(order="F")
    coefs = []
    for s_, y_, rho in zip(reversed(S), reversed(Yl), reversed(R)):
        a = rho * dot(s_, r)
        r -= a * y_
        coefs.append(a)
    if getattr(h0, "couples", False):
        sg = np.sqrt(gam)
        r = sg * h0(sg * r)
    else:  # the same where h0 acts on each column alone
        r = gam * h0(r)
    for (s_, y_, rho), a in zip(zip(S, Yl, R), reversed(coefs)):
        r += (a - rho * dot(y_, r)) * s_
    return r


def _cdot(a, b):
    """Column dot products: (a * b).sum(axis=0) without the temporary (a and b are
    Fortran-ordered in :func:`_lbfgs_columns`, so every column is one contiguous pass)."""
    return np.einsum("ij,ij->j", a, b)


def _column_kind(oracle):
    """The element-wise loss of an oracle's columns for :func:`_column_loss`: "squared",
    "logistic", or (a model of mixed task types) a boolean array, True on the squared
    columns."""
    return np.asarray(to_numpy(oracle.sq), dtype=bool) if oracle.kind == "mixed" \
        else oracle.kind


def _lbfgs_inputs(oracle, single, tol):
    """What the preconditioned L-BFGS solvers take from an oracle: A and Y in float64 (Y
    0 where unlabelled), the columns' loss kind (:func:`_column_kind`), the row weights w
    = mean_t c_t A_t of the preconditioner (c_t each column's curvature bound: 1 squared,
    1/4 logistic, 1/2 softmax) and the X the iterations use: a float32 copy of dense X
    when ``single`` (the caller's data came in float32) and tol >= 1e-6, else X."""
    X = oracle.X
    A = np.asarray(oracle.A, dtype=np.float64)
    # a classifier's int8 targets as they are (the same values; the losses read them)
    Y = oracle.Y if isinstance(oracle.Y, np.ndarray) and oracle.Y.dtype == np.int8 \
        else np.asarray(oracle.Y, dtype=np.float64)
    if not getattr(oracle, "all_labelled", False):  # (no (n, T) copy when all are)
        Y = np.where(A > 0, Y, Y.dtype.type(0))
    # (by blocks of rows: the whole product was an (n, T) temporary, X's size with many
    # sub-tasks; each row's mean is the same)
    curv = np.asarray(oracle._col_curv, dtype=np.float64)
    w = np.empty(A.shape[0])
    step = _column_rows(A.shape[1])
    for i in range(0, A.shape[0], step):
        w[i:i + step] = (A[i:i + step] * curv).mean(axis=1)
    single = bool(single) and tol >= 1e-6 and X.dtype == np.float64 \
        and isinstance(X, (np.ndarray, CenteredDense))
    return A, Y, _column_kind(oracle), w, X.astype(np.float32) if single else X


def _trial(Z, buf, tried, step):
    """The line search's trial point Z + step XP in one buffer: ``buf`` holds XP (``tried``
    None: the first trial, written over XP with the bits of ``_moved(Z, step, XP)``), or
    the last trial Z + tried XP, moved to the new step in place as Z + (step / tried)(buf
    - Z) -- only the columns whose step changed (per-column steps; the others keep their
    bits), a rounding of the size of Z + step XP's own. One (n, T) array fewer alive at
    the line search's peak than Z, XP and a trial (the default classifier on 8,000 x 256
    with 276 sub-tasks: each such array is the size of X), and no product with X again
    after a rejected trial."""
    if tried is None:
        return _moved(Z, step, buf, out=buf)
    if np.ndim(step) == 0:
        if step != tried:
            buf -= Z
            buf *= step / tried if tried else 0.0
            buf += Z
        return buf
    for j in np.flatnonzero(step != tried):  # in place, column by column (no temporaries)
        col = buf[:, j]
        col -= Z[:, j]
        col *= step[j] / tried[j] if tried[j] else 0.0
        col += Z[:, j]
    return buf


def _moved(Z, step, XP, out=None):
    """Z + step XP (step a scalar or per column) written into ``out`` (a trial point of
    the line search that the next trial replaces; None: a new array): the same operations
    as the expression, no temporary."""
    out = np.multiply(XP, step, out=out)
    out += Z
    return out


#: entries of a block of rows in the logistic columns' loss and gradient
#: (:func:`_column_loss`): the temporaries are a block's (256 KB), not (n, T) arrays
COLUMN_BLOCK = 1 << 15


def _column_rows(T):
    """The rows of a block of :data:`COLUMN_BLOCK` entries over T columns (at least 1)."""
    return max(1, COLUMN_BLOCK // max(int(T), 1))


def _column_loss(kind, Z, Y, A, cols=None):
    """Per-column loss values (T,) of the element-wise loss and the parts its gradient
    dL/dZ is made of (:func:`_column_grad`); A = 0 entries, the unlabelled ones, with Y
    set to 0 by the caller, contribute nothing. ``cols``: the columns of Y and A that Z's
    are (None: all; logistic loss takes them a block of rows at a time, no copy of Y and
    A). Logistic: with M = y z and e = exp(-|M|),
    log(1 + exp(-M)) = log1p(e) + max(-M, 0), one exponential per entry for the value and
    the gradient together (``np.logaddexp`` and ``expit`` took 3x as long). ``kind`` a
    boolean array (:func:`_column_kind`): squared loss on its True columns, logistic on
    the others."""
    if not isinstance(kind, str):
        if cols is not None:
            Y, A = Y[:, cols], A[:, cols]
        lv = np.empty(Z.shape[1])
        parts = []
        for name, cols in (("squared", kind), ("logistic", ~kind)):
            lv[cols], part = _column_loss(name, Z[:, cols], Y[:, cols], A[:, cols])
            parts.append(part)
        return lv, tuple(parts)
    if cols is not None and kind == "squared":
        Y, A, cols = Y[:, cols], A[:, cols], None
    if kind == "squared":
        R = Z - Y
        return 0.5 * _cdot(A * R, R), R
    # by blocks of rows: M, log1p(e) and max(-M, 0) are a block's temporaries, e the one
    # (n, T) array made (the whole-array expressions made four more: the ridge classifier
    # on 100,000 x 20 with T = 10 held 10 (n, T) arrays at its peak)
    e = np.empty_like(Z)
    lv = np.zeros(Z.shape[1])
    step = _column_rows(Z.shape[1])
    for i in range(0, Z.shape[0], step):
        rows = slice(i, i + step)
        Yb, Ab = (Y[rows], A[rows]) if cols is None else (Y[rows][:, cols], A[rows][:, cols])
        M = Yb * Z[rows]
        eb = e[rows]
        np.abs(M, out=eb)
        np.negative(eb, out=eb)
        np.exp(eb, out=eb)
        t = np.log1p(eb)
        np.negative(M, out=M)
        t += np.maximum(M, 0.0, out=M)
        lv += _cdot(Ab, t)
    return lv, (Z, e)


REBUILDS = 2  # how often a stalled float64 L-BFGS rebuilds its preconditioner (not for
# squared loss alone, whose curvature the preconditioner has exactly)


def _curvature_now(kind, Z, Y, A, cols=None):
    """The loss's current curvature per row, mean over the columns of A d2l/dz2 at Z (1 on
    squared columns, p (1 - p) on logistic ones): the preconditioner's row weights once
    the bound (1/4) has proved far off (:func:`_lbfgs_columns`); ``cols`` as in
    :func:`_column_loss`."""
    if cols is not None:
        Y, A = Y[:, cols], A[:, cols]
    if not isinstance(kind, str):
        c = np.ones(Z.shape)
        M = Y[:, ~kind] * Z[:, ~kind]
        e = np.exp(-np.abs(M))
        c[:, ~kind] = e / (1.0 + e) ** 2
    elif kind == "squared":
        c = np.ones(Z.shape)
    else:
        e = np.exp(-np.abs(Y * Z))
        c = e / (1.0 + e) ** 2
    return (A * c).mean(axis=1)


def _column_grad(kind, parts, Y, A, cols=None):
    """dL/dZ from the parts :func:`_column_loss` returned, made in their place (they are
    spent): A (z - y), or -A y sigmoid(-M) = -A y e / (1 + e) where M = y z >= 0, -A y / (1
    + e) where M < 0 (by blocks of rows, M's sign from Y and Z again); ``cols`` as in
    :func:`_column_loss`."""
    if cols is not None and not (isinstance(kind, str) and kind == "logistic"):
        Y, A, cols = Y[:, cols], A[:, cols], None
    if not isinstance(kind, str):
        G = np.empty(Y.shape)
        for name, cols, part in zip(("squared", "logistic"), (kind, ~kind), parts):
            G[:, cols] = _column_grad(name, part, Y[:, cols], A[:, cols])
        return G
    if kind == "squared":
        return np.multiply(A, parts, out=parts)
    Z, G = parts
    step = _column_rows(G.shape[1])
    for i in range(0, G.shape[0], step):
        rows = slice(i, i + step)
        Yb, Ab = (Y[rows], A[rows]) if cols is None else (Y[rows][:, cols], A[rows][:, cols])
        eb = G[rows]
        r = eb + 1.0
        np.reciprocal(r, out=r)
        np.multiply(eb, r, out=eb)  # e r where M >= 0,
        np.copyto(eb, r, where=(Yb * Z[rows]) < 0)  # r where M < 0
        eb *= Ab * Yb
        np.negative(eb, out=eb)
    return G


def _weighted_gram(X, w, block_bytes=1 << 20):
    """X^T diag(w) X (d, d) in float64 for dense NumPy or :class:`CenteredDense` X (the
    centred matrix), summed over blocks of rows of ~``block_bytes``, made symmetric."""
    d = X.shape[1]
    C = np.zeros((d, d))
    for i, Xb, mean in _row_blocks_of(X, block_bytes=block_bytes, width=d,
                                      out_bytes=block_bytes)():
        Xb = np.asarray(Xb, dtype=np.float64)
        if mean is not None:
            Xb = Xb - mean
        C += Xb.T @ (Xb * w[i:i + Xb.shape[0], None])
    return (C + C.T) / 2


def _top_eigenpairs(Xm, w, k, n_power=2, seed=0):
    """The top ``k`` eigenpairs of X^T diag(w) X by a randomized range finder (Halko,
    Martinsson & Tropp, SIAM Rev. 2011) with ``n_power`` power iterations, and the
    smallest Ritz value of the oversampled basis (a stand-in for the eigenvalues beyond
    k). In Xm's dtype; returns (V (d, k) float64 orthonormal, lam (k,), lam_tail)."""
    n, d = Xm.shape
    kk = max(1, min(k + 10, d, n))
    if kk == d and isinstance(Xm, (np.ndarray, CenteredDense)):
        # the whole spectrum: from X^T diag(w) X itself (d x d, by blocks of rows), in a
        # fifth of the range finder's flops and without its (n, d) product, X's size
        # (the peak of the default classifier on 20,000 x 20 with ten sub-tasks)
        lam, V = np.linalg.eigh(_weighted_gram(Xm, w))
        lam, V = np.maximum(lam[::-1], 0.0), V[:, ::-1]
        k = min(k, d)
        return np.ascontiguousarray(V[:, :k]), lam[:k], float(lam[-1])
    rng = np.random.default_rng(seed)
    sw = np.sqrt(np.maximum(w, 0.0)).astype(Xm.dtype)[:, None]
    w2 = sw * sw
    B = rng.standard_normal((d, kk)).astype(Xm.dtype)
    # the (n, k + 10) products scaled in place: one of them alive at a time beside X
    # (with d = 300 each is 0.37x X; five were alive at once)
    for _ in range(n_power):
        M = Xm @ B
        M *= w2
        B, _ = np.linalg.qr(Xm.T @ M)
        del M
    # X B in Fortran order, for LAPACK to overwrite
    M = (B.T @ Xm.T).T if isinstance(Xm, np.ndarray) else Xm.fortran_product(B) \
        if isinstance(Xm, CenteredDense) else np.asfortranarray(Xm @ B)
    M *= sw
    # its singular values and right vectors from those of its triangular factor, in M's
    # precision, M overwritten (NumPy's SVD of the tall M made a float64 copy and U:
    # four (n, k + 10) arrays, 1.5x a float32 X at d = 300)
    # (mode "raw": M holds the Householder vectors and R comes (k + 10) square; mode "r"
    # returned the triangle of the whole (n, k + 10) array, a copy; review)
    _, R = scipy.linalg.qr(M, mode="raw", overwrite_a=True, check_finite=False)
    del M
    _, sv, Vt = np.linalg.svd(R, full_matrices=False)
    V = (B @ Vt.T).astype(np.float64)
    lam = sv.astype(np.float64) ** 2
    k = min(k, kk)
    return V[:, :k], lam[:k], float(lam[-1])


def _lbfgs_columns(oracle, penalty, alpha, Q, W0, b0, fit_intercept, max_iter, tol,
                   single=False, memory=10, rank=100, eig=None):
    """Preconditioned L-BFGS run separately on every column of a separable problem (see
    :func:`_separable`: element-wise loss, diagonal Q; the ridge penalty), all columns at
    once: one GEMM for X P (the search directions), one for X^T G per iteration, and a
    curvature memory, line search and step per column, as T independent solvers (one
    L-BFGS over all columns at once shares one memory between sub-tasks of different
    curvature and needed 4-7x more iterations). The initial inverse Hessian of the two-loop
    recursion is the inverse of P = X^T diag(c mean_t A_t) X + Q (c the loss's curvature
    bound), exact on the top ``rank`` eigenvectors (a randomized range finder, three
    products with X of ``rank`` + 10 columns) and a constant beyond, scaled per column
    each iteration (s^T y / y^T P^-1 y): on HOG features (2,100 x 2,916, 15 logistic
    sub-tasks, alpha 1e-2) 33 iterations instead of the 335 of scipy's L-BFGS-B on the
    joint problem (41 with rank 50, 26 with rank 200, whose range finder costs more than
    it saves; at alpha = 1/n: 164, 126, 100). Line search: Armijo backtracking per column
    from the unit step; the trial points' X W cost no GEMM (Z + s X P), nor their penalty
    (1/2 q ||x + s p||^2 from three column products), and the accepted point's loss gives
    its gradient. Where an (n, T) array is not small beside X (:func:`_blocked_maps`) no
    map is kept: each trial point's loss and gradient come by blocks of rows
    (:class:`_RowBlockedLoss`), a rejected trial's columns alone made again in a narrower
    pass (all columns again took 1.5x as long on 8,000 x 256 with 276 sub-tasks).

    A column whose gradient share of the gap (with its intercept gradient's, 1/2 g_b^2 /
    sum w) is below thr / (10 T) retires: its point, objective and share are kept, and
    the products with X, the loss and the recursion run on the other columns only (their
    iterations do not depend on it; retired columns add at most thr / 10 to the share).
    Should the certificate then fail, every column comes back, for good, with a fresh
    memory. On the HOG data at alpha = 1/n the active columns fall from 15 to 6 between
    iterations 53 and 126 (at alpha 1e-2: to 9 from iteration 25 of 33).

    Apart from its two GEMMs an iteration is work on (d, T) arrays: kept in Fortran order
    (each column contiguous: the column dot products and updates of the two-loop recursion
    ran 2.5x faster than on C-ordered arrays); with the retired columns this took the time
    of the HOG fit at alpha = 1/n outside the GEMMs from 1.2 s (46%) to 0.7 s (39%, the
    range finder's 0.13 s included; cProfile, 1 thread). Measured and not taken (same data,
    alpha = 1/n, tol 1e-4): a truncated Newton-CG per column (Lin, Weng & Keerthi, JMLR
    2008) with this preconditioner needed ~1,100 Hessian-vector products (12 Newton steps,
    up to 200 CG steps each) where L-BFGS needs 126 iterations of one product pair; the
    preconditioner rebuilt on the current curvature A p (1 - p) (once or twice, shared or
    per column) changed nothing (126-131 iterations): the preconditioned condition number,
    ~1,700 on the slowest columns, is set by the spectrum beyond rank 100 against alpha, not
    by the curvature weights; memory 5, 20, 30: 142, 129, 122.

    The eigenpairs (``eig``: :class:`_Eigenpairs`, kept between the fits of a warm-started
    path) have a rank X can afford (:func:`_affordable_rank`) and, for large sparse X, come
    after a few iterations on a diagonal preconditioner (:func:`_eigenpairs_after`).

    With ``single`` (the caller's data came in float32) and tol >= 1e-6 the iterations
    run on a float32 copy of X (the products with X are memory-bound: half the bytes; the
    data hold no more digits than that) -- not where the loss is taken by blocks of rows,
    whose products are in float64 (see :class:`_RowBlockedLoss`); the stopping test is always the certificate of
    :class:`_Certifier` in float64 at the final point (the same objective and duality gap
    as :func:`lbfgs`), evaluated once the gradient's share of the gap (1/2 sum_t
    ||grad_t||^2 / Q_tt, a lower bound of the gap at the unshrunk dual point) is below the
    threshold. If float32 stalls short of the certificate -- no column can descend, three
    certificates fail, or the gradient's share of the gap has not reached a new low for
    ``STALL`` iterations (float32 rounding of X^T G keeps it above the threshold when a
    few columns of X are large and alpha small) -- the iterations go on in float64. Stalled
    in float64 (the same tests), the preconditioner is rebuilt on the current curvature,
    mean_t A_t p_t (1 - p_t) per row (:func:`_curvature_now`; at most ``REBUILDS`` times,
    with a fresh memory): at a tiny alpha the rows a few large columns nearly separate have
    p (1 - p) ~ 0 where P assumes 1/4, in the very directions the duality gap weighs most
    (sparse 5,000 x 400, five columns 1,000x, alpha 1e-6: 1,989 iterations -> 177, scipy's
    L-BFGS-B 788; on the HOG fits, which do not stall, nothing changes). Retired columns
    that come back keep the rebuilt P (rebuilt again on all columns, squared ones with
    curvature 1 among them, a mixed-type fit took 2,056 iterations instead of 481; review).
    A certificate is first tried once that share is below the threshold, or below
    the rounding floor of the objective when tol is below it (tol = 0)."""
    X = oracle.X
    n, d = X.shape
    T = W0.shape[1]
    q = np.diag(np.asarray(to_numpy(Q), dtype=np.float64)).copy()
    # no (n, T) map kept where those arrays are not small beside X (_RowBlockedLoss); its
    # products are in float64, so no float32 copy of X for the iterations
    blocked = _RowBlockedLoss(oracle, 1 if fit_intercept else 0) \
        if _blocked_maps(oracle, T) else None
    A, Y, kind, w, Xm = _lbfgs_inputs(oracle, single and blocked is None, tol)
    cert = _Certifier(oracle, penalty, alpha, Q, tol, np.float64)
    thr = cert.tol * cert.scale
    STALL = 25
    sum_w = float(w.sum())

    sb = 1.0 / sum_w if sum_w > 0 else 1.0
    nb = 1 if fit_intercept else 0

    eig = _Eigenpairs() if eig is None else eig
    k = _affordable_rank(X, rank)

    def preconditioner(Xm):  # P^-1, per (active) column
        if k == 0:
            return _DiagonalInverse(Xm, w, q, sb, nb)
        V, lam, lam_tail = eig(Xm, w, k)
        return _LowRankInverse(V, lam, lam_tail, q, sb, nb)

    lazy = 0 if k == 0 or eig.cached(Xm, w, k) else _eigenpairs_after(X, k, T)
    built = lazy == 0
    h0 = preconditioner(Xm) if built else _DiagonalInverse(Xm, w, q, sb, nb)

    def matmul(M, B):
        return M @ B.astype(M.dtype, copy=False)

    def gradient(x, G):
        return _quadratic_gradient(Xm, G, x, q, nb)

    def evaluate(x, Z):  # (Z unused by blocks: the loss at x)
        if blocked is not None:
            lv, g = blocked.columns(Xm, x, kind, Y, A, active_cols())
            g[:d] += q * x[:d]
            return lv + 0.5 * q * _cdot(x[:d], x[:d]), g
        lv, parts = _column_loss(kind, Z, Y, A, active_cols())
        f = lv + 0.5 * q * _cdot(x[:d], x[:d])
        return f, gradient(x, _column_grad(kind, parts, Y, A, active_cols()))

    cols = np.arange(T)  # the active columns (retirement below)

    def active_cols():  # Y's and A's columns of the active ones (None: all)
        return None if len(cols) == T else cols

    # the iterates, directions and curvature pairs are (d + nb, T) arrays in Fortran order:
    # their per-column dot products and updates then run over contiguous memory
    x = np.zeros((d + nb, T), order="F")
    x[:d] = W0
    if nb:
        x[d] = b0

    def linear(x):
        if blocked is not None:  # (no map: evaluate takes x)
            return None
        Z = matmul(Xm, x[:d])
        if nb:
            Z += x[d]  # in place: no second (n, T) array
        return Z

    def in_float64(x):
        """Go on from x in float64: X and float64 eigenvectors (float32 ones are too rough
        on an ill-conditioned X to give useful directions); returns Z, f, g there."""
        nonlocal Xm, h0, built
        Xm = X
        h0, built = preconditioner(Xm), True
        Z = linear(x)
        return (Z,) + tuple(evaluate(x, Z))

    Z = linear(x)
    f, g = evaluate(x, Z)
    trace = [float(f.sum())]
    S, Yl, R = [], [], []
    gam = np.ones(T)
    converged, failed_certs, it = False, 0, 0
    best_share, since_best, rebuilds = math.inf, 0, 0
    # the active columns; a retired one keeps its point in x_all, its f and its share
    # (Y and A stay whole: the loss takes the active columns a block of rows at a time,
    # where copies of them were two more (n, T) arrays beside the originals)
    x_all, q_all = x.copy(order="F"), q
    kind_all = kind
    f_done, share_done, retire = 0.0, 0.0, T > 1
    active = []  # the number of active columns after each iteration

    final = {}

    def full(x):  # the point of all columns
        x_all[:, cols] = x
        return x_all

    def certify(x):
        x = full(x)
        W, b = x[:d].copy(), (x[d].copy() if nb else np.zeros(T))
        if blocked is not None:
            return blocked.certify(cert, W, b, final)
        lin = oracle.linear(W, b)
        fx, aux = oracle.value(W, b, lin)
        final.update(W=W, b=b, F=fx)
        # (the dual point is made from the loss gradient alone, in its place)
        lin = None
        return cert(W, b, lin, aux, fx, overwrite=True)

    for it in range(1, max_iter + 1):
        # two-loop recursion, every column on its own (column sums of products)
        p = -_two_loop(g, S, Yl, R, gam, h0, _cdot)
        gp = _cdot(g, p)
        bad = ~(gp < 0)
        if bad.any():  # not a descent direction (rounding): the preconditioned gradient
            p[:, bad] = -h0(g)[:, bad]
            gp = _cdot(g, p)
        # the penalty along the ray: 1/2 q ||x + s p||^2 from three column products
        xx, xp_, pp = _cdot(x[:d], x[:d]), _cdot(x[:d], p[:d]), _cdot(p[:d], p[:d])
        step = np.where(gp < 0, 1.0, 0.0)
        if blocked is None:
            XP = linear(p)  # Z moves by XP per unit step (no GEMM for the trial points)
            Zn, XP, parts, tried = XP, None, None, None  # the trials in XP's buffer (_trial)

        def trial(step, lv, parts):
            """The loss at x + step p and its parts (by blocks: its gradient), the columns
            whose step changed made again (by blocks: those alone, in a narrower pass)."""
            nonlocal Zn, tried
            if blocked is None:
                Zn, tried = _trial(Z, Zn, tried, step), step
                return _column_loss(kind, Zn, Y, A, active_cols())
            if lv is None:
                return blocked.columns(Xm, x + step * p, kind, Y, A, active_cols())
            sub = np.flatnonzero(step != tried)
            if sub.size == 0:
                return lv, parts
            lv_r, g_r = blocked.columns(
                Xm, np.asfortranarray((x + step * p)[:, sub]),
                kind if isinstance(kind, str) else kind[sub], Y, A, cols[sub])
            lv[sub], parts[:, sub] = lv_r, g_r
            tried = step
            return lv, parts
        lv = parts = None
        for _ in range(40):
            if blocked is None:
                parts = None  # (a rejected trial's loss parts freed first)
            lv, parts = trial(step, lv, parts)
            tried = step
            fn = lv + 0.5 * q * (xx + step * (2.0 * xp_ + step * pp))
            ok = fn <= f + 1e-4 * step * gp + 4 * np.finfo(float).eps * np.abs(f)
            if ok.all():
                break
            step = np.where(ok, step, 0.5 * step)
        if not ok.all():
            step = np.where(ok, step, 0.0)
            if blocked is None:
                parts = None
            lv, parts = trial(step, lv, parts)
        if not step.any():  # no column can descend further in this precision
            if Xm.dtype != np.float64:
                Z, f, g = in_float64(x)
                S, Yl, R = [], [], []
                continue
            break
        s_ = step * p
        xn = x + s_
        fn = lv + 0.5 * q * _cdot(xn[:d], xn[:d])
        Z = None  # (n, T) array spent: freed before the gradient's
        if blocked is None:
            gn = gradient(xn, _column_grad(kind, parts, Y, A, active_cols()))
        else:  # (the loss part's gradient at xn = x + s_, from the trial's pass)
            gn = parts
            gn[:d] += q * xn[:d]
        parts = None
        y_ = gn - g
        sy = _cdot(s_, y_)
        valid = sy > 1e-12 * np.sqrt(_cdot(s_, s_) * _cdot(y_, y_))
        if valid.any():
            S.append(s_)
            Yl.append(y_)
            R.append(np.where(valid, 1.0 / np.where(valid, sy, 1.0), 0.0))
            yhy = h0.quadratic(y_)
            gam = np.where(valid & (yhy > 0), sy / np.where(yhy > 0, yhy, 1.0), gam)
            if len(S) > memory:
                S.pop(0), Yl.pop(0), R.pop(0)
        x, Z, f, g = xn, (Zn if blocked is None else None), fn, gn
        trace.append(float(f.sum()) + f_done)
        active.append(len(cols))
        if not built and it >= lazy:
            h0, built = preconditioner(Xm), True
            if S:  # each column's scaling in the new metric, from its last pair
                yhy = h0.quadratic(Yl[-1])
                ok = (R[-1] > 0) & (yhy > 0)
                gam = np.where(ok, 1.0 / np.where(ok, R[-1] * yhy, 1.0), gam)
        sh = 0.5 * _cdot(g[:d], g[:d]) / q
        share = float(sh.sum()) + share_done
        best_share, since_best = (share, 0) if share < best_share else \
            (best_share, since_best + 1)
        floor = 4.0 * cert.eps * abs(trace[-1])  # the certificate's rounding floor
        if share > max(thr, floor):  # the gap is at least this: no certificate yet
            stalled = since_best >= STALL
        else:
            Z = Zn = None  # (the certificate makes its own map; Z again should it fail)
            if certify(x):
                converged = True
                break
            Z = linear(x)
            failed_certs += 1
            stalled = failed_certs >= 3
            if len(cols) < T:  # a retired column may hold the gap up: all back, for good
                x = full(x).copy(order="F")
                cols, q, retire = np.arange(T), q_all, False
                kind = kind_all
                h0.set_q(q)
                Z = linear(x)
                f, g = evaluate(x, Z)
                S, Yl, R, gam = [], [], [], np.ones(T)
                f_done = share_done = 0.0
        if stalled and Xm.dtype != np.float64:
            # float32 gradients cannot resolve the gap asked for
            Z, f, g = in_float64(x)
            S, Yl, R = [], [], []
            best_share, since_best = math.inf, 0
        elif stalled and rebuilds < REBUILDS and not (isinstance(kind, str)
                                                     and kind == "squared"):
            # stalled in float64: the curvature bound (1/4) can be far off (nearly separable
            # rows, p(1 - p) ~ 0, at a tiny alpha): the preconditioner on the current curvature
            rebuilds += 1
            w = _curvature_now(kind, Z, Y, A, active_cols()) if blocked is None \
                else blocked.curvature(Xm, x, kind, Y, A, active_cols())
            sum_w = float(w.sum())
            sb = 1.0 / sum_w if sum_w > 0 else 1.0
            h0, built = preconditioner(Xm), True
            h0.set_q(q)
            S, Yl, R, gam = [], [], [], np.ones(len(cols))
            best_share, since_best, failed_certs = math.inf, 0, 0
        if retire:
            # a column whose share of the gap (and intercept gradient) is below
            # thr / (10 T) stops: the others' iterations do not depend on it, and the
            # products with X run on fewer columns
            done = sh + (0.5 * sb * g[d] * g[d] if nb else 0.0) <= thr / (10 * T)
            if done.any() and not done.all():
                keep = ~done
                x_all[:, cols[done]] = x[:, done]
                f_done += float(f[done].sum())
                share_done += float(sh[done].sum())
                cols, q = cols[keep], q[keep]
                kind = kind if isinstance(kind, str) else kind[keep]
                x, g = np.asfortranarray(x[:, keep]), np.asfortranarray(g[:, keep])
                Z = Z[:, keep] if Z is not None else None
                f, gam = f[keep], gam[keep]
                S = [np.asfortranarray(v[:, keep]) for v in S]
                Yl = [np.asfortranarray(v[:, keep]) for v in Yl]
                R = [v[keep] for v in R]
                h0.set_q(q)
    if not converged:
        converged = certify(x)
    return Result(W=final["W"], b=final["b"], n_iter=max(it, 1), converged=bool(converged),
                  trace=trace, objective=float(final["F"]), dual_gap=cert.gap,
                  scale=cert.scale, active=active)




class _CompensatedSum:
    """Neumaier's compensated sum (as ``csrc/include/mtlclassic/sum.h``) of floats, or of
    arrays element-wise: the blocks' loss values summed to about 2 eps of the total, where a
    running sum's rounding grows with the blocks' count (FISTA's sufficient-decrease test
    compares two such sums to a few ulps)."""

    def __init__(self):
        self.sum, self.carry = 0.0, 0.0

    def add(self, x):
        s = self.sum
        t = s + x
        if np.ndim(t) == 0:
            t = float(t)
            self.carry += (s - t) + x if abs(s) >= abs(x) else (x - t) + s
        else:
            self.carry = self.carry + np.where(np.abs(s) >= np.abs(x), (s - t) + x,
                                               (x - t) + s)
        self.sum = t

    def value(self):
        # (an overflowed sum is returned as it is: its carry, inf - inf, is NaN)
        if np.ndim(self.sum) == 0:
            return self.sum + self.carry if math.isfinite(self.sum) else self.sum
        return np.where(np.isfinite(self.sum), self.sum + self.carry, self.sum)


class _RowBlockedLoss:
    """The loss part of an element-wise :class:`DataOracle` on the CPU (squared and / or
    logistic columns, no softmax task) evaluated a block of X's rows at a time: Z_b = X_b W
    + b, the fused native loss on it, X_b^T G_b summed -- no (n, T) array. Where the
    sub-tasks are about as many as the features, each (n, T) array is X's size, and the
    maps :func:`_lbfgs_modes` kept (the iterate's, the line search's trial and its loss
    gradient) were 3x X at the peak of the default classifier on 8,000 x 256 with 276
    sub-tasks. Per trial point the pass costs both products with X (the kept maps paid one
    per iteration, X P, and one per accepted step, X^T G; a rejected trial costs one more
    here), each block's X read twice while it is in cache.

    Every trial's map is made afresh, so its rounding is not the same from one trial to
    the next, as that of the kept maps' Z + s X P was: the products are taken in float64
    (float32 products made the trial losses jump by 1e-9 and the line search backtrack 13
    times an iteration -- review), and the squared columns' maps and targets are both
    shifted by the targets' weighted mean mu (Z - mu against y - mu: the same residuals,
    the same loss and gradient), so that targets offset by 1e10 do not put their rounding,
    1e10 eps, into every trial (a mixed-type fit stalled at tol 1e-10 there).

    :meth:`certificate` gives the duality gap's dual point by blocks as well: the column
    sums that make the loss gradient feasible for free intercepts (:meth:`DataOracle.
    dual_point`: squared columns less A c, logistic columns' larger sign part shrunk) in
    a first pass, X^T G and L*(G) of the feasible G in a second (one product more than
    the kept maps' certificate; smooth penalties only, whose dual point is not rescaled)."""

    def __init__(self, oracle, nb, block_bytes=1 << 22):
        self.oracle, self.nb = oracle, nb
        self.T = oracle.Y.shape[1]
        # blocks of X of at most block_bytes, their maps of at most 1 MB and 1/32 of X's
        # bytes (at least 64 KB: below, each block's Python calls cost more than the
        # product), so that the few block-sized temporaries stay small beside X
        self.block_bytes = block_bytes
        self.map_bytes = int(min(1 << 20, max(1 << 16, _data_bytes(oracle.X) // 32)))
        self.sq = np.full(self.T, oracle.kind == "squared") if oracle.kind != "mixed" \
            else np.asarray(to_numpy(oracle.sq), dtype=bool)
        # the squared columns' shift (see above; 0 on the logistic columns, whose targets
        # stay +-1)
        self.mu = np.where(self.sq, to_numpy(oracle._target_means()), 0.0) \
            if self.sq.any() else None
        # the loss gradient written in Z_b's place where the loss allows (native passes)
        self.in_place = bool(getattr(oracle.loss, "in_place", False))

    @staticmethod
    def applies(oracle):
        """Whether the loss can be evaluated by blocks of rows: an element-wise loss on
        CPU data with no softmax task (:func:`_element_wise_on_cpu`), and X blocks of
        rows can be taken from (:func:`_row_blocks_of`)."""
        return _element_wise_on_cpu(oracle) and _row_blocks_of(oracle.X) is not None

    def maps(self, X, x, cols=None):
        """(rows, X_b, mean, Z_b) over blocks of X's rows (mean: what X_b is centred by,
        None if not) at x = [W; b] (d + nb, T'): Z_b = X_b W + b - mu (mu of the columns
        ``cols`` of the targets, None: all) in float64, C-contiguous."""
        d = x.shape[0] - self.nb
        W = x[:d]
        b = x[d] if self.nb else 0.0
        if self.mu is not None:
            b = b - (self.mu if cols is None else self.mu[cols])
        blocks = _row_blocks_of(X, block_bytes=self.block_bytes, width=x.shape[1],
                                out_bytes=self.map_bytes)
        for i, Xb, mean in blocks():
            Zb = Xb @ W  # (float32 blocks: converted, a product in float64)
            if not (isinstance(Zb, np.ndarray) and Zb.dtype == np.float64
                    and Zb.flags.c_contiguous):
                Zb = np.ascontiguousarray(Zb, dtype=np.float64)
            Zb += b if mean is None else b - mean @ W
            yield slice(i, i + Zb.shape[0]), Xb, mean, Zb

    def _targets(self, Y, rows):
        """Y's block of rows, less mu where the squared columns are shifted."""
        return Y[rows] if self.mu is None else Y[rows] - self.mu

    def block_loss(self, Zb, Yb, Ab):
        """The oracle's loss on a block (G_b in Z_b's place where the loss allows), on as
        many of its threads as the block has 65,536 entries for: each native call starts
        its threads, and a review found two threads on the blocks' 16,000 entries 1.5x
        slower than one (the bits do not depend on the count)."""
        kw = {}
        n_threads = getattr(self.oracle.loss, "n_threads", None)
        if n_threads is not None:
            kw["n_threads"] = max(1, min(int(n_threads), Zb.size >> 16))
        if self.in_place:
            return self.oracle.loss(Zb, Yb, Ab, out=Zb, **kw)
        return self.oracle.loss(Zb, Yb, Ab, **kw)

    def _passes(self, X, x, loss=None, cols=None):
        """(rows, X_b, mean, loss, G_b) over the blocks of :meth:`maps`: the loss of Z_b
        and G_b = dL/dZ_b, of the oracle's loss (G_b in Z_b's place where the loss
        allows) or of ``loss(Z_b, rows) -> (loss, G_b)``."""
        o = self.oracle
        for rows, Xb, mean, Zb in self.maps(X, x, cols):
            if loss is not None:
                lv, Gb = loss(Zb, rows)
            else:
                lv, Gb = self.block_loss(Zb, self._targets(o.Y, rows), o.A[rows])
            Zb = None
            yield rows, Xb, mean, lv, Gb

    def _gradient(self, X, x, scale=None, loss=None, cols=None):
        """(loss, [X^T G; 1^T G] Fortran-ordered (d + nb, T')) at x (``loss`` as in
        :meth:`_passes`; its values summed over the blocks, per column where they are
        per column); ``scale(G_b, rows)`` (optional) changes each block's G first, in
        place or by returning another array."""
        d, T = x.shape[0] - self.nb, x.shape[1]
        sparse = scipy.sparse.issparse(getattr(X, "X", X))
        acc = np.zeros((d, T)) if sparse else np.zeros((T, d))
        colsum = np.zeros(T)
        f, centre = _CompensatedSum(), None
        for rows, Xb, mean, lv, Gb in self._passes(X, x, loss, cols):
            f.add(lv)
            if scale is not None:
                Gb = scale(Gb, rows)
            # X_b^T G_b: (G_b^T X_b) for dense blocks, one pass each
            acc += np.asarray(Xb.T @ Gb) if sparse else Gb.T @ Xb
            colsum += Gb.sum(axis=0)
            centre = mean
        g = np.empty((d + self.nb, T), order="F")
        g[:d] = acc if sparse else acc.T
        if centre is not None:  # (X - 1 m^T)^T G = X^T G - m 1^T G
            g[:d] -= np.multiply.outer(centre, colsum)
        if self.nb:
            g[d] = colsum
        return f.value(), g

    def evaluate(self, X, x):
        """(loss, its gradient w.r.t. x = [W; b]: [X^T G; 1^T G], Fortran-ordered (d + nb,
        T)); products in float64 whatever X's dtype."""
        lv, g = self._gradient(X, x)
        return float(lv), g

    def columns(self, X, x, kind, Y, A, cols=None):
        """(per-column loss (T',), [X^T G; 1^T G]) at x (d + nb, T') of the element-wise
        loss of :func:`_column_loss` on the columns ``cols`` of Y and A (None: all), as
        :func:`_lbfgs_columns` evaluates it."""
        def loss(Zb, rows):
            Yb, Ab = self._targets(Y, rows), A[rows]
            lv, parts = _column_loss(kind, Zb, Yb, Ab, cols)
            return lv, _column_grad(kind, parts, Yb, Ab, cols)
        return self._gradient(X, x, loss=loss, cols=cols)

    def curvature(self, X, x, kind, Y, A, cols=None):
        """:func:`_curvature_now` at x (n,), by blocks of rows."""
        w = np.empty(X.shape[0])
        for rows, _, _, Zb in self.maps(X, x, cols):
            w[rows] = _curvature_now(kind, Zb, self._targets(Y, rows), A[rows], cols)
        return w

    def certify(self, cert, W, b, final):
        """``cert``'s test (:class:`_Certifier`) at (W, b) from :meth:`certificate` (a
        smooth penalty's: its dual point is not rescaled, s = 1 only); the point and its
        objective F written to ``final``."""
        lv, XtG, lstar = self.certificate(W, b)
        fx = lv + 0.5 * float(np.sum((W @ self.oracle.Q) * W))
        final.update(W=W, b=b, F=fx)
        return cert.at_dual(XtG, lambda s: lstar.get(s, math.inf), fx)

    def stacked(self, W, b):
        """x = [W; b] (d + nb, T), Fortran-ordered, as :meth:`maps` takes it."""
        d, T = W.shape
        x = np.empty((d + self.nb, T), order="F")
        x[:d] = W
        if self.nb:
            x[d] = b
        return x

    def gradient_sums(self, x):
        """(1^T G, sum of G's positive parts, of its negative parts' magnitudes, 1^T A)
        per column of the loss gradient G at x and the loss weights A, in one pass
        without products with X^T."""
        T = x.shape[1]
        sG, sp, sn, sA = (np.zeros(T) for _ in range(4))
        for rows, _, _, _, Gb in self._passes(self.oracle.X, x):
            sG += Gb.sum(axis=0)
            sA += self.oracle.A[rows].sum(axis=0)
            p_, n_ = _part_sums(Gb)
            sp += p_
            sn += n_
        return sG, sp, sn, sA

    def certificate(self, W, b, sums=None, scales=(1.0,), gradient=True):
        """(loss, X^T G, {s: L*(s G)}) at (W, b) on the oracle's X for the feasible dual
        point G of :meth:`DataOracle.dual_point` (L* at each scale s of ``scales``), by
        blocks of rows; with free intercepts the squared columns' sum G y taken as sum G
        (y - mu) (their feasible G's columns sum to 0: see :meth:`DataOracle.
        _target_means`). The column sums that make G feasible (:meth:`gradient_sums`) are
        ``sums`` where the caller has them, else a first pass takes them. ``gradient``
        False: no X^T G (None; one product per block fewer): L* at other scales only.
        Squared columns: L*(s G) = s^2 sum G^2 / (2 A) + s sum G y; logistic columns (G =
        -A y p, p in [0, 1]): sum A (sp log sp + (1 - sp) log(1 - sp))."""
        o = self.oracle
        d, T = W.shape
        x = self.stacked(W, b)
        sq = self.sq
        c = ap = an = None
        if o.fit_intercept:  # the column sums of G, A and G's sign parts
            sG, sp, sn, sA = self.gradient_sums(x) if sums is None else sums
            c = sG / np.where(sA > 0, sA, 1.0)
            ap = np.where(sp > sn, sn / np.where(sp > 0, sp, 1.0), 1.0)
            an = np.where(sn > sp, sp / np.where(sn > 0, sn, 1.0), 1.0)
        scales = tuple(float(s) for s in scales)
        ent = {s: _CompensatedSum() for s in scales}  # L*(s G), summed at each scale s

        def feasible(Gb, rows):  # G made feasible (DataOracle.dual_point); its L* summed
            Ab = o.A[rows]
            Yb = self._targets(o.Y, rows) if o.fit_intercept else o.Y[rows]
            if c is not None:
                if sq.all():
                    Gb -= Ab * c
                elif not sq.any():
                    Gb *= np.where(Gb > 0, ap, an)
                else:
                    Gb = np.where(sq, Gb - Ab * c, Gb * np.where(Gb > 0, ap, an))
            lab = None if o.all_labelled else o.labelled[rows]
            if lab is not None:  # (Y may hold anything where unlabelled)
                Yb = np.where(lab, Yb, 0.0)
            Asafe = Ab if lab is None else np.where(lab, Ab, 1.0)
            if sq.any():  # squared columns: s^2 G^2 / (2 A) + s G y
                for s in scales:
                    t = np.multiply(Gb, Gb)
                    t /= Asafe
                    t *= 0.5 * s * s
                    t += Gb * Yb if s == 1.0 else s * (Gb * Yb)
                    ent[s].add(float(t[:, sq].sum()))
            if not sq.all():
                p = np.multiply(Gb, Yb)
                np.negative(p, out=p)
                p /= Asafe
                np.clip(p, 0.0, 1.0, out=p)
                if lab is not None:
                    p[~lab] = 0.0
                for s in scales:
                    ps = p if s == 1.0 else s * p
                    e = scipy.special.entr(ps)
                    ps = np.subtract(1.0, ps, out=None if ps is p and len(scales) > 1
                                     else ps)
                    e += scipy.special.entr(ps, out=ps)
                    e *= Ab
                    ent[s].add(-float(e[:, ~sq].sum()))
            return Gb

        XtG = None
        if gradient:
            f, g = self._gradient(o.X, x, feasible)
            XtG = np.ascontiguousarray(g[:d])
        else:
            f = _CompensatedSum()
            for rows, _, _, lv, Gb in self._passes(o.X, x):
                f.add(lv)
                feasible(Gb, rows)
            f = f.value()
        return f, XtG, {s: v.value() for s, v in ent.items()}


class _Unformed:
    """The map X W + b of a :class:`RowBlockedOracle` point, never formed: the point
    (W, b) itself, which FISTA's linear combinations of maps combine instead (d x T
    arrays)."""

    __slots__ = ("W", "b")

    def __init__(self, W, b):
        self.W, self.b = W, b

    def __add__(self, other):
        return _Unformed(self.W + other.W, self.b + other.b)

    def __sub__(self, other):
        return _Unformed(self.W - other.W, self.b - other.b)

    def __mul__(self, s):
        return _Unformed(s * self.W, s * self.b)

    __rmul__ = __mul__


class _BlockedAux:
    """What :meth:`RowBlockedOracle.values` knows of a point: W Q, the loss gradient's
    [X^T G; 1^T G] where it was summed (else None: :meth:`RowBlockedOracle.grad` sums
    it), and at a check G's column sums (as :meth:`_RowBlockedLoss.gradient_sums`) and
    ``parts``, (X^T G+, X^T G-) or (X^T G, None), from which the dual point is made."""

    __slots__ = ("WQ", "g", "sums", "parts")

    def __init__(self, WQ, g, sums, parts=None):
        self.WQ, self.g, self.sums, self.parts = WQ, g, sums, parts


class RowBlockedOracle(DataOracle):
    """:class:`DataOracle` for FISTA that keeps no (n, T) array: every evaluation is a
    pass over blocks of X's rows (:class:`_RowBlockedLoss`): Z_b = X_b W + b in float64,
    the fused native loss on it, X_b^T G_b summed. Where the sub-tasks are about as many
    as the features each (n, T) array is X's size, and the four that FISTA kept (the map
    and the loss gradient at the iterate and at the candidate) were 3.8x X at the peak of
    the logistic ``l21`` fit on 8,000 x 256 with 276 sub-tasks.

    FISTA speculates with it (``speculate``, as on Dask blocks): the candidate's value and
    the next extrapolated point's value and gradient come from one pass over X, X_b W_n
    and X_b Y_a (a product more per iteration than kept maps, whose extrapolated map was
    their combination; the extrapolated point's loss and X^T G as before; measured 0-12 %
    slower an iteration). At a gap check the candidate's pass also sums what the dual
    point needs (:meth:`values`' ``check``), so X^T G of the feasible G takes no pass of
    its own; L*(s G) at the penalty's dual scale takes one (a product with X and the loss,
    no X^T). The local Lipschitz bound's curvature weights are kept in float32 (one (n, T)
    float32 array while its power rounds run: an estimate, times 1.05, guarded by the
    backtracking test)."""

    speculate = True
    #: the (n, T) float64 arrays' bytes below which FISTA keeps its maps whatever X's size:
    #: a few MB at most, where the blocks' Python calls cost more than they save (a
    #: review: 900 x 24 with 33 sub-tasks, a CV grid 1.36x slower by blocks)
    MIN_MAP_BYTES = 1 << 20

    def __init__(self, oracle):
        self.__dict__.update(oracle.__dict__)
        self._rows = _RowBlockedLoss(oracle, 1 if oracle.fit_intercept else 0)

    @staticmethod
    def applies(oracle, T):
        """Where FISTA takes the loss by blocks: an element-wise loss on dense CPU data
        (:meth:`_RowBlockedLoss.applies`) whose (n, T) arrays are not small beside X
        (:func:`_blocked_maps`) and not small at all (:attr:`MIN_MAP_BYTES`). Sparse X
        keeps the maps: its blocks of rows are narrow (the maps' rows, not X's bytes, set
        their size), and a review found those fits 1.5-1.6x slower by blocks for 10 %
        less memory."""
        if not isinstance(oracle, DataOracle) or scipy.sparse.issparse(
                getattr(oracle.X, "X", oracle.X)):
            return False
        return 8 * oracle.X.shape[0] * T >= RowBlockedOracle.MIN_MAP_BYTES \
            and _blocked_maps(oracle, T)

    def linear(self, W, b):
        return _Unformed(W, b)

    def values(self, points, check=False):
        """[(f, aux)] at the points (W, b, lin, need_grad), in one pass over the blocks
        of X's rows: each block's products with every point's W while it is in cache;
        [X^T G; 1^T G] summed where ``need_grad``. ``check``: the first point's duality
        gap will be taken (FISTA's candidate at a check): its X^T G+ and X^T G- (the
        loss gradient's positive and negative parts; X^T G alone where no column is
        made feasible by a sign part) and G's column sums are summed as well, from which
        :meth:`dual_point` makes X^T G of the feasible G with no pass of its own."""
        rows_loss = self._rows
        T, nb = self.Y.shape[1], rows_loss.nb
        d = self.X.shape[1]
        k = len(points)
        blocks = _row_blocks_of(self.X, block_bytes=rows_loss.block_bytes, width=k * T,
                                out_bytes=rows_loss.map_bytes)
        sparse = scipy.sparse.issparse(getattr(self.X, "X", self.X))
        mu = rows_loss.mu
        Ws = [np.asarray(W, dtype=np.float64) for W, _, _, _ in points]
        shifts = [np.asarray(b, dtype=np.float64) - (0.0 if mu is None else mu)
                  for _, b, _, _ in points]
        # a row-sparse W (L2,1 iterates): each block's columns of its non-zero rows only,
        # as the kept maps' product (_row_sparse_product; a review found these fits 1.3x
        # slower by blocks with every row: 19 % of the rows non-zero)
        rows_nz = [_nonzero_rows(W) if not sparse else None for W in Ws]
        f = [_CompensatedSum() for _ in range(k)]
        colsum = [np.zeros(T) for _ in range(k)]

        def zeros():
            return np.zeros((d, T)) if sparse else np.zeros((T, d))

        def xt(Xb, Gb):  # X_b^T G_b: (G_b^T X_b) for dense blocks, one pass each
            return np.asarray(Xb.T @ Gb) if sparse else Gb.T @ Xb

        acc = [zeros() if need else None for _, _, _, need in points]
        # the check's sums: G's positive and negative parts (logistic columns made
        # feasible for free intercepts), else G alone
        signs = check and self.fit_intercept and self.kind != "squared"
        sp, sn, sA = np.zeros(T), np.zeros(T), np.zeros(T)
        parts = [zeros(), zeros() if signs else None] if check else None
        centre, moved = None, None
        for i, Xb, mean in blocks():
            if moved is None:  # the centring's share of each point's map (every block's)
                moved = [s if mean is None else s - mean @ W for W, s in zip(Ws, shifts)]
            rows = None
            for j in range(k):
                nz = rows_nz[j]
                Zb = Xb @ Ws[j] if nz is None else Xb[:, nz] @ Ws[j][nz]
                if not (isinstance(Zb, np.ndarray) and Zb.dtype == np.float64
                        and Zb.flags.c_contiguous and Zb.flags.writeable):
                    Zb = np.ascontiguousarray(Zb, dtype=np.float64)
                Zb += moved[j]
                if rows is None:
                    rows = slice(i, i + Zb.shape[0])
                    Yb, Ab = rows_loss._targets(self.Y, rows), self.A[rows]
                    if check:
                        sA += Ab.sum(axis=0)
                lv, Gb = rows_loss.block_loss(Zb, Yb, Ab)
                f[j].add(lv)
                colsum[j] += Gb.sum(axis=0)
                if acc[j] is not None:
                    acc[j] += xt(Xb, Gb)
                if j == 0 and check and signs:
                    Gp = np.maximum(Gb, 0.0)
                    sp += Gp.sum(axis=0)
                    parts[0] += xt(Xb, Gp)
                    Gb -= Gp  # (the negative part, in G's place: G is done with)
                    sn -= Gb.sum(axis=0)
                    parts[1] += xt(Xb, Gb)
                elif j == 0 and check and acc[0] is None:
                    parts[0] += xt(Xb, Gb)
            centre = mean

        def finished(a, s):  # (d, T) of a block sum, less the centring's m s^T
            a = a if sparse else a.T
            return a - np.multiply.outer(centre, s) if centre is not None else a

        out = []
        for j, (W, b, _, need) in enumerate(points):
            WQ = W @ self.Q
            g = None
            if need:
                g = np.empty((d + nb, T), order="F")
                g[:d] = finished(acc[j], colsum[j])
                if nb:
                    g[d] = colsum[j]
            aux = _BlockedAux(WQ, g, None)
            if j == 0 and check:
                aux.sums = (colsum[0], sp, sn, sA)  # (sp, sn: 0 where not summed)
                if signs:
                    aux.parts = (finished(parts[0], sp), finished(parts[1], -sn))
                else:  # X^T G: the gradient's where it was summed
                    aux.parts = (g[:d].copy() if g is not None
                                 else finished(parts[0], colsum[0]), None)
            out.append((f[j].value() + 0.5 * float(np.sum(WQ * W)), aux))
        return out

    def value(self, W, b, lin):
        return self.values([(W, b, lin, False)])[0]

    def grad(self, W, b, lin, aux):
        if aux.g is None:
            _, aux.g = self._rows.evaluate(self.X, self._rows.stacked(W, b))
        d = W.shape[0]
        gb = aux.g[d].copy() if self.fit_intercept else np.zeros_like(b)
        return aux.g[:d] + aux.WQ, gb

    def grad_at_zero_norm(self):
        T = self.Y.shape[1]
        _, g = self._rows.evaluate(self.X, self._rows.stacked(
            np.zeros((self.X.shape[1], T)), np.zeros(T)))
        return math.sqrt(float(np.sum(g * g)))

    def dual_point(self, W, b, lin, aux, overwrite=False):
        """:meth:`DataOracle.dual_point` by blocks of rows. X^T G of the feasible G from
        the parts :meth:`values` summed at a check (the feasible G is the gradient's
        sign parts scaled per column, or G less A c: linear in those parts), else from a
        pass (:meth:`_RowBlockedLoss.certificate`, with L*(G) at s = 1); L*(s G) at
        another s from one more pass (kept)."""
        sums = None if aux is None else aux.sums
        if aux is not None and aux.parts is not None:
            P, N = aux.parts
            XtG, known = P, {}
            if self.fit_intercept:
                sG, sp, sn, sA = sums
                sq = self._rows.sq
                XtG = np.empty_like(P)
                if sq.any():  # X^T (G - A c) = X^T G - (X^T A) c
                    G_all = P if N is None else P + N
                    XtG[:, sq] = G_all[:, sq] - self._xta()[:, sq] * \
                        (sG / np.where(sA > 0, sA, 1.0))[sq]
                if not sq.all():  # X^T (G+ ap + G- an) = (X^T G+) ap + (X^T G-) an
                    ap = np.where(sp > sn, sn / np.where(sp > 0, sp, 1.0), 1.0)
                    an = np.where(sn > sp, sp / np.where(sn > 0, sn, 1.0), 1.0)
                    XtG[:, ~sq] = (P * ap + N * an)[:, ~sq]
        else:
            _, XtG, known = self._rows.certificate(W, b, sums=sums)

        def lstar(s):
            s = float(s)
            if s not in known:
                known.update(self._rows.certificate(W, b, sums=sums, scales=(s,),
                                                    gradient=False)[2])
            return known[s]

        return XtG, lstar

    def _xta(self):
        """X^T A (d, T) of the (centred) X, by blocks of rows; kept (the squared columns'
        feasible dual point with free intercepts)."""
        if getattr(self, "_xta_cache", None) is None:
            d, T = self.X.shape[1], self.Y.shape[1]
            acc, sA, centre = np.zeros((d, T)), np.zeros(T), None
            for i, Xb, mean in _row_blocks_of(self.X, width=T)():
                Ab = np.asarray(self.A[i:i + Xb.shape[0]], dtype=np.float64)
                acc += np.asarray(Xb.T @ Ab)
                sA += Ab.sum(axis=0)
                centre = mean
            if centre is not None:
                acc -= np.multiply.outer(centre, sA)
            self._xta_cache = acc
        return self._xta_cache

    def _curvature_weights(self, lin):
        """A_it l''(z_it) at the point of ``lin`` (an :class:`_Unformed`; a formed map as
        :meth:`DataOracle._curvature_weights`), in float32, by blocks of rows."""
        if not isinstance(lin, _Unformed):
            return DataOracle._curvature_weights(self, lin)
        if self.kind == "squared":
            return self.A
        Wt = np.empty(self.Y.shape, dtype=np.float32)
        sq = self._rows.sq
        for rows, _, _, Zb in self._rows.maps(self.X, self._rows.stacked(lin.W, lin.b)):
            np.clip(Zb, -500.0, 500.0, out=Zb)  # p (1 - p) = 1 / (2 + 2 cosh z)
            np.cosh(Zb, out=Zb)
            Zb *= 2.0
            Zb += 2.0
            np.divide(1.0, Zb, out=Zb)
            Zb *= self.A[rows]
            if sq.any():
                Zb[:, sq] = self.A[rows][:, sq]
            Wt[rows] = Zb
        return Wt

    def exact_lipschitz(self, lin=None):
        if isinstance(lin, _Unformed):  # (a debug check: the map formed)
            lin = DataOracle.linear(self, lin.W, lin.b)
        return DataOracle.exact_lipschitz(self, lin)


def _data_bytes(X):
    """The bytes of X's data: a NumPy array's, a SciPy-sparse matrix's three arrays, or
    the matrix a :class:`CenteredDense` / :class:`CenteredSparse` centres."""
    X = getattr(X, "X", X) if isinstance(X, (CenteredDense, CenteredSparse)) else X
    if scipy.sparse.issparse(X):
        X = X.tocsr() if not hasattr(X, "indptr") else X
        return int(X.data.nbytes + X.indices.nbytes + X.indptr.nbytes)
    return int(getattr(X, "nbytes", 0))


def _blocked_maps(oracle, T, share=0.125):
    """Whether the preconditioned L-BFGS solvers (:func:`_lbfgs_modes`,
    :func:`_lbfgs_columns`) evaluate the loss by blocks of rows (:class:`_RowBlockedLoss`)
    rather than keeping the maps Z = X W + b: where they can and an (n, T) float64 array
    is at least ``share`` of X's bytes -- there the maps set the fit's memory (the default
    classifier on 8,000 x 256 with 276 sub-tasks: 4.4x X, 1.4x by blocks, as fast; 100,000
    x 20 with 10: 7 % faster by blocks). Below, the maps cost nothing beside X and the
    blocks' extra passes may (HOG 2,100 x 2,916, 15 sub-tasks: 5-10 % slower by blocks)."""
    return _RowBlockedLoss.applies(oracle) and maps_not_small(oracle.X, T, share)


def maps_not_small(X, T, share=0.125):
    """Whether an (n, T) float64 array is at least ``share`` of X's bytes: where a fit's
    maps and loss gradients, not X, set its memory."""
    return 8.0 * X.shape[0] * T >= share * _data_bytes(X)


def _per_task_memory(Q, coupling=8.0):
    """Whether :func:`_lbfgs_modes` keeps a curvature memory and scaling per task (else
    one for all): where Q couples the tasks weakly, the condition number of diag(Q)^-1/2 Q
    diag(Q)^-1/2 at most ``coupling``. Per task, the memory follows each task's own loss
    curvature (one-vs-rest sub-tasks of rare and common classes) but its per-task scalings
    bend the coupling of P^-1; one for all keeps Q's modes intact. Measured on HOG
    (2,100 x 2,916, 15 logistic sub-tasks, iterations per task / for all): graph at
    defaults (this number 2.1) 27 / 51, at alpha = 1/n 107 / 131, l2 1e-4 (2.9) 42 / 72;
    mean (T + 1 at l2 = alpha: 16) 151 / 102, alpha 0.1 61 / 34, alpha 1e-3 269 / 299;
    mean at l2 = 3.75, 2.14, 1.5 alpha (5, 8, 11) 61 / 72, 71 / 76, 109 / 82; graph on an
    all-ones relation (31) 121 / 27."""
    dg = np.sqrt(np.clip(np.diag(Q), 1e-300, None))
    nu = np.linalg.eigvalsh(Q / dg[:, None] / dg[None, :])
    return bool(nu[0] > 0 and nu[-1] <= coupling * nu[0])


def _lbfgs_modes(oracle, penalty, alpha, Q, W0, b0, fit_intercept, max_iter, tol,
                 single=False, memory=10, rank=100, eig=None):
    """Preconditioned L-BFGS for a smooth penalty whose Q couples the tasks (graph, mean;
    see :func:`_modal`). The initial inverse Hessian is the inverse of P = (X^T diag(c
    mean_t A_t) X) (x) I + I (x) Q (the loss's curvature bound c as in
    :func:`_lbfgs_columns`): with Q = U diag(mu) U^T it is, in Q's eigenbasis (W U, one
    "mode" per column), that solver's preconditioner per mode with q = mu
    (:class:`_ModalInverse` over :class:`_LowRankInverse`: the top ``rank`` eigenpairs of
    X^T diag(w) X from a randomized range finder, a constant beyond). The iterates stay
    in the tasks' basis. Where Q couples the tasks weakly (:func:`_per_task_memory`: the
    graph penalty at its defaults) the curvature memory and the scaling s^T y / y^T P^-1
    y are per task (block-diagonal BFGS updates over the coupled P^-1,
    :func:`_two_loop`: H stays symmetric positive definite), since the loss's curvature
    differs by task (one-vs-rest sub-tasks of rare and common classes); where it couples
    them strongly (mean at l2 = alpha, an all-ones relation) one memory and one scaling
    serve all tasks, as per-task scalings would bend Q's modes. One step for all tasks
    (Armijo backtracking on the whole objective from the unit step). Per iteration: Z = X W + b
    (one GEMM) and X^T G (one GEMM); the trial points of the line search cost no GEMM.
    Where an (n, T) array is not small beside X (:func:`_blocked_maps`) no map is kept:
    each trial point's loss and gradient come by blocks of rows (:class:`_RowBlockedLoss`,
    the same two GEMMs per accepted unit step, two more per rejected trial), and so does
    the certificate. A
    cold start (W0 = 0, b0 = 0) begins at the intercepts minimising F(0, b)
    (:func:`_null_intercepts`). The eigenpairs (``eig``: :class:`_Eigenpairs`, kept
    between the fits of a warm-started path) have a rank X can afford
    (:func:`_affordable_rank`) and may come after a few iterations on a diagonal
    preconditioner (:func:`_eigenpairs_after`), as in :func:`_lbfgs_columns`.

    Measured on the default classifier (HOG 2,100 x 2,916 float32, 15 one-vs-rest
    sub-tasks, ``MultiTaskClassifier()``: graph, alpha 1e-2, tol 1e-4): 27 iterations per
    task (one memory for all: 51; scipy's L-BFGS-B on the same objective: 274 iterations
    and 7.0 s); at alpha = 1/n 107 (131; scipy 817); ``penalty="mean"`` 102 for all (per
    task 151; scipy 506); ``loss="multinomial"`` 35 (58; a softmax task's K columns share
    one memory, a memory per column took 44 here and hit max_iter elsewhere); mixed types
    50 (129). Tried and dropped: a memory and a scaling per mode (the modes mix tasks of very different
    curvature: 667 iterations at the defaults), the modes scaled by each task's curvature
    at the start (C^1/2 U: 51 and 394 iterations), P's data part scaled per task by the
    secant curvature (M (x) C + I (x) Q: no gain), both memories in one recursion (worse
    than either).

    Stopping as :func:`_lbfgs_columns`: the certificate of :class:`_Certifier`, tried once
    the gradient's share of the gap, 1/2 sum_t ||(grad_W F U)_t||^2 / mu_t (= 1/2
    ||grad_W F||^2 in the Q^-1 norm), is below the threshold; ``single`` (float32 data, tol
    >= 1e-6; not with the loss by blocks of rows, whose products are in float64) iterates
    on a float32 copy of X and goes on in float64 when that stalls (no
    descent, three failed certificates whose gap fell by less than 10 %, or no new low of
    that share for 25 iterations). Unlike :func:`_lbfgs_columns` it does not rebuild its
    preconditioner on the current curvature when stalled in float64: with one P for all
    tasks the mean curvature misled it (review: mixed types, where the squared columns'
    curvature 1 swamps the logistic ones', and one heavy, noisy task among nearly separable
    ones took up to 2-3x the iterations or ended uncertified; each task's curvature shape
    instead left scikit-learn's digits uncertified at 5,000), though it helped elsewhere
    (badly scaled sparse X at alpha 1e-6: 1,555 -> 190 iterations; digits at 1e-6: 1,640 ->
    641). A run that cannot descend in float64 returns unconverged (:func:`lbfgs` then goes
    on with scipy's L-BFGS-B from its point)."""
    X = oracle.X
    n, d = X.shape
    T = W0.shape[1]
    Qn = np.asarray(to_numpy(Q), dtype=np.float64)
    Qs = (Qn + Qn.T) / 2
    mu, U = np.linalg.eigh(Qs)
    # no (n, T) map kept where those arrays are not small beside X (_RowBlockedLoss); its
    # products are in float64, so no float32 copy of X for the iterations
    blocked = _RowBlockedLoss(oracle, 1 if fit_intercept else 0) \
        if _blocked_maps(oracle, T) else None
    A, Y, kind, w, Xm = _lbfgs_inputs(oracle, single and blocked is None, tol)
    cert = _Certifier(oracle, penalty, alpha, Q, tol, np.float64)
    thr = cert.tol * cert.scale
    STALL = 25
    sum_w = float(w.sum())
    nb = 1 if fit_intercept else 0
    # the loss and dL/dZ in the oracle's fused native pass (softmax tasks: its grouped
    # pass; unlabelled entries, A = 0, skipped): only the total is needed here, and the
    # NumPy parts of _column_loss / _column_grad were five (n, T) temporaries at the peak
    # of a tall fit (100,000 x 20, 10 sub-tasks: 7.9x X's size)
    def loss_at(Z):
        lv, G = oracle.loss(Z, oracle.Y, oracle.A)
        return float(lv), G

    def grad_of(parts):
        return parts
    eig = _Eigenpairs() if eig is None else eig
    k = _affordable_rank(X, rank)
    sb = 1.0 / sum_w if sum_w > 0 else 1.0

    def diagonal():
        return _ModalInverse(_DiagonalInverse(Xm, w, mu, sb, nb), U)

    def preconditioner():
        if k == 0:
            return diagonal()
        V, lam, lam_tail = eig(Xm, w, k)
        return _ModalInverse(_LowRankInverse(V, lam, lam_tail, mu, sb, nb), U)

    def linear(x):  # Z = X W + b
        Z = Xm @ x[:d].astype(Xm.dtype, copy=False)
        if nb:
            Z += x[d]
        return Z

    def penalty_of(u, v):  # tr(u Q v^T) = sum_t (u Q)_t . v_t (the penalty is half of u = v)
        return float(_cdot(u[:d] @ Qs, v[:d]).sum())

    def evaluate(x, Z):
        lv, parts = loss_at(Z)
        return lv + 0.5 * penalty_of(x, x), parts

    def gradient(x, parts):
        return _quadratic_gradient(Xm, grad_of(parts), x, Qs, nb)

    def penalised(x, lv, gl):  # the objective and gradient from the loss part's
        gl[:d] += x[:d] @ Qs
        return lv + 0.5 * penalty_of(x, x), gl

    def restart(x):
        if blocked is not None:
            return (None,) + penalised(x, *blocked.evaluate(Xm, x))
        Z = linear(x)
        f, parts = evaluate(x, Z)
        return Z, f, gradient(x, parts)

    per_task = _per_task_memory(Qs)
    # a "task" of the per-task memory: a column, or a softmax task's K columns together
    # (its loss couples them: a memory per column took 640 iterations to 28 on a 10-class
    # multinomial ridge, and hit max_iter at alpha 1e-3; review)
    group = np.arange(T)
    for j, K in oracle.softmax:
        group[j:j + K] = j

    def per_group(c):  # column values -> their group's sum, on every column of the group
        return c if not oracle.softmax else np.bincount(group, weights=c, minlength=T)[group]

    task_sums = per_group if per_task else np.sum  # the memory's inner products, per "task"

    def cdot(a, b):
        return task_sums(_cdot(a, b))
    final = {}

    def certify(x):
        W, b = x[:d].copy(), (x[d].copy() if nb else np.zeros(T))
        for j, K in oracle.softmax if nb else ():
            # a softmax task's intercepts are defined up to a constant (the per-task
            # scalings move their mean): zero mean, as a cold start has
            b[j:j + K] -= b[j:j + K].mean()
        if blocked is not None:
            return blocked.certify(cert, W, b, final)
        lin = oracle.linear(W, b)
        fx, aux = oracle.value(W, b, lin)
        final.update(W=W, b=b, F=fx)
        # (the dual point is made from the loss gradient alone, in its place)
        lin = None
        return cert(W, b, lin, aux, fx, overwrite=True)

    x = np.empty((d + nb, T), order="F")
    x[:d] = np.asarray(W0, dtype=np.float64)
    if nb:
        b0 = np.asarray(b0, dtype=np.float64)
        if not np.any(W0) and not np.any(b0):  # a cold start: from min_b F(0, b)
            b0 = _null_intercepts(kind, Y, A)
            for j, K in oracle.softmax:
                # a softmax task's intercepts are defined up to a constant: its centred
                # log class frequencies (the iterations keep their mean, as from 0)
                c = np.where(Y[:, j:j + K] > 0, A[:, j:j + K], 0.0).sum(axis=0)
                b0[j:j + K] = np.log(c) - np.log(c).mean() if np.all(c > 0) else 0.0
        x[d] = b0
    lazy = 0 if k == 0 or eig.cached(Xm, w, k) else _eigenpairs_after(X, k, T)
    built = lazy == 0
    h0 = preconditioner() if built else diagonal()
    Z, f, g = restart(x)
    trace = [f]
    S, Yl, R, gam = [], [], [], np.ones(T)
    converged, failed_certs, it, last_gap = False, 0, 0, math.inf
    best_share, since_best = math.inf, 0
    for it in range(1, max_iter + 1):
        p = -_two_loop(g, S, Yl, R, gam, h0, cdot)
        gp = float(_cdot(g, p).sum())
        if not gp < 0:  # not a descent direction (rounding): the preconditioned gradient
            p = -h0(g)
            gp = float(_cdot(g, p).sum())
        # the penalty along the ray, 1/2 tr((x + s p) Q (x + s p)^T), from three sums
        xx, xp_, pp = penalty_of(x, x), penalty_of(x, p), penalty_of(p, p)
        step, ok = 1.0, False
        if blocked is None:
            XP = linear(p)  # Z moves by XP per unit step
            Zn, XP, parts, tried = XP, None, None, None  # the trials in XP's buffer (_trial)
        for _ in range(40):
            parts = None  # (a rejected trial's loss gradient freed first)
            if blocked is None:
                Zn, tried = _trial(Z, Zn, tried, step), step
                lv, parts = loss_at(Zn)
            else:  # the loss and its gradient at x + step p, by blocks of rows
                lv, parts = blocked.evaluate(Xm, x + step * p)
            fn = lv + 0.5 * (xx + step * (2.0 * xp_ + step * pp))
            ok = gp < 0 and fn <= f + 1e-4 * step * gp + 4 * np.finfo(float).eps * abs(f)
            if ok:
                break
            step *= 0.5
        if not ok:  # no descent left in this precision
            if Xm.dtype == np.float64:
                break
            Xm = X  # float32 cannot resolve it: on in float64
            h0, built = preconditioner(), True
            Z, f, g = restart(x)
            S, Yl, R, gam = [], [], [], np.ones(T)
            continue
        s_ = step * p
        xn = x + s_
        Z = None  # (n, T) array spent: freed before the gradient's
        gn = gradient(xn, parts) if blocked is None else penalised(xn, 0.0, parts)[1]
        parts = None  # (freed before a certificate makes its own)
        y_ = gn - g
        sy = cdot(s_, y_)
        valid = sy > 1e-12 * np.sqrt(cdot(s_, s_) * cdot(y_, y_))
        if np.any(valid):
            S.append(s_)
            Yl.append(y_)
            R.append(np.where(valid, 1.0 / np.where(valid, sy, 1.0), 0.0))
            yhy = task_sums(h0.quadratic(y_))
            gam = np.where(valid & (yhy > 0), sy / np.where(yhy > 0, yhy, 1.0), gam)
            if len(S) > memory:
                S.pop(0), Yl.pop(0), R.pop(0)
        x, Z, f, g = xn, (Zn if blocked is None else None), fn, gn
        trace.append(f)
        if not built and it >= lazy:
            h0, built = preconditioner(), True
            if S:  # each task's scaling in the new metric, from its last pair
                yhy = task_sums(h0.quadratic(Yl[-1]))
                ok = (R[-1] > 0) & (yhy > 0)
                gam = np.where(ok, 1.0 / np.where(ok, R[-1] * yhy, 1.0), gam)
        gU = g[:d] @ U
        share = 0.5 * float(_cdot(gU, gU) @ (1.0 / mu))
        best_share, since_best = (share, 0) if share < best_share else \
            (best_share, since_best + 1)
        stalled = since_best >= STALL
        if share <= max(thr, 4.0 * cert.eps * abs(f)):  # the gap is at least the share
            Z = Zn = None  # (the certificate makes its own map; Z again should it fail)
            if certify(x):
                converged = True
                break
            Z = linear(x) if blocked is None else None
            # a failed certificate counts towards a stall unless the gap fell by 10 %
            # since the last one (in float32 the gap of consecutive tries fell 1.46, 1.21,
            # 1.20, then 0.96 tol: counting every failure moved that fit to float64)
            failed_certs += cert.gap > 0.9 * last_gap
            last_gap = min(last_gap, cert.gap)
            stalled = stalled or failed_certs >= 3
        if stalled and Xm.dtype != np.float64:
            Xm = X
            h0, built = preconditioner(), True
            Z, f, g = restart(x)
            S, Yl, R, gam = [], [], [], np.ones(T)
            best_share, since_best, failed_certs, last_gap = math.inf, 0, 0, math.inf

    if not converged:
        converged = certify(x)
    return Result(W=final["W"], b=final["b"], n_iter=max(it, 1), converged=bool(converged),
                  trace=trace, objective=float(final["F"]), dual_gap=cert.gap,
                  scale=cert.scale)
