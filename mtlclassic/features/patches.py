"""Descriptors of square patches centred on sub-pixel points (e.g. facial landmarks)."""

import numbers

import numpy as np

from ..backend import effective_n_threads, is_cupy_array
from ..backend._native import require_cpu, require_cuda
from ..backend.kernels import DTYPE_CODES, device_ptr

_LUMA = np.array([0.2125, 0.7154, 0.0721])  # skimage.color.rgb2gray's weights


def _grey(img, name):
    a = np.asarray(img)
    if a.dtype == bool:
        a = a.astype(np.uint8) * np.uint8(255)
    if a.ndim == 3 and a.shape[2] == 4:
        raise ValueError(f"{name} has 4 channels (RGBA?): composite or drop the alpha "
                         "channel first (mtlclassic.datasets.read_image composites over white)")
    if a.ndim == 3 and a.shape[2] == 3:
        a = a.astype(np.float64) @ _LUMA  # luminance, in the image's own range
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D grey or (H, W, 3) RGB image, got shape "
                         f"{a.shape}")
    if a.size == 0:
        raise ValueError(f"{name} is empty ({a.shape})")
    if a.dtype.kind not in "uif" or a.dtype.kind == "c":
        raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
    if a.dtype not in (np.uint8, np.uint16, np.float32, np.float64):
        a = a.astype(np.float64)
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinity")
    return np.ascontiguousarray(a)


def _check_geometry(points, side, n):
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim == 2 and pts.shape[1] == 2:
        pts = pts[:, None, :]
    if pts.ndim != 3 or pts.shape[0] != n or pts.shape[2] != 2:
        raise ValueError(f"points must have shape (n_images, n_points, 2) = ({n}, m, 2) with "
                         f"(x, y) in pixels, got {np.shape(points)}")
    if not np.all(np.isfinite(pts)):
        raise ValueError("points contain NaN or infinity")
    m = pts.shape[1]
    s = np.asarray(side, dtype=np.float64)
    if s.ndim == 0:
        s = np.full((n, m), float(s))
    elif s.shape == (n,):
        s = np.repeat(s[:, None], m, axis=1)
    if s.shape != (n, m):
        raise ValueError(f"side must be a number, (n_images,) or (n_images, n_points) = "
                         f"({n}, {m}), got shape {np.shape(side)}")
    if not np.all(np.isfinite(s) & (s > 0)):
        raise ValueError("side must be finite and > 0 (pixels)")
    return np.ascontiguousarray(pts), np.ascontiguousarray(s)


def extract_patches(images, points, side, patch_size=32, *, n_jobs=None):
    """Square patches resampled around sub-pixel points, bilinearly.

    Patch (i, k) covers the square of side ``side[i, k]`` pixels centred on
    ``points[i, k] = (x, y)`` (column, row; pixel centres at integers) with
    ``patch_size`` x ``patch_size`` samples; sample (r, c) lies at
    ``x = cx + side ((c + 0.5) / P - 0.5)``, ``y = cy + side ((r + 0.5) / P - 0.5)``, and
    coordinates outside the image are clamped to its edge (``csrc/include/mtlclassic/
    patch.h``; the float64 NumPy reference is ``backend.reference.patches_reference``).

    Parameters
    ----------
    images : list of (H, W) grey or (H, W, 3) RGB arrays (sizes may differ), or an
        (n, H, W) array; a CuPy (n, H, W) array runs the CUDA kernel and returns CuPy.
        RGB is reduced to luminance 0.2125 R + 0.7154 G + 0.0721 B in the image's range.
    points : (n, m, 2) or (n, 2) float, pixels
    side : float, (n,) or (n, m), pixels > 0
    patch_size : int >= 2
    n_jobs : threads (None = 1, -1 = all CPUs)

    Returns
    -------
    (n, m, patch_size, patch_size) float64
    """
    if isinstance(patch_size, bool) or not isinstance(patch_size, numbers.Integral) or not (
            2 <= patch_size <= 4096):
        raise ValueError(f"patch_size must be an integer in [2, 4096], got {patch_size!r}")
    P = int(patch_size)
    if is_cupy_array(images):
        return _extract_cuda(images, points, side, P)
    if isinstance(images, np.ndarray) and images.ndim < 3:
        raise ValueError(f"images must be a list of images or an (n, H, W[, 3]) batch, got "
                         f"an array of shape {images.shape} (wrap a single image in a list)")
    imgs = list(images)
    n = len(imgs)
    if n == 0:
        raise ValueError("images is empty: at least one image is needed")
    imgs = [_grey(im, f"images[{i}]") for i, im in enumerate(imgs)]
    dtypes = {im.dtype for im in imgs}
    if len(dtypes) > 1:
        imgs = [im.astype(np.float64) for im in imgs]
    pts, sides = _check_geometry(points, side, n)
    out = np.empty((n, pts.shape[1], P, P))
    require_cpu().patches(imgs, pts, sides, P, out, effective_n_threads(n_jobs))
    return out


def _extract_cuda(images, points, side, P):
    import cupy as cp

    if images.ndim != 3:
        raise ValueError(f"CuPy images must be an (n, H, W) grey batch, got {images.shape}")
    if images.dtype == cp.bool_:
        images = images.astype(cp.uint8) * cp.uint8(255)
    if images.dtype.name not in DTYPE_CODES:
        images = images.astype(cp.float64)
    images = cp.ascontiguousarray(images)
    n, H, W = images.shape
    if n == 0 or H == 0 or W == 0:
        raise ValueError(f"images is empty ({images.shape})")
    pts, sides = _check_geometry(cp.asnumpy(points) if is_cupy_array(points) else points,
                                 cp.asnumpy(side) if is_cupy_array(side) else side, n)
    m = pts.shape[1]
    pts_d, sides_d = cp.asarray(pts), cp.asarray(sides)
    out = cp.empty((n, m, P, P), dtype=cp.float64)
    require_cuda().patches(device_ptr(images, "images"), DTYPE_CODES[images.dtype.name],
                           device_ptr(pts_d, "points"), device_ptr(sides_d, "side"),
                           device_ptr(out, "out"), n, H, W, m, P,
                           cp.cuda.get_current_stream().ptr)
    return out


def patch_hog(images, points, side, patch_size=32, *, orientations=9, pixels_per_cell=(8, 8),
              cells_per_block=(2, 2), block_norm="L2-Hys", n_jobs=None, batch_size=2048,
              dtype=np.float32):
    """HOG descriptors of patches around points, concatenated per image.

    :func:`extract_patches` (bilinear resampling to ``patch_size`` x ``patch_size``), then
    :class:`~mtlclassic.features.HOG` of every patch (scikit-image's numbers) on the
    native kernels, in batches of ``batch_size`` images. The cascaded shape regression of
    Xiong & De la Torre (Supervised Descent Method, CVPR 2013) uses such descriptors around
    the current landmark estimates.

    Returns (n, m * d) in ``dtype``, d the HOG length of one patch; CuPy in, CuPy out.
    """
    from .hog import HOG

    hog = HOG(orientations=orientations, pixels_per_cell=pixels_per_cell,
              cells_per_block=cells_per_block, block_norm=block_norm, n_jobs=n_jobs,
              dtype=dtype)
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or \
            batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    n = len(images)
    if n == 0:
        raise ValueError("images is empty: at least one image is needed")
    pts = points if is_cupy_array(points) else np.asarray(points, dtype=np.float64)
    sd = side if (is_cupy_array(side) or np.ndim(side) == 0) else np.asarray(side)
    if pts.ndim == 3 and pts.shape[1] == 0:  # no point: no descriptor
        extract_patches(images, pts, sd, patch_size, n_jobs=n_jobs)  # the same checks
        if is_cupy_array(images):
            import cupy as cp

            return cp.zeros((n, 0), dtype=dtype)
        return np.zeros((n, 0), dtype=dtype)
    out = []
    for b in range(0, n, batch_size):
        sl = slice(b, min(n, b + batch_size))
        s_b = sd if np.ndim(sd) == 0 else sd[sl]
        patches = extract_patches(images[sl], pts[sl], s_b, patch_size, n_jobs=n_jobs)
        k, m = patches.shape[:2]
        F = hog.fit_transform(patches.reshape(k * m, patch_size, patch_size))
        out.append(F.reshape(k, -1))
    if is_cupy_array(out[0]):
        import cupy as cp

        return cp.concatenate(out)
    return np.concatenate(out)
