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


# ----------------------------------------------- item 9: GLCM distances, 64-bit offsets

@pytest.mark.parametrize("d", [2**31, 2**32, 2**32 + 1, 64, 10**30])
def test_glcm_distance_beyond_the_image_is_refused(d):
    X = np.zeros((2, 32, 32), np.uint8)
    with pytest.raises(ValueError, match=f"distances: {d} pairs no pixels of 32x32"):
        GLCM(distances=[1, d]).fit(X)


def test_glcm_native_offsets_are_64_bit():
    """2**31 used to segfault, 2**32 acted as offset 0 and 2**32 + 1 as 1 (int cast)."""
    rng = np.random.default_rng(3)
    q = rng.integers(0, 4, (9, 11)).astype(np.uint8)
    offsets = np.array([[0, 2**31], [0, 2**32], [0, 2**32 + 1], [-(2**32) - 1, 0],
                        [0, 1]], dtype=np.int64)
    out = np.empty((4, 4, len(offsets)), np.uint32)
    _cpu.glcm_counts(q, out, offsets, 4, False)
    assert not out[..., :4].any()  # nothing is paired that far away
    np.testing.assert_array_equal(out[..., 4], graycomatrix(q, [1], [0.0], levels=4)[..., 0, 0])


def test_glcm_distance_pairing_some_angles_matches_skimage():
    """A distance that leaves the image at some angles only is allowed: those angles give
    all-zero matrices, as in scikit-image."""
    rng = np.random.default_rng(4)
    X = rng.integers(0, 256, (2, 12, 40)).astype(np.uint8)
    kw = dict(distances=(1, 20), levels=8, dtype=np.float64)
    np.testing.assert_allclose(GLCM(**kw).fit_transform(X),
                               GLCM(backend="skimage", **kw).fit_transform(X), rtol=1e-12,
                               atol=1e-14)


# ------------------------------- item 10: sizes in 64 bits, refused before allocating

def test_native_sizes_are_64_bit():
    """bins=(2048, 1024, 1024) and LBP P=24 'default' on a 16x8 grid make 2**31 features:
    the kernels' shape checks used to overflow an int. An empty batch allocates nothing."""
    out = np.empty((0, 2**31), np.float32)
    _cpu.color_histograms(np.zeros((0, 4, 4, 3), np.uint8), out, 0, 2048, 1024, 1024, True,
                          1, 1, 1)
    dr, dc = lbp_offsets(24, 3)
    _cpu.lbp_histograms(np.zeros((0, 16, 8, 1), np.uint8), out, 24, 0, dr, dc, 16, 8, 2**24,
                        np.zeros(0), 1)
    with pytest.raises(ValueError, match="out must have shape"):
        _cpu.lbp_histograms(np.zeros((0, 16, 8, 1), np.uint8), out, 24, 0, dr, dc, 16, 4,
                            2**24, np.zeros(0), 1)


@pytest.fixture
def memory(monkeypatch):
    """Pretend the machine has ``memory.set(n_bytes)`` bytes available."""
    import mtlclassic.features._base as base

    class Memory:
        def set(self, n):
            monkeypatch.setattr(base, "available_memory", lambda: n)
    return Memory()


@pytest.mark.parametrize("make, X, names", [
    (lambda: ColorHistogram(space="rgb", bins=(2048, 1024, 1024)),
     np.zeros((1, 8, 8, 3), np.uint8), "bins, mode, grid"),
    (lambda: LBP(P=24, method="default", grid=(16, 8)), np.zeros((1, 32, 32), np.uint8),
     "P, method, grid"),
    (lambda: LBP(P=31, method="default", grid=1), np.zeros((1, 32, 32), np.uint8),
     "P, method, grid"),
])
def test_feature_vector_larger_than_memory_is_refused_at_fit(memory, make, X, names):
    memory.set(2**30)
    with pytest.raises(ValueError, match=f"only 1 GiB of memory are available; reduce {names}"):
        make().fit(X)


def test_feature_matrix_larger_than_memory_is_refused_at_transform(memory):
    X = np.zeros((50, 16, 16, 3), np.uint8)
    est = ColorHistogram(space="rgb", bins=64)  # 262144 float32 per image, 1 MiB
    memory.set(2**40)
    est.fit(X)
    memory.set(20 * 2**20)
    with pytest.raises(MemoryError, match="50 images x 262144 features need"):
        est.transform(X)
    assert est.transform(X[:10]).shape == (10, 64**3)


# ---------------------------------------------- item 12: ranges checked in Python

@pytest.mark.parametrize("n_jobs", [2**31, -(2**31), 2**40, 0, 1.5, True])
def test_n_jobs_out_of_range_is_a_value_error(n_jobs):
    from mtlclassic.multitask import MultiTaskRegressor

    X = np.zeros((1, 16, 16), np.uint8)
    for est in (HOG(n_jobs=n_jobs), LBP(n_jobs=n_jobs), GLCM(n_jobs=n_jobs)):
        with pytest.raises(ValueError, match="n_jobs must be None or a non-zero integer") as e:
            est.fit_transform(X)
        assert len(str(e.value)) < 200  # no array in the message
    with pytest.raises(ValueError, match="n_jobs must be"):
        MultiTaskRegressor(n_jobs=n_jobs).fit(np.eye(4), np.eye(4)[:, :2])


def test_n_jobs_at_the_int_limit_is_accepted():
    X = np.zeros((2, 16, 16), np.uint8)
    got = HOG(pixels_per_cell=8, cells_per_block=1, n_jobs=2**31 - 1).fit_transform(X)
    assert got.shape == (2, 36)  # at most one thread per image is started


def test_lbp_radius_beyond_the_image_is_refused():
    X = np.zeros((1, 8, 8), np.uint8)
    for R in (1e9, 17):
        with pytest.raises(ValueError, match="R must be at most H \\+ W = 16"):
            LBP(R=R).fit(X)
    LBP(R=16, grid=1).fit_transform(X)  # images smaller than the circle stay allowed


def test_lbp_p31_default_fits_in_64_bit_sizes(memory):
    """P=31 'default' has 2**31 bins a cell: named in the memory check (it used to fail in
    pybind11 with the image printed); on the GPU it is refused with the kernel's limit."""
    from mtlclassic.features._base import check_cuda_histogram_limits

    memory.set(2**30)
    with pytest.raises(ValueError, match="reduce P, method, grid") as e:
        LBP(P=31, method="default", grid=1).fit(np.zeros((1, 8, 8), np.uint8))
    assert len(str(e.value)) < 400
    with pytest.raises(ValueError, match="2147483648 bins per cell exceed"):
        check_cuda_histogram_limits("LBP", 8, 8, (1, 1), 2**31, "P or method")


# ------------------------------------------------ item 13: counts wider than 32 bits

def test_glcm_count_width_limits():
    from mtlclassic.features.glcm import needs_wide_counts

    assert not needs_wide_counts(65536, 65535, False)  # 2**32 - 65536 pairs at most
    assert needs_wide_counts(65536, 65536, False)
    assert not needs_wide_counts(32768, 65535, True)
    assert needs_wide_counts(32768, 65536, True)


@pytest.mark.parametrize("symmetric", [False, True])
def test_glcm_64_bit_counts_give_the_same_features(symmetric):
    rng = np.random.default_rng(5)
    X = rng.integers(0, 256, (3, 30, 41, 1)).astype(np.uint8)
    offsets = np.array([[0, 1], [1, -1], [3, 2]], np.int64)
    props = np.arange(10, dtype=np.int64)
    a, b = (np.empty((3, 30)) for _ in range(2))
    _cpu.glcm_features(X, a, 0, 0.0, 1.0, offsets, 16, symmetric, props, 1, False)
    _cpu.glcm_features(X, b, 0, 0.0, 1.0, offsets, 16, symmetric, props, 2, True)
    np.testing.assert_array_equal(a, b)


def test_cuda_histogram_count_limits():
    from mtlclassic.features._base import check_cuda_histogram_limits

    check_cuda_histogram_limits("LBP", 65535, 65535, (1, 1), 10, "P")
    check_cuda_histogram_limits("LBP", 131070, 65535, (2, 1), 10, "P")
    with pytest.raises(ValueError, match="a grid cell of 65536x65536 pixels exceeds"):
        check_cuda_histogram_limits("ColorHistogram", 65536, 65536, (1, 1), 10, "bins")


# ------------------------------------------ item 11: a thread that cannot be created

CHILD = r"""
import resource, numpy as np
from mtlclassic.features import HOG
from mtlclassic.multitask import MultiTaskClassifier
X = np.zeros((300, 16, 16), np.uint8)
rng = np.random.default_rng(0)
Xr = rng.standard_normal((300 * 2048, 17))  # (17 features for 2 sub-tasks: FISTA keeps
Yr = (rng.standard_normal((300 * 2048, 2)) > 0).astype(float)  # its maps, one loss call)
Yr[0, 0] = np.nan  # logistic loss, a missing label: the native loss (300 blocks of 4096)
vm = [int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize")][0]
resource.setrlimit(resource.RLIMIT_AS, (vm + 1024 * 2**20, resource.RLIM_INFINITY))
for fn in (lambda: HOG(pixels_per_cell=8, cells_per_block=1, n_jobs=300).fit_transform(X),
           lambda: MultiTaskClassifier(penalty="l21", n_jobs=300, max_iter=3).fit(Xr, Yr)):
    try:
        fn()
        print("no error")
    except RuntimeError as e:
        print("RuntimeError:", e)
print("alive", HOG(pixels_per_cell=8, cells_per_block=1, n_jobs=2).fit_transform(X).shape)
"""


def test_thread_creation_failure_raises_instead_of_terminating(tmp_path):
    """Under `ulimit -v` 300 threads cannot all start: the kernels used to call
    std::terminate (the interpreter died); now the started threads are joined and a
    RuntimeError says to lower n_jobs."""
    import os
    import subprocess
    import sys

    if "asan" in os.environ.get("LD_PRELOAD", ""):
        pytest.skip("an address-space limit cannot hold AddressSanitizer's shadow memory")
    # run outside the source tree: from the checkout, `import mtlclassic` would find the
    # sources (without compiled modules) of a non-editable install
    res = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
                         cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    lines = res.stdout.splitlines()
    assert len(lines) == 3, res.stdout
    for line in lines[:2]:
        assert line.startswith("RuntimeError: could not start worker thread"), line
        assert "use a smaller n_jobs" in line
    assert lines[2] == "alive (300, 36)"


@pytest.mark.gpu
def test_hog_cuda_float32_image_float64_output_holds_float32_values():
    """The CUDA kernel rounds a float32 image's features to float32 too (hog_blocks)."""
    import cupy as cp

    rng = np.random.default_rng(6)
    x = rng.random((3, 40, 36, 3)).astype(np.float32)
    est = HOG(pixels_per_cell=8, cells_per_block=2, dtype=np.float64).fit(x)
    got = est.transform(cp.asarray(x)).get()
    np.testing.assert_array_equal(got, got.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose(got, est.transform(x), rtol=1e-6, atol=1e-7)
