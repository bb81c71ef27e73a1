"""Image files decoded by their type, not their content: one file of each Pillow mode, and
the CLI around them (CSV dialects, duplicates, sizes, outputs, unreadable files)."""

import csv
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from mtlclassic.cli import _duplicate_groups, _read_labels, main
from mtlclassic.datasets import image_size, load_image, read_image


@pytest.fixture(scope="module")
def cat():
    from skimage.data import chelsea

    return chelsea()[100:164, 150:214]  # 64 x 64 RGB uint8


def _save(tmp_path, name, im, **kw):
    path = tmp_path / name
    im.save(path, **kw)
    return path


def test_rgb_and_grey_as_stored(tmp_path, cat):
    np.testing.assert_array_equal(read_image(_save(tmp_path, "a.png", Image.fromarray(cat))), cat)
    grey = cat[..., 1]
    got = read_image(_save(tmp_path, "g.png", Image.fromarray(grey)))
    assert got.shape == (64, 64, 3)
    np.testing.assert_array_equal(got[..., 0], grey)
    np.testing.assert_array_equal(got[..., 2], grey)


def test_cmyk_jpeg_is_not_rgba(tmp_path, cat):
    """A CMYK JPEG loaded as RGBA became all white (the cat predicted as the astronaut)."""
    path = _save(tmp_path, "c.jpg", Image.fromarray(cat).convert("CMYK"), quality=100)
    assert Image.open(path).mode == "CMYK"
    got = read_image(path).astype(float)
    assert got.shape == (64, 64, 3)
    assert np.abs(got - cat).mean() < 6  # JPEG-lossy, but the same picture
    assert got.mean() < 200


def test_16_bit_png_scaled_by_its_type(tmp_path):
    """Scaled by its maximum, one pixel at 256 moved the mean from 61.7 to 0.14."""
    a = np.full((16, 16), 61 * 257, np.uint16)
    a[0, 0] = 256  # a dark pixel: its value must not set the scale
    path = tmp_path / "i16.png"
    Image.fromarray(a).save(path)
    assert Image.open(path).mode.startswith("I")
    got = read_image(path)
    assert got[1, 1, 0] == 61 and got[0, 0, 0] == 1
    assert got[..., 0].mean() == pytest.approx((61 * 255 + 1) / 256)


def test_one_bit_png_is_full_scale(tmp_path):
    a = np.zeros((8, 8), bool)
    a[:, :4] = True
    path = _save(tmp_path, "b.png", Image.fromarray(a).convert("1"))
    assert Image.open(path).mode == "1"
    got = read_image(path)
    assert set(np.unique(got)) == {0, 255} and got[0, 0, 0] == 255


def test_float_tiff_in_unit_range(tmp_path):
    f = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    path = _save(tmp_path, "f.tif", Image.fromarray(f, mode="F"))
    assert Image.open(path).mode == "F"
    got = read_image(path)
    assert got[0, 0, 0] == 0 and got[-1, -1, 0] == 255
    assert got[..., 0].mean() == pytest.approx(127.5, abs=0.6)
    bad = _save(tmp_path, "f255.tif", Image.fromarray(f * 255, mode="F"))
    with pytest.raises(ValueError, match=r"f255.tif.*\[0, 1\]"):
        read_image(bad)


@pytest.mark.parametrize("mode", ["LA", "RGBA", "P"])
def test_alpha_and_palette(tmp_path, cat, mode):
    rgba = np.dstack([cat, np.full((64, 64), 255, np.uint8)])
    rgba[:32, :, 3] = 0  # the top half transparent: white, as rgba2rgb composites
    im = Image.fromarray(rgba, "RGBA")
    if mode == "LA":
        im = im.convert("LA")
    elif mode == "P":
        im = Image.fromarray(cat).quantize(64)
    path = _save(tmp_path, f"x_{mode}.png", im)
    assert Image.open(path).mode == mode
    got = read_image(path)
    if mode == "P":
        assert np.abs(got.astype(float) - cat).mean() < 8
    else:
        assert np.all(got[:32] == 255)
        ref = cat if mode == "RGBA" else np.asarray(Image.fromarray(cat).convert("L"))[..., None]
        np.testing.assert_array_equal(got[32:], np.broadcast_to(ref[32:], got[32:].shape))


def test_animated_gif_first_frame(tmp_path, cat):
    frames = [Image.fromarray(cat), Image.fromarray(255 - cat)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    got = read_image(path)
    assert np.abs(got.astype(float) - cat).mean() < 15  # the first frame, palette-reduced


def test_unreadable_file_named(tmp_path):
    bad = tmp_path / "trunc.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    with pytest.raises(ValueError, match="trunc.jpg"):
        read_image(bad)
    with pytest.raises(ValueError, match="trunc.jpg"):
        image_size(bad)


def test_load_image_resizes(tmp_path, cat):
    path = _save(tmp_path, "a.png", Image.fromarray(cat))
    assert load_image(path, 32).shape == (32, 32, 3) and load_image(path, 32).dtype == np.uint8
    assert image_size(path) == (64, 64)


# ----------------------------------------------------------------------------- the CLI
def test_csv_with_bom_and_semicolons(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_bytes("\ufefffile;colour;size\na.png;red;big\nb.png;;small\n".encode("utf-8"))
    names, tasks, Y = _read_labels(path, "file")
    assert names == ["a.png", "b.png"] and tasks == ["colour", "size"]
    assert Y[1, 0] is None and Y[1, 1] == "small"


def test_latin1_csv_error_names_the_file(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("file,couleur\na.png,gr\xe9en\n".encode("latin-1"))
    with pytest.raises(Exception, match="latin.csv is not UTF-8"):
        _read_labels(path, "file")


def test_duplicate_rows_warned_and_grouped(tmp_path, capsys):
    path = tmp_path / "labels.csv"
    path.write_text("file,t\na.png,x\nb.png,y\na.png,x\nc.png,y\nc.png,x\n")
    names, _, _ = _read_labels(path, "file")
    err = capsys.readouterr().err
    assert "2 file(s) listed more than once" in err and "different labels (e.g. c.png)" in err
    X = np.zeros((5, 2, 2, 3), np.uint8)
    X[1] += 1
    X[3] += 2  # c.png's rows differ in pixels here but share their name
    X[4] += 1  # ... and its second row has b.png's pixels: all three are one group
    g = _duplicate_groups(names, X)
    assert g[0] == g[2] and g[1] == g[3] == g[4] and g[0] != g[1]


def test_duplicates_do_not_leak_between_folds(tmp_path):
    """The CLI's CV keeps copies of an image in one fold (accuracy 0.83 -> 0.95 before)."""
    from sklearn.model_selection import GroupKFold

    names = [f"{i % 10}.png" for i in range(30)]  # every file three times
    X = np.zeros((30, 1, 1, 3), np.uint8)
    g = _duplicate_groups(names, X + np.arange(30)[:, None, None, None].astype(np.uint8))
    for tr, te in GroupKFold(3, shuffle=True, random_state=0).split(X, groups=g):
        assert not set(np.array(names)[tr]) & set(np.array(names)[te])


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(12):
        img = np.full((20, 24, 3), 40, np.uint8)
        img[..., i % 2 * 2] = 200
        img += rng.integers(0, 10, img.shape, dtype=np.uint8)
        Image.fromarray(img).save(tmp_path / f"{i}.png")
        rows.append([f"{i}.png", "red" if i % 2 == 0 else "blue"])
    Image.fromarray(np.dstack([img[..., 0], img[..., 1]]), "LA").save(tmp_path / "la.png")
    rows.append(["la.png", "red"])
    with open(tmp_path / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([["file", "colour"]] + rows)
    return tmp_path


def _cli(args, capsys):
    rc = main(args)
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize("size, msg", [("0", "between 16 and 2048"), ("30000", "between 16 and 2048"),
                                       ("big", "integer or 'auto'")])
def test_cli_sizes_checked_first(folder, tmp_path, capsys, size, msg):
    rc, _, err = _cli(["train", "--images", str(folder), "--labels", str(folder / "labels.csv"),
                       "--out", str(tmp_path / "m.joblib"), "--size", size], capsys)
    assert rc == 1 and msg in err and "Traceback" not in err


def test_cli_out_directory_refused_before_work(folder, tmp_path, capsys):
    rc, _, err = _cli(["train", "--images", str(folder), "--labels", str(folder / "labels.csv"),
                       "--out", str(tmp_path)], capsys)
    assert rc == 1 and "is a directory" in err


def test_cli_auto_size_and_unreadable_predict(folder, tmp_path, capsys):
    model = tmp_path / "m.joblib"
    rc, out, err = _cli(["train", "--images", str(folder), "--labels",
                         str(folder / "labels.csv"), "--out", str(model), "--quiet"], capsys)
    assert rc == 0, err
    assert "resized to 32x32" in out  # 20-pixel images: auto gives the smallest size, 32
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (folder / "._0.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    pred = tmp_path / "p.csv"
    rc, out, err = _cli(["predict", "--model", str(model), "--images", str(folder), "--out",
                         str(pred)], capsys)
    assert rc == 0, err
    assert "skipped 1 unreadable image" in err and "broken.jpg" in err
    rows = list(csv.reader(open(pred)))
    assert len(rows) == 1 + 13 and {r[0] for r in rows[1:]} >= {"0.png", "la.png"}
    assert np.mean([r[1] == ("red" if r[0] == "la.png" or int(r[0][:-4]) % 2 == 0 else "blue")
                    for r in rows[1:]]) == 1.0
    rc, _, err = _cli(["predict", "--model", str(model), "--images", str(folder), "--out",
                       str(pred), "--strict"], capsys)
    assert rc == 1 and "broken.jpg" in err


def test_bench_found_from_inside_a_checkout(tmp_path):
    """An installed (non-editable) package looks for benchmarks/ from the current folder."""
    import mtlclassic.cli as cli

    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "prox.py").write_text("print('bench ran')\n")
    (tmp_path / "sub").mkdir()
    res = subprocess.run([sys.executable, "-c", "import sys, mtlclassic.cli as c; "
                          "c.__file__ = '/nonexistent/mtlclassic/cli.py'; "
                          "sys.exit(c.main(['bench', 'prox']))"], cwd=tmp_path / "sub",
                         capture_output=True, text=True, timeout=120)
    assert cli is not None
    assert res.returncode == 0 and "bench ran" in res.stdout, res.stderr


# ------------------------------------------- found by trying it as a new user would
@pytest.mark.parametrize("values, expected", [([0, 255], [0, 0]), ([0, 256], [0, 1]),
                                              ([0, 65535], [0, 255])])
def test_16_bit_scale_never_depends_on_the_content(tmp_path, values, expected):
    """img_as_ubyte leaves uint16 arrays whose values fit in 8 bits unscaled."""
    path = tmp_path / "x.png"
    Image.fromarray(np.array([values], np.uint16)).save(path)
    np.testing.assert_array_equal(read_image(path)[0, :, 0], expected)


def test_16_bit_pgm_and_32_bit_tiff(tmp_path):
    Image.fromarray(np.array([[0, 32768, 65535]], np.uint16)).save(tmp_path / "u.pgm")
    assert Image.open(tmp_path / "u.pgm").mode.startswith("I")
    np.testing.assert_array_equal(read_image(tmp_path / "u.pgm")[0, :, 0], [0, 128, 255])
    Image.fromarray(np.array([[0, 255, 2**31 - 1]], np.int32), mode="I").save(tmp_path / "i.tif")
    np.testing.assert_array_equal(read_image(tmp_path / "i.tif")[0, :, 0], [0, 0, 255])


def test_transparent_colour_of_grey_and_rgb_pngs(tmp_path):
    Image.fromarray(np.array([[0, 100]], np.uint8)).save(tmp_path / "t.png", transparency=0)
    np.testing.assert_array_equal(read_image(tmp_path / "t.png")[0, :, 0], [255, 100])


def test_float_tiff_with_nan_named(tmp_path):
    f = np.full((4, 4), 0.2, np.float32)
    f[0, 0] = np.nan
    Image.fromarray(f, mode="F").save(tmp_path / "n.tif")
    with pytest.raises(ValueError, match="n.tif: a float image holds NaN"):
        read_image(tmp_path / "n.tif")


def test_exif_rotation_in_size_and_pixels(tmp_path):
    im = Image.fromarray(np.zeros((6, 8, 3), np.uint8))
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees
    im.save(tmp_path / "r.jpg", exif=exif)
    assert read_image(tmp_path / "r.jpg").shape[:2] == (8, 6) == image_size(tmp_path / "r.jpg")


@pytest.mark.parametrize("size", [0, -3, 2.5, True, "8", (4, 6)])
def test_load_image_size_checked(tmp_path, cat, size):
    path = _save(tmp_path, "a.png", Image.fromarray(cat))
    with pytest.raises(ValueError, match="size must be None or an integer >= 1"):
        load_image(path, size)


def test_pillow_value_errors_keep_the_file_name(tmp_path):
    with pytest.raises(ValueError, match="cannot read image .*a\x00b"):
        read_image(str(tmp_path / "a\x00b.png"))


def test_csv_stray_quote_and_trailing_delimiter(tmp_path):
    big = tmp_path / "q.csv"
    big.write_text("file,t\na.png,x\n\"b.png,y\n" + "c.png,z\n" * 20000)
    with pytest.raises(Exception, match=r"q.csv, line \d+: .*unbalanced quote"):
        _read_labels(big, "file")
    trail = tmp_path / "t.csv"
    trail.write_text("file,colour,\na.png,red,\nb.png,blue,\n")
    names, tasks, Y = _read_labels(trail, "file")
    assert tasks == ["colour"] and Y.shape == (2, 1)
    named = tmp_path / "n.csv"
    named.write_text("file,colour,\na.png,red,5\n")
    with pytest.raises(Exception, match="column 3 has values but no name"):
        _read_labels(named, "file")


def test_identical_images_with_different_labels_warned(tmp_path, capsys):
    from mtlclassic.cli import _warn_identical_images

    names = ["a.png", "b.png", "c.png"]
    Y = np.array([["x"], ["y"], ["x"]], dtype=object)
    X = np.zeros((3, 2, 2, 3), np.uint8)
    X[2] += 7
    _warn_identical_images(names, Y, _duplicate_groups(names, X))
    err = capsys.readouterr().err
    assert "identical images (e.g. a.png, b.png)" in err and "different labels" in err


def test_predict_messages_and_damaged_models(folder, tmp_path, capsys):
    import joblib

    rc, _, err = _cli(["predict", "--model", str(tmp_path / "m.joblib"), "--images",
                       str(folder), "--out", str(tmp_path)], capsys)
    assert rc == 1 and "predictions.csv" in err
    bad = tmp_path / "bad.joblib"
    joblib.dump({"mtlclassic_model": 1, "tasks": ["t"]}, bad)
    rc, _, err = _cli(["predict", "--model", str(bad), "--images", str(folder), "--out",
                       str(tmp_path / "p.csv")], capsys)
    assert rc == 1 and "damaged" in err


def test_demo_size_checked(capsys):
    rc, _, err = _cli(["demo", "--size", "8", "--out", "/tmp/unused"], capsys)
    assert rc == 1 and "--size must be between 16 and 512" in err
