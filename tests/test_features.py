"""Feature transformers: native kernels against scikit-image on random and real images,
input forms, and bad input."""

import warnings

import numpy as np
import pytest
import skimage.data as sd
from skimage.feature import graycomatrix, graycoprops, hog, local_binary_pattern

from mtlclassic.backend import cuda_available
from mtlclassic.backend._native import _cpu
from mtlclassic.features import GLCM, HOG, LBP, ColorHistogram, GaborBank
from mtlclassic.features.glcm import PROPERTIES, glcm_offsets, quantize
from mtlclassic.features.lbp import METHODS, lbp_offsets


def _crops(img, size, n, step=17):
    H, W = size
    return np.stack([img[i * step:i * step + H, i * step // 2:i * step // 2 + W]
                     for i in range(n)])


@pytest.fixture(scope="module")
def grey_real():
    return {"camera": sd.camera(), "coins": sd.coins(), "brick": sd.brick(),
            "moon": sd.moon()}


@pytest.fixture(scope="module")
def rgb_real():
    return {"astronaut": sd.astronaut(), "coffee": sd.coffee(), "chelsea": sd.chelsea()}


# ------------------------------------------------------------------ HOG

def _hog_ref(img, **kw):
    ch = None if img.ndim == 2 else -1
    return hog(img, channel_axis=ch, **kw)


def _hog_native(batch, **kw):
    dtype = kw.pop("dtype", np.float64)
    return HOG(dtype=dtype, **kw).fit(batch).transform(batch)


@pytest.mark.parametrize("block_norm", ["L1", "L1-sqrt", "L2", "L2-Hys"])
@pytest.mark.parametrize("size", [(128, 64), (131, 67), (64, 64)])
def test_hog_bit_exact_on_real_grey(grey_real, block_norm, size):
    for name, img in grey_real.items():
        batch = _crops(img, size, 3)
        got = _hog_native(batch, block_norm=block_norm, cells_per_block=(2, 2))
        for i in range(3):
            ref = _hog_ref(batch[i], block_norm=block_norm, cells_per_block=(2, 2))
            np.testing.assert_array_equal(got[i], ref, err_msg=f"{name} {block_norm} {size}")


def test_hog_bit_exact_on_real_rgb(rgb_real):
    """RGB: max-magnitude channel, lowest index on ties (ties are common in photos)."""
    for name, img in rgb_real.items():
        batch = _crops(img, (96, 80), 2)
        got = _hog_native(batch)
        for i in range(2):
            np.testing.assert_array_equal(got[i], _hog_ref(batch[i]), err_msg=name)


@pytest.mark.parametrize("orientations", [4, 8, 9, 12])
def test_hog_bin_edges(grey_real, orientations):
    """4 and 8 orientations put bin edges at exactly 45/90/135 degrees, which integer
    gradients hit; the kernel must bin them as scikit-image does."""
    batch = _crops(grey_real["camera"], (64, 64), 3)
    got = _hog_native(batch, orientations=orientations, cells_per_block=(2, 2))
    for i in range(3):
        np.testing.assert_array_equal(
            got[i], _hog_ref(batch[i], orientations=orientations, cells_per_block=(2, 2)))


def test_hog_180_degree_wrap():
    """A float image whose row gradient is a tiny negative number gives an orientation
    that rounds to exactly 180 degrees: scikit-image drops that vote; so must we."""
    img = np.zeros((16, 16))
    img[:, 8:] = 1.0
    img[9, :] -= 1e-17 * np.arange(16)  # g_row ~ -1e-17 next to the edge
    img = img + 0.0
    got = _hog_native(img[None], pixels_per_cell=(4, 4), cells_per_block=(2, 2))[0]
    ref = _hog_ref(img, pixels_per_cell=(4, 4), cells_per_block=(2, 2))
    np.testing.assert_array_equal(got, ref)
    # and an exactly horizontal gradient pointing left (atan2(0, -x) = 180) wraps to bin 0
    img2 = np.tile(np.linspace(1, 0, 16), (16, 1))
    got2 = _hog_native(img2[None], pixels_per_cell=(4, 4), cells_per_block=(1, 1))[0]
    np.testing.assert_array_equal(got2, _hog_ref(img2, pixels_per_cell=(4, 4),
                                                  cells_per_block=(1, 1)))


def test_hog_rgb_channel_ties():
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (40, 40), dtype=np.uint8)
    img = np.stack([base, base[::-1], base], axis=-1)  # channels 0 and 2 always tie
    img[..., 1] = base.T
    got = _hog_native(img[None], cells_per_block=(2, 2))[0]
    np.testing.assert_array_equal(got, _hog_ref(img, cells_per_block=(2, 2)))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_hog_random_images_all_dtypes(dtype, rng):
    if dtype in (np.uint8, np.uint16):
        batch = rng.integers(0, np.iinfo(dtype).max, (4, 45, 37), dtype=dtype)
    else:
        batch = rng.random((4, 45, 37)).astype(dtype)
    for sqrt in (False, True):
        ref_dtype = np.float32 if dtype == np.float32 else np.float64
        got = _hog_native(batch, pixels_per_cell=(6, 5), cells_per_block=(2, 3),
                          transform_sqrt=sqrt, dtype=ref_dtype)
        for i in range(len(batch)):
            ref = _hog_ref(batch[i], pixels_per_cell=(6, 5), cells_per_block=(2, 3),
                           transform_sqrt=sqrt)
            assert ref.dtype == ref_dtype
            np.testing.assert_array_equal(got[i], ref)


def test_hog_skimage_backend_and_float32_output(grey_real):
    batch = _crops(grey_real["coins"], (72, 72), 3)
    nat = HOG().fit(batch).transform(batch)
    ref = HOG(backend="skimage").fit(batch).transform(batch)
    assert nat.dtype == np.float32
    np.testing.assert_array_equal(nat, ref)
    assert HOG().fit(batch).n_features_out_ == nat.shape[1] == 7 * 7 * 3 * 3 * 9


# ------------------------------------------------------------------ LBP

LBP_CONFIGS = [(8, 1), (16, 2), (24, 3), (12, 1.5), (8, 2.5)]


@pytest.mark.parametrize("P, R", LBP_CONFIGS)
@pytest.mark.parametrize("method", list(METHODS))
def test_lbp_codes_identical(grey_real, rng, P, R, method):
    images = [grey_real["camera"][100:160, 200:250], grey_real["brick"][:50, :61],
              np.full((20, 21), 9, np.uint8), rng.random((23, 19)),
              rng.integers(0, 65535, (17, 22), dtype=np.uint16)]
    dr, dc = lbp_offsets(P, R)
    for img in images:
        out = np.empty((1,) + img.shape)
        _cpu.lbp_codes(np.ascontiguousarray(img[None, ..., None]), out, P, METHODS[method],
                       dr, dc, 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = local_binary_pattern(img, P, R, method)
        if method == "var":
            np.testing.assert_array_equal(out[0], ref)  # NaN where the variance is 0
        else:
            assert np.array_equal(out[0], ref), f"{P} {R} {method} {img.dtype}"


@pytest.mark.parametrize("method", list(METHODS))
def test_lbp_histograms_match_reference(grey_real, method):
    for batch in [_crops(grey_real["camera"], (64, 70), 3), _crops(grey_real["moon"], (33, 41), 2)]:
        for Xb in (batch, batch / 255.0):
            kw = dict(method=method, grid=(3, 2), dtype=np.float64)
            nat = LBP(**kw).fit(Xb).transform(Xb)
            ref = LBP(backend="skimage", **kw).fit(Xb).transform(Xb)
            np.testing.assert_array_equal(nat, ref)
            cells = nat.reshape(len(Xb), 6, -1)
            np.testing.assert_allclose(cells.sum(axis=2), 1.0, rtol=1e-12)


def test_lbp_var_custom_edges(grey_real):
    X = _crops(grey_real["coins"], (40, 40), 2)
    est = LBP(method="var", var_bins=[0, 10, 100, 1000], grid=1, dtype=np.float64)
    nat = est.fit(X).transform(X)
    assert nat.shape == (2, 4)
    np.testing.assert_array_equal(nat, LBP(method="var", var_bins=[0, 10, 100, 1000], grid=1,
                                           backend="skimage", dtype=np.float64).fit(X).transform(X))


# ------------------------------------------------------------------ GLCM

@pytest.mark.parametrize("symmetric", [False, True])
def test_glcm_counts_identical(grey_real, rng, symmetric):
    dist, ang = [1, 2, 3], [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4, np.pi, 5 * np.pi / 4]
    for img, levels in [(grey_real["camera"][:70, :90], 256), (grey_real["brick"][:40, :33], 32),
                        (rng.integers(0, 8, (15, 17), dtype=np.uint8), 8)]:
        q = img if levels == 256 else quantize(img, levels) if img.max() >= levels else img
        offs = glcm_offsets(dist, ang)
        out = np.empty((levels, levels, len(offs)), np.uint32)
        _cpu.glcm_counts(np.ascontiguousarray(q), out, offs, levels, symmetric)
        ref = graycomatrix(q, dist, ang, levels=levels, symmetric=symmetric)
        np.testing.assert_array_equal(out, ref.reshape(levels, levels, -1))


def test_glcm_properties_match(grey_real):
    X = _crops(grey_real["camera"], (50, 60), 3)
    for sym in (False, True):
        kw = dict(properties=PROPERTIES, distances=(1, 2), symmetric=sym, levels=16,
                  dtype=np.float64)
        nat = GLCM(**kw).fit(X).transform(X)
        q = quantize(X, 16)
        for i in range(len(X)):
            P = graycomatrix(q[i], [1, 2], [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4], levels=16,
                             symmetric=sym)
            ref = np.concatenate([graycoprops(P, p).ravel() for p in PROPERTIES])
            np.testing.assert_allclose(nat[i], ref, rtol=1e-10, atol=1e-12)


def test_glcm_quantization_and_value_range():
    u8 = np.array([[0, 7, 8, 255]], np.uint8)
    assert quantize(u8, 32).tolist() == [[0, 0, 1, 31]]
    f = np.array([[0.0, 0.5, 1.0]])
    assert quantize(f, 4).tolist() == [[0, 2, 3]]
    assert quantize(np.array([[[2.0, 4.0]]]), 2, "image").tolist() == [[[0, 1]]]
    X = np.random.default_rng(0).standard_normal((3, 9, 9))
    with pytest.raises(ValueError, match="value_range"):
        GLCM().fit(X)
    assert GLCM(value_range=(-10, 10)).fit(X).transform(X).shape == (3, 24)
    assert GLCM(value_range="image").fit(X).transform(X).shape == (3, 24)
    for bad in ["x", (1, 1), (0, np.inf), 3]:
        with pytest.raises(ValueError, match="value_range"):
            GLCM(value_range=bad).fit(X)


# ------------------------------------------------------------------ input forms

@pytest.mark.parametrize("Est", [HOG, LBP, GLCM])
def test_input_forms_agree(grey_real, Est):
    X = _crops(grey_real["camera"], (48, 40), 4)
    ref = Est().fit(X).transform(X)
    np.testing.assert_array_equal(Est().fit(list(X)).transform(list(X)), ref)
    flat = X.reshape(4, -1)
    for shape in [(48, 40), (48, -1), (-1, 40), (48, 40, 1)]:
        np.testing.assert_array_equal(Est(image_shape=shape).fit(flat).transform(flat), ref)
    np.testing.assert_array_equal(Est().fit(X[..., None]).transform(X[..., None]), ref)
    # threads and batches do not change a bit
    np.testing.assert_array_equal(Est(n_jobs=2, batch_size=3).fit(X).transform(X), ref)
    # non-contiguous input
    Xnc = np.asfortranarray(X)
    np.testing.assert_array_equal(Est().fit(Xnc).transform(Xnc), ref)


def test_rgb_hog_2d_input_with_channels(rgb_real):
    X = _crops(rgb_real["astronaut"], (32, 32), 2)
    ref = HOG(cells_per_block=2).fit(X).transform(X)
    flat = X.reshape(2, -1)
    np.testing.assert_array_equal(
        HOG(cells_per_block=2, image_shape=(32, 32, 3)).fit(flat).transform(flat), ref)


def test_feature_names_and_pandas_output(grey_real):
    pd = pytest.importorskip("pandas")
    X = _crops(grey_real["camera"], (32, 32), 2)
    for est in [HOG(cells_per_block=2), LBP(), GLCM()]:
        est.fit(X)
        names = est.get_feature_names_out()
        assert len(names) == est.n_features_out_ == len(set(names))
        df = est.set_output(transform="pandas").transform(X)
        assert isinstance(df, pd.DataFrame) and list(df.columns) == list(names)
    assert HOG(cells_per_block=2).fit(X).get_feature_names_out()[0] == "hog_b0_0_c0_0_o0"
    assert GLCM().fit(X).get_feature_names_out()[0] == "glcm_contrast_d1_a0"


def test_dask_input(grey_real):
    da = pytest.importorskip("dask.array")
    import dask

    X = _crops(grey_real["camera"], (40, 40), 6)
    dX = da.from_array(X, chunks=(2, 40, 40))
    for est in [HOG(cells_per_block=2), LBP()]:
        est.fit(dX)
        out = est.transform(dX)
        assert isinstance(out, da.Array) and out.chunks[0] == (2, 2, 2)
        with dask.config.set(scheduler="synchronous"):
            np.testing.assert_array_equal(out.compute(), est.transform(X))


def test_empty_batch_transforms_to_empty(grey_real):
    X = _crops(grey_real["camera"], (32, 32), 2)
    for est in [HOG(cells_per_block=2), LBP(), GLCM()]:
        est.fit(X)
        out = est.transform(X[:0])
        assert out.shape == (0, est.n_features_out_) and out.dtype == np.float32
        with pytest.raises(ValueError, match="0 images"):
            type(est)().fit(X[:0])


def test_verbose_progress(grey_real, capsys):
    X = _crops(grey_real["camera"], (32, 32), 4)
    HOG(cells_per_block=2, verbose=True, batch_size=2).fit(X).transform(X)
    assert "HOG: 4/4 images" in capsys.readouterr().err


# ------------------------------------------------------------------ bad input

@pytest.mark.parametrize("X, exc, match", [
    (np.zeros(64), ValueError, "Reshape your data"),
    (np.zeros((1, 2, 3, 4, 5)), ValueError, "got an array of shape"),
    (np.zeros((2, 64)), ValueError, "needs image_shape"),
    (np.full((2, 32, 32), np.nan), ValueError, "NaN or infinity"),
    (np.full((2, 32, 32), np.inf), ValueError, "NaN or infinity"),
    (np.zeros((2, 32, 32), dtype=np.complex64), TypeError, "real numbers"),
    ([np.zeros((32, 32)), np.zeros((32, 31))], ValueError, "different shapes"),
    ([], ValueError, "empty list"),
    (np.zeros((2, 0, 32)), ValueError, "empty"),
])
@pytest.mark.parametrize("Est", [HOG, LBP, GLCM])
def test_bad_images(Est, X, exc, match):
    with pytest.raises(exc, match=match):
        Est(cells_per_block=1, pixels_per_cell=4).fit(X) if Est is HOG else Est().fit(X)


def test_bad_sizes_and_params():
    X = np.zeros((2, 20, 20), np.uint8)
    with pytest.raises(ValueError, match="too small"):
        HOG().fit(X)  # 20 px < 3 cells of 8
    with pytest.raises(ValueError, match="more cells"):
        LBP(grid=(30, 1)).fit(X)
    for kw, match in [(dict(orientations=0), "orientations"), (dict(pixels_per_cell=(0, 8)),
                      "pixels_per_cell"), (dict(cells_per_block=-1), "cells_per_block"),
                      (dict(block_norm="L3"), "block_norm"), (dict(backend="gpu"), "backend"),
                      (dict(dtype=np.int32), "dtype"), (dict(n_jobs=0), "n_jobs"),
                      (dict(batch_size=0), "batch_size"), (dict(image_shape=(0, 4)), "image_shape")]:
        with pytest.raises(ValueError, match=match):
            HOG(**kw).fit(np.zeros((2, 64, 64)))
    for kw, match in [(dict(P=0), "P"), (dict(P=40), "P"), (dict(R=0), "R"),
                      (dict(R=np.nan), "R"), (dict(method="fast"), "method"),
                      (dict(method="var", var_bins=[1, 2]), "var_bins")]:
        with pytest.raises(ValueError, match=match):
            LBP(**kw).fit(X)
    for kw, match in [(dict(levels=1), "levels"), (dict(levels=300), "levels"),
                      (dict(distances=(-1,)), "distances"), (dict(angles=()), "angles"),
                      (dict(properties=("contrast", "nope")), "properties")]:
        with pytest.raises(ValueError, match=match):
            GLCM(**kw).fit(X)


def test_bad_image_shape_and_mismatch():
    X = np.zeros((2, 64), np.uint8)
    with pytest.raises(ValueError, match="image_shape"):
        LBP(image_shape=(7, 9)).fit(X)
    with pytest.raises(ValueError, match="does not divide"):
        LBP(image_shape=(7, -1)).fit(X)
    est = LBP().fit(np.zeros((2, 16, 16), np.uint8))
    with pytest.raises(ValueError, match="fitted on images of shape"):
        est.transform(np.zeros((2, 16, 17), np.uint8))
    with pytest.raises(ValueError, match="image_shape"):
        LBP(image_shape=(4, 4)).fit(np.zeros((2, 16, 16), np.uint8))


def test_channels_and_transform_sqrt_errors():
    rgb = np.zeros((2, 16, 16, 3), np.uint8)
    for Est in (LBP, GLCM):
        with pytest.raises(ValueError, match="grey images"):
            Est().fit(rgb)
    with pytest.raises(ValueError, match="negative"):
        HOG(transform_sqrt=True).fit(-np.ones((1, 32, 32)))


def test_not_fitted_and_gpu_refused():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        HOG().transform(np.zeros((1, 32, 32)))

    class NoKernel(GLCM):  # a descriptor without a CUDA kernel refuses backend='cuda'
        _has_cuda_kernel = False

    with pytest.raises(ValueError, match="has no CUDA kernel"):
        NoKernel(backend="cuda").fit(np.zeros((1, 32, 32)))
    if not cuda_available():
        for Est in (HOG, LBP, ColorHistogram, GLCM, GaborBank):
            with pytest.raises(RuntimeError, match="no GPU is usable"):
                Est(backend="cuda").fit(np.zeros((1, 32, 32, 3 if Est is ColorHistogram else 1)))


def test_native_module_validates_buffers():
    out = np.empty((1, 10))
    with pytest.raises(ValueError):
        _cpu.hog_batch(np.zeros((1, 4, 4, 1)), out, 9, 8, 8, 3, 3, 3, False, 1)  # too small
    with pytest.raises(ValueError):
        _cpu.hog_batch(np.zeros((1, 32, 32)), out, 9, 8, 8, 3, 3, 3, False, 1)  # 3-D
    with pytest.raises(ValueError):
        _cpu.hog_batch(np.zeros((1, 32, 32, 1), np.int32), np.empty((1, 324)), 9, 8, 8, 3, 3, 3,
                       False, 1)
    with pytest.raises(ValueError):
        _cpu.glcm_counts(np.full((4, 4), 9, np.uint8), np.empty((8, 8, 1), np.uint32),
                         np.zeros((1, 2), np.int64), 8, False)


# ------------------------------------------------------------------ colour histograms

@pytest.mark.parametrize("space", ["hsv", "rgb"])
@pytest.mark.parametrize("mode", ["joint", "per-channel"])
def test_color_histograms_match_reference(rgb_real, rng, space, mode):
    """Native = skimage.color.rgb2hsv + NumPy binning, bit for bit, on photos, random
    images of every dtype, and images full of channel ties (where hue rules collide)."""
    photos = np.stack([_crops(img, (60, 50), 1)[0] for img in rgb_real.values()])
    batches = [photos, rng.random((3, 17, 19, 3)).astype(np.float32), rng.random((3, 17, 19, 3)),
               rng.integers(0, 65536, (3, 17, 19, 3)).astype(np.uint16),
               (rng.integers(0, 4, (3, 16, 16, 3)) * 85).astype(np.uint8)]
    for X in batches:
        kw = dict(space=space, mode=mode, bins=(8, 5, 7), grid=(2, 3), dtype=np.float64)
        nat = ColorHistogram(**kw).fit(X).transform(X)
        ref = ColorHistogram(backend="skimage", **kw).fit(X).transform(X)
        np.testing.assert_array_equal(nat, ref)
        per_cell = nat.reshape(len(X), 6, -1).sum(axis=2)
        np.testing.assert_allclose(per_cell, 1.0 if mode == "joint" else 3.0, rtol=1e-12)


def test_color_histogram_hsv_matches_skimage_conversion(rgb_real):
    """A joint HSV histogram with one bin per channel value range equals binning
    skimage.color.rgb2hsv's output directly."""
    from skimage.color import rgb2hsv

    img = _crops(rgb_real["coffee"], (40, 40), 1)[0]
    hsv = rgb2hsv(img)
    got = ColorHistogram(bins=(6, 1, 1), dtype=np.float64).fit(img[None]).transform(img[None])[0]
    ref = np.bincount(np.minimum((hsv[..., 0] * 6).astype(int), 5).ravel(), minlength=6) / 1600
    np.testing.assert_array_equal(got, ref)


def test_color_histogram_grey_value_range_and_errors(grey_real, rgb_real):
    G = _crops(grey_real["camera"], (32, 32), 2)
    out = ColorHistogram(space="grey", bins=16).fit(G).transform(G)
    assert out.shape == (2, 16)
    np.testing.assert_array_equal(
        out, ColorHistogram(space="grey", bins=16, backend="skimage").fit(G).transform(G))
    with pytest.raises(ValueError, match="needs RGB images"):
        ColorHistogram().fit(G)
    with pytest.raises(ValueError, match="needs RGB images"):
        ColorHistogram().fit(np.zeros((2, 8, 8, 4), np.uint8))
    with pytest.raises(ValueError, match="one-channel"):
        ColorHistogram(space="grey").fit(_crops(rgb_real["coffee"], (8, 8), 1))
    X = np.random.default_rng(0).standard_normal((2, 8, 8, 3))
    with pytest.raises(ValueError, match="value_range"):
        ColorHistogram().fit(X)
    for vr in ["image", (-10, 10)]:
        est = ColorHistogram(value_range=vr, dtype=np.float64)
        np.testing.assert_array_equal(
            est.fit(X).transform(X),
            ColorHistogram(value_range=vr, backend="skimage", dtype=np.float64).fit(X).transform(X))
    for kw, match in [(dict(space="lab"), "space"), (dict(mode="both"), "mode"),
                      (dict(bins=(8, 8)), "bins"), (dict(bins=0), "bins"),
                      (dict(value_range=(2, 1)), "value_range"), (dict(grid=(100, 1)), "more cells")]:
        with pytest.raises(ValueError, match=match):
            ColorHistogram(**kw).fit(_crops(rgb_real["coffee"], (8, 8), 1))
    names = ColorHistogram(mode="per-channel", bins=2).fit(
        _crops(rgb_real["coffee"], (8, 8), 1)).get_feature_names_out()
    assert list(names) == ["color_hsv_g0_0_h0", "color_hsv_g0_0_h1", "color_hsv_g0_0_s0",
                           "color_hsv_g0_0_s1", "color_hsv_g0_0_v0", "color_hsv_g0_0_v1"]


@pytest.mark.parametrize("value_range", [None, "image", (-3.0, 300.0)])
def test_glcm_native_quantisation_matches_reference(grey_real, rng, value_range):
    """The kernel quantises on the fly; it must equal quantize() + graycomatrix/graycoprops
    for every dtype and value_range."""
    cam = _crops(grey_real["camera"], (40, 44), 2)
    batches = [cam, (cam.astype(np.uint16) * 257), cam / 255.0, (cam / 255.0).astype(np.float32),
               np.full((2, 12, 12), 7, np.uint8)]
    for X in batches:
        if isinstance(value_range, tuple) and X.max() > value_range[1]:
            with pytest.raises(ValueError, match="value_range"):
                GLCM(value_range=value_range).fit(X)
            continue
        kw = dict(properties=PROPERTIES, levels=24, distances=(1, 3), value_range=value_range,
                  dtype=np.float64)
        nat = GLCM(**kw).fit(X).transform(X)
        ref = GLCM(backend="skimage", **kw).fit(X).transform(X)
        np.testing.assert_allclose(nat, ref, rtol=1e-10, atol=1e-12, err_msg=str(X.dtype))


def test_glcm_shared_quantisation_matches_quantize(grey_real, rng):
    """The per-pixel quantisation of mtlclassic/glcm.h (run by the CPU and CUDA kernels)
    equals quantize() for every dtype and value_range mode, through _cpu.glcm_quantize."""
    from mtlclassic.features.glcm import quantisation_mode

    cam = _crops(grey_real["camera"], (30, 35), 3)
    cases = [(cam, None), (cam.astype(np.uint16) * 257, None), (cam / 255.0, None),
             ((cam / 255.0).astype(np.float32), None), (cam, "image"), (cam / 7.0, "image"),
             (cam.astype(np.float64) - 40, (-40.0, 215.0)), (cam, (0.0, 300.0)),
             (np.full((2, 5, 6), 3.5), "image"), (rng.random((2, 9, 11)), None),
             (rng.integers(0, 65536, (2, 8, 8)).astype(np.uint16), (0.0, 65535.0))]
    for X, vr in cases:
        for levels in (2, 7, 32, 256):
            mode, lo, hi = quantisation_mode(X.dtype, vr)
            out = np.empty(X.shape, np.uint8)
            _cpu.glcm_quantize(np.ascontiguousarray(X[..., None]), out, mode, lo, hi, levels)
            np.testing.assert_array_equal(out, quantize(X, levels, vr),
                                          err_msg=f"{X.dtype} {vr} {levels}")
    u8 = np.zeros((1, 4, 4, 1), np.uint8)
    for args, match in [((u8, np.empty((1, 4, 4), np.uint8), 1, 0.0, 1.0, 8), "does not match"),
                        ((u8.astype(np.float32), np.empty((1, 4, 4), np.uint8), 0, 0.0, 1.0, 8),
                         "float images"),
                        ((u8, np.empty((1, 4, 5), np.uint8), 0, 0.0, 1.0, 8), "out must be"),
                        ((u8, np.empty((1, 4, 4), np.uint8), 2, 1.0, 1.0, 8), "hi > lo"),
                        ((u8, np.empty((1, 4, 4), np.uint8), 0, 0.0, 1.0, 1), "levels")]:
        with pytest.raises(ValueError, match=match):
            _cpu.glcm_quantize(*args)


def test_glcm_gpu_count_size_limit():
    """The GPU's 32-bit counts: exact up to 2^32 - 1 pixels (2^31 - 1 symmetric), refused
    beyond (the check the CUDA path runs before a launch)."""
    from mtlclassic.features.glcm import check_count_size

    check_count_size(65535, 65537, False)  # 2^32 - 1 pixels
    check_count_size(1, 2**31 - 1, True)
    with pytest.raises(ValueError, match="32-bit co-occurrence counts"):
        check_count_size(65536, 65536, False)
    with pytest.raises(ValueError, match="with symmetric=True"):
        check_count_size(46341, 46341, True)  # 2147488281 > 2^31 - 1
    with pytest.raises(ValueError, match="backend='native'"):
        GLCM(symmetric=True)._cuda_args(np.dtype(np.uint8), (1, 2**16, 2**15, 1))


@pytest.mark.parametrize("symmetric", [False, True])
def test_glcm_counts_in_the_gpu_form(grey_real, rng, symmetric):
    """The CUDA kernel's way of counting -- glcm_pair_range blocks walked pair by pair,
    then glcm_symmetrize_entry on each i <= j entry (mtlclassic/glcm.h) -- run on the CPU
    through _cpu.glcm_counts_device_form, equals scikit-image's graycomatrix, also for
    offsets that leave the image (and the launcher's clamp of huge ones)."""
    dist, ang = [0, 1, 3, 40], [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4, 2.5, np.pi]
    for img, levels in [(grey_real["camera"][:37, :45], 256),
                        (quantize(grey_real["brick"][:40, :33], 32), 32),
                        (rng.integers(0, 5, (15, 1), dtype=np.uint8), 5)]:
        offs = glcm_offsets(dist, ang)
        out = np.empty((levels, levels, len(offs)), np.uint32)
        _cpu.glcm_counts_device_form(np.ascontiguousarray(img), out, offs, levels, symmetric)
        ref = graycomatrix(img, dist, ang, levels=levels, symmetric=symmetric)
        np.testing.assert_array_equal(out, ref.reshape(levels, levels, -1))
        huge = np.array([[2**40, 0], [0, -2**40], [-2**62, 3]], np.int64)
        out = np.empty((levels, levels, 3), np.uint32)
        _cpu.glcm_counts_device_form(np.ascontiguousarray(img), out, huge, levels, symmetric)
        np.testing.assert_array_equal(out, 0)
    with pytest.raises(ValueError, match="levels"):
        _cpu.glcm_counts_device_form(np.full((4, 4), 9, np.uint8),
                                     np.empty((8, 8, 1), np.uint32),
                                     np.zeros((1, 2), np.int64), 8, False)


# ------------------------------------------------------------------ Gabor

def test_gabor_shared_pixel_and_row_responses(grey_real, rng):
    """mtlclassic/gabor.h: the GPU's pixel-at-a-time response and the CPU's row-at-a-time
    one give the same bits, and both equal scipy.ndimage.convolve with the 'reflect'
    boundary (the reference skimage.filters.gabor uses), also when the kernel is larger
    than the image (reflections wrap more than once)."""
    from scipy import ndimage
    from skimage.filters import gabor_kernel

    images = [grey_real["coins"][40:80, 50:83].astype(np.float64),
              rng.random((9, 7)), rng.standard_normal((1, 12)), np.array([[3.0]])]
    for img in images:
        for f, theta, n_stds in [(0.1, 0.3, 3), (0.4, 2.0, 2), (0.05, 1.0, 1.5)]:
            g = gabor_kernel(f, theta, n_stds=n_stds)
            fl = g[::-1, ::-1]
            re, im = np.ascontiguousarray(fl.real), np.ascontiguousarray(fl.imag)
            px, row = (np.empty((2,) + img.shape) for _ in range(2))
            _cpu.gabor_response(img, re, im, px, True)
            _cpu.gabor_response(img, re, im, row, False)
            np.testing.assert_array_equal(px, row)
            ref_re = ndimage.convolve(img, g.real, mode="reflect")
            ref_im = ndimage.convolve(img, g.imag, mode="reflect")
            scale = np.abs(img).max() * np.abs(g).sum()
            np.testing.assert_allclose(px[0], ref_re, rtol=1e-12, atol=1e-13 * scale)
            np.testing.assert_allclose(px[1], ref_im, rtol=1e-12, atol=1e-13 * scale)
    with pytest.raises(ValueError, match="odd-sized"):
        _cpu.gabor_response(np.zeros((4, 4)), np.zeros((2, 3)), np.zeros((2, 3)),
                            np.empty((2, 4, 4)), True)
    with pytest.raises(ValueError, match="out must be"):
        _cpu.gabor_response(np.zeros((4, 4)), np.zeros((3, 3)), np.zeros((3, 3)),
                            np.empty((2, 4, 5)), True)


def test_gabor_matches_skimage_filters_gabor(grey_real, rng):
    """Native = skimage.filters.gabor on the float64 image (reflect boundary), magnitude,
    cell mean and variance; to 1e-5 relative (measured ~1e-14). Includes an image smaller
    than the largest kernel, where the reflection wraps more than once."""
    batches = [_crops(grey_real["camera"], (48, 40), 2), _crops(grey_real["coins"], (33, 35), 2)
               .astype(np.float32) / 255, rng.random((2, 9, 7)),
               rng.integers(0, 65535, (1, 20, 20)).astype(np.uint16)]
    for X in batches:
        for kw in [dict(grid=(2, 2)), dict(frequencies=(0.05, 0.25), orientations=(0.3, 1.0, 2.0),
                                           bandwidth=1.5, n_stds=2)]:
            nat = GaborBank(dtype=np.float64, **kw).fit(X).transform(X)
            ref = GaborBank(backend="skimage", dtype=np.float64, **kw).fit(X).transform(X)
            np.testing.assert_allclose(nat, ref, rtol=1e-5, atol=1e-9)


def test_gabor_features_from_the_pixel_response(grey_real, rng):
    """The GPU's form of the response (pixel at a time), hypot, and the cell mean / two-pass
    variance summed in row-major order (np.cumsum is sequential) reproduce the CPU kernel's
    features bit for bit: the GPU differs from the CPU only in its cell sums' order."""
    X = np.concatenate([_crops(grey_real["camera"], (23, 26), 2) / 255.0,
                        rng.random((1, 23, 26))])
    est = GaborBank(frequencies=(0.07, 0.3), orientations=3, grid=(2, 3), dtype=np.float64)
    got = est.fit(X).transform(X)
    H, W = X.shape[1:]
    for i, img in enumerate(X):
        feats = []
        for re, im in est._kernels():
            resp = np.empty((2, H, W))
            _cpu.gabor_response(np.ascontiguousarray(img), re, im, resp, True)
            mag = np.hypot(resp[0], resp[1])
            for gi in range(2):
                for gj in range(3):
                    cell = mag[gi * H // 2:(gi + 1) * H // 2, gj * W // 3:(gj + 1) * W // 3]
                    mean = np.cumsum(cell.ravel())[-1] / cell.size
                    feats += [mean, np.cumsum((cell.ravel() - mean) ** 2)[-1] / cell.size]
        np.testing.assert_array_equal(got[i], feats)


def test_gabor_responds_to_orientation():
    """Vertical stripes of frequency 0.25: the theta = 0 filter at f = 0.25 responds far
    more than the theta = pi/2 one (the kernel's carrier runs along x for theta = 0)."""
    x = np.arange(64)
    stripes = np.tile(np.cos(2 * np.pi * 0.25 * x), (64, 1))[None]
    out = GaborBank(frequencies=(0.25,), orientations=2, dtype=np.float64).fit(stripes) \
        .transform(stripes)[0]
    mean_0, mean_90 = out[0], out[2]
    assert mean_0 > 10 * mean_90


def test_gabor_bad_params(grey_real):
    X = _crops(grey_real["camera"], (16, 16), 1)
    for kw, match in [(dict(frequencies=()), "frequencies"), (dict(frequencies=(0.7,)), "frequencies"),
                      (dict(frequencies=(-0.1,)), "frequencies"), (dict(orientations=0), "orientations"),
                      (dict(orientations=[np.nan]), "orientations"), (dict(bandwidth=0), "bandwidth"),
                      (dict(n_stds=-1), "n_stds"), (dict(grid=(20, 1)), "more cells")]:
        with pytest.raises(ValueError, match=match):
            GaborBank(**kw).fit(X)
    with pytest.raises(ValueError, match="grey images"):
        GaborBank().fit(np.zeros((1, 16, 16, 3)))
    names = GaborBank(frequencies=(0.2,), orientations=1).fit(X).get_feature_names_out()
    assert list(names) == ["gabor_f0_t0_g0_0_mean", "gabor_f0_t0_g0_0_var"]


@pytest.mark.parametrize("P, R", LBP_CONFIGS)
@pytest.mark.parametrize("method", ["default", "ror", "uniform", "nri_uniform"])
def test_lbp_histograms_all_radii_and_tiny_images(grey_real, rng, P, R, method):
    """The histogram kernel (padded, two pixels at a time) against scikit-image for every
    (P, R), including images smaller than the sampling circle."""
    if method in ("default", "ror") and P > 16:
        pytest.skip("2**24 histogram bins: covered by the code-level test above")
    batches = [_crops(grey_real["brick"], (21, 19), 2), rng.random((2, 5, 6)),
               rng.integers(0, 255, (2, 3, 3)).astype(np.uint8)]
    for X in batches:
        kw = dict(P=P, R=R, method=method, grid=(1, 1) if X.shape[1] < 8 else (2, 3),
                  dtype=np.float64)
        np.testing.assert_array_equal(LBP(**kw).fit(X).transform(X),
                                      LBP(backend="skimage", **kw).fit(X).transform(X))
