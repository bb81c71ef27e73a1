"""Gabor filter bank statistics."""

import numbers

import numpy as np

from ._base import ImageFeatureTransformer, check_int, check_pair


class GaborBank(ImageFeatureTransformer):
    """Mean and variance of Gabor response magnitudes in a grid of cells.

    For each frequency f and orientation theta, the image (as float64) is convolved with
    the real and imaginary parts of ``skimage.filters.gabor_kernel(f, theta, bandwidth,
    n_stds=n_stds)`` under the ``'reflect'`` boundary, exactly what
    ``skimage.filters.gabor`` does for float images; the magnitude is ``hypot(real,
    imag)``. Each grid cell contributes the mean and the variance of the magnitude. Integer
    images are converted to float64 first (scikit-image would convolve them in their
    integer type, truncating and wrapping negative responses).

    Reference: J. G. Daugman, "Uncertainty relation for resolution in space, spatial
    frequency, and orientation optimized by two-dimensional visual cortical filters",
    JOSA A 2(7), 1985.

    Parameters
    ----------
    frequencies : sequence of float in (0, 0.5], default=(0.1, 0.2, 0.3, 0.4)
        Spatial frequencies in cycles per pixel (low frequencies mean large kernels).
    orientations : int or sequence of float, default=4
        An int n gives the angles ``k pi / n``; or the angles in radians.
    bandwidth : float, default=1
    n_stds : float, default=3
        Kernel half-size in standard deviations of the envelope.
    grid : int or (int, int), default=(1, 1)
    image_shape, backend, n_jobs, batch_size, verbose, dtype
        As for :class:`HOG`. Gabor features need grey images.

    Output per image: for each (frequency, orientation), for each cell, (mean, variance).
    """

    _prefix = "gabor"
    _size_params = ("frequencies", "orientations", "grid")
    _grey_only = True

    def __init__(self, frequencies=(0.1, 0.2, 0.3, 0.4), orientations=4, bandwidth=1.0,
                 n_stds=3.0, grid=(1, 1), *, image_shape=None, backend="auto", n_jobs=None,
                 batch_size=None, verbose=False, dtype=np.float32):
        self.frequencies = frequencies
        self.orientations = orientations
        self.bandwidth = bandwidth
        self.n_stds = n_stds
        self.grid = grid
        self.image_shape = image_shape
        self.backend = backend
        self.n_jobs = n_jobs
        self.batch_size = batch_size
        self.verbose = verbose
        self.dtype = dtype

    def _check_params(self):
        freqs = np.atleast_1d(np.asarray(self.frequencies, dtype=np.float64)) \
            if self.frequencies is not None else np.zeros(0)
        if freqs.ndim != 1 or len(freqs) == 0 or not np.all((freqs > 0) & (freqs <= 0.5)):
            raise ValueError("frequencies must be a non-empty sequence in (0, 0.5] cycles per "
                             f"pixel, got {self.frequencies!r}")
        if isinstance(self.orientations, numbers.Integral) and not isinstance(
                self.orientations, bool):
            n = check_int(self.orientations, "orientations", 1, 360)
            thetas = np.arange(n) * np.pi / n
        else:
            thetas = np.atleast_1d(np.asarray(self.orientations, dtype=np.float64)) \
                if self.orientations is not None else np.zeros(0)
            if thetas.ndim != 1 or len(thetas) == 0 or not np.all(np.isfinite(thetas)):
                raise ValueError("orientations must be an int or a sequence of finite angles, "
                                 f"got {self.orientations!r}")
        for name in ("bandwidth", "n_stds"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not (
                    np.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive number, got {v!r}")
        return dict(freqs=freqs, thetas=thetas, grid=check_pair(self.grid, "grid"))

    def _kernels(self):
        from skimage.filters import gabor_kernel

        p = self._check_params()
        out = []
        for f in p["freqs"]:
            for t in p["thetas"]:
                g = gabor_kernel(f, t, self.bandwidth, n_stds=self.n_stds)
                g = g[::-1, ::-1]  # convolution = correlation with the flipped kernel
                out.append((np.ascontiguousarray(g.real), np.ascontiguousarray(g.imag)))
        return out

    def _n_features(self, H, W, C):
        p = self._check_params()
        self._check_grid(p["grid"], H, W)
        return len(p["freqs"]) * len(p["thetas"]) * p["grid"][0] * p["grid"][1] * 2

    def _native(self, images, out, n_threads):
        p = self._check_params()
        self._native_module().gabor_features(images, out, self._kernels(), *p["grid"], n_threads)

    def _reference(self, image):
        from skimage.filters import gabor

        p = self._check_params()
        img = image[..., 0].astype(np.float64)
        H, W = img.shape
        (gr, gc) = p["grid"]
        feats = []
        for f in p["freqs"]:
            for t in p["thetas"]:
                re, im = gabor(img, f, t, self.bandwidth, n_stds=self.n_stds)
                mag = np.hypot(re, im)
                for i in range(gr):
                    for j in range(gc):
                        cell = mag[i * H // gr:(i + 1) * H // gr, j * W // gc:(j + 1) * W // gc]
                        feats += [cell.mean(), cell.var()]
        return np.array(feats)

    def _names(self, H, W, C):
        p = self._check_params()
        (gr, gc) = p["grid"]
        return [f"gabor_f{fi}_t{ti}_g{i}_{j}_{stat}" for fi in range(len(p["freqs"]))
                for ti in range(len(p["thetas"])) for i in range(gr) for j in range(gc)
                for stat in ("mean", "var")]
