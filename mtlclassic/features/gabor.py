"""Gabor filter bank statistics."""

import numbers

import numpy as np

from ..backend._native import require_cuda
from ..backend.kernels import DTYPE_CODES, device_ptr
from ._base import ImageFeatureTransformer, check_int, check_pair


def pack_kernels(kernels):
    """Lay out (real, imag) kernel pairs for the CUDA kernel: one float64 vector holding,
    for kernel k at ``offset[k]``, its real part then its imaginary part (kh x kw each,
    row-major), plus ``kh``, ``kw``, ``offset`` (lists of ints) and the padding
    ``pad_r = max kh // 2``, ``pad_c = max kw // 2`` every kernel fits in.

    kernels : list of (re, im) float64 arrays of one odd shape per pair, already flipped
        (``GaborBank._kernels()``).
    """
    if not kernels:
        raise ValueError("kernels: at least one (real, imag) pair is needed")
    parts, kh, kw, offset, pos = [], [], [], [], 0
    for k, (re, im) in enumerate(kernels):
        re, im = np.asarray(re, np.float64), np.asarray(im, np.float64)
        if re.ndim != 2 or re.shape != im.shape or re.shape[0] % 2 == 0 or re.shape[1] % 2 == 0:
            raise ValueError(f"kernels[{k}]: real and imaginary parts must be 2-D arrays of one "
                             f"odd shape, got {re.shape} and {im.shape}")
        kh.append(int(re.shape[0]))
        kw.append(int(re.shape[1]))
        offset.append(pos)
        parts += [re.ravel(), im.ravel()]
        pos += 2 * re.size
    return dict(weights=np.concatenate(parts), kh=kh, kw=kw, offset=offset,
                pad_r=max(kh) // 2, pad_c=max(kw) // 2)


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

    On the GPU (CuPy input or ``backend="cuda"``) the responses come from a direct
    convolution with the CPU's per-pixel arithmetic (the same float64 sums in the same
    order), and the cell statistics from fixed-order block reductions (equal to the CPU's
    to rounding).
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

    _has_cuda_kernel = True

    def _cuda_scratch_bytes(self, H, W, C):
        """float64 padded image and magnitudes of one image."""
        plan = pack_kernels(self._kernels())
        return 8 * ((H + 2 * plan["pad_r"]) * (W + 2 * plan["pad_c"]) + H * W)

    def _cuda(self, images, out, stream):
        import cupy

        p = self._check_params()
        n, H, W, C = images.shape
        if C != 1:
            raise ValueError(f"GaborBank needs grey images (one channel); got {C} channels")
        plan = pack_kernels(self._kernels())
        pr, pc = plan["pad_r"], plan["pad_c"]
        weights = cupy.asarray(plan["weights"])
        padded = cupy.empty(n * (H + 2 * pr) * (W + 2 * pc), dtype=cupy.float64)
        mag = cupy.empty(n * H * W, dtype=cupy.float64)
        require_cuda().gabor_features(
            device_ptr(images, "images"), DTYPE_CODES[images.dtype], device_ptr(out, "out"),
            out.dtype == cupy.float64, device_ptr(weights, "weights"), weights.size, plan["kh"],
            plan["kw"], plan["offset"], device_ptr(padded, "padded"), device_ptr(mag, "mag"), n,
            H, W, pr, pc, *p["grid"], stream)

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
