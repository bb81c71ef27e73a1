"""Colour histograms."""

import numpy as np

from ..backend import get_namespace
from ..backend._native import require_cuda
from ..backend.kernels import DTYPE_CODES, device_ptr
from ._base import (ImageFeatureTransformer, check_choice, check_cuda_histogram_limits,
                    check_int, check_pair, check_value_range)

SPACES = {"rgb": 0, "hsv": 1, "grey": 2}


def to_unit(image):
    """Values in [0, 1] as ``skimage.util.img_as_float``: uint8 ``x * (1/255)``, uint16
    ``x * (1/65535)``, floats unchanged (float32 stays float32)."""
    if image.dtype == np.uint8:
        return image * (1.0 / 255)
    if image.dtype == np.uint16:
        return image * (1.0 / 65535)
    return image


class ColorHistogram(ImageFeatureTransformer):
    """Normalised colour histograms in a grid of cells.

    Pixel values are mapped to [0, 1] (uint8 / 255, uint16 / 65535, floats must already lie
    in [0, 1]); ``space="hsv"`` converts them as ``skimage.color.rgb2hsv``; each channel
    value x falls in bin ``min(floor(x * bins_c), bins_c - 1)``. ``mode="joint"`` counts
    the ``bins[0] * bins[1] * bins[2]`` colour cells (Swain & Ballard, "Color indexing",
    IJCV 7(1), 1991); ``mode="per-channel"`` concatenates one histogram per channel. Each
    grid cell's counts are divided by its pixel count. ``space="grey"`` takes one-channel
    images and uses ``bins[0]``.

    Parameters
    ----------
    space : {"hsv", "rgb", "grey"}, default="hsv"
        Colour spaces need 3-channel images; a grey image gives a clear error (use
        ``space="grey"``).
    bins : int or (int, int, int), default=(8, 8, 8)
    mode : {"joint", "per-channel"}, default="joint"
    grid : int or (int, int), default=(1, 1)
    value_range : None, "image" or (lo, hi), default=None
        None: the dtype's range (uint8, uint16) or [0, 1] for floats, values outside are an
        error; (lo, hi): ``(x - lo) / (hi - lo)``; "image": each image's own min..max.
    image_shape, backend, n_jobs, batch_size, verbose, dtype
        As for :class:`HOG`.
    """

    _prefix = "color"
    _size_params = ("bins", "mode", "grid")

    def _native_scratch_bytes(self, H, W, C):
        return 8 * self._check_params()["n_bins"]  # one float64 histogram per thread

    def __init__(self, space="hsv", bins=(8, 8, 8), mode="joint", grid=(1, 1),
                 value_range=None, *,
                 image_shape=None, backend="auto", n_jobs=None, batch_size=None,
                 verbose=False, dtype=np.float32):
        self.space = space
        self.bins = bins
        self.mode = mode
        self.grid = grid
        self.value_range = value_range
        self.image_shape = image_shape
        self.backend = backend
        self.n_jobs = n_jobs
        self.batch_size = batch_size
        self.verbose = verbose
        self.dtype = dtype

    def _check_params(self):
        space = check_choice(self.space, "space", SPACES)
        mode = check_choice(self.mode, "mode", ("joint", "per-channel"))
        if np.iterable(self.bins):
            bins = tuple(self.bins)
            if len(bins) != 3:
                raise ValueError(f"bins must be an int or three ints, got {self.bins!r}")
            bins = tuple(check_int(b, "bins", 1, 4096) for b in bins)
        else:
            bins = (check_int(self.bins, "bins", 1, 4096),) * 3
        if space == "grey":
            n_bins = bins[0]
        else:
            n_bins = bins[0] * bins[1] * bins[2] if mode == "joint" else sum(bins)
        return dict(space=space, mode=mode, bins=bins, grid=check_pair(self.grid, "grid"),
                    n_bins=n_bins, value_range=check_value_range(self.value_range))

    def _scaled(self, batch):
        """Apply value_range: float64 values in [0, 1] (or the batch untouched for None)."""
        vr = self._check_params()["value_range"]
        if vr is None:
            return batch
        xp = get_namespace(batch)
        x = batch.astype(xp.float64)
        axes = (1, 2, 3) if x.ndim == 4 else (0, 1, 2)
        if isinstance(vr, str):
            lo, hi = x.min(axis=axes, keepdims=True), x.max(axis=axes, keepdims=True)
        else:
            lo, hi = vr
        span = xp.where(xp.asarray(hi - lo) > 0, hi - lo, 1.0)
        return xp.clip((x - lo) / span, 0.0, 1.0)

    def _check_channels(self, C):
        space = self._check_params()["space"]
        if space == "grey" and C != 1:
            raise ValueError(f"space='grey' needs one-channel images; got {C} channels")
        if space != "grey" and C != 3:
            raise ValueError(f"space={space!r} needs RGB images (3 channels); got {C} "
                             "channel(s). Use space='grey' for grey images")

    def _to_batch(self, X, reset):
        batch = super()._to_batch(X, reset)
        self._check_value_range_of(batch, self._check_params()["value_range"])
        return batch

    def _n_features(self, H, W, C):
        p = self._check_params()
        self._check_grid(p["grid"], H, W)
        return p["grid"][0] * p["grid"][1] * p["n_bins"]

    def _native(self, images, out, n_threads):
        p = self._check_params()
        images = np.ascontiguousarray(self._scaled(images))
        self._native_module().color_histograms(images, out, SPACES[p["space"]], *p["bins"],
                                               p["mode"] == "joint", *p["grid"], n_threads)

    _has_cuda_kernel = True

    def _cuda_scratch_bytes(self, H, W, C):
        p = self._check_params()
        big = p["n_bins"] > require_cuda().color_max_shared_bins
        scaled = 8 * H * W * C if p["value_range"] is not None else 0
        return scaled + (4 * p["grid"][0] * p["grid"][1] * p["n_bins"] if big else 0)

    def _check_cuda_limits(self, H, W, C):
        p = self._check_params()
        check_cuda_histogram_limits("ColorHistogram", H, W, p["grid"], p["n_bins"],
                                    "bins or mode")

    def _cuda(self, images, out, stream):
        import cupy

        p = self._check_params()
        cuda = require_cuda()
        images = cupy.ascontiguousarray(self._scaled(images))
        n, H, W, C = images.shape
        scratch, sptr = None, 0
        if p["n_bins"] > cuda.color_max_shared_bins:
            scratch = cupy.empty(n * p["grid"][0] * p["grid"][1] * p["n_bins"], cupy.uint32)
            sptr = device_ptr(scratch, "scratch")
        cuda.color_histograms(device_ptr(images, "images"), DTYPE_CODES[images.dtype],
                              device_ptr(out, "out"), out.dtype == cupy.float64, sptr, n, H, W,
                              C, SPACES[p["space"]], *p["bins"], p["mode"] == "joint",
                              *p["grid"], stream)

    def _reference(self, image):
        from skimage.color import rgb2hsv

        p = self._check_params()
        x = to_unit(self._scaled(image))
        if p["space"] == "hsv":
            x = rgb2hsv(x)
        H, W = image.shape[:2]
        (gr, gc), bins = p["grid"], p["bins"]
        feats = []
        for i in range(gr):
            for j in range(gc):
                cell = x[i * H // gr:(i + 1) * H // gr, j * W // gc:(j + 1) * W // gc]
                cell = cell.reshape(-1, cell.shape[-1])
                k = [np.clip(np.floor(cell[:, c] * cell.dtype.type(bins[c])), 0, bins[c] - 1)
                     .astype(np.int64) for c in range(cell.shape[1])]
                if p["space"] == "grey":
                    h = np.bincount(k[0], minlength=bins[0])
                elif p["mode"] == "joint":
                    h = np.bincount((k[0] * bins[1] + k[1]) * bins[2] + k[2],
                                    minlength=bins[0] * bins[1] * bins[2])
                else:
                    h = np.concatenate([np.bincount(k[c], minlength=bins[c]) for c in range(3)])
                feats.append(h / len(cell))
        return np.concatenate(feats)

    def _names(self, H, W, C):
        p = self._check_params()
        (gr, gc), b, sp = p["grid"], p["bins"], p["space"]
        if sp == "grey":
            bins = [f"v{k}" for k in range(b[0])]
        elif p["mode"] == "joint":
            bins = [f"{a}_{c}_{d}" for a in range(b[0]) for c in range(b[1]) for d in range(b[2])]
        else:
            bins = [f"{sp[c]}{k}" for c in range(3) for k in range(b[c])]
        return [f"color_{sp}_g{i}_{j}_{name}" for i in range(gr) for j in range(gc)
                for name in bins]
