"""Cascaded shape regression: the Supervised Descent Method with multi-task stages."""

import numbers
import time

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.decomposition import PCA
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ..backend import effective_n_threads
from ..features.patches import patch_hog
from ..multitask import MultiTaskEstimator
from ..multitask._mixed import infer_task_type
from ..multitask._solver import blas_threads
from ._boxes import check_boxes, check_landmarks


class CascadedShapeRegressor(BaseEstimator):
    """Landmark localisation by cascaded linear regression on patch HOG descriptors.

    The Supervised Descent Method (Xiong & De la Torre, "Supervised Descent Method and its
    Applications to Face Alignment", CVPR 2013): shapes live in the coordinates of the face
    box (x, y, w, h) -- u = (x - x0) / w, v = (y - y0) / h --; a face starts from the mean
    training shape in its box, and each of ``n_stages`` stages k

        phi_k = HOG of the patches of side ``patch_scales[k]`` * (w + h) / 2 centred on the
        current points (``mtlclassic.features.patch_hog``: bilinear resampling to
        ``patch_size`` pixels, native kernels),
        s <- s + R_k(phi_k),

    with R_k a linear model (``estimator``, after a ``StandardScaler`` and a whitening PCA
    keeping ``pca`` of the variance, as SDM reduces its SIFT features by PCA) fitted to the
    remaining shape increments s* - s over ``n_init`` perturbed starts per training face
    (the mean shape scaled and moved by N(0, ``init_jitter``) in box units, the first start
    unperturbed), as SDM samples its initialisations.

    **Auxiliary tasks** (TCDCN's idea, Zhang et al. ECCV 2014, in linear form): with
    ``aux`` (e.g. gender, smile, glasses, pose) each stage fits the 2 m coordinates and the
    auxiliary tasks as one :class:`~mtlclassic.multitask.MultiTaskEstimator`, so that a
    coupling penalty (``l21``: shared feature selection; ``trace``: a shared subspace;
    ``mtrl``: learned task relations) lets the attributes shape the landmark regression.
    The last stage's auxiliary predictions are returned by :meth:`predict_aux`.

    Parameters
    ----------
    estimator : estimator or None, default=None
        Each stage's regression, cloned per stage (targets: the 2 m increments in box units,
        then the auxiliary tasks). None: ``MultiTaskEstimator(penalty="ridge", alpha=1e-3)``.
        With ``aux`` it must be a :class:`MultiTaskEstimator` (its ``task_types`` are set).
    n_stages : int >= 1, default=4
    n_init : int >= 1, default=4
        Starts per training face.
    patch_scales : sequence of float > 0, default=(0.4, 0.3, 0.2, 0.15)
        Patch side per stage over the box side, coarse to fine (the last value repeats
        when there are more stages).
    patch_size : int, default=24
        Resampled patch side in pixels; with ``pixels_per_cell=8``: 3 x 3 cells, 2 x 2
        blocks, 144 HOG values per point.
    orientations, pixels_per_cell : HOG parameters (``cells_per_block=(2, 2)``, L2-Hys)
    init_jitter : float >= 0, default=0.05
    pca : float in (0, 1], int or None, default=0.98
        Each stage's descriptors are standardised, then projected on the principal
        components keeping this fraction of their variance (an int: that many components)
        and whitened (unit variance). Whitening makes the features' covariance the
        identity, so the stage's convex problem is well conditioned: on MTFL's 720 patch
        HOG values the coupled fits (l21, trace) took 10-30x fewer iterations (e.g. l21 at
        alpha 1e-3: 205 instead of 2,000+). The penalties then act on the whitened
        components. 1 keeps every component; None: standardisation only.
    random_state : int, RandomState or None
    n_jobs : threads of the feature kernels, the stage models and every BLAS pool during
        fit and predict (threadpoolctl; None is 1, -1 all cores): an unlimited OpenBLAS on
        a busy machine made the stages' PCA 10x slower
    verbose : int

    Attributes
    ----------
    mean_shape_ : (m, 2) mean training shape in box units
    stages_ : list of fitted stage models (Pipeline(StandardScaler[, PCA], estimator))
    n_points_ : m;  aux_types_ : list of task types of the auxiliary columns
    stage_times_ : seconds per stage (features, fit)
    """

    def __init__(self, estimator=None, n_stages=4, n_init=4,
                 patch_scales=(0.4, 0.3, 0.2, 0.15), patch_size=24, orientations=9,
                 pixels_per_cell=8, init_jitter=0.05, pca=0.98, random_state=0, n_jobs=None,
                 verbose=0):
        self.estimator = estimator
        self.n_stages = n_stages
        self.n_init = n_init
        self.patch_scales = patch_scales
        self.patch_size = patch_size
        self.orientations = orientations
        self.pixels_per_cell = pixels_per_cell
        self.init_jitter = init_jitter
        self.pca = pca
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    # ---------------------------------------------------------------- checks
    def _check_params(self):
        for name in ("n_stages", "n_init", "patch_size", "orientations", "pixels_per_cell"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if self.patch_size < 2 * self.pixels_per_cell:
            raise ValueError(f"patch_size ({self.patch_size}) must hold at least 2 x 2 HOG "
                             f"cells of pixels_per_cell = {self.pixels_per_cell}")
        try:
            scales = np.atleast_1d(np.asarray(self.patch_scales, dtype=np.float64))
        except (TypeError, ValueError):
            scales = np.array([np.nan])
        if scales.ndim != 1 or scales.size == 0 or not np.all(np.isfinite(scales) & (scales > 0)):
            raise ValueError(f"patch_scales must be a non-empty sequence of numbers > 0, got "
                             f"{self.patch_scales!r}")
        j = self.init_jitter
        if isinstance(j, bool) or not isinstance(j, numbers.Real) or not (0 <= j < 1):
            raise ValueError(f"init_jitter must be a number in [0, 1), got {j!r}")
        c = self.pca
        if c is not None and (isinstance(c, bool) or not isinstance(c, numbers.Real) or not (
                (isinstance(c, numbers.Integral) and c >= 1) or 0 < c <= 1)):
            raise ValueError(f"pca must be None, a fraction in (0, 1] or an integer >= 1, got "
                             f"{c!r}")
        return scales

    @staticmethod
    def _check_images(images):
        if isinstance(images, np.ndarray) and images.ndim < 3:
            raise ValueError(f"images must be a list of (H, W[, 3]) images or an (n, H, W[, 3])"
                             f" batch, got an array of shape {images.shape}")
        images = list(images)
        if not images:
            raise ValueError("images is empty: at least one face image is needed")
        return images

    def _stage_estimator(self, n_aux_types):
        est = self.estimator
        if est is None:
            est = MultiTaskEstimator(penalty="ridge", alpha=1e-3, n_jobs=self.n_jobs)
        est = clone(est)
        if n_aux_types is not None:
            if not isinstance(est, MultiTaskEstimator):
                raise ValueError("aux needs an estimator that fits regression and "
                                 "classification tasks together: a MultiTaskEstimator, got "
                                 f"{type(est).__name__}")
            est.set_params(task_types=["regression"] * (2 * self.n_points_) + n_aux_types)
        elif isinstance(est, MultiTaskEstimator):
            est.set_params(task_types=["regression"] * (2 * self.n_points_))
        if self.pca is None:
            return make_pipeline(StandardScaler(), est)
        pca = PCA(n_components=self.pca if self.pca < 1 else
                  (None if self.pca == 1 else int(self.pca)), whiten=True,
                  svd_solver="covariance_eigh")  # n >> d: X^T X, then a d x d eigh
        return make_pipeline(StandardScaler(), pca, est)

    # ------------------------------------------------------------- features
    def _features(self, images, shapes, boxes, stage, scales):
        """HOG of the patches around shapes (box units) of every face: (n, m * d)."""
        pts = shapes * boxes[:, None, 2:] + boxes[:, None, :2]
        side = scales[min(stage, len(scales) - 1)] * boxes[:, 2:].mean(axis=1)
        ppc = int(self.pixels_per_cell)
        return patch_hog(images, pts, side, int(self.patch_size),
                         orientations=int(self.orientations), pixels_per_cell=(ppc, ppc),
                         cells_per_block=(2, 2), n_jobs=self.n_jobs)

    def _starts(self, n, rng):
        """n_init starts per face (n * n_init, m, 2): the mean shape, then perturbed."""
        S = np.repeat(self.mean_shape_[None], n * self.n_init, axis=0)
        if self.n_init > 1 and self.init_jitter > 0:
            k = np.arange(n * self.n_init) % self.n_init != 0  # the first start: unperturbed
            c = self.mean_shape_.mean(axis=0)
            scale = 1 + self.init_jitter * rng.standard_normal(k.sum())
            shift = self.init_jitter * rng.standard_normal((k.sum(), 1, 2))
            S[k] = (S[k] - c) * scale[:, None, None] + c + shift
        return S

    # ------------------------------------------------------------------- fit
    def fit(self, images, landmarks, boxes, aux=None):
        """Fit the cascade.

        Parameters
        ----------
        images : list of n (H, W) grey or (H, W, 3) RGB images (sizes may differ; RGB is
            reduced to luminance) or an (n, H, W[, 3]) array
        landmarks : (n, m, 2) true points (x, y) in pixels; NaN points are missing labels
            (a face needs one known point)
        boxes : (n, 4) face boxes (x, y, width, height) in pixels, overlapping the images
        aux : None or (n,) / (n, n_aux) auxiliary targets (class labels or values; NaN /
            None unlabelled), fitted with the landmarks at every stage
        """
        scales = self._check_params()
        with blas_threads(effective_n_threads(self.n_jobs)):
            return self._fit(scales, images, landmarks, boxes, aux)

    def _fit(self, scales, images, landmarks, boxes, aux):
        images = self._check_images(images)
        n = len(images)
        L = check_landmarks(landmarks, n)
        B = check_boxes(boxes, n, images)
        if np.all(np.isnan(L).any(axis=2), axis=1).any():
            raise ValueError(f"face {int(np.flatnonzero(np.isnan(L).any(axis=2).all(axis=1))[0])}"
                             " has no known landmark")
        if n * int(self.n_init) < 2:
            raise ValueError(f"{n} face(s) x n_init = {self.n_init} start(s) give one training "
                             "sample per stage: at least 2 are needed (more faces or n_init)")
        self.n_points_ = m = L.shape[1]
        aux_types = None
        if aux is not None:
            A = np.asarray(aux, dtype=object) if not hasattr(aux, "dtype") else np.asarray(aux)
            A = A[:, None] if A.ndim == 1 else A
            if A.ndim != 2 or A.shape[0] != n or A.shape[1] == 0:
                raise ValueError(f"aux must have shape (n_faces,) or (n_faces, n_aux >= 1) with "
                                 f"n_faces = {n}, got {np.shape(aux)}")
            aux_types = []
            for j in range(A.shape[1]):
                col = A[:, j]
                lab = np.array([not (v is None or (isinstance(v, numbers.Real) and v != v))
                                for v in col], dtype=bool)
                if not lab.any():
                    raise ValueError(f"aux column {j} has no labelled value (all NaN / None)")
                aux_types.append(infer_task_type(col[lab]))
        self.aux_types_ = aux_types or []
        U = (L - B[:, None, :2]) / B[:, None, 2:]  # truth in box units
        self.mean_shape_ = np.nanmean(U, axis=0)
        if np.isnan(self.mean_shape_).any():
            raise ValueError("a landmark is unknown on every face")
        rng = check_random_state(self.random_state)
        S = self._starts(n, rng)
        rep = np.repeat(np.arange(n), self.n_init)
        imgs = [images[i] for i in rep]
        Brep, Urep = B[rep], U[rep]
        Arep = None if aux is None else A[rep]
        self.stages_, self.stage_times_ = [], []
        for k in range(int(self.n_stages)):
            t0 = time.perf_counter()
            F = self._features(imgs, S, Brep, k, scales)
            t1 = time.perf_counter()
            D = (Urep - S).reshape(len(S), 2 * m)  # NaN where the truth is unknown
            Y = D if Arep is None else np.concatenate([D.astype(object), Arep], axis=1)
            model = self._stage_estimator(aux_types)
            model.fit(F, Y)
            S = S + self._increment(model, F)
            t2 = time.perf_counter()
            self.stages_.append(model)
            self.stage_times_.append((t1 - t0, t2 - t1))
            if self.verbose:
                err = np.nanmean(np.linalg.norm(Urep - S, axis=2))
                print(f"stage {k + 1}: features {t1 - t0:.1f} s, fit {t2 - t1:.1f} s, "
                      f"mean training error {err:.4f} box units")
        return self

    def _increment(self, model, F):
        P = model.predict(F)
        P = P.reshape(len(F), -1)[:, :2 * self.n_points_]
        return np.asarray(P, dtype=np.float64).reshape(len(F), self.n_points_, 2)

    # --------------------------------------------------------------- predict
    def _run(self, images, boxes):
        check_is_fitted(self, "stages_")
        scales = self._check_params()
        images = self._check_images(images)
        B = check_boxes(boxes, len(images), images)
        S = np.repeat(self.mean_shape_[None], len(images), axis=0)
        F = None
        with blas_threads(effective_n_threads(self.n_jobs)):
            for k, model in enumerate(self.stages_):
                F = self._features(images, S, B, k, scales)
                S = S + self._increment(model, F)
            return S * B[:, None, 2:] + B[:, None, :2], F

    def predict(self, images, boxes):
        """(n, m, 2) landmark estimates (x, y) in pixels for faces in ``boxes`` (n, 4)."""
        return self._run(images, boxes)[0]

    def predict_aux(self, images, boxes):
        """The auxiliary tasks as predicted by the last stage (on the descriptors at the
        last stage's input shape): (n, n_aux), each column in its task's type; ValueError
        when the cascade was fitted without ``aux``."""
        if not getattr(self, "aux_types_", None):
            check_is_fitted(self, "stages_")
            raise ValueError("the cascade was fitted without aux: no auxiliary task to predict")
        _, F = self._run(images, boxes)
        with blas_threads(effective_n_threads(self.n_jobs)):
            P = self.stages_[-1].predict(F)
        return P.reshape(len(F), -1)[:, 2 * self.n_points_:]
