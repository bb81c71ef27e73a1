"""Calibration of the multi-class tasks: one-vs-rest logistic vs the softmax loss.

The image-task protocol of ``image_tasks.py`` (the same features, the same few-label
splits: half of the images are the test set, each task keeps ``--labels`` labelled
training samples per class), restricted to the multi-class tasks: mfeat's digit (10
classes) and the multi-attribute images' source (8) and rotation (4). Methods, each tuned
by its own 3-fold CV on its labelled samples:

* ``LogisticRegressionCV`` (scikit-learn, multinomial) per task, the reference;
* ``OneVsRestClassifier(LogisticRegressionCV)`` per task (independent one-vs-rest);
* ``MultiTaskClassifierCV`` with ``loss="logistic"`` (one-vs-rest sub-tasks, probabilities
  normalised as OneVsRestClassifier's) and ``loss="multinomial"`` (softmax per task), for
  ``ridge`` and ``l21``, all tasks of a dataset fitted jointly.

Reported per task (mean over seeds): accuracy, log-loss (uniform guess: log K) and the
expected calibration error (ECE) of the top-class probability over 15 equal-width bins.

    python benchmarks/calibration.py [--seeds 3] [--labels 10]

Writes benchmarks/results/calibration.json and prints the table.
"""

import argparse
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine, table, write_json  # noqa: E402
from image_tasks import features, split  # noqa: E402

MULTICLASS = {"mfeat": ["digit"], "attributes": ["source", "rotation"]}
METHODS = ["multinomial LR (sklearn)", "one-vs-rest LR (sklearn)", "mtl ridge, one-vs-rest",
           "mtl ridge, softmax", "mtl l21, one-vs-rest", "mtl l21, softmax"]


def ece(y, P, classes, bins=15):
    """Expected calibration error of the top-class probability (equal-width bins)."""
    conf = P.max(axis=1)
    hit = classes[P.argmax(axis=1)] == y
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    err = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            err += sel.mean() * abs(hit[sel].mean() - conf[sel].mean())
    return float(err)


def log_loss(y, P, classes):
    idx = np.searchsorted(classes, y)
    return float(-np.mean(np.log(np.clip(P[np.arange(len(y)), idx], 1e-15, 1))))


def run(name, seed, per_class):
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.multiclass import OneVsRestClassifier

    from mtlclassic.multitask import MultiTaskClassifierCV

    F, Y, names = features(name, seed)
    Xtr, Ytr, Xte, Yte, labelled, rows = split(F, Y, seed, per_class)
    tasks = [names.index(t) for t in MULTICLASS[name]]
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for mth in METHODS[:2]:
            res = []
            for t in tasks:
                lab = labelled[rows, t]
                base = LogisticRegressionCV(Cs=10, cv=3, max_iter=2000)
                m = (base if mth.startswith("multinomial") else OneVsRestClassifier(base)).fit(
                    Xtr[lab], Ytr[lab, t].astype(str))
                res.append(_scores(Yte[:, t], m.predict_proba(Xte), m.classes_))
            out[mth] = res
        Ys = np.where(Ytr == None, None, Ytr.astype(str))  # noqa: E711
        for mth in METHODS[2:]:
            pen = "ridge" if "ridge" in mth else "l21"
            loss = "multinomial" if "softmax" in mth else "logistic"
            m = MultiTaskClassifierCV(penalty=pen, loss=loss, alphas=8, eps_decades=3, cv=3,
                                      l2=1e-3, tol=1e-4, max_iter=2000).fit(Xtr, Ys)
            P = m.predict_proba(Xte)
            P = P if isinstance(P, list) else [P]
            classes = m.classes_ if isinstance(m.classes_, list) else [m.classes_]
            out[mth] = [_scores(Yte[:, t], P[t], classes[t]) for t in tasks]
    return out, [names[t] for t in tasks]


def _scores(y, P, classes):
    classes = np.asarray(classes).astype(str)
    return {"accuracy": float(np.mean(classes[P.argmax(axis=1)] == y)),
            "log_loss": log_loss(y, P, classes), "ece": ece(y, P, classes),
            "uniform_log_loss": float(np.log(len(classes)))}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--labels", type=int, default=10)
    p.add_argument("--datasets", nargs="+", default=list(MULTICLASS))
    a = p.parse_args(argv)
    results = {}
    for name in a.datasets:
        per_seed = []
        for seed in range(a.seeds):
            res, tasks = run(name, seed, a.labels)
            per_seed.append(res)
            print(f"{name} seed {seed} done", flush=True)
        for k, task in enumerate(tasks):
            results[f"{name}:{task}"] = {
                mth: {s: float(np.mean([r[mth][k][s] for r in per_seed]))
                      for s in ("accuracy", "log_loss", "ece", "uniform_log_loss")}
                for mth in METHODS}
    rows = []
    for task, by in results.items():
        for mth in METHODS:
            r = by[mth]
            rows.append([task, mth, f"{r['accuracy']:.3f}", f"{r['log_loss']:.3f}",
                         f"{r['uniform_log_loss']:.3f}", f"{r['ece']:.3f}"])
    print(table(rows, ["task", "method", "accuracy", "log-loss", "uniform log-loss", "ECE"]))
    print("wrote", write_json("calibration.json", {
        "machine": machine(), "seeds": a.seeds, "labels_per_class": a.labels,
        "protocol": __doc__, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
