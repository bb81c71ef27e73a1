"""Common machinery of the image feature transformers.

Every transformer takes a batch of images as

* ``(n, H, W)`` grey or ``(n, H, W, C)`` multi-channel arrays,
* a list of equally sized ``(H, W[, C])`` arrays,
* a 2-D ``(n, H*W*C)`` array (or DataFrame) with ``image_shape=(H, W[, C])``
  (one entry may be -1 and is inferred, as in ``numpy.reshape``),
* a dask array chunked along ``n`` (features come back as a dask array),

of dtype uint8, uint16, float32 or float64 (other integer and float16 inputs are
converted as scikit-image would; boolean images become uint8 0 / 255, as
``skimage.util.img_as_ubyte`` makes them, so True is the full scale for every
descriptor), and returns an ``(n, n_features)`` array of ``dtype``.
``fit`` validates and records the image shape; ``transform`` does the work with the
``backend`` chosen: ``"native"`` (C++ threads), ``"skimage"`` (the reference: a Python
loop over scikit-image), ``"cuda"`` (the CUDA kernels of HOG, LBP, ColorHistogram, GLCM
and GaborBank; NumPy input is copied to the GPU chunk by chunk and the result is a CuPy
array), or ``"auto"`` (native for NumPy input, CUDA for CuPy input).

CuPy input always gives CuPy output (with ``backend="native"`` or ``"skimage"`` it is
computed on the host and returned on the GPU; so would a descriptor without a CUDA kernel,
whose ``backend="cuda"`` is refused). On the GPU the batch is processed in chunks sized to
the free device memory (at most ``batch_size`` images each).
"""

import numbers
import os
import sys
import time

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ..backend import effective_n_threads, get_namespace, is_cupy_array, resolve_device
from ..backend._native import require_cpu, require_cuda
from ..backend.kernels import device_chunk_size, device_free_bytes

BACKENDS = ("auto", "native", "skimage", "cuda")


def _is_dask(X):
    return type(X).__module__.startswith("dask.")


def check_pair(value, name, minimum=1):
    """A positive int or a pair of them -> tuple of two ints."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    try:
        a, b = value
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}") from None
    for v in (a, b):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < minimum:
            raise ValueError(f"{name} must hold integers >= {minimum}, got {value!r}")
    return int(a), int(b)


def check_int(value, name, minimum=1, maximum=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum or (
            maximum is not None and value > maximum):
        bound = f">= {minimum}" + (f" and <= {maximum}" if maximum is not None else "")
        raise ValueError(f"{name} must be an integer {bound}, got {value!r}")
    return int(value)


def check_choice(value, name, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def available_memory():
    """Bytes a new allocation can use: the smaller of /proc/meminfo's MemAvailable and the
    room left under a cgroup (v2) memory limit; the physical memory where /proc is absent;
    None when nothing can be read."""
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (AttributeError, ValueError, OSError):
            return None
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        if limit != "max":
            with open("/sys/fs/cgroup/memory.current") as f:
                avail = min(avail, max(int(limit) - int(f.read().strip()), 0))
    except (OSError, ValueError):
        pass
    return avail


def _gib(n_bytes):
    return f"{n_bytes / 2**30:.3g} GiB"


# The CUDA histogram kernels (LBP, ColorHistogram) count each grid cell's pixels in 32-bit
# unsigned integers, as scikit-image's histograms do: exact while a cell holds at most
# 2**32 - 1 pixels (e.g. a 65535 x 65535 cell); bins are C ints (at most 2**31 - 1 a cell).
CUDA_MAX_CELL_PIXELS = 2**32 - 1
CUDA_MAX_BINS = 2**31 - 1


def check_cuda_histogram_limits(name, H, W, grid, n_bins, params):
    """ValueError (naming ``params``) when a CUDA histogram kernel could not count a grid
    cell of an H x W image exactly, or could not index its bins."""
    rows, cols = -(-H // grid[0]), -(-W // grid[1])  # the largest cell
    if rows * cols > CUDA_MAX_CELL_PIXELS:
        raise ValueError(f"{name}: a grid cell of {rows}x{cols} pixels exceeds the "
                         f"{CUDA_MAX_CELL_PIXELS} pixels the CUDA kernel counts exactly (32-bit "
                         "counts); use a finer grid or backend='native' (64-bit sizes)")
    if n_bins > CUDA_MAX_BINS:
        raise ValueError(f"{name}: {n_bins} bins per cell exceed the {CUDA_MAX_BINS} the CUDA "
                         f"kernel indexes; reduce {params} or use backend='native'")


def check_value_range(vr):
    """None, "image", or a finite (lo, hi) with hi > lo."""
    if vr is None or (isinstance(vr, str) and vr == "image"):
        return vr
    if isinstance(vr, str):
        raise ValueError(f"value_range must be None, 'image' or (lo, hi), got {vr!r}")
    try:
        lo, hi = (float(v) for v in vr)
    except (TypeError, ValueError):
        raise ValueError(f"value_range must be None, 'image' or (lo, hi), got {vr!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
        raise ValueError(f"value_range must be finite with hi > lo, got {vr!r}")
    return (lo, hi)


class ImageFeatureTransformer(TransformerMixin, BaseEstimator):
    """Base class: validation, batching, backends, dask, feature names.

    Subclasses define ``_check_params``, ``_n_features(H, W, C)``, ``_native(images,
    out, n_threads)`` (images: C-contiguous (n, H, W, C) array), ``_reference(image)``
    (one image through scikit-image, returning a 1-D vector) and ``_names(H, W, C)``.
    """

    _prefix = "f"
    # the parameters that set the length of the feature vector (named by the size check)
    _size_params = ()

    def _native_scratch_bytes(self, H, W, C):
        """Memory the native kernel allocates per thread beyond the image (per-cell
        histograms of LBP and ColorHistogram)."""
        return 0

    def _check_memory(self, n, nf, H, W, C, dtype, n_threads=1, fitting=False):
        """Refuse, before anything is allocated, features that would not fit in memory:
        ``n`` rows of ``nf`` values plus the kernel's per-thread scratch."""
        itemsize = np.dtype(dtype).itemsize
        need = n * nf * itemsize + min(max(n, 1), n_threads) * self._native_scratch_bytes(H, W, C)
        avail = available_memory()
        if avail is None or need <= avail:
            return
        params = ", ".join(self._size_params)
        name = type(self).__name__
        if fitting:
            raise ValueError(
                f"{name}: one feature vector holds {nf} values ({_gib(nf * itemsize)} as "
                f"{np.dtype(dtype).name}; {_gib(need)} with the kernel's buffers) but only "
                f"{_gib(avail)} of memory are available; reduce {params}")
        raise MemoryError(
            f"{name}: {n} images x {nf} features need {_gib(need)} but only {_gib(avail)} of "
            f"memory are available; transform fewer images at a time (or fewer n_jobs), or "
            f"reduce {params}")

    # ----------------------------------------------------------------- params
    def _check_common(self):
        check_choice(self.backend, "backend", BACKENDS)
        if self.backend == "cuda" and not self._has_cuda_kernel:
            raise ValueError(f"backend='cuda': {type(self).__name__} has no CUDA kernel; use "
                             "backend='auto' (CuPy input is then computed on the host and "
                             "returned on the GPU) or 'native'")
        if self.backend == "cuda":
            resolve_device("cuda")  # a clear RuntimeError when no GPU is usable
        dtype = np.dtype(self.dtype) if self.dtype is not None else None
        if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype!r}")
        if self.batch_size is not None:
            check_int(self.batch_size, "batch_size")
        effective_n_threads(self.n_jobs)
        if self.image_shape is not None:
            shape = tuple(self.image_shape) if np.iterable(self.image_shape) else None
            if shape is None or len(shape) not in (2, 3) or not all(
                    isinstance(s, numbers.Integral) and not isinstance(s, bool) and (s > 0 or s == -1)
                    for s in shape) or list(shape).count(-1) > 1:
                raise ValueError("image_shape must be (H, W) or (H, W, C) of positive ints "
                                 f"(one may be -1), got {self.image_shape!r}")
        return dtype

    # ------------------------------------------------------------- validation
    def _to_batch(self, X, reset):
        """Validate X and return a 4-D (n, H, W, C) array (not yet contiguous); CuPy input
        stays a CuPy array."""
        if is_cupy_array(X):
            return self._check_batch(self._check_dtype(X), reset, X.ndim == 2)
        if isinstance(X, (list, tuple)):
            if len(X) == 0:
                raise ValueError("X: empty list of images")
            arrays = [np.asarray(a) for a in X]
            shapes = {a.shape for a in arrays}
            if len(shapes) > 1:
                raise ValueError(f"X: images in the list have different shapes {sorted(shapes)};"
                                 " resize them to one size first")
            X = np.stack(arrays)
        import scipy.sparse

        if scipy.sparse.issparse(X):
            raise TypeError("Sparse data was passed for X, but dense data is required: images "
                            "are dense arrays (use X.toarray())")
        if not hasattr(X, "columns") and not isinstance(X, np.ndarray):
            X = np.asarray(X)
        two_d = hasattr(X, "columns") or X.ndim == 2
        if two_d:
            X = validate_data(self, X, reset=reset, dtype=None, ensure_all_finite=False,
                              ensure_min_samples=1 if reset else 0)
        else:
            X = np.asarray(X)
        return self._check_batch(self._check_dtype(X), reset, two_d)

    def _check_batch(self, X, reset, two_d):
        """Shape checks on a NumPy or CuPy array; records the image shape on reset."""
        if X.ndim == 2:
            X = X.reshape((X.shape[0],) + self._image_shape_for(X.shape[1]))
        elif X.ndim in (3, 4):
            if self.image_shape is not None:
                want = self._image_shape_for(int(np.prod(X.shape[1:])))
                if tuple(X.shape[1:]) != want and tuple(X.shape[1:]) + (1,) != want and \
                        tuple(X.shape[1:]) != want + (1,):
                    raise ValueError(f"image_shape={self.image_shape} does not match the images' "
                                     f"shape {X.shape[1:]}")
        else:
            hint = " Reshape your data: X[None] for a single image." if X.ndim < 2 else ""
            raise ValueError("X must be 2-D (n, H*W*C) with image_shape, 3-D (n, H, W) or 4-D "
                             f"(n, H, W, C); got an array of shape {X.shape}.{hint}")
        if X.ndim == 3:
            X = X[..., None]
        if X.shape[0] == 0 and reset:
            raise ValueError("X: 0 images given; at least one is required to fit")
        if any(s == 0 for s in X.shape[1:]):
            raise ValueError(f"X: images of shape {X.shape[1:]} are empty")
        if X.dtype.kind == "f" and X.size and not bool(get_namespace(X).isfinite(X).all()):
            raise ValueError("X contains NaN or infinity")
        shape = tuple(int(s) for s in X.shape[1:])
        if reset:
            self.image_shape_in_ = shape
            if two_d and is_cupy_array(X):  # validate_data did not see it
                self.n_features_in_ = int(np.prod(shape))
            if not two_d:
                self.n_features_in_ = int(np.prod(shape))
                if hasattr(self, "feature_names_in_"):
                    del self.feature_names_in_
        elif shape != self.image_shape_in_:
            raise ValueError(f"X has images of shape {shape}, but {type(self).__name__} was "
                             f"fitted on images of shape {self.image_shape_in_}")
        self._check_channels(shape[2])
        return X

    def _image_shape_for(self, row_length):
        if self.image_shape is None:
            raise ValueError(
                f"2-D input (n_samples, {row_length}) needs image_shape=(H, W) or (H, W, C) "
                "to know how each row is an image")
        shape = list(self.image_shape)
        if -1 in shape:
            known = int(np.prod([s for s in shape if s != -1]))
            if known == 0 or row_length % known:
                raise ValueError(f"image_shape={tuple(self.image_shape)} does not divide the "
                                 f"row length {row_length}")
            shape[shape.index(-1)] = row_length // known
        if int(np.prod(shape)) != row_length:
            raise ValueError(f"image_shape={tuple(self.image_shape)} holds {int(np.prod(shape))}"
                             f" values but each row of X has {row_length}")
        if len(shape) == 2:
            shape.append(1)
        return tuple(int(s) for s in shape)

    @staticmethod
    def _check_dtype(X):
        kind = X.dtype.kind
        if X.dtype in (np.uint8, np.uint16, np.float32, np.float64):
            return X
        if kind == "b":  # True is full scale (255), as skimage.util.img_as_ubyte
            return X.astype(np.uint8) * np.uint8(255)
        if kind in "iu":
            return X.astype(np.float64)
        if X.dtype == np.float16:
            return X.astype(np.float32)
        if kind == "f":
            return X.astype(np.float64)
        if kind == "O":  # NumPy's own error names what could not be converted
            return X.astype(np.float64)
        raise TypeError(f"X must hold real numbers (uint8, uint16, float32, float64), got "
                        f"dtype {X.dtype}")

    _grey_only = False

    def _check_channels(self, C):
        """Descriptors defined on grey images (``_grey_only``) refuse colour input."""
        if self._grey_only and C != 1:
            raise ValueError(f"{type(self).__name__} needs grey images (one channel); got {C} "
                             "channels. Convert with skimage.color.rgb2gray first")

    # ------------------------------------------------------------------- API
    def fit(self, X, y=None):
        """Validate the parameters and record the image shape; no learning happens."""
        dtype = self._check_common()
        self._check_params()
        if _is_dask(X):
            X = X[:1].compute()
            batch = self._to_batch(X, reset=True)
        else:
            batch = self._to_batch(X, reset=True)
        nf = self._n_features(*batch.shape[1:])
        self._check_memory(1, nf, *batch.shape[1:], dtype, fitting=True)
        self.n_features_out_ = nf
        return self

    def transform(self, X):
        """Features of each image: an array of shape (n_images, n_features_out_)."""
        check_is_fitted(self, "image_shape_in_")
        dtype = self._check_common()
        params = self._check_params()
        if _is_dask(X):
            return self._transform_dask(X, dtype)
        batch = self._to_batch(X, reset=False)
        return self._compute(batch, dtype, params)

    def _compute(self, batch, dtype, params):
        on_gpu = is_cupy_array(batch) or self.backend == "cuda"
        if on_gpu and self._has_cuda_kernel and self.backend in ("auto", "cuda"):
            return self._compute_cuda(batch, dtype)
        if is_cupy_array(batch):  # no CUDA kernel (or backend='native'/'skimage'): via host
            import cupy

            return cupy.asarray(self._compute(batch.get(), dtype, params))
        n = batch.shape[0]
        nf = self.n_features_out_
        n_threads = effective_n_threads(self.n_jobs)
        self._check_memory(n, nf, *batch.shape[1:], dtype, n_threads)
        out = np.empty((n, nf), dtype=dtype)
        if n == 0:
            return out
        backend = "native" if self.backend == "auto" else self.backend
        step = self.batch_size or n
        t0 = time.perf_counter()
        for start in range(0, n, step):
            chunk = batch[start:start + step]
            if backend == "native":
                self._native(np.ascontiguousarray(chunk), out[start:start + step], n_threads)
            else:
                for i, img in enumerate(chunk):
                    out[start + i] = self._reference(img)
            if self.verbose:
                done = min(n, start + step)
                rate = done / max(time.perf_counter() - t0, 1e-9)
                print(f"\r{type(self).__name__}: {done}/{n} images ({rate:.0f}/s)", end="",
                      file=sys.stderr, flush=True)
        if self.verbose:
            print(file=sys.stderr)
        return out

    # ---------------------------------------------------------------- GPU path
    # Descriptors with a CUDA kernel set _has_cuda_kernel and define _cuda(images, out,
    # stream) (images: a C-contiguous CuPy (n, H, W, C) chunk, out: its rows of the result)
    # and, when they need device scratch, _cuda_scratch_bytes(H, W, C) per image.
    _has_cuda_kernel = False

    def _cuda_scratch_bytes(self, H, W, C):
        return 0

    def _check_cuda_limits(self, H, W, C):
        """Raise a ValueError for sizes the CUDA kernel cannot handle (before allocating)."""

    def _compute_cuda(self, batch, dtype):
        import cupy

        require_cuda()
        n, H, W, C = batch.shape
        self._check_cuda_limits(H, W, C)
        nf = self.n_features_out_
        out = cupy.empty((n, nf), dtype=dtype)
        if n == 0:
            return out
        per_image = (H * W * C * batch.dtype.itemsize + self._cuda_scratch_bytes(H, W, C)
                     + (nf * out.dtype.itemsize if not is_cupy_array(batch) else 0))
        step = device_chunk_size(n, per_image, device_free_bytes(), self.batch_size,
                                 what=f"{type(self).__name__} on {H}x{W}x{C} images")
        stream = cupy.cuda.get_current_stream().ptr
        t0 = time.perf_counter()
        for start in range(0, n, step):
            chunk = cupy.ascontiguousarray(cupy.asarray(batch[start:start + step]))
            self._cuda(chunk, out[start:start + step], stream)
            if self.verbose:
                done = min(n, start + step)
                print(f"\r{type(self).__name__} (cuda): {done}/{n} images", end="",
                      file=sys.stderr, flush=True)
        if self.verbose:
            cupy.cuda.get_current_stream().synchronize()
            print(f" in {time.perf_counter() - t0:.3f} s", file=sys.stderr)
        return out

    def _transform_dask(self, X, dtype):
        import dask.array as da

        X = da.asarray(X)
        if X.ndim not in (2, 3, 4):
            raise ValueError(f"X must be 2-D, 3-D or 4-D; got a dask array of shape {X.shape}")
        X = X.rechunk({i: -1 for i in range(1, X.ndim)})
        nf = self.n_features_out_

        def block(b):
            return self.transform(b) if b.shape[0] else np.empty((0, nf), dtype)

        drop = list(range(2, X.ndim))
        return da.map_blocks(block, X, dtype=dtype, chunks=(X.chunks[0], (nf,)),
                             drop_axis=drop)

    def get_feature_names_out(self, input_features=None):
        """Readable names, e.g. ``hog_b0_0_c1_2_o3``."""
        check_is_fitted(self, "image_shape_in_")
        return np.asarray(self._names(*self.image_shape_in_), dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = [np.dtype(self.dtype).name] if self.dtype in (
            np.float32, np.float64, "float32", "float64") else []
        return tags

    def _native_module(self):
        return require_cpu()

    # helpers for the descriptors with a grid of cells and a value_range parameter
    @staticmethod
    def _check_grid(grid, H, W):
        if grid[0] > H or grid[1] > W:
            raise ValueError(f"grid={grid} has more cells than the {H}x{W} image has pixels")

    def _check_value_range_of(self, batch, value_range):
        """Images must lie in value_range, or in [0, 1] for floats when it is None."""
        if not batch.size or isinstance(value_range, str):
            return
        if value_range is None and batch.dtype.kind != "f":
            return
        lo, hi = value_range or (0.0, 1.0)
        bmin, bmax = float(batch.min()), float(batch.max())
        if bmin < lo or bmax > hi:
            raise ValueError(f"{type(self).__name__}: image values must lie in value_range "
                             f"[{lo:g}, {hi:g}] (got [{bmin:g}, {bmax:g}]); "
                             "rescale them, pass uint8, or set value_range")
