"""The ``mtlclassic`` command (also ``python -m mtlclassic``).

    mtlclassic info                  versions, native modules, GPUs
    mtlclassic demo [--n N]          features + multi-task vs independent models, a report
    mtlclassic demo --dataset mtfl   faces: landmarks alone and with attributes, a figure
    mtlclassic train --images DIR --labels labels.csv --out model.joblib
    mtlclassic predict --model model.joblib --images DIR --out predictions.csv
    mtlclassic bench [features|multitask|prox|gpu]

Mistakes a user can make end with a one-line message and a non-zero exit code.
"""

import argparse
import csv
import io
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

PENALTIES = ["ridge", "mean", "graph", "l21", "trace", "mtrl"]
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp"}


class UserError(Exception):
    """A mistake in the command's input: printed as one line, exit code 1."""


# ------------------------------------------------------------------ helpers
def _progress(msg, quiet=False):
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def _load_image(path, size):
    from .datasets import load_image

    try:
        return load_image(path, size)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _load_folder(folder, names, size, strict=True,
                 skip_hint="--skip-unreadable skips such files"):
    """Images of ``names`` in ``folder`` as (n, size, size, 3) uint8 and the names kept.
    An unreadable file stops everything when ``strict``, else it is reported and skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"image folder not found: {folder}")
    images, kept, bad = [], [], []
    for n in names:
        try:
            images.append(_load_image(folder / n, size))
            kept.append(n)
        except UserError as exc:
            if strict:
                raise UserError(f"{exc} ({skip_hint})") from None
            bad.append(str(exc))
    if bad:
        print(f"warning: skipped {len(bad)} unreadable image(s):\n  " + "\n  ".join(bad),
              file=sys.stderr)
    if not images:
        raise UserError(f"no readable image in {folder}")
    return np.stack(images), kept


def _list_images(folder):
    """Image files of ``folder`` by extension, without macOS AppleDouble ``._*`` files."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"image folder not found: {folder}")
    names = sorted(p.name for p in folder.iterdir()
                   if p.suffix.lower() in IMAGE_EXTS and not p.name.startswith("._"))
    if not names:
        raise UserError(f"no images ({', '.join(sorted(IMAGE_EXTS))}) in {folder}")
    return names


def _read_labels(path, file_column):
    """The labels CSV: UTF-8 (a byte-order mark, as Excel's "CSV UTF-8" writes, is
    dropped), the delimiter (',', ';', tab or '|') detected by ``csv.Sniffer``. Returns the
    file names, the task names and an object array of labels (None = blank)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"labels file not found: {path}")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            text = f.read()
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text (byte {exc.start}: {exc.reason}); save it "
                        "as UTF-8 (e.g. Excel's \"CSV UTF-8\")") from None
    try:
        dialect = csv.Sniffer().sniff(text[:65536], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel  # one column, or nothing to tell: commas
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise UserError(f"{path}, line {reader.line_num}: {exc} (an unbalanced quote?)") \
            from None
    if len(rows) < 2:
        raise UserError(f"{path}: needs a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    # a delimiter at the end of every line (some spreadsheet exports) adds unnamed columns
    empty = [i for i, h in enumerate(header) if not h]
    for i in empty:
        if any(i < len(r) and r[i].strip() for r in rows[1:]):
            raise UserError(f"{path}: column {i + 1} has values but no name in the header")
    if empty:
        keep = [i for i in range(len(header)) if i not in empty]
        rows = [[r[i] if i < len(r) else "" for i in keep] if any(c.strip() for c in r) else r
                for r in rows]
        header = [header[i] for i in keep]
    if file_column not in header:
        raise UserError(f"{path}: no '{file_column}' column (columns: {', '.join(header)}); "
                        "name the image file column with --file-column")
    fi = header.index(file_column)
    tasks = [h for i, h in enumerate(header) if i != fi]
    if not tasks:
        raise UserError(f"{path}: no label column besides '{file_column}'")
    names, Y, lines = [], [], []
    for k, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise UserError(f"{path}, line {k}: {len(row)} fields, header has {len(header)}")
        names.append(row[fi].strip())
        Y.append([row[i].strip() or None for i in range(len(header)) if i != fi])
        lines.append(k)
    _warn_duplicates(path, names, Y, lines)
    return names, tasks, np.array(Y, dtype=object)


def _warn_duplicates(path, names, Y, lines):
    """Warn about files listed more than once (the cross-validation groups them)."""
    seen = {}
    for name, row, line in zip(names, Y, lines):
        seen.setdefault(name, []).append((line, tuple(row)))
    dup = {n: v for n, v in seen.items() if len(v) > 1}
    if not dup:
        return
    conflicting = [n for n, v in dup.items() if len({r for _, r in v}) > 1]
    msg = (f"warning: {path}: {len(dup)} file(s) listed more than once (e.g. "
           + ", ".join(f"{n} on lines {', '.join(str(ln) for ln, _ in v)}"
                       for n, v in list(dup.items())[:3])
           + "); each copy is fitted, and cross-validation keeps copies in one fold")
    if conflicting:
        msg += (f"; {len(conflicting)} of them with different labels (e.g. {conflicting[0]}): "
                "check the labels")
    print(msg, file=sys.stderr)


def _duplicate_groups(names, X):
    """A group id per row: rows naming the same file or holding identical pixels share one,
    so that no image is both trained on and scored in a cross-validation fold."""
    import hashlib

    key_of = {}
    parent = list(range(len(names)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, (n, img) in enumerate(zip(names, X)):
        for key in (("name", n), ("pixels", hashlib.sha1(img.tobytes()).hexdigest())):
            if key in key_of:
                parent[find(i)] = find(key_of[key])
            else:
                key_of[key] = i
    return np.array([find(i) for i in range(len(names))])


def _warn_identical_images(names, Y, groups):
    """Warn about different files holding the same pixels (the CV keeps them in one fold),
    and louder when their labels differ."""
    copies, conflicts = [], []
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        files = sorted({names[r] for r in rows})
        if len(files) < 2:
            continue
        copies.append(files)
        if len({tuple(Y[r]) for r in rows}) > 1:
            conflicts.append(files)
    if copies:
        msg = (f"warning: {len(copies)} group(s) of different files hold identical images "
               f"(e.g. {', '.join(copies[0][:3])}); cross-validation keeps each group in one "
               "fold")
        if conflicts:
            msg += (f"; {len(conflicts)} of them with different labels (e.g. "
                    f"{', '.join(conflicts[0][:3])}): check the labels")
        print(msg, file=sys.stderr)


def _check_size(size, n_images):
    """--size: an int in [8, 2048] whose image stack fits in memory."""
    if size < MIN_SIZE or size > 2048:
        raise UserError(f"--size must be between {MIN_SIZE} and 2048 pixels (or 'auto'), got "
                        f"{size}")
    need = n_images * size * size * 3 * 9  # uint8 stack + float64 resize buffer + features
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = None
    if total and need > 0.8 * total:
        raise UserError(f"--size {size}: {n_images} images of {size}x{size} need about "
                        f"{need / 2**30:.1f} GiB, more than this machine's "
                        f"{total / 2**30:.1f} GiB; use a smaller --size")


AUTO_SIZE_RANGE = (32, 128)
MIN_SIZE = 16  # the smallest image the default features (HOG 8x8 cells, 2x2 blocks) take


def _auto_size(folder, names):
    """--size auto: the median of the images' shorter sides, rounded down to a multiple of
    8 and clipped to AUTO_SIZE_RANGE, so small photos are not blown up (interpolated pixels
    have no gradients to describe) and large ones keep detail."""
    sides = []
    for n in names[:500]:
        try:
            sides.append(min(_image_size(Path(folder) / n)))
        except ValueError:
            continue
    if not sides:
        return AUTO_SIZE_RANGE[1]
    side = int(np.median(sides)) // 8 * 8
    return int(np.clip(side, *AUTO_SIZE_RANGE))


def _image_size(path):
    from .datasets import image_size

    return image_size(path)


def _resolve_size(arg, folder, names):
    if str(arg).strip().lower() == "auto":
        size = _auto_size(folder, names)
    else:
        try:
            size = int(arg)
        except ValueError:
            raise UserError(f"--size must be an integer or 'auto', got {arg!r}") from None
    _check_size(size, len(names))
    return size


def _check_out(path, example="model.joblib"):
    """Refuse an output path that cannot be written, before any work: a directory, a
    folder without write access, or a file system that refuses the file (tried by creating
    the file, removed again if it did not exist)."""
    out = Path(path)
    if out.is_dir():
        raise UserError(f"--out {out} is a directory; give a file name (e.g. {out / example})")
    probe = out.parent if str(out.parent) else Path(".")
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK):
        raise UserError(f"--out {out}: cannot write in {probe}")
    if out.parent.is_dir():
        existed = out.exists()
        try:
            with open(out, "ab"):
                pass
        except OSError as exc:
            raise UserError(f"--out {out}: cannot write ({exc.strerror or exc})") from None
        if not existed:
            out.unlink()
    return out


def _task_table(rows, headers):
    widths = [max(len(str(r[i])) for r in [headers] + rows) for i in range(len(headers))]
    fmt = "  ".join("{:>%d}" % w for w in widths)
    return "\n".join([fmt.format(*headers)] + [fmt.format(*map(str, r)) for r in rows])


# ------------------------------------------------------------------ demo
def _cmd_demo(args):
    if args.dataset == "mtfl":
        return _demo_mtfl(args)
    return _demo_synthetic(args)


def _demo_mtfl(args):
    """Real faces (MTFL): landmarks by cascaded shape regression, alone and with the four
    attributes as auxiliary tasks (l21), on ``--n`` training and up to 1,000 test faces."""
    from .datasets import load_mtfl
    from .landmarks import CascadedShapeRegressor, face_boxes, landmark_errors
    from .multitask import MultiTaskEstimator

    if args.n < 50:
        raise UserError(f"--n must be at least 50, got {args.n}")
    q = args.quiet
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n_test = min(1000, max(50, args.n // 3))
    t = time.perf_counter()
    _progress(f"[1/4] loading {args.n} training and {n_test} test faces (MTFL)", q)
    try:
        # a random subset: the files are not in random order
        tr = load_mtfl("train", args.data_home, n_samples=min(args.n, 10000), shuffle=True,
                       random_state=args.seed, grey=True, n_jobs=args.n_jobs, verbose=not q)
        te = load_mtfl("test", args.data_home, n_samples=n_test, shuffle=True,
                       random_state=args.seed, grey=True, n_jobs=args.n_jobs, verbose=not q)
    except FileNotFoundError as e:
        raise UserError(f"--dataset mtfl: {e}; --data-home names the folder holding "
                        "mtfl/MTFL.zip") from None
    times = {"load_s": time.perf_counter() - t}
    Btr = face_boxes(tr.landmarks, random_state=args.seed)
    Bte = face_boxes(te.landmarks, random_state=args.seed + 1)
    report, preds = {"n_train": len(tr.images), "n_test": len(te.images)}, {}
    models = [("landmarks only", MultiTaskEstimator(penalty="ridge", alpha=1e-2,
                                                     n_jobs=args.n_jobs), None),
              (f"landmarks + 4 attributes ({args.penalty})",
               MultiTaskEstimator(penalty=args.penalty, alpha=1e-2, n_jobs=args.n_jobs,
                                  max_iter=500), tr.attributes)]
    rows = []
    for k, (name, est, aux) in enumerate(models):
        _progress(f"[{k + 2}/4] fitting the cascade, {name}", q)
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = CascadedShapeRegressor(est, n_jobs=args.n_jobs).fit(tr.images, tr.landmarks,
                                                                    Btr, aux=aux)
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        P = m.predict(te.images, Bte)
        pred_s = time.perf_counter() - t
        E = landmark_errors(P, te.landmarks)
        err = E.mean(axis=1)
        entry = {"mean_error_pct": float(100 * err.mean()),
                 "failure_rate_pct": float(100 * (err > 0.1).mean()),
                 "per_landmark_pct": dict(zip(tr.landmark_names,
                                              map(float, 100 * E.mean(axis=0)))),
                 "fit_s": fit_s, "test_faces_per_s": len(P) / pred_s}
        if aux is not None:
            A = np.asarray(m.predict_aux(te.images, Bte)).astype(int)
            entry["attribute_accuracy"] = {
                a: float(np.mean(A[:, j] == te.attributes[:, j]))
                for j, a in enumerate(tr.attribute_names)}
        report[name], preds[name] = entry, P
        rows.append([name, f"{entry['mean_error_pct']:.2f}",
                     f"{entry['failure_rate_pct']:.1f}", f"{fit_s:.0f}",
                     f"{entry['test_faces_per_s']:.0f}"])
    print(_task_table(rows, ["model", "mean error %", "failures %", "fit s", "test faces/s"]))
    acc = report[models[1][0]].get("attribute_accuracy", {})
    print("attribute accuracy (with the landmarks): "
          + ", ".join(f"{a} {v:.3f}" for a, v in acc.items()))
    times["total_s"] = sum(v["fit_s"] for k, v in report.items() if isinstance(v, dict)
                           and "fit_s" in v) + times["load_s"]
    report["times"] = times
    with open(out / "report.json", "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {out / 'report.json'}")
    try:
        import matplotlib

        matplotlib.use("Agg")
        from .plotting import plot_landmarks

        best = min(preds, key=lambda k: report[k]["mean_error_pct"])
        fig = plot_landmarks(te.images, preds[best], te.landmarks, tr.landmark_names,
                             title=f"MTFL test faces, {best}: predicted (red +), true (green o)")
        fig.savefig(out / "landmarks.png", dpi=90)
        print(f"wrote {out / 'landmarks.png'}")
    except ImportError:
        print("matplotlib is not installed: no figure (pip install 'mtlclassic[plot]')")
    return 0


def _demo_synthetic(args):
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import StandardScaler

    from .datasets import make_multiattribute_images
    from .features import ImageFeatures
    from .multitask import MultiTaskClassifier

    from .backend import cuda_status

    if args.device == "cuda" and not cuda_status()[0]:
        raise UserError(f"--device cuda: no GPU is usable ({cuda_status()[1]}); run with "
                        "--device cpu")
    if args.n < 50:
        raise UserError(f"--n must be at least 50, got {args.n}")
    if not MIN_SIZE <= args.size <= 512:
        raise UserError(f"--size must be between {MIN_SIZE} and 512 pixels, got {args.size}")
    if not 0 < args.label_fraction <= 1:
        raise UserError(f"--label-fraction must be in (0, 1], got {args.label_fraction}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    times = {}
    q = args.quiet
    t = time.perf_counter()
    _progress(f"[1/4] generating {args.n} multi-attribute images ({args.size}x{args.size})", q)
    data = make_multiattribute_images(args.n, size=args.size, seed=args.seed)
    times["generate_s"] = time.perf_counter() - t
    t = time.perf_counter()
    on_gpu = args.device == "cuda"
    _progress("[2/4] extracting HOG + LBP + colour features "
              f"({'CUDA kernels' if on_gpu else 'native kernels'})", q)
    images = data.images
    if on_gpu:
        import cupy

        images = cupy.asarray(images)
    F = ImageFeatures(n_jobs=args.n_jobs).fit(images).transform(images)
    if on_gpu:
        cupy.cuda.get_current_stream().synchronize()
    times["features_s"] = time.perf_counter() - t
    cls_tasks = [k for k, tt in enumerate(data.task_types) if tt == "classification"]
    names = [data.target_names[k] for k in cls_tasks]
    Y = data.targets[:, cls_tasks]
    rng = np.random.default_rng(args.seed)
    train = rng.random(len(F)) < 0.7
    if on_gpu:  # standardise on the device; the fit then runs there too
        tr_d = cupy.asarray(train)
        mu, sd = F[tr_d].mean(axis=0), F[tr_d].std(axis=0)
        sd[sd == 0] = 1.0
        Xtr_d = ((F[tr_d] - mu) / sd).astype(cupy.float32)
        Xte_d = ((F[~tr_d] - mu) / sd).astype(cupy.float32)
        Xtr, Xte = Xtr_d.get(), Xte_d.get()  # host copies for the scikit-learn baselines
    else:
        scaler = StandardScaler().fit(F[train])
        Xtr, Xte = scaler.transform(F[train]), scaler.transform(F[~train])
        Xtr_d, Xte_d = Xtr, Xte
    Ytr, Yte = Y[train].copy(), Y[~train]
    Ytr[rng.random(Ytr.shape) >= args.label_fraction] = None  # partial labels per task
    for k in range(Ytr.shape[1]):  # small runs: every class seen in training keeps a label
        for c in np.unique(Y[train, k].astype(str)):
            rows = np.flatnonzero(Y[train, k].astype(str) == c)
            if not any(Ytr[r, k] is not None for r in rows):
                Ytr[rows[0], k] = Y[train][rows[0], k]
    n_lab = (Ytr != None).sum(axis=0)  # noqa: E711
    C = 1.0
    l2 = 1.0 / (C * max(1, int(n_lab.mean())))
    _progress(f"[3/4] fitting MultiTaskClassifier(penalty={args.penalty!r}) on {len(names)} "
              f"tasks jointly ({int(n_lab.mean())} labels per task on average)", q)
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mtl = MultiTaskClassifier(penalty=args.penalty, alpha=args.alpha, l2=l2, tol=1e-4,
                                  max_iter=3000, n_jobs=args.n_jobs,
                                  device=args.device).fit(Xtr_d, Ytr)
    times["mtl_fit_s"] = time.perf_counter() - t
    _progress("[4/4] fitting independent one-vs-rest LogisticRegression baselines "
              "(OneVsRestClassifier, one per task)", q)
    t = time.perf_counter()
    P_mtl = mtl.predict(Xte_d)
    if on_gpu:
        from .backend import to_numpy

        P_mtl = to_numpy(P_mtl)
    rows, per_task = [], []
    for k, name in enumerate(names):
        lab = np.array([v is not None for v in Ytr[:, k]])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            base = OneVsRestClassifier(LogisticRegression(C=C, max_iter=2000)).fit(
                Xtr[lab], Ytr[lab, k].astype(str))
        acc_ind = float((base.predict(Xte) == Yte[:, k].astype(str)).mean())
        acc_mtl = float((P_mtl[:, k].astype(str) == Yte[:, k].astype(str)).mean())
        n_cls = len(np.unique(Y[:, k].astype(str)))
        per_task.append({"task": name, "classes": n_cls, "train_labels": int(lab.sum()),
                         "test_samples": int(len(Yte)), "mtl_accuracy": acc_mtl,
                         "independent_accuracy": acc_ind})
        rows.append([name, n_cls, int(lab.sum()), f"{acc_mtl:.3f}", f"{acc_ind:.3f}",
                     f"{100 * (acc_mtl - acc_ind):+.1f}"])
    times["baseline_fit_s"] = time.perf_counter() - t
    mean_mtl = float(np.mean([r["mtl_accuracy"] for r in per_task]))
    mean_ind = float(np.mean([r["independent_accuracy"] for r in per_task]))
    rows.append(["mean", "", "", f"{mean_mtl:.3f}", f"{mean_ind:.3f}",
                 f"{100 * (mean_mtl - mean_ind):+.1f}"])
    print(_task_table(rows, ["task", "classes", "train labels", "MTL acc", "independent acc",
                             "points"]))
    print("time: " + ", ".join(f"{k[:-2].replace('_', ' ')} {v:.1f} s" for k, v in times.items()))
    report = {"n_samples": args.n, "size": args.size, "seed": args.seed,
              "label_fraction": args.label_fraction, "penalty": args.penalty,
              "alpha": args.alpha, "l2": l2, "n_features": int(F.shape[1]), "tasks": per_task,
              "mean_mtl_accuracy": mean_mtl, "mean_independent_accuracy": mean_ind,
              "times": times, "mtl_n_iter": int(mtl.n_iter_), "device": args.device}
    with open(out / "report.json", "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {out / 'report.json'}")
    R = mtl.task_relation_
    if R is None:  # penalties without a relation: show the correlation of the learnt weights
        from .backend import to_numpy

        R = np.nan_to_num(np.corrcoef(to_numpy(mtl.coef_)))
    labels = [f"{names[t]}" + (f":{c}" if (mtl.subtask_task_ == t).sum() > 1 else "")
              for t, cls in zip(range(len(names)), mtl.classes_)
              for c in (cls if (mtl.subtask_task_ == t).sum() > 1 else [None])]
    try:
        from .plotting import plot_task_relation

        ax = plot_task_relation(R, task_names=labels,
                                title="correlation of the sub-tasks' weights"
                                if mtl.task_relation_ is None else "task relation")
        ax.figure.savefig(out / "task_relation.png", dpi=110, bbox_inches="tight")
        print(f"wrote {out / 'task_relation.png'}")
    except ImportError:
        print("matplotlib is not installed: no heatmap (pip install 'mtlclassic[plot]')")
    return 0


# ------------------------------------------------------------------ train / predict
def _cmd_train(args):
    import joblib
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from .features import ImageFeatures
    from .multitask import MultiTaskClassifier

    out = _check_out(args.out)
    names, tasks, Y = _read_labels(args.labels, args.file_column)
    feats = [f.strip() for f in args.features.split(",") if f.strip()]
    if not Path(args.images).is_dir():
        raise UserError(f"image folder not found: {args.images}")
    size = _resolve_size(args.size, args.images, names)
    _progress(f"loading {len(names)} images from {args.images} at {size}x{size}", args.quiet)
    X, kept = _load_folder(args.images, names, size, strict=not args.skip_unreadable)
    if len(kept) < len(names):
        keep = np.isin(names, kept)
        names, Y = [n for n, k in zip(names, keep) if k], Y[keep]
    for k, task in enumerate(tasks):
        vals = {v for v in Y[:, k] if v is not None}
        if len(vals) == 0:
            raise UserError(f"label column '{task}' is empty")
        if len(vals) < 2:
            raise UserError(f"label column '{task}' has a single class ({vals.pop()!r}); "
                            "a task needs at least two classes")
    pipe = make_pipeline(ImageFeatures(features=feats, n_jobs=args.n_jobs), StandardScaler(),
                         MultiTaskClassifier(penalty=args.penalty, alpha=args.alpha,
                                             tol=1e-4, max_iter=3000))
    # per-task cross-validated accuracy on each task's labelled images; copies of an image
    # (the same file listed twice, or identical pixels) stay in one fold
    groups = _duplicate_groups(names, X)
    _warn_identical_images(names, Y, groups)
    k_folds = min(3, len(np.unique(groups)))
    scores = {t: [] for t in tasks}
    if k_folds >= 2:
        splitter = GroupKFold(k_folds, shuffle=True, random_state=0)
        for tr, te in splitter.split(X, groups=groups):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    m = pipe.fit(X[tr], Y[tr])
            except ValueError:
                continue  # a fold without two classes in some task
            P = m.predict(X[te])
            for k, task in enumerate(tasks):
                lab = np.array([v is not None for v in Y[te, k]])
                if lab.any():
                    scores[task].append(float((P[lab, k] == Y[te][lab, k]).mean()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.fit(X, Y)
    for task in tasks:
        s = scores[task]
        print(f"{task}: {len(s)}-fold CV accuracy " + (f"{np.mean(s):.3f} ± {np.std(s):.3f}"
                                                        if s else "n/a (too few labels)"))
    out.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump({"mtlclassic_model": 1, "pipeline": pipe, "tasks": tasks, "size": size}, out)
    print(f"wrote {out} (images resized to {size}x{size})")
    return 0


def _cmd_predict(args):
    import joblib

    out = _check_out(args.out, example="predictions.csv")
    path = Path(args.model)
    if not path.is_file():
        raise UserError(f"model file not found: {path}")
    try:
        model = joblib.load(path)
    except Exception as exc:
        raise UserError(f"{path} is not a model saved by `mtlclassic train` "
                        f"({type(exc).__name__})") from None
    if not isinstance(model, dict) or model.get("mtlclassic_model") != 1:
        raise UserError(f"{path} is not a model saved by `mtlclassic train`")
    size, tasks = model.get("size"), model.get("tasks")
    if not (isinstance(size, int) and MIN_SIZE <= size <= 2048) or not isinstance(tasks, list) \
            or not hasattr(model.get("pipeline"), "predict"):
        raise UserError(f"{path} is damaged or from another version of `mtlclassic train` "
                        "(its size, tasks or pipeline is missing)")
    names = _list_images(args.images)
    X, names = _load_folder(args.images, names, size, strict=args.strict,
                            skip_hint="without --strict such files are listed and skipped")
    P = model["pipeline"].predict(X)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file"] + model["tasks"])
        for n, row in zip(names, P):
            w.writerow([n] + [str(v) for v in row])
    print(f"wrote {out} ({len(names)} images)")
    return 0


# ------------------------------------------------------------------ bench / info
BENCHES = {"features": "features_cpu.py", "multitask": "multitask_cpu.py", "prox": "prox.py",
           "gpu": "gpu.py"}


def _cmd_bench(args):
    name = BENCHES[args.which]
    # an editable install runs from the checkout; an installed package finds the checkout
    # it is run from (the current directory or one above it)
    roots = [Path(__file__).resolve().parents[1]] + [p for p in (Path.cwd(), *Path.cwd().parents)]
    found = [r / "benchmarks" / name for r in roots if (r / "benchmarks" / name).is_file()]
    if not found:
        raise UserError(f"benchmark {name} not found in benchmarks/ beside the package nor in "
                        f"{Path.cwd()} or a folder above it: the benchmarks live in the source "
                        "repository (run this from inside a source checkout)")
    script = found[0]
    cmd = [sys.executable, str(script)] + (["--quick"] if args.quick and args.which in (
        "features", "multitask", "gpu") else [])
    return subprocess.call(cmd)


def _cmd_info(args):
    from .backend import format_info, info

    d = info()
    print(json.dumps(d, indent=2) if args.json else format_info(d))
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="mtlclassic", description="Multi-task learning on images with classic ML.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("info", help="versions, native modules, GPUs and BLAS threads")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("demo", help="multi-attribute images (or MTFL faces): features, MTL vs "
                       "independent models")
    p.add_argument("--dataset", default="synthetic", choices=["synthetic", "mtfl"],
                   help="synthetic multi-attribute images (default), or the MTFL faces: "
                   "landmarks and attributes learnt together (needs the MTFL data)")
    p.add_argument("--data-home", default=None,
                   help="--dataset mtfl: the folder holding mtfl/MTFL.zip")
    p.add_argument("--n", type=int, default=3000,
                   help="number of images, or of training faces (default 3000)")
    p.add_argument("--size", type=int, default=64, help="image side in pixels")
    p.add_argument("--label-fraction", type=float, default=0.2,
                   help="fraction of training images labelled per task (default 0.2)")
    p.add_argument("--penalty", default="l21", choices=PENALTIES)
    p.add_argument("--alpha", type=float, default=3e-3)
    p.add_argument("--out", default="mtlclassic-demo", help="output folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--n-jobs", type=int, default=-1)
    p.add_argument("--quiet", action="store_true", help="no progress messages")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("train", help="fit a multi-task model on a folder of images + a CSV")
    p.add_argument("--images", required=True, help="folder of images")
    p.add_argument("--labels", required=True, help="CSV: a file column and one column per task "
                   "(blank = unlabelled)")
    p.add_argument("--out", required=True, help="model file (joblib)")
    p.add_argument("--file-column", default="file")
    p.add_argument("--features", default="hog,lbp,color",
                   help="comma-separated: hog, lbp, color, glcm, gabor")
    p.add_argument("--penalty", default="graph", choices=PENALTIES)
    p.add_argument("--alpha", type=float, default=1e-2)
    p.add_argument("--size", default="auto",
                   help="images are resized to size x size; 'auto' (default): the median "
                   "shorter side of the images, rounded down to a multiple of 8, within "
                   f"{AUTO_SIZE_RANGE[0]}..{AUTO_SIZE_RANGE[1]}")
    p.add_argument("--skip-unreadable", action="store_true",
                   help="skip (and list) images that cannot be read instead of stopping")
    p.add_argument("--n-jobs", type=int, default=-1)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("predict", help="predict every task for a folder of images")
    p.add_argument("--model", required=True)
    p.add_argument("--images", required=True)
    p.add_argument("--out", required=True, help="predictions CSV")
    p.add_argument("--strict", action="store_true",
                   help="stop at the first unreadable image (default: list and skip them)")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("bench", help="run a benchmark from the source checkout")
    p.add_argument("which", choices=list(BENCHES))
    p.add_argument("--quick", action="store_true", help="smaller sizes (smoke run)")
    p.set_defaults(func=_cmd_bench)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except UserError as exc:
        print(f"mtlclassic {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except (ValueError, OSError, RuntimeError, ImportError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        print(f"mtlclassic {args.command}: error: {type(exc).__name__}: {first}",
              file=sys.stderr)
        return 1
