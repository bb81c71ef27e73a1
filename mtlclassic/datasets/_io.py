"""Image files -> uint8 RGB arrays, every file mode mapped to the same range by its type.

Decoding and colour conversions are Pillow's (the library scikit-image's own reader uses);
the range follows the pixel type's full scale, as ``skimage.util.img_as_ubyte`` scales
uint16 (written out here because img_as_ubyte leaves arrays whose values all fit in 8 bits
unscaled), so a value means the same thing whatever the file's content: 255 is full scale in
an 8-bit file, 65535 in a 16-bit file and 1.0 in a float file.
"""

import numbers

import numpy as np

#: Pillow modes read as 16-bit unsigned integers (0..65535 full scale)
_MODES_16 = {"I;16", "I;16L", "I;16B", "I;16N"}
#: formats whose 32-bit integer mode "I" holds 16-bit samples (16-bit PNG, PGM/PPM)
_FORMATS_16 = {"PNG", "PPM"}


def read_image(path):
    """Read one image file as an RGB uint8 array (H, W, 3).

    Every Pillow mode maps to [0, 255] by its type, never by the values it holds:

    ========================== =====================================================
    mode                       conversion
    ========================== =====================================================
    ``1`` (1-bit)              False -> 0, True -> 255
    ``L``, ``RGB``             as stored
    ``P`` (palette)            the palette's colours (transparency as for RGBA)
    ``LA``, ``RGBA``, ``PA``   composited over a white background (as
                               ``skimage.color.rgba2rgb`` does); so is a grey or RGB
                               image with a transparent colour (PNG tRNS)
    ``CMYK``, ``YCbCr``,       Pillow's conversion to RGB (a CMYK JPEG is not an
    ``LAB``, ``HSV``           RGBA image)
    ``I;16*`` (16-bit)         v >> 8 (as ``img_as_ubyte`` scales uint16): 65535 -> 255
    ``I`` (32-bit integer)     16-bit when the file is a 16-bit PNG or PGM/PPM, else
                               v >> 23 (2**31 - 1 -> 255; negative values -> 0)
    ``F`` (32-bit float)       round(255 v): [0, 1] -> [0, 255]; NaN, infinity and values
                               outside [-1, 1] are refused (negative ones clip to 0)
    ========================== =====================================================

    Grey images are repeated over three channels. An animation (GIF, APNG) gives its first
    frame; the EXIF orientation of a photograph is applied.

    Raises
    ------
    ValueError
        naming the file when it cannot be decoded or its values do not fit its type.
    """
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            im.seek(0)  # the first frame of an animation
            fmt = im.format
            im = ImageOps.exif_transpose(im)
            im.load()
    except Exception as exc:  # Pillow raises many types (OSError, SyntaxError, ValueError)
        first = (str(exc).strip().splitlines() or [""])[0]
        raise ValueError(f"cannot read image {path}: {type(exc).__name__}: {first}") from None
    return _to_rgb8(im, fmt, path)


def _scale_to_8_bits(a, bits):
    """Integer pixels of ``bits`` bits -> uint8 by the type's full scale (a right shift, as
    ``skimage.util.img_as_ubyte`` scales uint16; done here because img_as_ubyte leaves
    arrays whose values all fit in 8 bits unscaled). Negative values become 0."""
    a = np.clip(a.astype(np.int64), 0, (1 << bits) - 1)
    return (a >> (bits - 8)).astype(np.uint8)


def _to_rgb8(im, fmt, path):
    mode = im.mode
    transparent = "transparency" in im.info and mode in ("L", "RGB", "P", "I", "I;16")
    if mode == "1":
        a = np.asarray(im.convert("L"))
    elif mode in ("P", "PA", "LA", "La", "RGBA", "RGBa") or (
            transparent and mode in ("L", "RGB")):
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float64)
        alpha = rgba[..., 3:] / 255.0
        a = np.rint(rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    elif mode in ("L", "RGB"):
        a = np.asarray(im)
    elif mode in _MODES_16 or (mode == "I" and fmt in _FORMATS_16):
        a = _scale_to_8_bits(np.asarray(im), 16)
    elif mode == "I":
        a = _scale_to_8_bits(np.asarray(im), 31)
    elif mode == "F":
        f = np.asarray(im, dtype=np.float32)
        if not np.all(np.isfinite(f)):
            raise ValueError(f"image {path}: a float image holds NaN or infinity")
        if f.size and (f.min() < -1 or f.max() > 1):
            raise ValueError(f"image {path}: a float image must hold values in [0, 1] "
                             f"(found {f.min():.4g} .. {f.max():.4g}); convert it to an "
                             "integer type or rescale it")
        a = np.rint(np.clip(f.astype(np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)
    else:  # CMYK, YCbCr, LAB, HSV, ...: Pillow's own conversion
        a = np.asarray(im.convert("RGB"))
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"image {path}: unsupported layout {a.shape} (mode {mode})")
    return np.ascontiguousarray(a, dtype=np.uint8)


def load_image(path, size=None):
    """:func:`read_image`, then resized to ``size`` x ``size`` (anti-aliased, rounded to
    uint8) when ``size`` (an integer >= 1) is given. Returns (H, W, 3) or (size, size, 3)
    uint8."""
    if size is not None and (isinstance(size, bool) or not isinstance(size, numbers.Integral)
                             or size < 1):
        raise ValueError(f"size must be None or an integer >= 1, got {size!r}")
    img = read_image(path)
    if size is None or img.shape[:2] == (size, size):
        return img
    from skimage.transform import resize

    out = resize(img, (size, size), preserve_range=True, anti_aliasing=True)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def image_size(path):
    """(height, width) of an image file from its header, without decoding the pixels."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            w, h = im.size
            if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # EXIF orientation: a quarter turn
                w, h = h, w
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise ValueError(f"cannot read image {path}: {type(exc).__name__}: {first}") from None
    return h, w
