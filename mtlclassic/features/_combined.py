"""Several descriptors of RGB images, concatenated (the command line's feature set)."""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ..backend import get_namespace, is_cupy_array
from ._base import _is_dask

from .color import ColorHistogram
from .gabor import GaborBank
from .glcm import GLCM
from .hog import HOG
from .lbp import LBP

FEATURES = ("hog", "lbp", "color", "glcm", "gabor")


def to_grey_uint8(images):
    """(n, H, W, 3) uint8 -> (n, H, W) uint8 luminance (ITU-R 601-2, as scikit-image);
    NumPy or CuPy."""
    xp = get_namespace(images)
    w = xp.asarray([0.2125, 0.7154, 0.0721])
    return xp.clip(xp.rint(images.astype(xp.float64) @ w), 0, 255).astype(xp.uint8)


class ImageFeatures(TransformerMixin, BaseEstimator):
    """Concatenated HOG (on the RGB image), LBP / GLCM / Gabor (on its luminance) and HSV
    colour histograms of (n, H, W, 3) uint8 images.

    CuPy input gives CuPy output: HOG, LBP and the colour histograms run as CUDA kernels,
    GLCM and Gabor on the host. A dask array (chunked along n) gives a lazy dask array
    (n, n_features) computed block by block where the images are (e.g. on the workers of
    a dask.distributed cluster).

    Parameters
    ----------
    features : sequence of {"hog", "lbp", "color", "glcm", "gabor"}
    n_jobs : threads of the native kernels
    """

    def __init__(self, features=("hog", "lbp", "color"), n_jobs=None):
        self.features = features
        self.n_jobs = n_jobs

    def _make(self):
        feats = [self.features] if isinstance(self.features, str) else list(self.features)
        bad = [f for f in feats if f not in FEATURES]
        if not feats or bad:
            raise ValueError(f"features must be taken from {FEATURES}, got {bad or feats}")
        j = self.n_jobs
        make = {"hog": lambda: HOG(pixels_per_cell=8, cells_per_block=2, n_jobs=j),
                "lbp": lambda: LBP(grid=4, n_jobs=j),
                "color": lambda: ColorHistogram(bins=4, grid=2, n_jobs=j),
                "glcm": lambda: GLCM(n_jobs=j),
                "gabor": lambda: GaborBank(frequencies=(0.15, 0.3), orientations=4, grid=2,
                                           n_jobs=j)}
        return [(f, make[f]()) for f in feats]

    @staticmethod
    def _check(X):
        X = X if is_cupy_array(X) or _is_dask(X) else np.asarray(X)
        if X.ndim != 4 or X.shape[-1] != 3 or X.dtype != np.uint8:
            raise ValueError("ImageFeatures takes (n, H, W, 3) uint8 RGB images, got "
                             f"{X.dtype} {X.shape}")
        return X

    def fit(self, X, y=None):
        X = self._check(X)
        if _is_dask(X):  # only the image shape is learnt: one image is enough
            X = self._check(X[:1].compute())
        grey = to_grey_uint8(X[:1])
        self.transformers_ = [(f, est.fit(X[:1] if f in ("hog", "color") else grey))
                              for f, est in self._make()]
        self.image_shape_in_ = X.shape[1:]
        return self

    def transform(self, X):
        check_is_fitted(self, "transformers_")
        X = self._check(X)
        if X.shape[1:] != self.image_shape_in_:
            raise ValueError(f"images of shape {X.shape[1:]}, fitted on {self.image_shape_in_}")
        if _is_dask(X):
            nf = sum(est.n_features_out_ for _, est in self.transformers_)
            X = X.rechunk({1: -1, 2: -1, 3: -1})
            return X.map_blocks(self.transform, dtype=np.float64, chunks=(X.chunks[0], (nf,)),
                                drop_axis=[2, 3])
        grey = to_grey_uint8(X) if any(f not in ("hog", "color")
                                       for f, _ in self.transformers_) else None
        xp = get_namespace(X)
        return xp.hstack([est.transform(X if f in ("hog", "color") else grey)
                          for f, est in self.transformers_]).astype(xp.float64)

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "transformers_")
        return np.concatenate([est.get_feature_names_out() for _, est in self.transformers_])
