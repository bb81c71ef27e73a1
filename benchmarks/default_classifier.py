"""The default classifier pipeline against scikit-learn's default LogisticRegression (issue 14e).

make_multiattribute_images(3000) -> HOG -> StandardScaler, 70/30 split, every label present;
``MultiTaskClassifier()`` (its defaults: penalty "graph", alpha 1e-2, tol 1e-4) and
``MultiTaskClassifier(penalty="ridge")``, each at its defaults and with alpha = 1/n_train
(the LogisticRegression(C=1) equivalent), for several ``tol``, against one scikit-learn
``LogisticRegression()`` per task (its defaults: lbfgs, tol 1e-4, C=1). BLAS pinned to 1
thread, then 2 (``n_jobs`` limits every BLAS pool of the fit; scikit-learn runs under
threadpoolctl's limit); every time is the median of ``--repeats`` fits run back to back.
The features are HOG's float32 output, as a user's pipeline passes them. Prints fit times,
the ratio scikit-learn / fit, iterations, the final duality gap relative to min_b F(0, b)
(the certificate: the objective is within gap of the optimum), the objective and the mean
accuracy. Then the same end to end, as sklearn Pipelines fitted on the training images:
images -> HOG -> StandardScaler -> MultiTaskClassifier() against scikit-image's hog per
image -> StandardScaler -> MultiOutputClassifier(LogisticRegression()) (the pipeline of
issue 14). Writes results/default_classifier.json.

    PYTHONPATH=. python benchmarks/default_classifier.py [--n 3000] [--repeats 3] [--threads 1,2]
"""

import statistics

import argparse
import time
import warnings

import numpy as np
from skimage.feature import hog
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.multioutput import MultiOutputClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from _common import machine, write_json  # noqa: E402
from mtlclassic.datasets import make_multiattribute_images
from mtlclassic.features import HOG
from mtlclassic.multitask import MultiTaskClassifier


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--tols", default="1e-2,1e-3")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", default="1,2")
    args = ap.parse_args()
    data = make_multiattribute_images(args.n, seed=0)
    cls = [k for k, tt in enumerate(data.task_types) if tt == "classification"]
    F = HOG().fit(data.images).transform(data.images)
    Y = data.targets[:, cls].astype(str)
    rng = np.random.default_rng(0)
    train = rng.random(len(F)) < 0.7
    sc = StandardScaler().fit(F[train])
    Xtr, Xte = sc.transform(F[train]), sc.transform(F[~train])
    Ytr, Yte = Y[train], Y[~train]
    alpha = 1.0 / len(Xtr)
    rows = []

    def acc_of(P):
        return float(np.mean([(P[:, k] == Yte[:, k]).mean() for k in range(Y.shape[1])]))

    for threads in [int(t) for t in args.threads.split(",")]:
        block = []
        for pen, a, name in [(p, a, name) for p in ("graph", "ridge")
                             for a, name in [(None, "default alpha"), (alpha, "alpha=1/n")]]:
            kw = {} if a is None else {"alpha": a}
            for tol in [None] + [float(t) for t in args.tols.split(",")]:
                tkw = {} if tol is None else {"tol": tol}
                times = []
                for _ in range(args.repeats):
                    t = time.perf_counter()
                    with warnings.catch_warnings(record=True) as w:
                        warnings.simplefilter("always")
                        m = MultiTaskClassifier(penalty=pen, n_jobs=threads, **kw,
                                                **tkw).fit(Xtr, Ytr)
                    times.append(time.perf_counter() - t)
                tname = "default tol" if tol is None else f"tol={tol:g}"
                block.append({"fit": f"MultiTaskClassifier({pen}, {name}, {tname})",
                              "threads": threads, "s": statistics.median(times),
                              "times": times, "n_iter": int(m.n_iter_),
                              "rel_gap": m.dual_gap_ / _null(m, Ytr),
                              "objective": m.objective_, "accuracy": acc_of(m.predict(Xte)),
                              "warnings": len(w)})
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            with threadpool_limits(limits=threads, user_api="blas"), \
                    warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                models = [LogisticRegression().fit(Xtr, Ytr[:, k]) for k in range(Y.shape[1])]
            times.append(time.perf_counter() - t)
        sk = statistics.median(times)
        P = np.column_stack([mk.predict(Xte) for mk in models])
        block.append({"fit": "LogisticRegression() per task", "threads": threads, "s": sk,
                      "times": times,
                      "n_iter": int(sum(int(mk.n_iter_.max()) for mk in models)),
                      "rel_gap": float("nan"), "objective": float("nan"),
                      "accuracy": acc_of(P), "warnings": len(w)})
        for r in block:
            r["sklearn_over_fit"] = sk / r["s"]
        rows.extend(block)
    pipes = _pipelines(data.images[train], data.images[~train], Ytr, Yte,
                       [int(t) for t in args.threads.split(",")], args.repeats)
    print(f"n_train={len(Xtr)}, d={Xtr.shape[1]} ({Xtr.dtype}), tasks={Y.shape[1]}, "
          f"sub-tasks={m.coef_.shape[0]}, median of {args.repeats}")
    print(f"{'fit':58s} {'thr':>3s} {'s':>7s} {'sk/fit':>6s} {'iter':>6s} {'gap/F0':>9s} "
          f"{'objective':>10s} {'acc':>6s} warn")
    for r in rows:
        print(f"{r['fit']:58s} {r['threads']:3d} {r['s']:7.2f} {r['sklearn_over_fit']:6.2f} "
              f"{r['n_iter']:6d} {r['rel_gap']:9.2e} {r['objective']:10.6f} "
              f"{r['accuracy']:6.4f} {r['warnings']}")
    print("end to end (sklearn Pipeline.fit on the training images; accuracy on the test ones)")
    for r in pipes:
        print(f"{r['pipeline']:58s} {r['threads']:3d} {r['s']:7.2f} "
              f"{r['sklearn_over_pipeline']:6.2f} {r['accuracy']:6.4f} {r['warnings']}")
    write_json("default_classifier.json", {"machine": machine(), "n": args.n,
                                           "repeats": args.repeats, "rows": rows,
                                           "pipelines": pipes})


class _SkimageHOG(TransformerMixin, BaseEstimator):
    """scikit-image's ``hog`` on each image, as a user's pipeline calls it (the same
    parameters as mtlclassic's HOG defaults)."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.stack([hog(img, orientations=9, pixels_per_cell=(8, 8),
                             cells_per_block=(3, 3), block_norm="L2-Hys",
                             channel_axis=-1 if img.ndim == 3 else None) for img in X])


def _pipelines(img_tr, img_te, Ytr, Yte, thread_counts, repeats):
    """The pipeline a user runs, end to end: images -> HOG -> StandardScaler -> the
    default multi-task classifier, against scikit-image's hog per image -> StandardScaler
    -> MultiOutputClassifier(LogisticRegression()), both as sklearn Pipelines fitted on the
    training images (median of ``repeats``; BLAS pinned, mtlclassic's HOG on ``n_jobs``
    threads, scikit-image's hog single-threaded as it runs)."""
    rows = []
    for threads in thread_counts:
        block = []
        for name, make in [
                ("HOG -> StandardScaler -> MultiTaskClassifier()",
                 lambda: make_pipeline(HOG(n_jobs=threads), StandardScaler(),
                                       MultiTaskClassifier(n_jobs=threads))),
                ("skimage hog -> StandardScaler -> MultiOutput(LogisticRegression())",
                 lambda: make_pipeline(_SkimageHOG(), StandardScaler(),
                                       MultiOutputClassifier(LogisticRegression())))]:
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                with threadpool_limits(limits=threads, user_api="blas"), \
                        warnings.catch_warnings(record=True) as w:
                    warnings.simplefilter("always")
                    pipe = make().fit(img_tr, Ytr)
                times.append(time.perf_counter() - t)
            P = np.asarray(pipe.predict(img_te)).reshape(Yte.shape)
            block.append({"pipeline": name, "threads": threads,
                          "s": statistics.median(times), "times": times,
                          "accuracy": float(np.mean([(P[:, k] == Yte[:, k]).mean()
                                                     for k in range(Yte.shape[1])])),
                          "warnings": len(w)})
        for r in block:
            r["sklearn_over_pipeline"] = block[-1]["s"] / r["s"]
        rows.extend(block)
    return rows


def _null(m, Ytr):
    """min_b F(0, b) of the fitted problem: the tol scale (sum over sub-tasks of the
    entropy of the class frequencies, for logistic loss)."""
    from mtlclassic.multitask import _labels

    Y2, _ = _labels.as_2d_targets(Ytr)
    Yenc, mask, _ = m._encode(Y2, _labels.missing_mask(Y2, None))
    p = ((Yenc > 0) & mask).sum(axis=0) / mask.sum(axis=0)
    p = np.clip(p, 1e-300, 1 - 1e-16)
    return float(-np.sum(p * np.log(p) + (1 - p) * np.log(1 - p)))


if __name__ == "__main__":
    main()
