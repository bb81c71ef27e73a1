"""Working-set block coordinate descent for the L2,1 penalty (squared and logistic loss).

Problem (the estimators' objective with ``penalty="l21"``):

    min_{W, b}  sum_it A_it l(y_it, x_i w_t + b_t) + alpha sum_j ||W_j||_2 + l2/2 ||W||_F^2

Most rows W_j are zero at the optimum. The solver (Massias, Gramfort & Salmon, "Celer",
ICML 2018 and JMLR 2020; Bertrand, Klopfenstein, Massias et al., "Beyond L1: faster and
better sparse models with skglm", NeurIPS 2022) alternates

1. **outer step** on the full problem: at the current point, the dual point G that the
   certificate already builds (the loss gradient made feasible for the free intercepts,
   ``_solver.DataOracle.dual_point``) gives the duality gap -- the stopping test, with
   the same meaning of ``tol`` as every other solver (``_solver._Certifier``) -- and
   X^T G, from which row j's KKT score ``||X_j^T G + l2 W_j||_2 / alpha`` (> 1: the zero
   row j violates its optimality condition). The working set is the rows of the support
   plus the highest-scoring others, ``max(P0, 2 |support|)`` rows in all (P0 = 50), doubled when an
   outer step did not halve the gap (geometric growth up to all d rows), and grown 4x
   when the inner solve filled the whole set while it is small against d (``GROW_FULL``);
   rows that
   gap-safe screening (below) proves zero at the optimum are dropped for good;
2. **inner solve** of the problem restricted to those rows, by block coordinate descent
   over the rows (native kernels ``_cpu.bcd_l21_data`` / ``_cpu.bcd_l21_gram``, math in
   ``csrc/include/mtlclassic/bcd.h``) with Anderson extrapolation of the iterates every
   5 epochs (kept only when it lowers the objective, else tried again with the rows it
   carries through zero set to zero, ``_anderson_points``; Anderson, J. ACM 1965;
   Bertrand & Massias, "Anderson acceleration of coordinate descent", AISTATS 2021; in the residual
   form with rank-one weights two epochs of every ``ACTIVE_CYCLE`` = 3 visit only the
   rows already nonzero -- active-set cycling, Friedman, Hastie & Tibshirani, "glmnet",
   J. Stat. Softw. 2010: the same epochs to the same gap on n < d, 8 % faster), until the
   restricted problem's duality gap is below 0.3 times the full problem's last gap (or
   0.3 tol) -- or below 0.3 tol at once when no violating row is left outside the set.
   Logistic loss: block steps from the local curvature, doubled until a
   sufficient-decrease test holds (see ``csrc/cpu/bcd.cpp``).

**Gap-safe screening** (Ndiaye, Fercoq, Gramfort & Salmon, "Gap safe screening rules
for sparsity enforcing penalties", JMLR 2017; for this objective): at each outer step,
from the dual point and the gap the certificate has just computed, the rows proven zero at
the optimum leave the problem for the rest of the fit: they never enter a working set, are
not scored again, and X^T G is computed on the kept columns only (X's kept columns
re-gathered once they fall to half of those in use). With X_c the centred data, L(Z) =
sum_it A_it l(y_it, Z_it) and h the penalty, the dual is D(G) = -L*(G) - h*(-X_c^T G)
over G with G_it = 0 where A_it = 0 and, for free intercepts, columns summing to 0 (then
X_c^T G = X^T G). l is c-smooth (c = 1 squared; c = 1/4 logistic, l'' = p (1 - p)), so
L*(G) = sum A_it l*(G_it / A_it) is 1/c-strongly convex in ||G||_A^2 = sum_{A_it > 0}
G_it^2 / A_it, hence so is -D (h* is convex). Its maximiser G* (the loss gradient at the
optimum) therefore has, for any feasible G of gap P(W, b) - D(G) >= D* - D(G),

    ||G - G*||_A <= r = sqrt(2 c gap)                                  (``safe_radius``)
    ||X_cj^T (G - G*)||_2 <= n_j r,  n_j^2 = sum_i a_i X_c,ij^2,  a_i = max_t A_it

(Cauchy-Schwarz per task; ``screening_norms``). Row j is zero at every optimum when
||X_cj^T G*|| < alpha, whatever l2 (W*_j = (1 - alpha / ||v||)_+ v / l2, v = -X_cj^T G*,
for l2 > 0; ||v|| = alpha on the support for l2 = 0), so the rule is

    ||X_cj^T G||_2 + n_j sqrt(2 c gap) < alpha   =>   W*_j = 0,

G the point at which the gap was measured (the loss gradient made feasible, times the
certificate's ``dual_s``). The gap is taken as at least 1e-11 |P| (rounding; the dual
point the l2 = 0 conjugate accepts 1e-12 outside its ball). Sequential: the problem on the
kept rows has the same solution and the same G*, so from then on its gap (only the kept
rows' conjugate terms: never larger than the full problem's) is both the certificate and
the radius's. The norms n_j cost about one X^T G: they are computed once per fit (once
per path with the Gram cache), when the sphere is small enough that a guess of the
smallest norm (from the Gram cache's diagonal, else from 16 columns) would pass the test.

Threads: the BCD kernels are serial; the loss pass runs on one thread for (n, T) arrays of
under 2^16 entries (the estimator's choice) and, when a product
with all of X costs under 1e8 flops, so does BLAS (more threads only added their start-up
and spinning: 1.4-2x slower fits on a 2-core machine); larger problems keep n_jobs BLAS
threads for the full X^T G.

Inner form of each inner solve, picked by a cost model (``workingset_l21``; measured in
``benchmarks/solvers.py``):

* **Gram form**, possible for squared loss with every label present and one weight per
  sample (the problem of ``_solver.GramOracle``): the restricted problem is solved on
  K_ws = X_ws^T S X_ws, an epoch costs O(p^2 T) whatever n is. K is filled in
  (:class:`GramCache`) only for the rows that working sets bring, and kept along a
  warm-started path on the same data: never the full d x d Gram matrix unless every row
  enters, never recomputed per alpha -- except a small one (n d^2 <= ``GRAM_WHOLE_FLOPS``),
  built whole in one product once working sets have brought a quarter of its rows (where
  most rows enter, the column-by-column filling costs more in gathers of X's columns than
  the whole product; the cost model counts the incremental filling; where the first
  working set would bring that quarter in Gram form -- d <= 4 P0, tall X -- K is built
  before the first outer step). With the whole K the outer steps are taken in Gram form
  too (K W over the support and the dual point (K W - H) c: no pass over X). Their
  objective cancels terms of the size of the centred targets' sum of squares, so a
  certificate they give is believed only when that rounding cannot carry the gap past
  tol (dense X, whose K comes from explicitly centred columns); else -- a tol near the
  rounding, sparse X (centred implicitly) -- it is confirmed in the data form before
  the fit stops. Its screening radius carries that rounding. A fit on tall X thus
  makes one pass over X (building K) and keeps no (n, T) array of its own (the peak of
  a 100,000 x 20 fit with T = 10: 2.4 -> 1.6x X). X may be sparse (sparse products,
  never densified).
* **residual form**: the predictions Z = X_ws W + b are kept up to date, an epoch costs
  O(n p T): logistic loss, missing labels, per-entry weights, and wide working sets of
  n < d problems. For sparse X the working set's columns are made dense (n x p floats, X
  itself never is): allowed while n x d <= ``SPARSE_DENSE_MAX`` (the working set can
  grow to all d columns); larger sparse problems without the Gram form go to FISTA (the
  estimators' fallback). Squared loss with one weight per sample and task
  (``kernels.bcd_l21_rank1``) keeps R = Z - Y and takes the rows by blocks of
  ``kernels.RANK1_BLOCK``: the block's gradients in one pass over R, each step's change
  passed to the block's later rows through the block's Gram matrix (computed once per
  working set), the block's changes into R in one pass -- the same steps as one row at a
  time, with R read once a block instead of twice a row.

The iterations counted (``n_iter``) are the inner epochs over all outer steps.
"""

import contextlib
import hashlib
import math

import numpy as np
import scipy.linalg.blas
import scipy.sparse

from ..backend import kernels
from . import _solver
from ._losses import KINDS as _KINDS
from .penalties import L21

#: first working-set size: 50 rather than 10 skips the first doublings (medians of 3, tol
#: 1e-8, 1 thread: mfeat 0.12 -> 0.09 s sparse, 0.22 -> 0.17 s dense; HOG 6000 x 1764 0.70
#: -> 0.54 s, 1.12 -> 0.91 s; n < d 500 x 5000, medians of 5: 0.057 -> 0.044 s sparse,
#: 0.64 -> 0.69 s dense (75 epochs instead of 85; within the machine's noise), path of 10
#: 1.30 -> 1.25 s)
P0 = 50
#: a working set whose every row ended nonzero is grown this many times while the grown
#: set stays within GROW_FULL_MAX of the rows: the solution is denser than the set, and
#: each outer step costs two passes over X (the full X^T G and X W) and the set-up of a
#: sub-problem whatever its size, more than its few epochs while the set is small
#: (n < d 500 x 5000 at 0.01 alpha_max, 1,667 rows nonzero: sets 50, 200, 800, 1600, 3200
#: instead of 50, 100, ..., 3200; tol 1e-4 157 -> 138 ms, 1e-6 190 -> 183 ms; mfeat, HOG,
#: n < d's sparse alpha and path level; medians of 5-11, same process)
GROW_FULL = 4
GROW_FULL_MAX = 0.2
SPARSE_DENSE_MAX = 2 ** 25  #: residual form, sparse X: the largest n x d (256 MiB dense)
ANDERSON_K = 5  #: epochs between Anderson extrapolations (and sub-problem gap checks)
ANDERSON_REG = 1e-8  #: relative ridge of the extrapolation's linear system
EPOCHS = 20  #: the cost model's epochs per inner solve (Gram vs residual form)
INNER_RATIO = 0.3  #: the sub-problem is solved to this fraction of the full problem's gap
#: the complete working set (no violating row outside) is solved to this fraction of tol:
#: its gap is then the full problem's (5-10 % faster than INNER_RATIO there)
COMPLETE_RATIO = 0.9
ACTIVE_CYCLE = 3  #: residual rank-one form: one full epoch in this many (module docstring)
#: the inner solve's gap tests skipped while the gap's decrease predicts that the target is
#: more than SKIP_MARGIN tests away (at most SKIP_MAX in a row; ``_tests_to_skip``)
SKIP_MARGIN = 3
SKIP_MAX = 4
SCREEN = True  #: gap-safe screening by default
#: the gap used for the safe radius is at least this fraction of |P|: the rounding of the
#: gap, and the dual point that the l2 = 0 conjugate accepts 1e-12 (relative) outside its
#: ball (penalties._norm_ball_conjugate)
SCREEN_SLACK = 1e-11
COMPACT = 0.5  #: X^T G's columns are re-gathered when the kept rows fall to this fraction
PROBE = 16  #: columns whose norms decide when to compute all columns' (speed only)
CROSS_BLOCK = 1 << 18  #: bytes of X_c^T's rows gathered at a time by _Columns.cross
#: bytes of X's rows taken at a time where a whole copy would double X (the gathered
#: columns of a product, the whole Gram matrix of an uncached X or of unequal weights)
ROW_BLOCK = 1 << 20
CACHE_T = 1 << 20  #: dense X up to this many entries (8 MB) is centred and transposed once
#: a Gram cache of n d^2 <= this many flops is built whole once its rows would reach
#: GRAM_WHOLE_FRACTION of d, and the outer steps are then taken from it (mfeat 2000 x 240:
#: the whole K in one 2 ms product; the fit level to 6 % faster than with the column-by-
#: column cache, medians of 9); below that fraction the rows met are few and filling them
#: is cheaper (building K whole at the first request made fits whose working sets stay at
#: 10-50 rows 1.5-3.5x slower: 100 x 1580, 250 x 1000, 1000 x 500)
GRAM_WHOLE_FLOPS = 2.5e8
GRAM_WHOLE_FRACTION = 0.25


class _Columns:
    """The centred data X - 1 m^T (dense or sparse X; never formed) by columns: the
    working set's columns, products with row-sparse W, and the full X^T G."""

    def __init__(self, X, mean):
        self.sparse = scipy.sparse.issparse(X)
        self.X = X.tocsc() if self.sparse else X
        self.mean = np.asarray(mean, dtype=np.float64)
        self.full = _solver.CenteredSparse(X, self.mean)  # X^T G for the dual point
        self._XcT = None  # X_c^T of a small dense X (rows_T)
        self._cache_ok = True  # False once a gather of most rows dropped the cache

    def rows_T(self, idx):
        """(X_c[:, idx])^T as a C-contiguous (p, n) array: for sparse X only these p
        columns are made dense (scattered from CSC; the same values as the dense path).
        Small dense X (n d <= CACHE_T entries) is centred and transposed once, on the first
        call: a fit gathers its working sets' columns a dozen times (mfeat's sparse-alpha
        fit 10-14 % faster); the same values either way."""
        if not self.sparse:
            if self._XcT is not None and 2 * idx.size > self._XcT.shape[0] and not (
                    idx.size == self._XcT.shape[0] and np.array_equal(idx, np.arange(idx.size))):
                # most of the rows, gathered: the cache is dropped first, for good (the
                # cache and a copy of most of it were 2.25x X's size at the peak of a
                # 1000 x 1000 fit), and these and later rows are gathered from X
                self._XcT, self._cache_ok = None, False
            # (not for float32 X: its float64 copy would be twice X's size)
            if self.X.size <= CACHE_T and self._cache_ok and self.X.dtype == np.float64:
                if self._XcT is None:  # one strided pass (a transposed copy, then the
                    # subtraction, took 3.5x as long: 2.8 against 0.8 ms on mfeat)
                    self._XcT = np.empty(self.X.shape[::-1])
                    np.subtract(self.X.T, self.mean[:, None], out=self._XcT)
                if idx.size == self._XcT.shape[0] and np.array_equal(idx, np.arange(idx.size)):
                    return self._XcT  # every row in order: the copy itself (read only)
                return self._XcT[idx]
            if self.X.dtype == np.float64:
                out = np.ascontiguousarray(self.X[:, idx].T)
            else:  # float32 X: into the float64 buffer a block of rows at a time (no
                # float32 (n, p) gather beside it)
                n = self.X.shape[0]
                out = np.empty((idx.size, n))
                step = max(1, min(ROW_BLOCK, self.X.nbytes // 8) // (4 * max(idx.size, 1)))
                for i in range(0, n, step):
                    out[:, i:i + step] = self.X[i:i + step][:, idx].T
            out -= self.mean[idx][:, None]  # in place: one (p, n) buffer, not two
            return out
        S = self.X[:, idx].tocsc()
        S.sum_duplicates()
        out = np.zeros((len(idx), self.X.shape[0]))
        out[np.repeat(np.arange(len(idx)), np.diff(S.indptr)), S.indices] = S.data
        out -= self.mean[idx][:, None]  # in place: one (p, n) buffer, not two
        return out

    def product(self, idx, Wi, n):
        """X_c[:, idx] @ Wi. For dense X with idx over half of the columns, X @ W with
        zero rows outside idx: at most twice the flops, but no gathered copy of those
        columns (most of X)."""
        if idx.size == 0:
            return np.zeros((n, Wi.shape[1]))
        if self.sparse:
            return np.asarray(self.X[:, idx] @ Wi) - self.mean[idx] @ Wi
        if 2 * idx.size > self.X.shape[1]:
            Wf = np.zeros((self.X.shape[1], Wi.shape[1]))
            Wf[idx] = Wi
            return _solver.x_dot(self.X, Wf) - self.mean @ Wf
        # the columns gathered a block of rows at a time: no (n, |idx|) copy (up to half
        # of X beside the cached X_c^T: 2.28x X's size at the peak of a 1000 x 1000 fit)
        n = self.X.shape[0]
        out = np.empty((n, Wi.shape[1]))
        step = max(1, ROW_BLOCK // (8 * idx.size))
        for i in range(0, n, step):
            np.matmul(self.X[i:i + step][:, idx], Wi, out=out[i:i + step])
        out -= self.mean[idx] @ Wi
        return out

    def cross(self, a, b, sw):
        """X_c[:, a]^T S X_c[:, b], S = diag(sw); sparse products for sparse X:
        X_a^T S X_b - m_a v_b^T - v_a m_b^T + (sum sw) m_a m_b^T, v = X^T sw."""
        if not self.sparse and self.X.dtype == np.float32:
            return self._cross_by_rows(a, b, sw)
        if not self.sparse:
            B = self.rows_T(b) * sw  # (k, n)
            if self._XcT is None:  # X's columns gathered from its rows: all at once
                return self.rows_T(a) @ B.T
            # the cached X_c^T's rows a block at a time: no (|a|, n) copy (the whole
            # gather was the fit's memory peak on mfeat); for an uncached X each block
            # would read every row of X again (HOG 6000 x 1764: 189 -> 232 ms a fit)
            out = np.empty((a.size, b.size))
            step = max(1, CROSS_BLOCK // (8 * B.shape[1]))
            for i in range(0, a.size, step):
                np.matmul(self.rows_T(a[i:i + step]), B.T, out=out[i:i + step])
            return out
        Xa, Xb = self.X[:, a], self.X[:, b].multiply(sw[:, None]).tocsc()
        ma, mb = self.mean[a], self.mean[b]
        va = np.asarray(Xa.multiply(sw[:, None]).sum(axis=0)).ravel()
        vb = np.asarray(Xb.sum(axis=0)).ravel()
        return np.asarray((Xa.T @ Xb).todense()) - np.outer(ma, vb) - np.outer(va, mb) \
            + sw.sum() * np.outer(ma, mb)

    def _cross_by_rows(self, a, b, sw, y_mean=None):
        """X_c[:, a]^T S X_c[:, b] (or, with ``y_mean``, S (b - y_mean) for an (n, T)
        array b) summed over blocks of X's rows taken to float64: float32 X, whose gathered
        float64 columns were up to twice X's size each."""
        n = self.X.shape[0]
        width = a.size + (b.shape[1] if y_mean is not None else b.size)
        out = np.zeros((a.size, width - a.size))
        step = max(1, ROW_BLOCK // (8 * max(width, 1)))
        for i in range(0, n, step):
            rows = self.X[i:i + step]
            Xa = np.asarray(rows[:, a], dtype=np.float64)
            Xa -= self.mean[a]
            if y_mean is None:
                Xb = np.asarray(rows[:, b], dtype=np.float64)
                Xb -= self.mean[b]
            else:
                Xb = b[i:i + step] - y_mean
            Xb *= sw[i:i + step, None]
            out += Xa.T @ Xb
        return out

    def cross_y(self, a, sw, Y, y_mean):
        """X_c[:, a]^T S Y_c, Y_c = Y - y_mean, summed over blocks of Y's rows (the whole
        (n, T) Y_c was X's size beside the fit's map where the tasks are about as many as
        the features: 2.97x X at the peak of an l21 fit on 8,000 x 256 with 276 tasks)."""
        if not self.sparse and self.X.dtype == np.float32:
            return self._cross_by_rows(a, Y, sw, y_mean)
        n, T = Y.shape
        out = np.zeros((a.size, T))
        step = max(1, ROW_BLOCK // (8 * max(T, 1)))
        if not self.sparse:
            XaT = self.rows_T(a)  # (|a|, n)
            for i in range(0, n, step):
                Yb = Y[i:i + step] - y_mean
                Yb *= sw[i:i + step, None]
                out += XaT[:, i:i + step] @ Yb
            return out
        Xa = self.X[:, a].tocsr()
        swY = np.zeros(T)
        for i in range(0, n, step):
            Yb = Y[i:i + step] - y_mean
            Yb *= sw[i:i + step, None]
            out += np.asarray(Xa[i:i + step].T @ Yb)
            swY += Yb.sum(axis=0)
        return out - np.outer(self.mean[a], swY)


class GramCache:
    """The centred Gram matrix K = X_c^T S X_c and H = X_c^T S Y_c on the rows met so far,
    filled in as working sets bring new rows (K's new columns against all known rows: n
    (m + k) k flops for k new rows, m known) and kept between the fits of a warm-started
    path on the same data (``matches``). Stored compactly (|rows met|^2), never d x d
    unless every row is met -- or K is small (n d^2 <= ``GRAM_WHOLE_FLOPS``: ``whole``),
    then built whole, in row order, once the rows met would reach ``GRAM_WHOLE_FRACTION``
    of d."""

    def __init__(self, cols, sw, Y, y_mean, key):
        # Y itself and its mean, not a centred copy: an (n, T) array kept as long as the
        # cache is (a warm-started path's), centred a block at a time where it is needed
        self.cols, self.sw, self.Y, self.y_mean, self.key = cols, sw, Y, y_mean, key
        n, d = cols.X.shape
        # a small Gram matrix is built whole once working sets bring a quarter of the rows
        self.whole = n * d * d <= GRAM_WHOLE_FLOPS
        self.norms = None  # gap-safe screening's column norms (weights sw; _norms_of)
        # the last certified outer step of a fit on these data: its point, task weights
        # and l2 with its loss value, X^T G, L*(s G) and linear map (:func:`_outer`)
        self.last_step = None
        self.pos = np.full(cols.X.shape[1], -1)
        self.idx = np.zeros(0, dtype=np.intp)
        self.K = np.zeros((0, 0))
        self.H = np.zeros((0, Y.shape[1]))

    def matches(self, key):
        return self.key is not None and key is not None and _same_key(self.key, key)

    def is_whole(self):
        """Every row known, in row order (a whole cache once built whole)."""
        d = self.pos.size
        return self.whole and self.idx.size == d and bool(np.all(self.idx == np.arange(d)))

    def new_cost(self, ws):
        """Flops to extend the cache to ws."""
        k = int(np.count_nonzero(self.pos[ws] < 0))
        return self.cols.X.shape[0] * (self.idx.size + k) * k

    def build_whole(self):
        """K and H of every row, in row order (what the Gram-form outer steps read)."""
        rows = np.arange(self.pos.size)
        if self.cols.sparse:
            self.K, self.H = self.cols.cross(rows, rows, self.sw), \
                self.cols.cross_y(rows, self.sw, self.Y, self.y_mean)
        else:
            self.K, self.H = _whole_gram(self.cols, self.sw, self.Y, self.y_mean)
        self.idx, self.pos = rows, rows.copy()

    def get(self, ws):
        """(K[ws][:, ws], H[ws]), contiguous."""
        new = ws[self.pos[ws] < 0]
        d = self.pos.size
        if new.size and self.whole and self.idx.size + new.size >= GRAM_WHOLE_FRACTION * d:
            self.build_whole()
            new = new[:0]
        if new.size:
            m, k = self.idx.size, new.size
            idx = np.concatenate([self.idx, new])
            Kn = self.cols.cross(idx, new, self.sw)  # (m + k, k)
            K = np.empty((m + k, m + k))
            K[:m, :m] = self.K
            K[:, m:] = Kn
            K[m:, :m] = Kn[:m].T
            self.K, self.idx = K, idx
            self.H = np.concatenate([self.H, self.cols.cross_y(new, self.sw, self.Y,
                                                               self.y_mean)])
            self.pos[new] = np.arange(m, m + k)
        p = self.pos[ws]
        return np.ascontiguousarray(self.K[np.ix_(p, p)]), np.ascontiguousarray(self.H[p])


def _whole_gram(cols, sw, Y, y_mean):
    """(K, H) = (X_c^T S X_c, X_c^T S Y_c), S = diag(sw), Y_c = Y - y_mean, of dense X,
    every row: K by symmetric rank-k updates (BLAS syrk: half the flops of a general
    product; mfeat's 240 x 240 from 2000 rows: 4.2 -> 2.1 ms), H by general products. From
    X_c^T when the working sets have cached it and the weights are equal (no copy at all),
    else over blocks of X's rows (``_solver.centred_moments``): a whole X_c^T, and its
    weighted copy, were 2.5-3.5x X's size at the peak of tall fits (200000 x 20; 50000 x
    20, where the first working set is every row: 2.8x)."""
    d = cols.X.shape[1]
    w0 = float(sw[0])
    if bool(np.all(sw == w0)) and cols._XcT is not None:
        syrk = scipy.linalg.blas.get_blas_funcs("syrk", (np.zeros(1),))
        XcT = cols.rows_T(np.arange(d))  # the cached copy itself
        C = syrk(w0, XcT.T, trans=1)  # upper triangle of XcT XcT^T (Fortran order)
        H = XcT @ ((Y - y_mean) * w0)
        K = np.triu(C)
        K += np.triu(C, 1).T
        return K, H
    K, H, _ = _solver.centred_moments(cols.X, Y, sw, cols.mean, y_mean)
    return K, H


def _weighted_squares(Y, y_mean, sw):
    """sum_i sw_i (Y_i - y_mean)^2 per column, a block of rows at a time (no centred
    (n, T) copy of Y)."""
    out = np.zeros(Y.shape[1])
    step = max(1, ROW_BLOCK // (8 * max(Y.shape[1], 1)))
    for i in range(0, Y.shape[0], step):
        B = Y[i:i + step] - y_mean
        B *= B
        out += sw[i:i + step] @ B
    return out


def data_key(X, sw, x_mean, Y):
    """What a Gram cache depends on: X (through X r for a fixed random r: any change of X
    changes it but for changes orthogonal to r, of probability 0), sw, the centring, Y."""
    r = np.random.default_rng(12345).standard_normal(X.shape[1])
    # Y by a digest of its bytes: a copy of Y was an (n, T) array kept with the cache, and
    # a projection Y r' missed a task of 1e-13 changed beside one of 1e8 (review)
    Yb = np.ascontiguousarray(Y, dtype=np.float64)
    return (X.shape, str(X.dtype), type(X).__name__, np.asarray(_solver.x_dot(X, r)).ravel(),
            np.array(sw), np.array(x_mean), Y.shape,
            np.frombuffer(hashlib.blake2b(Yb, digest_size=32).digest(), np.uint8))


def _same_key(a, b):
    return len(a) == len(b) and all(
        np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y for x, y in zip(a, b))


def safe_radius(gap, curvature):
    """sqrt(2 c gap): the radius of the sphere, in the norm ||G||_A^2 = sum_it G_it^2 /
    A_it, around any dual point whose gap is ``gap`` that holds the dual optimum (c the
    loss's largest curvature: 1 squared, 1/4 logistic; module docstring)."""
    return math.sqrt(2.0 * curvature * gap)


def screening_norms(cols, A, idx=None):
    """sqrt(sum_i a_i X_c,ij^2), a_i = max_t A_it, of every column j of the centred data
    (|X_j^T D| <= this times ||D||_A for D with A = 0 entries zero; module docstring), or
    of the columns idx. From sum a X^2 - 2 m (X^T a) + m^2 sum a, plus a 1e-10 relative
    margin for its rounding."""
    a = A.max(axis=1)
    X, m = (cols.X, cols.mean) if idx is None else (cols.X[:, idx], cols.mean[idx])
    if cols.sparse:
        sq = np.asarray(X.multiply(X).T @ a).ravel()
    else:
        sq = np.einsum("ij,ij,i->j", X, X, a)
    xa = np.asarray(_solver.xt_dot(X, a)).ravel()
    terms = (sq, -2.0 * m * xa, m * m * a.sum())
    v = sum(terms) + 1e-10 * sum(np.abs(t) for t in terms)
    return np.sqrt(np.maximum(v, 0.0))


def _sw_ratio(A, sw):
    """max_i a_i / sw_i (a_i = max_t A_it): the norms of weights a are at most its root
    times those of weights sw; None without sw, or where sw_i = 0 < a_i."""
    if sw is None:
        return None
    a, pos = A.max(axis=1), sw > 0
    if np.any(a[~pos] > 0):
        return None
    return float(np.max(a[pos] / sw[pos], initial=0.0))


def _norms_of(cols, A, sw, cache, compute=False):
    """screening_norms(cols, A): with a Gram cache (A = sw rho^T / sum sw) from its
    sample-weight norms, computed once for a path on the same data and scaled by
    sqrt(_sw_ratio); None when not cached and not ``compute``."""
    ratio = _sw_ratio(A, sw)
    if ratio is None:
        return screening_norms(cols, A) if compute else None
    if cache.norms is None:
        if not compute:
            return None
        cache.norms = screening_norms(cols, sw[:, None])
    return math.sqrt(ratio) * cache.norms


def _probe_norm(cols, A, sw, cache):
    """A guess of the smallest screening norm, to decide when to compute them all (speed
    only): with a Gram cache, from its diagonal (sum_i sw_i X_c,ij^2 of the rows met so
    far: free; None while it is empty, at a cold start's first step), else the smallest
    of PROBE columns' norms (16 strided columns of 6000 x 1764: 1 ms; 64 took 5.6)."""
    ratio = _sw_ratio(A, sw)
    if ratio is not None:
        if cache.idx.size == 0:
            return None
        return math.sqrt(ratio * max(float(np.min(np.diagonal(cache.K))), 0.0))
    d = cols.X.shape[1]
    return float(screening_norms(cols, A, np.linspace(0, d - 1, min(d, PROBE)).astype(int))
                 .min())


def _penalty_value(W, alpha, l2):
    return alpha * float(np.sqrt((W * W).sum(axis=1)).sum()) + 0.5 * l2 * float(np.sum(W * W))


def _anderson(xs):
    """Coefficients c (summing to 1) of the Anderson extrapolation sum_k c_k x_{k+1} of
    the iterates xs (K + 1 rows): c = z / sum z, (U U^T) z = 1, U the K differences;
    None when that system is singular."""
    U = np.diff(xs, axis=0)
    C = U @ U.T
    top = float(np.max(np.diag(C)))
    if not top > 0:
        return None
    # a relative ridge of 1e-8 bounds the system's conditioning: its solution then
    # moves by at most ~1e-8 for rounding-size changes of the iterates
    C = C / top + ANDERSON_REG * np.eye(len(C))
    try:
        z = np.linalg.solve(C, np.ones(len(C)))
    except np.linalg.LinAlgError:
        return None
    s = z.sum()
    if not np.all(np.isfinite(z)) or s == 0:
        return None
    return z / s


def rank_one(A):
    """(a (n,), c (T,)) with A = a c^T to rounding (sample weights times task weights: every
    label present), else None."""
    n, T = A.shape
    if n == 0 or T == 0:
        return None
    c = A.max(axis=0)
    if not np.all(c > 0):
        return None
    t = int(np.argmax(c))
    a = A[:, t] / c[t]
    if not np.allclose(np.outer(a, c), A, rtol=1e-14, atol=0.0):
        return None
    return np.ascontiguousarray(a), np.ascontiguousarray(c)


def _finite_top(top):
    """A kernel's largest |change| of W, checked: NaN or infinity means the iterates left
    the floats (an overflow), which no later certificate could flag."""
    if not math.isfinite(top):
        raise FloatingPointError("the working-set solver's iterates overflowed (the largest "
                                 f"change of W in an epoch is {top}); scale X and Y")
    return top


def _checked_run(fn, args):
    """k -> the kernel ``fn`` run k epochs on ``args``. The sub-problem's buffers are
    checked once, by its first call through the checking wrapper in ``backend.kernels``
    (names, shapes, finiteness); the later calls are on the same arrays, updated in place
    by the kernel only (and by the Anderson steps, with finite values), so they go to the
    kernel directly -- the wrapper's O(size) checks at every epoch cost 7 % of a 35 ms
    fit (mfeat, 55 one-epoch calls); the kernel still checks shapes, and its return value
    (the largest change, NaN-propagating) is checked by :func:`_finite_top`."""
    return lambda k, *more: _finite_top(fn(*args, int(k), *more))


class _DataSub:
    """The restricted problem in residual form (dense X): state (W_ws, b, Z)."""

    def __init__(self, cols, ws, Y, A, loss, kind, Q, l2, alpha, fit_intercept, W, b, Z):
        self.Xt = cols.rows_T(ws)
        self.alpha, self.l2, self.fit_intercept = alpha, l2, fit_intercept
        curv = _solver.DataOracle.curvature[kind]
        # squared loss with A_it = a_i c_t: the faster kernel on the residual R = Z - Y
        # (the state's linear part is then R; Anderson's combinations of R are those of Z
        # minus Y, as the coefficients sum to 1)
        self.rank1 = rank_one(A) if kind == "squared" else None
        if self.rank1 is None:  # (a broadcast A made whole: the general residual kernel
            A = np.ascontiguousarray(A, dtype=np.float64)  # reads every entry's weight)
        self.Y, self.A, self.loss, self.kind = Y, A, loss, kind
        if self.rank1 is not None:  # max_t sum_i x_ij^2 a_i c_t, without a (p, n) temporary
            a, c = self.rank1
            L = curv * np.einsum("ji,ji,i->j", self.Xt, self.Xt, a) * float(c.max()) + l2
        else:  # max_t sum_i x_ij^2 A_it a block of columns at a time (no (p, n) square)
            L = np.empty(self.Xt.shape[0])
            step = max(1, min(ROW_BLOCK, self.Xt.nbytes // 8)
                       // (8 * max(self.Xt.shape[1], 1)))
            for j in range(0, L.size, step):
                B = self.Xt[j:j + step] * self.Xt[j:j + step]
                L[j:j + step] = (B @ A).max(axis=1)
            L = curv * L + l2
        self.L = np.where(L > 0, L, 1.0)  # an all-zero column: any step (its gradient is 0)
        self.Lb = curv * A.sum(axis=0)
        self.W, self.b = np.array(W), np.array(b, dtype=np.float64)
        self.oracle = _solver.DataOracle(self.Xt.T, Y, A, loss, Q, fit_intercept, kind)
        self.lin = np.array(Z) - Y if self.rank1 is not None else np.array(Z)
        self._run, self.done = None, 0

    def _z(self, lin):
        return lin + self.Y if self.rank1 is not None else lin

    @property
    def Z(self):
        return self._z(self.lin)

    def epochs(self, k):
        self.done += k
        if self._run is None:  # the checked call first, then the kernel itself (below)
            if self.rank1 is not None:
                # the blocks' Gram matrices, filled by the kernel and kept for this set
                # (blocks of at most n rows: a block's Gram matrix beside the set's
                # columns would be larger than they are)
                p, n = self.Xt.shape
                self.cache = kernels.rank1_cache(p, max(1, min(kernels.RANK1_BLOCK, n)))
                args = (self.Xt, self.lin, *self.rank1, self.W, self.b, self.L, self.Lb,
                        float(self.alpha), float(self.l2), bool(self.fit_intercept))
                top = kernels.bcd_l21_rank1(*args, k, cache=self.cache)
                fn = kernels.require_cpu().bcd_l21_rank1
            else:
                args = (self.Xt, self.Y, self.A, self.lin, self.W, self.b, self.L, self.Lb,
                        float(self.alpha), float(self.l2))
                top = kernels.bcd_l21_data(*args, self.kind, self.fit_intercept, k)
                args += (_KINDS[self.kind], bool(self.fit_intercept))
                fn = kernels.require_cpu().bcd_l21_data
            self._run = _checked_run(fn, args)
            return _finite_top(top)
        if self.rank1 is not None:
            return self._run(k, ACTIVE_CYCLE > 1 and self.done % ACTIVE_CYCLE != 0,
                             *self.cache)
        return self._run(k)

    def state(self):
        return np.concatenate([self.W.ravel(), self.b]), self.lin.copy()

    def objective(self, W, b, lin):
        return self.loss(self._z(lin), self.Y, self.A)[0] + _penalty_value(W, self.alpha,
                                                                          self.l2)

    def set_combination(self, c, xs, lins):
        """The Anderson point sum_k c_k (x_k, lin_k), else that point with its crossed rows
        zeroed (:func:`_anderson_points`): the first that lowers the objective is kept."""
        x = c @ xs
        W = x[:self.W.size].reshape(self.W.shape)
        b = x[self.W.size:] if self.fit_intercept else self.b
        now = self.objective(self.W, self.b, self.lin)
        for W, lin in _anderson_points(W, xs[-1][:self.W.size].reshape(self.W.shape),
                                       _combination(c, lins), lambda idx: self.Xt[idx].T):
            if self.objective(W, b, lin) < now:
                self.W[...], self.b[...], self.lin[...] = W, b, lin
                return

    def certify(self, cert):
        Z = self.Z
        f, aux = self.oracle.value(self.W, self.b, Z)
        return cert(self.W, self.b, Z, aux, f + _penalty_value(self.W, self.alpha, 0.0))


class _GramSub:
    """The restricted problem in Gram form (squared loss, every label present): state
    (W_ws, KW = K_ws W_ws); the intercepts are at their optimum for every W (centred)."""

    def __init__(self, cache, ws, c, yy, Q, l2, alpha, W):
        self.K, self.H = cache.get(ws)
        self.c = c
        self.alpha, self.l2 = alpha, l2
        L = float(np.max(c)) * np.diag(self.K) + l2
        self.L = np.ascontiguousarray(np.where(L > 0, L, 1.0))
        self.W = np.array(W)
        self.Z = self.K @ self.W  # K W (the Gram form's linear map)
        self._run = None
        self.oracle = _solver.GramOracle.from_parts(self.K, self.H, c, yy, Q)

    def epochs(self, k):
        if self._run is None:
            args = (self.K, self.H, self.c, self.Z, self.W, self.L, float(self.alpha),
                    float(self.l2))
            top = kernels.bcd_l21_gram(*args, k)
            self._run = _checked_run(kernels.require_cpu().bcd_l21_gram, args)
            return _finite_top(top)
        return self._run(k)

    def state(self):
        return self.W.ravel().copy(), self.Z.copy()

    def objective(self, W, KW):
        return self.oracle.value(W, None, KW)[0] + _penalty_value(W, self.alpha, 0.0)

    def set_combination(self, c, xs, lins):
        now = self.objective(self.W, self.Z)
        for W, KW in _anderson_points((c @ xs).reshape(self.W.shape),
                                      xs[-1].reshape(self.W.shape), _combination(c, lins),
                                      lambda idx: self.K[:, idx]):
            if self.objective(W, KW) < now:
                self.W[...], self.Z[...] = W, KW
                return

    def certify(self, cert):
        f, aux = self.oracle.value(self.W, None, self.Z)
        return cert(self.W, None, self.Z, aux, f + _penalty_value(self.W, self.alpha, 0.0))


def _anderson_points(W, last, lin, columns):
    """The candidates of an Anderson step, in order: the point (W, lin) itself; then, where
    the extrapolation carries rows through zero, the point with those rows zeroed and
    ``lin`` less ``columns(idx) @ W[idx]`` (the linear map is linear in W; ``columns``:
    idx -> its columns for those rows) -- first the rows whose direction it reverses
    (W_j . last_j <= 0 with last_j != 0, ``last`` the last iterate: the row's block
    soft-threshold would put it at zero), then also the rows at zero in the last iterate
    (where the epochs keep a settled zero row).

    While the support still changes, rows leaving it one by one, plain extrapolation
    carries the leaving rows past zero and raises the objective: on n < d 500 x 5000 at
    0.01 alpha_max (final set of 3,200 rows, 1,720 -> 1,667 of them nonzero over its
    first 40 epochs) no Anderson point was kept before epoch 45, and tol 1e-6 took 65
    epochs; with the crossed rows zeroed, 45 (55 -> 45 on ``benchmarks/solvers.py``'s
    draw). The plain point comes first: zeroing first cost epochs where it is kept (HOG's
    sparse alpha 0.16 -> 0.18 s). The reversed rows alone come next (review): over 18
    problems of 50-80 x 2000-5000 at 0.02-0.1 alpha_max, 4,290 epochs with the plain point
    only, 3,515 zeroing both kinds of rows at once, 3,285 in this order."""
    yield W, lin
    crossed = (np.einsum("ij,ij->i", W, last) <= 0.0) & np.any(W != 0, axis=1)
    if not np.any(crossed):
        return
    at_zero = ~np.any(last != 0, axis=1)
    turned = crossed & ~at_zero
    if np.any(turned):
        yield _zeroed(W, lin, columns, turned)
    if np.any(crossed & at_zero):
        yield _zeroed(W, lin, columns, crossed)


def _zeroed(W, lin, columns, rows):
    """(W with ``rows`` zeroed, lin less their part): new arrays."""
    idx = np.flatnonzero(rows)
    lin = lin - columns(idx) @ W[idx]
    W = W.copy()
    W[idx] = 0.0
    return W, lin


def _combination(c, arrays):
    """sum_k c_k arrays[k], accumulated in one new array: no stacked copy of the
    arrays (the residual form's (n, T) linear parts: a stack of ANDERSON_K of them beside
    the list set a missing-label fit's memory peak -- review)."""
    out = c[0] * arrays[0]
    for ck, a in zip(c[1:], arrays[1:]):
        out += ck * a
    return out


def _inner(sub, cert, budget, check_first=False):
    """Block coordinate descent epochs with Anderson extrapolation on the restricted
    problem until its duality gap passes ``cert`` or ``budget`` epochs are spent (checked
    every ANDERSON_K epochs, fewer where :func:`_tests_to_skip` predicts the target far;
    with ``check_first`` -- a warm start, often a few epochs from the solution -- also
    within the blocks of the first 3 ANDERSON_K epochs, after the epochs that
    :func:`_early_tests_to_skip` leaves). Returns the epochs run."""
    done = 0
    hist, lins = [], []
    last, skip = None, 0  # (epochs, gap) at the last test; tests still to skip
    first, early = None, 0  # a warm start's first test (epochs, gap); its next test
    while done < budget:
        k = min(ANDERSON_K, budget - done)
        x, lin = sub.state()
        hist, lins = [x], [lin]
        for e in range(k):
            sub.epochs(1)
            # (not after a block's last epoch: the block's own test follows, unless
            # _tests_to_skip skips it)
            if check_first and e + 1 < k and early <= done + e + 1 < 3 * ANDERSON_K:
                if sub.certify(cert):
                    return done + e + 1  # a warm start that a few epochs finish
                first = first or (done + e + 1, cert.gap)
                early = done + e + 2 + _early_tests_to_skip(first, done + e + 1, cert)
            x, lin = sub.state()
            hist.append(x)
            lins.append(lin)
        done += k
        if len(hist) == ANDERSON_K + 1:
            c = _anderson(np.asarray(hist))
            if c is not None:
                sub.set_combination(c, np.asarray(hist[1:]), lins[1:])
        if skip > 0 and done < budget:
            skip -= 1
            continue
        if sub.certify(cert):
            break
        if check_first:
            first = first or (done, cert.gap)
            early = done + 1 + _early_tests_to_skip(first, done, cert)
        skip = _tests_to_skip(last, done, cert)
        last = (done, cert.gap)
    return done


def _epochs_to_target(prev, done, cert):
    """The epochs that the gap's linear decrease from ``prev`` = (epochs, gap) to now
    (``done``, ``cert.gap``) predicts before it meets the target; None without a finite
    decrease to go by or with the target met."""
    if prev is None or done <= prev[0] or not (0 < cert.gap < prev[1] < math.inf):
        return None
    target = max(cert.tol * cert.scale, np.finfo(np.float64).tiny)
    if cert.gap <= target:
        return None
    per_epoch = math.log(cert.gap / prev[1]) / (done - prev[0])  # < 0
    return math.log(target / cert.gap) / per_epoch  # > 0


def _early_tests_to_skip(first, done, cert):
    """A warm start's per-epoch tests to skip: half of the epochs that the gap's mean
    linear decrease since its first test predicts before it meets the target (a test
    costs about an epoch in residual form; n < d's path ran 8 and 14 tests in its two
    largest warm starts, where the gap falls 20-40 % an epoch)."""
    needed = _epochs_to_target(first, done, cert)
    return 0 if needed is None else int(0.5 * needed)


def _tests_to_skip(last, done, cert):
    """How many of the next gap tests (one per ANDERSON_K epochs) the inner solve can skip:
    the epochs that the gap's linear decrease since the last test predicts before it meets
    the target, less SKIP_MARGIN tests (an Anderson step can shorten them many times), 0
    without a decrease to go by. A test in residual form costs a product with the working
    set's columns (3 ms on n < d's 3,200 x 500: about an epoch)."""
    needed = _epochs_to_target(last, done, cert)
    if needed is None:
        return 0
    return max(0, min(SKIP_MAX, int(needed // ANDERSON_K) - SKIP_MARGIN))


def workingset_l21(X, x_mean, Y, A, loss, kind, alpha, l2, fit_intercept, W0, b0, max_iter,
                   tol, sw=None, rho=None, verbose=0, cache=None, screen=None, keep=True):
    """Working-set BCD for the L2,1 problem (module docstring). X: (n, d) NumPy array or
    scipy.sparse matrix, solved in centred coordinates X - 1 x_mean^T (x_mean zeros when
    the intercepts are not free) and b' = b + x_mean W (b0 given in them, the returned b
    too). ``sw``, ``rho`` (sample and task weights) allow the Gram form: squared loss with
    every label present, A = sw rho^T / sum(sw); ``cache``: a :class:`GramCache` of an
    earlier fit (used when it was built from the same data), returned as the result's
    ``gram_cache``; ``keep=False``: that cache will not be passed again (no warm-started
    path), so its key -- one more pass over X, 0.8 ms of a 12 ms fit on 500 x 5000 -- is
    not computed and it matches nothing; ``screen`` (default :data:`SCREEN`): gap-safe
    screening (module docstring), the rows it removed returned as the result's
    ``screened``.

    The form of each inner solve is the cheaper by a cost model of E = 20 epochs on p
    rows: Gram form n (m + k) k (the cache's new columns) + E p^2 T flops, residual form
    2 E n p T. So the Gram form is used while p is small against n or its rows are already
    in the cache (n >= d problems, warm-started paths), the residual form for wide
    working sets of n < d problems. Returns a ``_solver.Result``."""
    n, d = X.shape
    T = Y.shape[1]
    # the block kernels read float64 targets (a classifier's int8 ones: one float64 copy)
    Y = np.asarray(Y, dtype=np.float64)
    gram_ok = sw is not None
    sparse = scipy.sparse.issparse(X)
    residual_ok = not sparse or n * d <= SPARSE_DENSE_MAX
    if not (gram_ok or residual_ok):
        raise ValueError(f"sparse X of {n} x {d} > {SPARSE_DENSE_MAX} entries: the residual "
                         "form of the working-set solver would densify too many columns")
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0 for the working-set solver, got {alpha!r}")
    cols = _Columns(X, x_mean)
    Q = l2 * np.eye(T)
    pen = L21()
    oracle = _solver.DataOracle(cols.full, Y, A, loss, Q, fit_intercept, kind)
    cert = _solver._Certifier(oracle, pen, alpha, Q, tol, np.float64)
    scale = cert.scale
    W = np.array(W0, dtype=np.float64)
    b = np.array(b0, dtype=np.float64)
    if gram_ok:
        N = float(sw.sum())
        y_mean = sw @ Y / N if fit_intercept else np.zeros(T)
        c = np.asarray(rho, dtype=np.float64) / N
        yy = _weighted_squares(Y, y_mean, sw)
        b = y_mean  # optimal for every W in centred coordinates
        key = data_key(X, sw, x_mean, Y) if keep or cache is not None else None
        if cache is None or not cache.matches(key):
            cache = GramCache(cols, sw, Y, y_mean, key)
        cache.cols = cols  # new columns from this fit's X (equal values, maybe a new array)
    # below ~1e8 flops a product with all of X gains nothing from more BLAS threads: the
    # fit then runs on one (measured, 500 x 5000, T 10: idle OpenBLAS workers of 2-thread
    # products spin on the core the serial kernels need, 1.4x slower); above, the full
    # X^T G keeps the fit's n_jobs threads
    with _solver.blas_threads(1) if n * d * T < 1e8 else contextlib.nullcontext():
        res = _outer(cols, oracle, cert, pen, W, b, alpha, l2, tol, scale, max_iter, verbose,
                     gram_ok, residual_ok, cache, sw, c if gram_ok else None,
                     yy if gram_ok else None, Y, A, loss, kind, Q, fit_intercept,
                     SCREEN if screen is None else screen)
    res.gram_cache = cache
    return res


def _gram_step(cache, c, yy, Q, pen, W, supp, alpha):
    """(P, X^T G, L*(s G)) of the full problem from a whole Gram cache (every row known, in
    row order): the objective with the intercepts at their optimum and the dual point
    G = c_t S (X_c w_t - y_t) of ``_solver.GramOracle``, from K W over the support."""
    oracle = _solver.GramOracle.from_parts(cache.K, cache.H, c, yy, Q)
    KW = cache.K[:, supp] @ W[supp] if supp.size else np.zeros_like(W)
    f, aux = oracle.value(W, None, KW)
    XtG, lstar = oracle.dual_point(W, None, KW, aux)
    return f + pen.value(W, alpha), XtG, lstar


def _gram_form_pays(new_cost, p, n, T):
    """The cost model between the inner forms: a sub-problem of p rows in Gram form costs
    the cache's new columns (``new_cost`` flops) plus EPOCHS epochs of p^2 T, in the
    residual form EPOCHS epochs of 2 n p T."""
    return new_cost + EPOCHS * p * p * T <= 2 * EPOCHS * n * p * T


def _gram_gap_rounding(cache, c, yy, W, supp, alpha, P, gap):
    """A first-order bound on how far the rounding of a whole Gram cache (K = X_c^T S X_c,
    H = X_c^T S Y_c, yy summed over n rows: each entry within g = (n + d) eps of the sum
    of its terms' magnitudes, |dK_jk| <= g ||x_j|| ||x_k||, |dH_jt| <= g ||x_j|| ||y_t||)
    can move the duality gap that :func:`_gram_step` computes from it. With s_t =
    sum_j |W_jt| ||x_j|| (||x_j|| = sqrt(K_jj)) and e_t = g (s_t + ||y_t||):

    * the data term 1/2 sum_t c_t (w^T K w - 2 w^T h + yy) and the dual's sums of the
      same form: within 1/2 sum_t c_t e_t (s_t + ||y_t||) each (so 3x that for P - D);
    * X^T G = (K W - H) c: row j within ||x_j|| ||(c_t e_t)_t||, so the dual point's
      scaling onto ||X_j^T G|| <= alpha within that / alpha relatively, which moves D by
      that fraction of the part of the gap it scales (at most |P| + |gap|);
    * the means: the Gram form takes b = y_mean as the intercepts' optimum, exact for
      exactly centred data, but x_mean and y_mean are sums over n rows, within g of the
      sums of magnitudes (|dx_j| <= g sqrt(xbar_j^2 + K_jj / N), |dy_t| likewise, N the
      weights' sum), so the intercepts are off their optimum by up to db_t = dy_t + sum_j
      |W_jt| |dx_j|, which costs 1/2 sum_t c_t N db_t^2 (counted 4x). Large where the
      targets or the features sit far from 0 against their spread (review: targets offset
      by 1e12 called converged, the intercepts 10 ulps off, 2.7e5x tol);
    * plus the rounding of the sums themselves (16 eps of |P| and of yy's size).

    Large where features differ in units by orders of magnitude at a tiny alpha (the
    weights of the small-unit features large: s_t far above ||X w_t||), where the data
    form must decide."""
    eps = np.finfo(np.float64).eps
    n = float(np.sum(cache.sw > 0))
    N = float(np.sum(cache.sw))
    g = (n + cache.pos.size) * eps
    diag = np.maximum(np.diag(cache.K), 0.0)
    xn = np.sqrt(diag)
    ynorm = np.sqrt(np.maximum(yy, 0.0))
    s = xn[supp] @ np.abs(W[supp]) if supp.size else np.zeros(len(yy))
    e = g * (s + ynorm)
    data = 1.5 * float(np.sum(c * e * (s + ynorm)))
    rel = float(xn.max(initial=0.0) * np.linalg.norm(c * e)) / alpha if alpha > 0 \
        else math.inf
    dx = g * np.sqrt(np.asarray(cache.cols.mean, dtype=np.float64) ** 2 + diag / N)
    db = g * np.sqrt(np.asarray(cache.y_mean, dtype=np.float64) ** 2 + ynorm ** 2 / N)
    if supp.size:
        db = db + dx[supp] @ np.abs(W[supp])
    means = 2.0 * N * float(np.sum(c * db * db))
    return data + rel * (abs(P) + abs(gap)) + means + \
        16.0 * eps * (abs(P) + float(np.sum(c * yy)))


def _outer(cols, oracle, cert, pen, W, b, alpha, l2, tol, scale, max_iter, verbose, gram_ok,
           residual_ok, cache, sw, c, yy, Y, A, loss, kind, Q, fit_intercept, screen):
    """The outer loop of :func:`workingset_l21` (working sets, inner solves, the full
    problem's certificate)."""
    n, d = cols.X.shape
    T = Y.shape[1]
    epochs, trace, ws, prev_gap = 0, [], None, math.inf
    converged = False
    kept = np.ones(d, dtype=bool)
    keep = np.arange(d)  # the rows not screened out (sorted)
    in_X = keep  # the columns of oracle.X (a superset of keep: compacted now and then)
    norms = probe = None  # screening's ||X_cj||_a, computed when it may screen rows
    final = False  # the Gram-form steps are over: the certificate in the data form
    if gram_ok and cache.whole and not cache.is_whole():
        # a small K that the first working set (of max(P0, 2 |support|) rows) would build
        # whole in Gram form anyway: built now, so that the first outer step -- at the
        # start point -- is a Gram-form step too, not a pass over X with (n, T) arrays
        # (tall X: d <= 4 P0 rows; 100,000 x 20, T = 10: the peak 2.4x -> 1.6x X)
        p0 = min(d, max(P0, 2 * int(np.count_nonzero(np.any(W != 0, axis=1)))))
        if p0 >= GRAM_WHOLE_FRACTION * d and (
                not residual_ok or _gram_form_pays(n * p0 * p0, p0, n, T)):
            cache.build_whole()
    while True:
        supp = np.flatnonzero(np.any(W != 0, axis=1))
        lin = step = None
        if not final and gram_ok and cache.is_whole():
            # the whole Gram matrix is known: the step costs d |supp| T flops, no pass over
            # X; its certificate is believed where the Gram form's rounding (relative to
            # ||Y_c||^2, not to F) cannot carry the gap past tol, else confirmed in the
            # data form (below)
            P, XtG, lstar = _gram_step(cache, c, yy, Q, pen, W, supp, alpha)
            if keep.size != d:  # the kept rows' (K has every row, in row order)
                XtG = XtG[keep]
            converged = cert.at_dual(XtG, lstar, P)
            rounding = _gram_gap_rounding(cache, c, yy, W, supp, alpha, P,
                                          P - cert.dual) if converged else math.inf
            # a gap that the Gram form's rounding cannot carry past tol is believed
            # without the data form's pass over X (dense X: K from explicitly centred
            # columns; sparse X centres implicitly, which cancels relative to the
            # uncentred columns; every other claim -- ill-conditioned X at a tiny alpha, a
            # tol near the rounding -- goes on to the data form below)
            believed = converged and not cols.sparse and \
                -rounding <= cert.gap <= tol * scale - rounding
            if not believed and (converged or epochs >= max_iter):
                final = True
                continue
            # the radius from this gap plus the Gram form's rounding (relative to ||Y||^2)
            slack = SCREEN_SLACK * abs(P) + 16.0 * np.finfo(np.float64).eps * \
                0.5 * float(np.sum(c * yy))
        else:
            # (only a Gram-form fit checked the cache's data key: another fit may carry the
            # cache of other data, which it neither reads nor writes)
            last = cache.last_step if ws is None and gram_ok else None
            if last is not None and last[1] == l2 and np.array_equal(last[2], c) and \
                    np.array_equal(last[0][0], W) and np.array_equal(last[0][1], b):
                # a warm start from the last fit's certified point on the same data (a
                # path): its loss, X^T G and L* do not depend on alpha (one full X^T G
                # and one X W an alpha: 10 % of n < d's path)
                f, XtG, lstar, lin = last[3]
            else:
                # squared loss where the (n, T) arrays are not small beside X: by blocks of
                # rows, no map or loss gradient kept (they were 2x X at the peak of an l21
                # fit on 8,000 x 256 with 276 tasks); a data-form sub-problem makes its map
                blocks = oracle.certificate_blocks(W[in_X], b) \
                    if _solver.maps_not_small(oracle.X, T) else None
                if blocks is not None:
                    f, XtG, lstar = blocks
                else:
                    lin = cols.product(supp, W[supp], n) + b
                    f, aux = oracle.value(W, b, lin)
                    XtG, lstar = oracle.dual_point(W, b, lin, aux, overwrite=True)
                    aux = None  # its G is the dual point now
            P = f + pen.value(W, alpha)
            if in_X.size == d:  # X^T G of every row: kept if this step certifies
                step = (f, XtG, lstar, lin)
            if in_X.size != keep.size:
                XtG = XtG[np.searchsorted(in_X, keep)]
            # the gap of the problem on the kept rows (the same P*: the screened rows are
            # zero at the optimum), so its dual has only their constraints
            converged = cert.at_dual(XtG, lstar, P)
            slack = SCREEN_SLACK * abs(P)
        trace.append(P)
        gap = cert.gap
        if verbose:
            print(f"working set {0 if ws is None else ws.size}: objective {P:.10g}, "
                  f"duality gap {gap:.3e}, support {supp.size}, epochs {epochs}, "
                  f"rows kept {keep.size}")
        if converged or epochs >= max_iter:
            if gram_ok and converged:
                cache.last_step = None if step is None else \
                    ((W.copy(), b.copy()), l2, np.array(c), step)
            break
        # ||X_j^T G||; the KKT scores ||grad_j|| / alpha of the zero rows are these / alpha
        gnorm = np.sqrt((XtG * XtG).sum(axis=1))
        r = safe_radius(max(gap, 0.0) + slack, oracle.curvature[kind]) \
            if screen and math.isfinite(gap) else math.inf
        if norms is None and r < math.inf:
            norms = _norms_of(cols, A, sw if gram_ok else None, cache)
            if norms is None:
                # the norms of all columns (about one X^T G) once the sphere is small
                # enough for a guess of the smallest (speed only) to pass
                if probe is None or gram_ok:
                    probe = _probe_norm(cols, A, sw if gram_ok else None, cache)
                if probe is not None and r * probe < alpha:
                    norms = _norms_of(cols, A, sw if gram_ok else None, cache, True)
        if norms is not None:
            out = cert.dual_s * gnorm + r * norms[keep] < alpha
            if np.any(out):
                kept[keep[out]] = False
                keep, gnorm = keep[~out], gnorm[~out]
                if keep.size <= COMPACT * in_X.size:  # X^T G on the kept columns only
                    in_X = keep
                    oracle.X = _solver.CenteredSparse(cols.X[:, keep], cols.mean[keep])
                if np.any(W[~kept] != 0):
                    W[~kept] = 0.0
                    continue  # a screened row of the support: the point has changed
        in_supp = np.any(W[keep] != 0, axis=1)
        score = gnorm / alpha
        score[in_supp] = np.inf  # the support always kept
        size = max(P0, 2 * supp.size)
        if ws is not None and not gap <= 0.5 * prev_gap:
            size = max(size, 2 * ws.size)  # no progress: grow geometrically
        if ws is not None and supp.size >= ws.size and \
                GROW_FULL * ws.size <= GROW_FULL_MAX * keep.size:
            size = max(size, GROW_FULL * ws.size)  # a full set, small against d
        size = min(size, keep.size)
        # the top rows by score; scores equal to float32 precision are ranked by index, so
        # that the set does not hang on the rounding of X^T G (sparse and dense X, or
        # BLAS builds, pick the same rows where exact ties -- e.g. two features seen in
        # one sample each -- are broken by rounding noise)
        with np.errstate(over="ignore"):  # scores beyond float32 (alpha ~ 0) rank first
            key32 = -score.astype(np.float32)
        top = np.arange(keep.size) if size == keep.size else \
            np.sort(np.argsort(key32, kind="stable")[:size])
        new_ws = keep[top]
        # no violating row (score > 1) left outside the set: its solution is likely the
        # full problem's, so solve it to the final tolerance at once; else to a fraction
        # of the present gap
        outside = np.ones(keep.size, dtype=bool)
        outside[top] = False
        complete = not np.any(score[outside] > 1.0)
        warm = ws is None and supp.size > 0
        ws, prev_gap = new_ws, gap
        inner_tol = (COMPLETE_RATIO * tol * scale if complete else INNER_RATIO * max(gap, tol * scale)) / scale
        p = ws.size
        use_gram = gram_ok and (not residual_ok
                                or _gram_form_pays(cache.new_cost(ws), p, n, T))
        # the sub-problem's products are small (p rows; the kernels are serial): one BLAS
        # thread, as extra threads only add their synchronisation (measured: 2 threads
        # made the n < d fits 2x slower on a 2-core machine); the full problem's X^T G
        # keeps the fit's n_jobs threads
        with _solver.blas_threads(1):
            if use_gram:
                sub = _GramSub(cache, ws, c, yy, Q, l2, alpha, W[ws])
            else:
                if lin is None:
                    lin = cols.product(supp, W[supp], n) + b
                sub = _DataSub(cols, ws, Y, A, loss, kind, Q, l2, alpha, fit_intercept,
                               W[ws], b, lin)
            sub_cert = _solver._Certifier(sub.oracle, pen, alpha, Q, inner_tol, np.float64)
            epochs += _inner(sub, sub_cert, max_iter - epochs, check_first=warm)
        W[:] = 0.0
        W[ws] = sub.W
        if not gram_ok:
            b = sub.b
        # (where the Gram form is possible, b = y_mean is the exact optimum for every W --
        # X's columns are centred with the same weights -- so a residual-form sub-problem's
        # b, y_mean to a rounding, is not taken: the point stays where the next fit of a
        # path starts, and that fit reuses this one's last certified step)
        # its gathered columns freed before the next set's are gathered (both alive at
        # once were 2.3x X's size at the peak of a 1000 x 1000 fit)
        sub = sub_cert = None
    return _solver.Result(W=W, b=b, n_iter=max(epochs, 1), converged=converged, trace=trace,
                          objective=trace[-1], dual_gap=cert.gap, scale=scale,
                          screened=np.flatnonzero(~kept))
