"""load_mtfl on a small MTFL-shaped archive made here (the files' quirks: backslash paths,
lines starting with a space, grey and RGB JPEGs of several sizes), on an extracted folder,
on bad files, and on the real MTFL.zip when the shared data are present."""

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from mtlclassic.datasets import data_home, load_mtfl


def _jpeg(shape, value):
    buf = io.BytesIO()
    arr = np.full(shape, value, np.uint8)
    Image.fromarray(arr).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _annotation(path, k):
    xs = [10 + k, 30 + k, 20 + k, 12 + k, 28 + k]
    ys = [15.5, 15.25, 25, 35, 35.75]
    return " ".join([path] + [f"{v:.6f}" for v in xs + ys] + ["1", "2", str(1 + k % 2), "3"])


def _make(root, *, bad_line=False, bad_image=False, zipped=True):
    files = {
        "MTFL/readme.txt": b"MTFL test copy",
        "MTFL/training.txt": ("\r\n ".join(
            [_annotation("lfw_5590\\a.jpg", 0), _annotation("net_7876\\b.jpg", 1),
             _annotation("lfw_5590\\c.jpg", 2)]) + "\r\n").encode(),
        "MTFL/testing.txt": (_annotation("AFLW/d.jpg", 3)
                             + ("\n AFLW/e.jpg 1 2 3" if bad_line else "") + "\r\n").encode(),
        "MTFL/lfw_5590/a.jpg": _jpeg((40, 40, 3), 200),
        "MTFL/net_7876/b.jpg": _jpeg((30, 50), 90),  # a greyscale JPEG of another size
        "MTFL/lfw_5590/c.jpg": b"\xff\xd8 truncated" if bad_image else _jpeg((40, 40, 3), 10),
        "MTFL/AFLW/d.jpg": _jpeg((20, 20, 3), 128),
    }
    target = root / "mtfl"
    target.mkdir(parents=True, exist_ok=True)
    if zipped:
        with zipfile.ZipFile(target / "MTFL.zip", "w", zipfile.ZIP_STORED) as z:
            for name, data in files.items():
                z.writestr(name, data)
    else:
        for name, data in files.items():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).write_bytes(data)
    return root


@pytest.mark.parametrize("zipped", [True, False])
def test_reads_the_files_as_they_are(tmp_path, zipped):
    home = _make(tmp_path, zipped=zipped)
    b = load_mtfl("train", data_home=home, verbose=False)
    assert b.filenames == ["lfw_5590/a.jpg", "net_7876/b.jpg", "lfw_5590/c.jpg"]
    assert [im.shape for im in b.images] == [(40, 40, 3), (30, 50, 3), (40, 40, 3)]
    assert abs(int(b.images[1][5, 5, 0]) - 90) <= 2 and b.images[1].dtype == np.uint8
    assert b.landmarks.shape == (3, 5, 2)
    np.testing.assert_array_equal(b.landmarks[1, :, 0], [11, 31, 21, 13, 29])  # x
    np.testing.assert_array_equal(b.landmarks[1, :, 1], [15.5, 15.25, 25, 35, 35.75])  # y
    np.testing.assert_array_equal(b.attributes[1], [1, 2, 2, 3])
    assert list(b.attribute_labels[0]) == ["male", "not smiling", "glasses", "frontal"]
    assert b.attribute_names == ["gender", "smile", "glasses", "pose"]
    assert b.landmark_names[0] == "left_eye" and "ECCV 2014" in b.DESCR
    t = load_mtfl("test", data_home=home, grey=True, n_jobs=1, verbose=False)
    assert len(t.images) == 1 and t.images[0].shape == (20, 20)
    assert len(load_mtfl("train", data_home=home, n_samples=2, verbose=False).images) == 2


def test_errors_name_where_and_what(tmp_path, monkeypatch):
    import mtlclassic.datasets._mtfl as mod

    monkeypatch.setattr(mod, "_data_home", lambda d: [d])  # not the shared data
    with pytest.raises(FileNotFoundError, match="looked in: .*" + str(tmp_path / "none")):
        load_mtfl(data_home=tmp_path / "none")
    home = _make(tmp_path / "a", bad_line=True)
    with pytest.raises(ValueError, match=r"testing.txt, line 2: 4 fields"):
        load_mtfl("test", data_home=home)
    home = _make(tmp_path / "b", bad_image=True)
    with pytest.raises(ValueError, match=r"lfw_5590/c.jpg"):
        load_mtfl("train", data_home=home, verbose=False)
    with pytest.raises(ValueError, match="subset"):
        load_mtfl("valid", data_home=home)
    with pytest.raises(ValueError, match="n_samples"):
        load_mtfl(data_home=home, n_samples=0)


def _real_mtfl():
    for d in data_home(None):
        if (d / "mtfl" / "MTFL.zip").is_file():
            return d
    return None


@pytest.mark.skipif(_real_mtfl() is None, reason="MTFL.zip not in the shared data")
def test_real_mtfl_subset():
    b = load_mtfl("train", n_samples=60, verbose=False)
    assert len(b.images) == 60 and b.landmarks.shape == (60, 5, 2)
    for im, pts in zip(b.images, b.landmarks):
        h, w = im.shape[:2]
        assert np.all((pts >= 0) & (pts <= [w, h]))  # the points lie in their image
        assert pts[0, 0] < pts[1, 0]  # the left eye is left of the right eye
    t = load_mtfl("test", n_samples=10, verbose=False)
    assert t.filenames[0].startswith("AFLW/") and t.images[0].shape == (150, 150, 3)


def test_explicit_data_home_is_the_only_place_looked(tmp_path):
    """A mistyped data_home used to fall back to the default copy silently."""
    with pytest.raises(FileNotFoundError, match="looked in: " + str(tmp_path / "typo")):
        load_mtfl(data_home=tmp_path / "typo")


@pytest.mark.skipif(_real_mtfl() is None, reason="MTFL.zip not in the shared data")
def test_shuffled_subset_is_seeded_and_keeps_labels_with_files():
    from mtlclassic.datasets._mtfl import _locate, _parse, _Source

    a = load_mtfl("train", n_samples=40, shuffle=True, random_state=3, verbose=False)
    b = load_mtfl("train", n_samples=40, shuffle=True, random_state=3, verbose=False)
    first = load_mtfl("train", n_samples=40, verbose=False)
    assert a.filenames == b.filenames and a.filenames != first.filenames
    src = _Source(_locate(None))
    try:
        paths, pts, attrs, _ = _parse(src.read("training.txt").decode("utf-8-sig"),
                                      "training.txt")
    finally:
        src.close()
    ref = {p: (l, t) for p, l, t in zip(paths, pts, attrs)}
    for f, l, t in zip(a.filenames, a.landmarks, a.attributes):
        np.testing.assert_array_equal(ref[f][0], l)
        np.testing.assert_array_equal(ref[f][1], t)
