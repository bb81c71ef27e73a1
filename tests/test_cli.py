"""The mtlclassic command end to end, the datasets and the plots."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from mtlclassic.cli import main
from mtlclassic.datasets import (load_digits_multitask, load_mfeat_digits, load_school,
                                 make_multiattribute_images)


def run(args, tmp_path):
    res = subprocess.run([sys.executable, "-m", "mtlclassic"] + args, capture_output=True,
                         text=True, cwd=tmp_path, timeout=600, env=_env())
    return res


def _env():
    import os

    env = dict(os.environ)
    env["MPLBACKEND"] = "Agg"
    return env


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """24 PNGs with two tasks: colour (red/blue, one blank) and stripes (h/v)."""
    from skimage import io

    root = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(24):
        img = np.full((40, 50, 3), 30, np.uint8)
        red = i % 2 == 0
        img[..., 0 if red else 2] = 200
        horizontal = (i // 2) % 2 == 0
        stripes = (np.arange(40) // 4 % 2)[:, None] if horizontal else (np.arange(50) // 4 % 2)[None]
        img[..., 1] = (stripes * 180 + rng.integers(0, 20, (40, 50))).astype(np.uint8)
        name = f"img{i:02d}.png"
        io.imsave(root / name, img, check_contrast=False)
        rows.append([name, "" if i == 5 else ("red" if red else "blue"),
                     "h" if horizontal else "v"])
    with open(root / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "colour", "stripes"])
        w.writerows(rows)
    return root


def test_train_predict_end_to_end(image_folder, tmp_path):
    model = tmp_path / "model.joblib"
    res = run(["train", "--images", str(image_folder), "--labels",
               str(image_folder / "labels.csv"), "--out", str(model), "--size", "32",
               "--quiet"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "colour: 3-fold CV accuracy" in res.stdout and model.is_file()
    out = tmp_path / "pred.csv"
    res = run(["predict", "--model", str(model), "--images", str(image_folder), "--out",
               str(out)], tmp_path)
    assert res.returncode == 0, res.stderr
    with open(out) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["file", "colour", "stripes"] and len(rows) == 25
    truth = {r[0]: r[1:] for r in csv.reader(open(image_folder / "labels.csv"))}
    colour_ok = np.mean([r[1] == truth[r[0]][0] for r in rows[1:] if truth[r[0]][0]])
    assert colour_ok == 1.0


@pytest.mark.parametrize("case", ["missing_folder", "no_file_column", "one_class", "unreadable",
                                  "bad_model", "missing_model"])
def test_user_errors_are_one_line(image_folder, tmp_path, case):
    labels = image_folder / "labels.csv"
    if case == "missing_folder":
        args = ["train", "--images", str(tmp_path / "nope"), "--labels", str(labels), "--out",
                str(tmp_path / "m.joblib")]
        want = "image folder not found"
    elif case == "no_file_column":
        bad = tmp_path / "bad.csv"
        bad.write_text("name,colour\nimg00.png,red\n")
        args = ["train", "--images", str(image_folder), "--labels", str(bad), "--out",
                str(tmp_path / "m.joblib")]
        want = "no 'file' column"
    elif case == "one_class":
        bad = tmp_path / "one.csv"
        bad.write_text("file,colour\nimg00.png,red\nimg01.png,red\n")
        args = ["train", "--images", str(image_folder), "--labels", str(bad), "--out",
                str(tmp_path / "m.joblib")]
        want = "single class"
    elif case == "unreadable":
        folder = tmp_path / "broken"
        folder.mkdir()
        (folder / "a.png").write_text("not an image")
        (folder / "b.png").write_text("not an image")
        lab = tmp_path / "l.csv"
        lab.write_text("file,t\na.png,x\nb.png,y\n")
        args = ["train", "--images", str(folder), "--labels", str(lab), "--out",
                str(tmp_path / "m.joblib")]
        want = "cannot read image"
    elif case == "bad_model":
        junk = tmp_path / "junk.joblib"
        import joblib

        joblib.dump({"something": "else"}, junk)
        args = ["predict", "--model", str(junk), "--images", str(image_folder), "--out",
                str(tmp_path / "p.csv")]
        want = "not a model saved by"
    else:
        args = ["predict", "--model", str(tmp_path / "none.joblib"), "--images",
                str(image_folder), "--out", str(tmp_path / "p.csv")]
        want = "model file not found"
    res = run(args, tmp_path)
    assert res.returncode == 1
    errors = [l for l in res.stderr.strip().splitlines() if l.startswith("mtlclassic ")]
    assert len(errors) == 1 and want in errors[0] and "Traceback" not in res.stderr, res.stderr
    assert res.stderr.strip().splitlines()[-1] == errors[0]


def test_demo_small(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    rc = main(["demo", "--n", "200", "--out", str(tmp_path / "demo"), "--quiet"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "MTL acc" in out and "independent acc" in out and "mean" in out
    report = json.loads((tmp_path / "demo" / "report.json").read_text())
    assert [t["task"] for t in report["tasks"]] == ["source", "rotation", "gamma", "noise", "flip"]
    assert 0 <= report["mean_mtl_accuracy"] <= 1 and report["times"]["features_s"] > 0
    assert (tmp_path / "demo" / "task_relation.png").stat().st_size > 1000


def test_demo_refuses_cuda_cleanly_without_gpu(tmp_path, capsys):
    from mtlclassic.backend import cuda_available

    if cuda_available():
        pytest.skip("a GPU is usable here: tests/test_gpu.py runs the demo on it")
    assert main(["demo", "--device", "cuda", "--n", "100", "--out", str(tmp_path)]) == 1
    assert "no GPU is usable" in capsys.readouterr().err


@pytest.mark.gpu
def test_demo_on_gpu(tmp_path):
    assert main(["demo", "--device", "cuda", "--n", "300", "--size", "48", "--quiet",
                 "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["device"] == "cuda" and 0 <= report["mean_mtl_accuracy"] <= 1


def test_bench_unknown_and_help(tmp_path):
    res = run(["bench", "nothing"], tmp_path)
    assert res.returncode == 2 and "invalid choice" in res.stderr


# ------------------------------------------------------------------ datasets / plots

def test_multiattribute_images_deterministic():
    a = make_multiattribute_images(12, size=32, seed=3)
    b = make_multiattribute_images(12, size=32, seed=3)
    c = make_multiattribute_images(12, size=32, seed=4)
    assert np.array_equal(a.images, b.images) and (a.targets == b.targets).all()
    assert not np.array_equal(a.images, c.images)
    assert a.images.shape == (12, 32, 32, 3) and a.images.dtype == np.uint8
    assert a.target_names == ["source", "rotation", "gamma", "noise", "flip", "blur"]
    assert set(a.targets[:, 1]) <= {0, 90, 180, 270}
    assert all(0 <= v <= 2 for v in a.targets[:, 5])
    with pytest.raises(ValueError, match="n_samples"):
        make_multiattribute_images(0)


def test_loaders(tmp_path):
    d = load_digits_multitask()
    assert d.targets.shape == (1797, 3) and set(d.targets[:, 1]) == {"even", "odd"}
    from mtlclassic.datasets._loaders import _find

    with pytest.raises(FileNotFoundError, match="looked in: " + str(tmp_path)):
        _find("nothing/here.txt", tmp_path)
    try:
        m = load_mfeat_digits()
        s = load_school()
    except FileNotFoundError:
        pytest.skip("shared data not present")
    assert m.data.shape == (2000, 240) and m.targets.sum() == 2000
    assert s.data.shape == (15362, 27) and s.Y_wide.shape == (15362, 139)
    assert np.all(np.sum(~np.isnan(s.Y_wide), axis=1) == 1)


def test_plot_task_relation_draws_what_it_claims():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from mtlclassic.plotting import plot_task_relation

    R = np.array([[1.0, -0.4], [-0.4, 1.0]])
    ax = plot_task_relation(R, task_names=["a", "b"])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
    assert ax.images[0].get_clim() == (-1.0, 1.0)
    assert sorted(t.get_text() for t in ax.texts) == ["-0.40", "-0.40", "1.00", "1.00"]
    with pytest.raises(ValueError, match="square"):
        plot_task_relation(np.ones((2, 3)))
    with pytest.raises(ValueError, match="names"):
        plot_task_relation(R, task_names=["a"])


def test_demo_mtfl_without_data_says_where_it_looked(tmp_path, capsys):
    rc = main(["demo", "--dataset", "mtfl", "--data-home", str(tmp_path), "--n", "60",
               "--out", str(tmp_path / "demo"), "--quiet"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "MTFL not found" in err and str(tmp_path) in err and "--data-home" in err


def test_demo_mtfl_small(tmp_path, capsys, mtfl_home):
    rc = main(["demo", "--dataset", "mtfl", "--data-home", str(mtfl_home), "--n", "80",
               "--out", str(tmp_path / "demo"), "--quiet", "--n-jobs", "1"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "landmarks + 4 attributes (l21)" in out and "attribute accuracy" in out
    report = json.loads((tmp_path / "demo" / "report.json").read_text())
    assert report["n_train"] == 80 and report["n_test"] == 50
    assert 0 < report["landmarks only"]["mean_error_pct"] < 30
