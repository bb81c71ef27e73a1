"""Grey-level co-occurrence matrix (GLCM) texture properties."""

import numbers

import numpy as np

from ..backend._native import require_cuda
from ..backend.kernels import DTYPE_CODES, device_ptr
from ._base import ImageFeatureTransformer, check_int, check_value_range

PROPERTIES = ("contrast", "dissimilarity", "homogeneity", "energy", "correlation", "ASM",
              "mean", "variance", "std", "entropy")


def _round_half_away(x):
    return int(x + 0.5) if x > 0 else int(x - 0.5)


# Co-occurrence counts are 32-bit (scikit-image's uint32) while every entry stays below
# 2**32: an entry counts at most H * W pairs, a symmetric diagonal entry twice that. Larger
# images (more than 4.29e9 pixels, 2.15e9 with symmetric=True) are counted in 64 bits.
MAX_PAIRS_32BIT = 2**32 - 1


def needs_wide_counts(H, W, symmetric):
    """Whether an H x W image's co-occurrence counts could overflow 32 bits."""
    return H * W * (2 if symmetric else 1) > MAX_PAIRS_32BIT


def check_distances(distances, angles, H, W):
    """ValueError for a distance that pairs no pixels of an H x W image at any of the
    angles (its features would be those of empty matrices). An angle at which a distance
    leaves the image but others do not gives an all-zero matrix, as in scikit-image."""
    offsets = {}
    for d in set(distances):
        # beyond 2 (H + W) every offset leaves the image; checked before computing offsets
        offsets[d] = [] if d >= 2 * (H + W) else glcm_offsets([d], angles)
        if not any(abs(dr) < H and abs(dc) < W for dr, dc in offsets[d]):
            raise ValueError(f"distances: {d} pairs no pixels of {H}x{W} images ({H * W} "
                             f"feature(s) each) at any of the "
                             f"angles {np.round(np.asarray(angles, dtype=float), 6).tolist()}; "
                             "use distances smaller than the images")


def glcm_offsets(distances, angles):
    """(d_row, d_col) per (distance, angle), distance-major, as scikit-image:
    ``round(sin(a) d), round(cos(a) d)`` rounded half away from zero. Rows point down,
    so angle pi/2 pairs a pixel with the one below it."""
    return np.array([[_round_half_away(np.sin(a) * d), _round_half_away(np.cos(a) * d)]
                     for d in distances for a in angles], dtype=np.int64).reshape(-1, 2)


def quantize(images, levels, value_range=None):
    """Map images (n, H, W) or (H, W) to integer levels in [0, levels), as uint8.

    ``value_range=None``: uint8 ``v * levels // 256``, uint16 ``v * levels // 65536``,
    floats must lie in [0, 1]. ``(lo, hi)``: ``floor((v - lo) / (hi - lo) * levels)``,
    values must lie in [lo, hi]. ``"image"``: (lo, hi) = each image's own min and max.
    The top of the range goes to level ``levels - 1``.
    """
    if value_range is None and images.dtype == np.uint8:
        return ((images.astype(np.uint32) * levels) >> 8).astype(np.uint8)
    if value_range is None and images.dtype == np.uint16:
        return ((images.astype(np.uint64) * levels) >> 16).astype(np.uint8)
    x = images.astype(np.float64)
    axes = tuple(range(x.ndim - 2, x.ndim))
    if isinstance(value_range, str):
        lo, hi = x.min(axis=axes, keepdims=True), x.max(axis=axes, keepdims=True)
    else:
        lo, hi = (0.0, 1.0) if value_range is None else value_range
        if x.size and (x.min() < lo or x.max() > hi):
            raise ValueError(f"GLCM: image values must lie in value_range [{lo:g}, {hi:g}] "
                             f"(got [{x.min():g}, {x.max():g}]); rescale them, pass uint8, "
                             "or set value_range")
    span = np.where(np.asarray(hi - lo) > 0, hi - lo, 1.0)
    return np.minimum(np.floor((x - lo) / span * levels), levels - 1).astype(np.uint8)


# QuantMode of csrc/include/mtlclassic/glcm.h
QUANT_U8, QUANT_U16, QUANT_AFFINE, QUANT_PER_IMAGE = range(4)
# properties one CUDA launch takes (entries may repeat): _cuda.glcm_max_props
CUDA_MAX_PROPERTIES = 64


def quantisation_mode(dtype, value_range):
    """How the kernels quantise images of ``dtype`` under a checked ``value_range``:
    ``(mode, lo, hi)`` with mode QUANT_U8 / QUANT_U16 (the integer dtype's range, lo and hi
    unused), QUANT_AFFINE (the fixed range (lo, hi); [0, 1] for floats when value_range is
    None) or QUANT_PER_IMAGE (each image's min..max)."""
    dtype = np.dtype(dtype)
    if value_range is None and dtype in (np.uint8, np.uint16):
        return (QUANT_U8 if dtype == np.uint8 else QUANT_U16), 0.0, 1.0
    if isinstance(value_range, str):
        return QUANT_PER_IMAGE, 0.0, 1.0
    lo, hi = value_range or (0.0, 1.0)
    return QUANT_AFFINE, float(lo), float(hi)


def check_count_size(H, W, symmetric):
    """The CUDA kernel counts with 32-bit atomics (scikit-image's uint32 counts); a count
    is at most the number of pixel pairs, H * W, doubled on the diagonal by ``symmetric``.
    So its counts are exact for images of up to 2^32 - 1 pixels (2^31 - 1 with
    symmetric=True); larger images are refused with a ValueError rather than counted
    modulo 2^32 (glcm_counts_fit_u32 in csrc/include/mtlclassic/glcm.h)."""
    limit = (2**31 if symmetric else 2**32) - 1
    if int(H) * int(W) > limit:
        raise ValueError(f"GLCM on the GPU: images of {H}x{W} pixels are too large for its "
                         f"32-bit co-occurrence counts (at most {limit} pixels"
                         f"{' with symmetric=True' if symmetric else ''}); use "
                         "backend='native' or split the images into tiles")


class GLCM(ImageFeatureTransformer):
    """Texture properties of grey-level co-occurrence matrices.

    The image is quantized to ``levels`` grey levels (see :func:`quantize`); for each
    distance d and angle a, ``P[i, j]`` counts pixel pairs with level i at (r, c) and j
    at ``(r + round(d sin a), c + round(d cos a))`` (``skimage.feature.graycomatrix``;
    rows point down, so pi/2 is "below"); ``symmetric`` adds the transpose. Each
    property of ``skimage.feature.graycoprops`` (on ``P / sum(P)``) becomes one feature
    per (distance, angle): ``contrast`` sum P (i-j)^2, ``dissimilarity`` sum P |i-j|,
    ``homogeneity`` sum P / (1 + (i-j)^2), ``ASM`` sum P^2, ``energy`` sqrt(ASM),
    ``correlation``, ``mean``, ``variance``, ``std``, ``entropy``.

    Reference: R. M. Haralick, K. Shanmugam, I. Dinstein, "Textural features for image
    classification", IEEE Trans. SMC 3(6), 1973.

    Parameters
    ----------
    distances : sequence of int, default=(1,)
    angles : sequence of float (radians), default=(0, pi/4, pi/2, 3pi/4)
    levels : int, default=32
        Grey levels after quantization (2..256).
    symmetric : bool, default=False
    properties : sequence of str, default=(contrast, dissimilarity, homogeneity, energy,
        correlation, ASM)
    value_range : None, "image" or (lo, hi), default=None
        How values map to levels (see :func:`quantize`): None = the dtype's range (uint8,
        uint16) or [0, 1] for floats; "image" = each image's min..max.

    Each distance must pair some pixels of the images at one of the angles at least (a
    ValueError otherwise). Counts are exact for any image: 32-bit as scikit-image's up to 2**32 - 1
    pixels (half that with ``symmetric=True``; scikit-image's uint32 counts wrap beyond),
    64-bit above.
    image_shape, backend, n_jobs, batch_size, verbose, dtype
        As for :class:`HOG`. GLCM needs grey images.

    On the GPU (CuPy input or ``backend="cuda"``) the counts are made with 32-bit integer
    atomics, so they equal the CPU's, and the properties by the CPU's function, one thread
    per count matrix; the GPU takes images of up to 2^32 - 1 pixels (2^31 - 1 with
    ``symmetric=True``) and refuses larger ones.
    """

    _prefix = "glcm"
    _grey_only = True
    _size_params = ("distances", "angles", "properties")

    def __init__(self, distances=(1,), angles=(0.0, np.pi / 4, np.pi / 2, 3 * np.pi / 4),
                 levels=32, symmetric=False,
                 properties=("contrast", "dissimilarity", "homogeneity", "energy",
                             "correlation", "ASM"), value_range=None, *,
                 image_shape=None, backend="auto", n_jobs=None, batch_size=None,
                 verbose=False, dtype=np.float32):
        self.distances = distances
        self.angles = angles
        self.levels = levels
        self.symmetric = symmetric
        self.properties = properties
        self.value_range = value_range
        self.image_shape = image_shape
        self.backend = backend
        self.n_jobs = n_jobs
        self.batch_size = batch_size
        self.verbose = verbose
        self.dtype = dtype

    def _check_params(self):
        dist = list(np.atleast_1d(self.distances)) if self.distances is not None else []
        if not dist or not all(isinstance(d, numbers.Integral) and not isinstance(d, bool)
                               and d >= 0 for d in dist):
            raise ValueError(f"distances must be non-negative ints, got {self.distances!r}")
        ang = np.atleast_1d(np.asarray(self.angles, dtype=np.float64)) \
            if self.angles is not None else np.zeros(0)
        if ang.ndim != 1 or len(ang) == 0 or not np.all(np.isfinite(ang)):
            raise ValueError(f"angles must be a non-empty sequence of finite radians, got "
                             f"{self.angles!r}")
        props = [self.properties] if isinstance(self.properties, str) else list(self.properties)
        bad = [p for p in props if p not in PROPERTIES]
        if not props or bad:
            raise ValueError(f"properties must be taken from {PROPERTIES}, got {bad or props}")
        vr = check_value_range(self.value_range)
        return dict(distances=[int(d) for d in dist], angles=ang, value_range=vr,
                    levels=check_int(self.levels, "levels", 2, 256),
                    symmetric=bool(self.symmetric), properties=props)


    def _n_features(self, H, W, C):
        p = self._check_params()
        check_distances(p["distances"], p["angles"], H, W)
        return len(p["properties"]) * len(p["distances"]) * len(p["angles"])

    def _native(self, images, out, n_threads):
        p = self._check_params()
        H, W = images.shape[1:3]
        check_distances(p["distances"], p["angles"], H, W)
        vr = p["value_range"]
        if vr is None and images.dtype in (np.uint8, np.uint16):
            mode, lo, hi = (0 if images.dtype == np.uint8 else 1), 0.0, 1.0
        elif isinstance(vr, str):
            mode, lo, hi = 3, 0.0, 1.0
        else:
            (lo, hi), mode = (vr or (0.0, 1.0)), 2
        self._native_module().glcm_features(
            images, out, mode, lo, hi, glcm_offsets(p["distances"], p["angles"]), p["levels"],
            p["symmetric"], np.array([PROPERTIES.index(x) for x in p["properties"]],
                                     dtype=np.int64), n_threads,
            needs_wide_counts(H, W, p["symmetric"]))

    def _reference(self, image):
        from skimage.feature import graycomatrix, graycoprops

        p = self._check_params()
        q = quantize(image[..., 0], p["levels"], p["value_range"])
        P = graycomatrix(q, p["distances"], p["angles"], levels=p["levels"],
                         symmetric=p["symmetric"])
        return np.concatenate([graycoprops(P, prop).ravel() for prop in p["properties"]])

    def _to_batch(self, X, reset):
        batch = super()._to_batch(X, reset)
        self._check_value_range_of(batch, self._check_params()["value_range"])
        return batch

    def _property_codes(self):
        return [PROPERTIES.index(x) for x in self._check_params()["properties"]]

    _has_cuda_kernel = True

    def _cuda_scratch_bytes(self, H, W, C):
        """The uint32 count matrices of one image: n_offsets * levels^2 * 4 bytes."""
        p = self._check_params()
        return 4 * len(p["distances"]) * len(p["angles"]) * p["levels"] ** 2

    def _cuda_args(self, dtype, shape):
        """Host-side arguments of ``_cuda.glcm_features`` for images of ``dtype`` and
        ``shape`` (n, H, W, 1): a dict of the quantisation, offsets, property codes and the
        counts buffer's length (checked here, so that the launch can only fail on the
        device)."""
        p = self._check_params()
        n, H, W, C = shape
        if C != 1:
            raise ValueError(f"GLCM needs grey images (one channel); got {C} channels")
        check_count_size(H, W, p["symmetric"])
        codes = self._property_codes()
        if len(codes) > CUDA_MAX_PROPERTIES:
            raise ValueError(f"properties: the CUDA GLCM kernel takes at most "
                             f"{CUDA_MAX_PROPERTIES} entries, got {len(codes)}")
        mode, lo, hi = quantisation_mode(dtype, p["value_range"])
        offs = glcm_offsets(p["distances"], p["angles"])
        return dict(mode=mode, lo=lo, hi=hi, dr=offs[:, 0].tolist(), dc=offs[:, 1].tolist(),
                    levels=p["levels"], symmetric=p["symmetric"], which=codes,
                    counts_len=n * len(offs) * p["levels"] ** 2)

    def _cuda(self, images, out, stream):
        import cupy

        a = self._cuda_args(images.dtype, images.shape)
        n, H, W, _ = images.shape
        counts = cupy.empty(a.pop("counts_len"), dtype=cupy.uint32)
        require_cuda().glcm_features(
            device_ptr(images, "images"), DTYPE_CODES[images.dtype], device_ptr(out, "out"),
            out.dtype == cupy.float64, device_ptr(counts, "counts"), n, H, W, a["mode"], a["lo"],
            a["hi"], a["dr"], a["dc"], a["levels"], a["symmetric"], a["which"], stream)

    def _names(self, H, W, C):
        p = self._check_params()
        return [f"glcm_{prop}_d{d}_a{k}" for prop in p["properties"] for d in p["distances"]
                for k in range(len(p["angles"]))]
