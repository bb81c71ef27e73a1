"""Accuracy study on image tasks with few labels: multi-task vs independent classifiers.

Two datasets, features from mtlclassic's native kernels:

* mfeat: the UCI "Multiple Features" digit images (2000 of 16x15, ../shared/data/mfeat),
  HOG (4x4 cells, 2x2 blocks) + uniform LBP (2x2 grid); ten one-vs-rest tasks "is digit d";
* attributes: ``make_multiattribute_images`` (48x48 RGB crops), ``ImageFeatures`` (HOG +
  LBP + HSV histograms); its five classification tasks (source, rotation, gamma, noise,
  flip).

Per seed: half of the images are the test set; in the other half each task gets only
``--labels`` labelled samples per class (different samples for different tasks; the rest
of its entries unlabelled). Features are z-scored on the training half. Methods, each
tuned only by its own cross-validation on its labelled samples:

* independent: scikit-learn ``LogisticRegressionCV`` (one-vs-rest, per task);
* mtlclassic ``MultiTaskClassifierCV`` with the ``mean``, ``graph`` (auto relation),
  ``l21`` and ``trace`` penalties, all tasks fitted jointly.

Reported: test accuracy (and balanced accuracy), mean over tasks, mean +/- std over seeds.

    python benchmarks/image_tasks.py [--seeds 5] [--labels 10] [--datasets mfeat attributes]
"""

import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine, table, write_json  # noqa: E402

PENALTIES = {"mtl mean": dict(penalty="mean", l2=1e-3), "mtl graph": dict(penalty="graph",
                                                                          l2=1e-3),
             "mtl l21": dict(penalty="l21", l2=1e-3), "mtl trace": dict(penalty="trace",
                                                                          l2=1e-3)}


def features(name, seed):
    if name == "mfeat":
        from mtlclassic.datasets import load_mfeat_digits
        from mtlclassic.features import HOG, LBP

        d = load_mfeat_digits()
        img = np.rint(d.images * (255 / 6)).astype(np.uint8)
        F = np.hstack([HOG(pixels_per_cell=4, cells_per_block=2).fit_transform(img),
                       LBP(P=8, R=1, grid=2).fit_transform(img)])
        return F.astype(np.float64), d.targets.astype(object), list(d.target_names)
    from mtlclassic.datasets import make_multiattribute_images
    from mtlclassic.features import ImageFeatures

    d = make_multiattribute_images(1500, size=48, seed=1000 + seed)
    keep = [k for k, t in enumerate(d.task_types) if t == "classification"]
    F = ImageFeatures().fit_transform(d.images)
    return F, d.targets[:, keep], [d.target_names[k] for k in keep]


def few_labels(Y, train, per_class, rng):
    """Wide targets with only per_class labelled training samples per class and task."""
    Yl = np.full(Y.shape, None, dtype=object)
    idx = np.flatnonzero(train)
    for t in range(Y.shape[1]):
        for c in np.unique(Y[idx, t].astype(str)):
            rows = idx[Y[idx, t].astype(str) == c]
            pick = rng.choice(rows, min(per_class, len(rows)), replace=False)
            Yl[pick, t] = Y[pick, t]
    return Yl


def balanced(y, p):
    cls = np.unique(y)
    return float(np.mean([np.mean(p[y == c] == c) for c in cls]))


def run_one(name, seed, per_class, methods):
    from sklearn.linear_model import LogisticRegressionCV

    from mtlclassic.multitask import MultiTaskClassifierCV

    F, Y, names = features(name, seed)
    rng = np.random.default_rng(seed)
    train = rng.random(len(F)) < 0.5
    mu, sd = F[train].mean(0), F[train].std(0)
    sd[sd == 0] = 1
    Z = (F - mu) / sd
    Yl = few_labels(Y, train, per_class, rng)
    labelled = np.array([[v is not None for v in row] for row in Yl])
    rows = labelled.any(axis=1)
    Xtr, Ytr = Z[rows], Yl[rows]
    Xte, Yte = Z[~train], Y[~train].astype(str)
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if "independent" in methods:
            t0 = time.perf_counter()
            acc, bal = [], []
            for t in range(Y.shape[1]):
                lab = labelled[rows, t]
                m = LogisticRegressionCV(Cs=10, cv=3, max_iter=2000).fit(
                    Xtr[lab], Ytr[lab, t].astype(str))
                p = m.predict(Xte)
                acc.append(np.mean(p == Yte[:, t]))
                bal.append(balanced(Yte[:, t], p))
            out["independent"] = (acc, bal, time.perf_counter() - t0)
        for mth, kw in PENALTIES.items():
            if mth not in methods:
                continue
            t0 = time.perf_counter()
            m = MultiTaskClassifierCV(alphas=8, eps_decades=3, cv=3, tol=1e-4, max_iter=1000,
                                      n_jobs=-1, **kw).fit(Xtr, Ytr)
            P = m.predict(Xte).astype(str)
            out[mth] = ([np.mean(P[:, t] == Yte[:, t]) for t in range(Y.shape[1])],
                        [balanced(Yte[:, t], P[:, t]) for t in range(Y.shape[1])],
                        time.perf_counter() - t0)
    return out, names


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--labels", type=int, default=10, help="labelled samples per class")
    p.add_argument("--datasets", nargs="+", default=["mfeat", "attributes"])
    p.add_argument("--methods", nargs="+", default=["independent"] + list(PENALTIES))
    p.add_argument("--out", default="image_tasks.json")
    a = p.parse_args(argv)
    results = {}
    for ds in a.datasets:
        for seed in range(a.seeds):
            r, names = run_one(ds, seed, a.labels, a.methods)
            for mth, (acc, bal, secs) in r.items():
                d = results.setdefault(ds, {"tasks": names}).setdefault(
                    mth, {"accuracy": [], "balanced_accuracy": [], "per_task_accuracy": [],
                          "seconds": []})
                d["accuracy"].append(float(np.mean(acc)))
                d["balanced_accuracy"].append(float(np.mean(bal)))
                d["per_task_accuracy"].append([float(v) for v in acc])
                d["seconds"].append(secs)
            print(f"{ds} seed {seed}: " + ", ".join(
                f"{m} {np.mean(v[0]):.3f}/{np.mean(v[1]):.3f}" for m, v in r.items()), flush=True)
    for ds, res in results.items():
        base = np.array(res["independent"]["accuracy"]) if "independent" in res else None
        rows = []
        for mth in a.methods:
            acc = np.array(res[mth]["accuracy"])
            bal = np.array(res[mth]["balanced_accuracy"])
            gain = "" if base is None else f"{100 * np.mean(acc - base):+.1f}"
            rows.append([mth, f"{acc.mean():.3f} ± {acc.std():.3f}",
                         f"{bal.mean():.3f} ± {bal.std():.3f}", gain])
        print(f"\n{ds}: {a.labels} labels per class and task, mean over tasks, "
              f"{a.seeds} seeds")
        print(table(rows, ["method", "accuracy", "balanced accuracy", "points vs independent"]))
    path = write_json(a.out, {"machine": machine(), "seeds": a.seeds,
                              "labels_per_class": a.labels, "results": results})
    print("wrote", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
