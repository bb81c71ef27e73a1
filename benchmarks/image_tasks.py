"""Accuracy study on image tasks with few labels: multi-task vs independent classifiers.

Two datasets, features from mtlclassic's native kernels:

* mfeat: the UCI "Multiple Features" digit images (2000 of 16x15, ../shared/data/mfeat),
  HOG (4x4 cells, 2x2 blocks) + uniform LBP (2x2 grid); one 10-class task (the digit),
  i.e. ten one-vs-rest sub-tasks;
* attributes: ``make_multiattribute_images`` (48x48 RGB crops), ``ImageFeatures`` (HOG +
  LBP + HSV histograms); its five classification tasks (source, rotation, gamma, noise,
  flip), each multi-class or binary.

Per seed: half of the images are the test set; in the other half each task gets only
``--labels`` labelled samples per class (different samples for different tasks; the rest
of its entries unlabelled). Features are z-scored on the training half. Methods, each
tuned only by its own cross-validation (3 folds) on its labelled samples:

* independent: one-vs-rest logistic regression, every binary sub-task on its own
  (scikit-learn ``OneVsRestClassifier(LogisticRegressionCV)``, per task) -- the baseline
  of the issue;
* multinomial: scikit-learn ``LogisticRegressionCV`` (softmax) per task, a reference;
* mtlclassic ``MultiTaskClassifierCV``, all tasks and their one-vs-rest sub-tasks fitted
  jointly with one alpha: ``ridge`` (no coupling -- the ablation that separates the gain of
  the joint fit from that of the coupling penalties), ``mean``, ``graph`` (auto relation),
  ``l21``, ``trace`` and ``mtrl``.

Reported: test accuracy (and balanced accuracy), mean over tasks, mean +/- std over seeds,
and the gain in points over independent.

    python benchmarks/image_tasks.py [--seeds 5] [--labels 3 10] [--datasets mfeat attributes]
"""

import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine, table, write_json  # noqa: E402

PENALTIES = {f"mtl {p}": dict(penalty=p, l2=1e-3) for p in ("ridge", "mean", "graph", "l21",
                                                             "trace", "mtrl")}
METHODS = ["independent", "multinomial"] + list(PENALTIES)


def features(name, seed):
    if name == "mfeat":
        from mtlclassic.datasets import load_mfeat_digits
        from mtlclassic.features import HOG, LBP

        d = load_mfeat_digits()
        img = np.rint(d.images * (255 / 6)).astype(np.uint8)
        F = np.hstack([HOG(pixels_per_cell=4, cells_per_block=2).fit_transform(img),
                       LBP(P=8, R=1, grid=2).fit_transform(img)])
        return F.astype(np.float64), d.target.astype(object)[:, None], ["digit"]
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


def split(F, Y, seed, per_class):
    """The protocol's split: half of the images for testing, ``per_class`` labels per class
    and task among the rest, features z-scored on the training half. Returns Xtr, Ytr (rows
    with a label in some task), Xte, Yte (str), the labelled mask and the training rows."""
    rng = np.random.default_rng(seed)
    train = rng.random(len(F)) < 0.5
    mu, sd = F[train].mean(0), F[train].std(0)
    sd[sd == 0] = 1
    Z = (F - mu) / sd
    Yl = few_labels(Y, train, per_class, rng)
    labelled = np.array([[v is not None for v in row] for row in Yl])
    rows = labelled.any(axis=1)
    return Z[rows], Yl[rows], Z[~train], Y[~train].astype(str), labelled, rows


def run_one(name, seed, per_class, methods, feats=None):
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.multiclass import OneVsRestClassifier

    from mtlclassic.multitask import MultiTaskClassifierCV

    F, Y, names = features(name, seed) if feats is None else feats
    Xtr, Ytr, Xte, Yte, labelled, rows = split(F, Y, seed, per_class)
    out = {}
    sk = {"independent": lambda: OneVsRestClassifier(LogisticRegressionCV(Cs=10, cv=3,
                                                                          max_iter=2000)),
          "multinomial": lambda: LogisticRegressionCV(Cs=10, cv=3, max_iter=2000)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for mth, make in sk.items():
            if mth not in methods:
                continue
            t0 = time.perf_counter()
            acc, bal = [], []
            for t in range(Y.shape[1]):
                lab = labelled[rows, t]
                m = make().fit(Xtr[lab], Ytr[lab, t].astype(str))
                p = m.predict(Xte)
                acc.append(np.mean(p == Yte[:, t]))
                bal.append(balanced(Yte[:, t], p))
            out[mth] = (acc, bal, time.perf_counter() - t0)
        for mth, kw in PENALTIES.items():
            if mth not in methods:
                continue
            t0 = time.perf_counter()
            m = MultiTaskClassifierCV(alphas=8, eps_decades=3, cv=3, tol=1e-4, max_iter=1000,
                                      n_jobs=-1, **kw).fit(Xtr, Ytr)
            P = m.predict(Xte).astype(str).reshape(len(Xte), -1)
            out[mth] = ([np.mean(P[:, t] == Yte[:, t]) for t in range(Y.shape[1])],
                        [balanced(Yte[:, t], P[:, t]) for t in range(Y.shape[1])],
                        time.perf_counter() - t0)
    return out, names


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--labels", type=int, nargs="+", default=[3, 10],
                   help="labelled samples per class (one setting per value)")
    p.add_argument("--datasets", nargs="+", default=["mfeat", "attributes"])
    p.add_argument("--methods", nargs="+", default=METHODS)
    p.add_argument("--out", default="image_tasks.json")
    a = p.parse_args(argv)
    results = {}

    def save():
        return write_json(a.out, {"machine": machine(), "seeds": a.seeds,
                                  "labels_per_class": a.labels, "results": results})

    for ds in a.datasets:
        for seed in range(a.seeds):
            feats = features(ds, seed)
            for per_class in a.labels:
                key = f"{ds} @ {per_class} labels"
                r, names = run_one(ds, seed, per_class, a.methods, feats)
                for mth, (acc, bal, secs) in r.items():
                    d = results.setdefault(key, {"tasks": names}).setdefault(
                        mth, {"accuracy": [], "balanced_accuracy": [], "per_task_accuracy": [],
                              "seconds": []})
                    d["accuracy"].append(float(np.mean(acc)))
                    d["balanced_accuracy"].append(float(np.mean(bal)))
                    d["per_task_accuracy"].append([float(v) for v in acc])
                    d["seconds"].append(secs)
                print(f"{key} seed {seed}: " + ", ".join(
                    f"{m} {np.mean(v[0]):.3f}/{np.mean(v[1]):.3f}" for m, v in r.items()),
                    flush=True)
                save()  # after every split, so an interrupted run keeps what it measured
    for key, res in results.items():
        base = np.array(res["independent"]["accuracy"]) if "independent" in res else None
        rows = []
        for mth in a.methods:
            acc = np.array(res[mth]["accuracy"])
            bal = np.array(res[mth]["balanced_accuracy"])
            gain = "" if base is None else (f"{100 * np.mean(acc - base):+.1f} ± "
                                            f"{100 * np.std(acc - base):.1f}")
            rows.append([mth, f"{acc.mean():.3f} ± {acc.std():.3f}",
                         f"{bal.mean():.3f} ± {bal.std():.3f}", gain])
        print(f"\n{key} per class and task, mean over tasks, {a.seeds} seeds")
        print(table(rows, ["method", "accuracy", "balanced accuracy",
                           "points vs independent"]))
    print("wrote", save())
    return 0


if __name__ == "__main__":
    sys.exit(main())
