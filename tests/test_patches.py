"""Patches resampled around sub-pixel points and their HOG descriptors: bit-exact against
the float64 NumPy reference and scikit-image's hog, on random and real images."""

import numpy as np
import pytest
import skimage.data as sd
from skimage.feature import hog as sk_hog

from mtlclassic.backend.reference import patches_reference
from mtlclassic.features import extract_patches, patch_hog


@pytest.fixture
def faces(rng):
    """Images of different sizes and dtypes' worth of points, some near or past the edge."""
    imgs = [rng.integers(0, 256, (40, 50), dtype=np.uint8),
            rng.integers(0, 256, (31, 29), dtype=np.uint8),
            sd.camera()[100:260, 150:310]]
    pts = np.array([[[10.3, 12.7], [49.9, 39.2], [-3.0, 5.5]],
                    [[14.0, 15.0], [0.0, 0.0], [28.6, 30.9]],
                    [[80.25, 60.5], [20.1, 140.7], [159.0, 159.0]]])
    sides = np.array([[8.0, 11.5, 20.0], [3.3, 16.0, 7.0], [40.0, 25.5, 64.0]])
    return imgs, pts, sides


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("P", [2, 16, 23])
def test_patches_equal_the_reference(faces, dtype, P):
    imgs, pts, sides = faces
    imgs = [im.astype(dtype) for im in imgs]
    got = extract_patches(imgs, pts, sides, P)
    ref = patches_reference(imgs, pts, sides, P)
    assert got.shape == (3, 3, P, P) and got.dtype == np.float64
    np.testing.assert_array_equal(got, ref)


def test_patch_geometry(rng):
    """A patch of P samples and side P around a pixel corner samples the pixels themselves."""
    img = rng.random((20, 30))
    got = extract_patches([img], [[[10.5, 7.5]]], 4.0, 4)[0, 0]
    np.testing.assert_array_equal(got, img[6:10, 9:13])  # rows 6..9, columns 9..12
    # far outside: every sample is the nearest corner pixel
    corner = extract_patches([img], [[[-100.0, 500.0]]], 3.0, 3)[0, 0]
    np.testing.assert_array_equal(corner, np.full((3, 3), img[-1, 0]))


def test_threads_and_batches_do_not_change_a_bit(faces):
    imgs, pts, sides = faces
    one = patch_hog(imgs, pts, sides, 16, pixels_per_cell=4, n_jobs=1)
    assert np.array_equal(one, patch_hog(imgs, pts, sides, 16, pixels_per_cell=4, n_jobs=3,
                                         batch_size=2))


@pytest.mark.parametrize("norm", ["L2-Hys", "L1"])
def test_patch_hog_is_skimage_hog_of_the_patches(faces, norm):
    imgs, pts, sides = faces
    F = patch_hog(imgs, pts, sides, 24, orientations=8, pixels_per_cell=(6, 6),
                  cells_per_block=(2, 2), block_norm=norm, dtype=np.float64)
    ref_p = patches_reference(imgs, pts, sides, 24)
    ref = np.stack([np.concatenate([sk_hog(ref_p[i, k], orientations=8, pixels_per_cell=(6, 6),
                                           cells_per_block=(2, 2), block_norm=norm)
                                    for k in range(3)]) for i in range(3)])
    assert F.shape == ref.shape == (3, 3 * 3 * 3 * 4 * 8)
    np.testing.assert_array_equal(F, ref)


def test_rgb_batches_and_single_point(rng):
    rgb = sd.astronaut()[:120, :100]
    grey = rgb.astype(np.float64) @ [0.2125, 0.7154, 0.0721]
    a = extract_patches([rgb], np.array([[30.5, 40.5]]), 10.0, 8)  # (n, 2) points
    np.testing.assert_array_equal(a, patches_reference([grey], [[[30.5, 40.5]]], [[10.0]], 8))
    batch = rng.integers(0, 256, (4, 20, 20), dtype=np.uint8)
    b = extract_patches(batch, rng.uniform(0, 19, (4, 2, 2)), np.full(4, 6.0), 5)
    assert b.shape == (4, 2, 5, 5)
    mixed = extract_patches([batch[0], batch[1].astype(np.float32)], np.zeros((2, 1, 2)), 4.0,
                            4)
    np.testing.assert_array_equal(mixed[1], patches_reference([batch[1]], np.zeros((1, 1, 2)),
                                                              [[4.0]], 4)[0])


@pytest.mark.parametrize("kw, err, msg", [
    (dict(points=np.zeros((2, 3))), ValueError, r"points must have shape \(n_images, n_points, 2\)"),
    (dict(points=np.full((2, 1, 2), np.nan)), ValueError, "NaN"),
    (dict(side=0.0), ValueError, "side must be finite and > 0"),
    (dict(side=np.ones((3, 1))), ValueError, "side must be a number"),
    (dict(patch_size=1), ValueError, "patch_size"),
    (dict(patch_size=2.5), ValueError, "patch_size"),
])
def test_bad_input(rng, kw, err, msg):
    args = dict(images=[rng.random((10, 10)), rng.random((12, 9))], points=np.zeros((2, 1, 2)),
                side=4.0, patch_size=4)
    args.update(kw)
    with pytest.raises(err, match=msg):
        extract_patches(**args)


def test_bad_images(rng):
    with pytest.raises(ValueError, match="images is empty"):
        extract_patches([], np.zeros((0, 1, 2)), 4.0)
    with pytest.raises(ValueError, match="wrap a single image"):
        extract_patches(rng.random((10, 10)), np.zeros((1, 1, 2)), 4.0)
    with pytest.raises(ValueError, match=r"images\[1\] is empty"):
        extract_patches([rng.random((4, 4)), np.zeros((0, 5))], np.zeros((2, 1, 2)), 4.0)
    with pytest.raises(ValueError, match=r"images\[0\] contains NaN"):
        extract_patches([np.full((4, 4), np.nan)], np.zeros((1, 1, 2)), 4.0)
    with pytest.raises(TypeError, match="real numbers"):
        extract_patches([np.ones((4, 4), complex)], np.zeros((1, 1, 2)), 4.0)
    with pytest.raises(ValueError, match=r"images\[0\] must be a 2-D"):
        extract_patches([np.ones((4, 4, 2))], np.zeros((1, 1, 2)), 4.0)


def test_rgba_refused_and_no_points(rng):
    with pytest.raises(ValueError, match="4 channels"):
        extract_patches([np.zeros((8, 8, 4), np.uint8)], np.zeros((1, 1, 2)), 4.0)
    imgs = [rng.random((10, 10)), rng.random((12, 9))]
    F = patch_hog(imgs, np.zeros((2, 0, 2)), 4.0, 16, pixels_per_cell=4)
    assert F.shape == (2, 0)


@pytest.mark.parametrize("out", [np.zeros((1, 2, 4, 4), dtype=np.float32),
                                 np.zeros((1, 2, 4, 4), order="F"),
                                 np.zeros((1, 2, 4, 8))[..., ::2]])
def test_native_patches_refuse_an_output_they_would_copy(rng, out):
    """The kernel writes ``out`` in place: a float32, Fortran-ordered or strided array is a
    TypeError (it was converted to a float64 copy, written and dropped)."""
    from mtlclassic.backend._native import require_cpu

    img = rng.random((20, 20))
    pts = np.array([[[5.0, 5.0], [10.0, 12.0]]])
    with pytest.raises(TypeError):
        require_cpu().patches([img], pts, np.full((1, 2), 4.0), 4, out, 1)
    good = np.zeros((1, 2, 4, 4))
    require_cpu().patches([img], pts, np.full((1, 2), 4.0), 4, good, 1)
    assert np.any(good != 0)
