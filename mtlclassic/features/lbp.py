"""Local binary pattern histograms."""

import numbers
import warnings

import numpy as np

from ..backend._native import require_cuda
from ..backend.kernels import DTYPE_CODES, device_ptr
from ._base import (ImageFeatureTransformer, check_choice, check_cuda_histogram_limits,
                    check_int, check_pair)

METHODS = {"default": 0, "ror": 1, "uniform": 2, "nri_uniform": 3, "var": 4}


# scikit-image warns the same way for floating-point input to local_binary_pattern
FLOAT_WARNING = (
    "LBP: local binary patterns of floating-point images may give unexpected codes where "
    "neighbouring pixels differ only by rounding (the bilinear samples of a flat float patch "
    "land one ulp above or below the centre, so its codes are noise). Pass integer images "
    "(e.g. skimage.util.img_as_ubyte(X)) for exact codes.")


def lbp_offsets(P, R):
    """Neighbour offsets (d_row, d_col) of scikit-image's LBP: neighbour i sits at angle
    2*pi*i/P counter-clockwise from the right, radius R taken as float32, both offsets
    rounded to 5 decimals (which makes the cardinal ones exact integers)."""
    Rf = float(np.float32(R))
    angle = 2 * np.pi * np.arange(P, dtype=np.float64) / P
    return np.round(-Rf * np.sin(angle), 5), np.round(Rf * np.cos(angle), 5)


def lbp_n_bins(P, method, var_bins=16):
    return {"default": 2 ** P, "ror": 2 ** P, "uniform": P + 2,
            "nri_uniform": P * (P - 1) + 3, "var": var_bins}[method]


class LBP(ImageFeatureTransformer):
    """Histograms of local binary pattern codes in a grid of cells.

    Each pixel gets the code of ``skimage.feature.local_binary_pattern(image, P, R,
    method)``: ``P`` neighbours on a circle of radius ``R`` (bilinear samples, zeros
    outside the image), bit ``s_i = [sample_i >= centre]``, and

    * ``default``: ``sum_i s_i 2^i`` (2^P codes);  ``ror``: its minimum over rotations;
    * ``uniform``: number of ones if the pattern has <= 2 transitions, else ``P + 1``
      (``P + 2`` codes, rotation invariant);
    * ``nri_uniform``: one code per uniform pattern and rotation (``P(P-1) + 3`` codes);
    * ``var``: the variance of the P samples (contrast), binned on ``var_bins`` edges.

    As scikit-image, a UserWarning says that codes of floating-point images may be noise
    where neighbours differ only by rounding (a flat float patch); integer images give
    exact codes. ``method="var"`` thresholds nothing and does not warn.

    The image is split into ``grid`` cells (rows ``[i H / g, (i+1) H / g)``) and each cell
    contributes its code histogram divided by its pixel count. The native kernel
    reproduces scikit-image's codes exactly (float64, per-pixel coordinates, no FMA).

    Reference: T. Ojala, M. Pietikainen, T. Maenpaa, "Multiresolution gray-scale and
    rotation invariant texture classification with local binary patterns", IEEE TPAMI
    24(7), 2002.

    Parameters
    ----------
    P : int, default=8
        Neighbours (1..31).
    R : float, default=1
        Radius in pixels.
    method : {"default", "ror", "uniform", "nri_uniform", "var"}, default="uniform"
    grid : int or (int, int), default=(4, 4)
    var_bins : int or 1-D array, default=16
        For ``method="var"``: a number of bins, equally spaced in ``log1p(var)`` from 0 to
        the largest variance possible for the input's value range (255 for uint8, 65535
        for uint16, 1 for floats), or an increasing array of lower bin edges starting at 0.
        Zero variance falls in the first bin, values past the last edge in the last.
    image_shape, backend, n_jobs, batch_size, verbose, dtype
        As for :class:`HOG`. LBP needs grey images (one channel).
    """

    _prefix = "lbp"
    _size_params = ("P", "method", "grid", "var_bins")

    def _native_scratch_bytes(self, H, W, C):
        # per thread: float64 counts of every cell, the image padded by R as float64
        p = self._check_params()
        pad = int(np.ceil(p["R"])) + 1
        return 8 * (p["grid"][0] * p["grid"][1] * p["n_bins"] + (H + 2 * pad) * (W + 2 * pad))
    _grey_only = True

    def __init__(self, P=8, R=1, method="uniform", grid=(4, 4), var_bins=16, *,
                 image_shape=None, backend="auto", n_jobs=None, batch_size=None,
                 verbose=False, dtype=np.float32):
        self.P = P
        self.R = R
        self.method = method
        self.grid = grid
        self.var_bins = var_bins
        self.image_shape = image_shape
        self.backend = backend
        self.n_jobs = n_jobs
        self.batch_size = batch_size
        self.verbose = verbose
        self.dtype = dtype

    def _check_params(self):
        P = check_int(self.P, "P", 1, 31)
        if isinstance(self.R, bool) or not isinstance(self.R, numbers.Real) or not (
                np.isfinite(self.R) and self.R > 0):
            raise ValueError(f"R must be a positive number, got {self.R!r}")
        method = check_choice(self.method, "method", METHODS)
        grid = check_pair(self.grid, "grid")
        if method == "var" and not isinstance(self.var_bins, numbers.Integral):
            edges = np.asarray(self.var_bins, dtype=np.float64)
            if edges.ndim != 1 or len(edges) < 1 or edges[0] != 0 or np.any(np.diff(edges) <= 0) \
                    or not np.all(np.isfinite(edges)):
                raise ValueError("var_bins must be an int or an increasing 1-D array of finite "
                                 "edges starting at 0")
            n_bins = len(edges)
        else:
            n_bins = check_int(self.var_bins, "var_bins") if method == "var" else lbp_n_bins(P, method)
        return dict(P=P, R=float(self.R), method=method, grid=grid, n_bins=n_bins)

    def _compute(self, batch, dtype, params):
        if batch.dtype.kind == "f" and params["method"] != "var":
            warnings.warn(FLOAT_WARNING, UserWarning, stacklevel=3)
        return super()._compute(batch, dtype, params)

    def _var_edges(self, dtype):
        p = self._check_params()
        if p["method"] != "var":
            return np.zeros(0)
        if not isinstance(self.var_bins, numbers.Integral):
            return np.asarray(self.var_bins, dtype=np.float64)
        top = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(np.dtype(dtype), 1.0)
        return np.expm1(np.linspace(0, np.log1p(top * top / 4), p["n_bins"] + 1)[:-1])


    def _n_features(self, H, W, C):
        p = self._check_params()
        self._check_grid(p["grid"], H, W)
        self._check_radius(p["R"], H, W)
        return p["grid"][0] * p["grid"][1] * p["n_bins"]

    @staticmethod
    def _check_radius(R, H, W):
        # beyond H + W (> the diagonal) every sample of every pixel lies outside the image;
        # the native kernel pads the image by R, so R must stay of the image's size
        if R > H + W:
            raise ValueError(f"R must be at most H + W = {H + W} for {H}x{W} images, got "
                             f"R={R!r}: farther neighbours of every pixel lie outside the "
                             "image (every sample would be 0)")

    def _native(self, images, out, n_threads):
        p = self._check_params()
        self._check_radius(p["R"], images.shape[1], images.shape[2])
        dr, dc = lbp_offsets(p["P"], p["R"])
        self._native_module().lbp_histograms(
            images, out, p["P"], METHODS[p["method"]], dr, dc, *p["grid"], p["n_bins"],
            self._var_edges(images.dtype), n_threads)

    _has_cuda_kernel = True

    def _cuda_scratch_bytes(self, H, W, C):
        p = self._check_params()
        big = p["n_bins"] > require_cuda().lbp_max_shared_bins
        return 4 * p["grid"][0] * p["grid"][1] * p["n_bins"] if big else 0

    def _check_cuda_limits(self, H, W, C):
        p = self._check_params()
        self._check_radius(p["R"], H, W)
        check_cuda_histogram_limits("LBP", H, W, p["grid"], p["n_bins"], "P or method")

    def _cuda(self, images, out, stream):
        import cupy

        p = self._check_params()
        cuda = require_cuda()
        n, H, W, _ = images.shape
        edges = self._var_edges(images.dtype)
        if len(edges) > 256:
            raise ValueError(f"var_bins: the CUDA kernel takes at most 256 bins, got "
                             f"{len(edges)}; use backend='native'")
        scratch, sptr = None, 0
        if p["n_bins"] > cuda.lbp_max_shared_bins:
            scratch = cupy.empty(n * p["grid"][0] * p["grid"][1] * p["n_bins"], cupy.uint32)
            sptr = device_ptr(scratch, "scratch")
        dr, dc = lbp_offsets(p["P"], p["R"])
        cuda.lbp_histograms(device_ptr(images, "images"), DTYPE_CODES[images.dtype],
                            device_ptr(out, "out"), out.dtype == cupy.float64, sptr, n, H, W,
                            p["P"], METHODS[p["method"]], dr.tolist(), dc.tolist(), *p["grid"],
                            p["n_bins"], [float(e) for e in edges], stream)

    def _reference(self, image):
        from skimage.feature import local_binary_pattern

        p = self._check_params()
        img = image[..., 0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # given once by _compute
            codes = local_binary_pattern(img, p["P"], p["R"], p["method"])
        H, W = img.shape
        (gr, gc), n_bins = p["grid"], p["n_bins"]
        feats = []
        edges = self._var_edges(image.dtype)
        for i in range(gr):
            for j in range(gc):
                cell = codes[i * H // gr:(i + 1) * H // gr, j * W // gc:(j + 1) * W // gc]
                if p["method"] == "var":
                    # NaN (zero variance) and round-off negatives go to the first bin
                    idx = np.where(np.isnan(cell), 0, np.maximum(
                        np.searchsorted(edges, np.nan_to_num(cell), side="right") - 1, 0))
                else:
                    idx = np.minimum(cell.astype(np.int64), n_bins - 1)
                feats.append(np.bincount(idx.ravel(), minlength=n_bins) / cell.size)
        return np.concatenate(feats)

    def _names(self, H, W, C):
        p = self._check_params()
        (gr, gc), n = p["grid"], p["n_bins"]
        return [f"lbp_g{i}_{j}_{p['method']}{k}" for i in range(gr) for j in range(gc)
                for k in range(n)]
