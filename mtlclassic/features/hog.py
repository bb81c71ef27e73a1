"""Histogram of Oriented Gradients."""

import numpy as np

from ..backend._native import require_cuda
from ..backend.kernels import DTYPE_CODES, device_ptr
from ._base import ImageFeatureTransformer, check_choice, check_int, check_pair

BLOCK_NORMS = {"L1": 0, "L1-sqrt": 1, "L2": 2, "L2-Hys": 3}


class HOG(ImageFeatureTransformer):
    """Histogram of Oriented Gradients of each image, as ``skimage.feature.hog``.

    Gradients ``g_r = I[r+1, c] - I[r-1, c]``, ``g_c = I[r, c+1] - I[r, c-1]`` (zero on
    the image border); for multi-channel images the channel with the largest
    ``hypot(g_r, g_c)`` (lowest index on ties). Each pixel votes its magnitude into the
    unsigned orientation bin ``floor(o / (180/orientations))`` of its cell, with
    ``o = rad2deg(atan2(g_r, g_c)) mod 180`` (hard binning); cells are averaged; blocks of
    ``cells_per_block`` cells slide by one cell and are normalised:

    * ``L1``: ``v / (||v||_1 + eps)``;  ``L1-sqrt``: ``sqrt(v / (||v||_1 + eps))``
    * ``L2``: ``v / sqrt(||v||_2^2 + eps^2)``
    * ``L2-Hys``: L2, then ``min(v, 0.2)``, then L2 again (Lowe 2004), ``eps = 1e-5``.

    The output per image has ``n_blocks_row * n_blocks_col * cells_per_block[0] *
    cells_per_block[1] * orientations`` values in scikit-image's order. The native
    kernel reproduces scikit-image's arithmetic (float32 cell sums, NumPy's summation
    order) and matches it bit for bit on the images we test. As scikit-image returns float32
    features for float32 (and float16) images, their values are rounded to float32 whichever
    ``dtype`` is asked for; other images give float64 values.

    Reference: N. Dalal and B. Triggs, "Histograms of Oriented Gradients for Human
    Detection", CVPR 2005.

    Parameters
    ----------
    orientations : int, default=9
    pixels_per_cell : int or (int, int), default=(8, 8)
    cells_per_block : int or (int, int), default=(3, 3)
    block_norm : {"L1", "L1-sqrt", "L2", "L2-Hys"}, default="L2-Hys"
    transform_sqrt : bool, default=False
        Square root of the image first (power-law compression); images must be >= 0.
    image_shape : (H, W) or (H, W, C), default=None
        Needed for 2-D input (one flattened image per row).
    backend : {"auto", "native", "skimage"}, default="auto"
    n_jobs : int, default=None
        Threads of the native kernel (None = 1, -1 = all CPUs).
    batch_size : int, default=None
        Images per native call (and per progress update); None = all at once.
    verbose : bool, default=False
        Progress on standard error.
    dtype : float32 or float64, default=np.float32
    """

    _prefix = "hog"
    _size_params = ("orientations", "pixels_per_cell", "cells_per_block")

    def __init__(self, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(3, 3),
                 block_norm="L2-Hys", transform_sqrt=False, *, image_shape=None,
                 backend="auto", n_jobs=None, batch_size=None, verbose=False,
                 dtype=np.float32):
        self.orientations = orientations
        self.pixels_per_cell = pixels_per_cell
        self.cells_per_block = cells_per_block
        self.block_norm = block_norm
        self.transform_sqrt = transform_sqrt
        self.image_shape = image_shape
        self.backend = backend
        self.n_jobs = n_jobs
        self.batch_size = batch_size
        self.verbose = verbose
        self.dtype = dtype

    def _check_params(self):
        return dict(
            orientations=check_int(self.orientations, "orientations", 1, 4096),
            cell=check_pair(self.pixels_per_cell, "pixels_per_cell"),
            block=check_pair(self.cells_per_block, "cells_per_block"),
            norm=BLOCK_NORMS[check_choice(self.block_norm, "block_norm", BLOCK_NORMS)],
            sqrt=bool(self.transform_sqrt),
        )

    def _geometry(self, H, W):
        p = self._check_params()
        ncr, ncc = H // p["cell"][0], W // p["cell"][1]
        nbr, nbc = ncr - p["block"][0] + 1, ncc - p["block"][1] + 1
        if nbr <= 0 or nbc <= 0:
            raise ValueError(
                f"images of {H}x{W} pixels are too small for pixels_per_cell={p['cell']} and "
                f"cells_per_block={p['block']}: at least {p['block'][0] * p['cell'][0]}x"
                f"{p['block'][1] * p['cell'][1]} pixels are needed")
        return p, nbr, nbc

    def _n_features(self, H, W, C):
        p, nbr, nbc = self._geometry(H, W)
        return nbr * nbc * p["block"][0] * p["block"][1] * p["orientations"]

    def _to_batch(self, X, reset):
        batch = super()._to_batch(X, reset)
        if self.transform_sqrt and batch.dtype.kind == "f" and batch.size and batch.min() < 0:
            raise ValueError("transform_sqrt=True needs images without negative values")
        return batch

    def _native(self, images, out, n_threads):
        p = self._check_params()
        self._native_module().hog_batch(images, out, p["orientations"], *p["cell"], *p["block"],
                                        p["norm"], p["sqrt"], n_threads)

    _has_cuda_kernel = True

    def _cuda_scratch_bytes(self, H, W, C):
        p = self._check_params()
        return 4 * (H // p["cell"][0]) * (W // p["cell"][1]) * p["orientations"]

    def _cuda(self, images, out, stream):
        import cupy

        p = self._check_params()
        n, H, W, C = images.shape
        cells = cupy.empty(n * (H // p["cell"][0]) * (W // p["cell"][1]) * p["orientations"],
                           dtype=cupy.float32)
        require_cuda().hog_batch(
            device_ptr(images, "images"), DTYPE_CODES[images.dtype], device_ptr(cells, "cells"),
            device_ptr(out, "out"), out.dtype == cupy.float64, n, H, W, C, p["orientations"],
            *p["cell"], *p["block"], p["norm"], p["sqrt"], stream)

    def _reference(self, image):
        from skimage.feature import hog

        grey = image.shape[2] == 1
        return hog(image[..., 0] if grey else image, orientations=self.orientations,
                   pixels_per_cell=check_pair(self.pixels_per_cell, "pixels_per_cell"),
                   cells_per_block=check_pair(self.cells_per_block, "cells_per_block"),
                   block_norm=self.block_norm, transform_sqrt=bool(self.transform_sqrt),
                   feature_vector=True, channel_axis=None if grey else -1)

    def _names(self, H, W, C):
        p, nbr, nbc = self._geometry(H, W)
        (br, bc), n = p["block"], p["orientations"]
        return [f"hog_b{i}_{j}_c{a}_{b}_o{o}" for i in range(nbr) for j in range(nbc)
                for a in range(br) for b in range(bc) for o in range(n)]
