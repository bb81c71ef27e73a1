"""Feature transformers on awkward input: boolean images, float32 images with float64
output, LBP on float images, parameter ranges and sizes that overflow C ints, thread
limits."""

import warnings

import numpy as np
import pytest
from skimage.feature import graycomatrix, graycoprops, hog
from skimage.util import img_as_ubyte

from mtlclassic.backend._native import _cpu
from mtlclassic.features import GLCM, HOG, LBP, ColorHistogram, GaborBank
from mtlclassic.features.lbp import lbp_offsets


@pytest.fixture
def bool_images():
    rng = np.random.default_rng(0)
    b = rng.random((3, 32, 24)) < 0.4
    b[1, :, :12] = True  # a different share of True per image
    return b


# ---------------------------------------------------------------- item 2: bool images

ALL = [lambda: HOG(pixels_per_cell=8, cells_per_block=2), lambda: LBP(),
       lambda: LBP(method="var"), lambda: GLCM(levels=8),
       lambda: ColorHistogram(space="grey", bins=4), lambda: GaborBank(frequencies=(0.25,))]


@pytest.mark.parametrize("make", ALL)
def test_bool_images_are_img_as_ubyte(bool_images, make):
    """True is full scale for every transformer: the features of a boolean image are those
    of skimage.util.img_as_ubyte(image) (0 / 255)."""
    got = make().fit_transform(bool_images)
    ref = make().fit_transform(img_as_ubyte(bool_images))
    np.testing.assert_array_equal(got, ref)
    assert not np.array_equal(got[0], got[1])  # the images differ, so must their features


def test_bool_glcm_and_grey_histogram_values(bool_images):
    """The values that used to be identical for every boolean image (all pixels in level /
    bin 0): now the True pixels are in the top level / bin."""
    n_true = bool_images.sum(axis=(1, 2))
    frac, rest = n_true / (32 * 24), (32 * 24 - n_true) / (32 * 24)
    h = ColorHistogram(space="grey", bins=4, dtype=np.float64).fit_transform(bool_images)
    np.testing.assert_array_equal(h, np.stack([rest, 0 * frac, 0 * frac, frac], axis=1))
    g = GLCM(levels=8, distances=(1,), angles=(0.0,), properties=("contrast", "ASM"),
             dtype=np.float64).fit_transform(bool_images)
    for i, img in enumerate(bool_images):
        P = graycomatrix(img.astype(np.uint8) * 7, [1], [0.0], levels=8)
        np.testing.assert_allclose(g[i], [graycoprops(P, "contrast")[0, 0],
                                          graycoprops(P, "ASM")[0, 0]], rtol=1e-12)
    assert g[:, 0].min() > 0  # level-7 pixels next to level-0 ones: contrast 49 per pair


def test_bool_rgb_and_2d_input(bool_images):
    rgb = np.stack([bool_images, ~bool_images, bool_images], axis=-1)
    got = ColorHistogram(space="rgb", bins=2).fit_transform(rgb)
    np.testing.assert_array_equal(got, ColorHistogram(space="rgb", bins=2).fit_transform(
        img_as_ubyte(rgb)))
    flat = bool_images.reshape(3, -1)
    np.testing.assert_array_equal(GLCM(image_shape=(32, 24)).fit_transform(flat),
                                  GLCM().fit_transform(img_as_ubyte(bool_images)))


# ------------------------------------------- item 7: float32 images, float64 output

@pytest.mark.parametrize("block_norm", ["L1", "L1-sqrt", "L2", "L2-Hys"])
@pytest.mark.parametrize("C", [1, 3])
def test_hog_float32_image_float64_output_is_skimage(block_norm, C):
    """scikit-image stores a float32 image's blocks in float32; dtype=float64 must hold
    the same values (it used to differ by up to 3e-8 on most of them)."""
    rng = np.random.default_rng(1)
    X = rng.random((3, 40, 36) + ((C,) if C > 1 else ())).astype(np.float32)
    for sqrt in (False, True):
        got = HOG(pixels_per_cell=8, cells_per_block=2, block_norm=block_norm,
                  transform_sqrt=sqrt, dtype=np.float64).fit_transform(X)
        for i in range(3):
            ref = hog(X[i], pixels_per_cell=(8, 8), cells_per_block=(2, 2),
                      block_norm=block_norm, transform_sqrt=sqrt,
                      channel_axis=None if C == 1 else -1)
            assert ref.dtype == np.float32
            np.testing.assert_array_equal(got[i], ref.astype(np.float64))


SIBLINGS = [lambda **k: HOG(pixels_per_cell=8, cells_per_block=2, **k),
            lambda **k: HOG(pixels_per_cell=8, cells_per_block=2, transform_sqrt=True, **k),
            lambda **k: LBP(**k), lambda **k: LBP(P=16, R=2, method="var", **k),
            lambda **k: ColorHistogram(**k),
            lambda **k: ColorHistogram(space="rgb", mode="per-channel", **k)]


@pytest.mark.parametrize("make", SIBLINGS)
@pytest.mark.parametrize("in_dtype", [np.uint8, np.uint16, np.float16, np.float32, np.float64])
@pytest.mark.parametrize("out_dtype", [np.float32, np.float64])
def test_every_input_and_output_dtype_is_bit_exact(make, in_dtype, out_dtype):
    """Native = scikit-image (backend='skimage') bit for bit for every pair of input and
    output dtypes (HOG, LBP, colour histograms; GLCM and Gabor agree to rounding, as their
    property sums are ordered differently from NumPy's)."""
    rng = np.random.default_rng(2)
    C = 3 if isinstance(make(), ColorHistogram) or isinstance(make(), HOG) else 1
    shape = (2, 40, 36) + ((3,) if C == 3 else ())
    if np.dtype(in_dtype).kind == "u":
        X = rng.integers(0, np.iinfo(in_dtype).max + 1, shape).astype(in_dtype)
    else:
        X = rng.random(shape).astype(in_dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # LBP on floats
        got = make(dtype=out_dtype).fit_transform(X)
        ref = make(dtype=out_dtype, backend="skimage").fit_transform(X)
    assert got.dtype == out_dtype
    np.testing.assert_array_equal(got, ref)


# ----------------------------------------------------------- item 8: LBP float warning

def test_lbp_warns_on_float_images_like_skimage():
    flat = np.full((1, 16, 16), 0.9)
    # the reason: a flat float patch gives noise codes (bilinear samples one ulp off)
    dr, dc = lbp_offsets(16, 2)
    codes = np.empty((1, 16, 16))
    _cpu.lbp_codes(flat[..., None], codes, 16, 0, dr, dc, 1)
    assert len(np.unique(codes[0, 3:-3, 3:-3])) > 1
    est = LBP(P=16, R=2, method="default", grid=1).fit(flat)
    for X in (flat, flat.astype(np.float32)):
        with pytest.warns(UserWarning, match="floating-point images may give unexpected"):
            est.transform(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LBP().fit_transform(np.full((1, 16, 16), 230, np.uint8))
        LBP(method="var").fit_transform(flat)  # var thresholds nothing
