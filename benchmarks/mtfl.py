"""MTFL study: facial landmarks and four attributes, learnt alone and together.

Protocol (issue 13 §4): train on ``training.txt`` (10,000 faces), test on ``testing.txt``
(2,995 AFLW faces). Face box: the square around the 5 true points enlarged 2x, shifted by
up to +-10 % of its side and scaled by up to +-10 % (seeded, identical for every method;
``mtlclassic.landmarks.face_boxes``). Landmark error: mean point-to-point distance over
the inter-ocular distance, in %; failure: error > 10 %; per-landmark errors. Attributes:
accuracy and balanced accuracy.

Every method's alpha is chosen on the training set only: fitted over a grid on 80 % of a
random subset of 4,000 training faces, scored on the other 20 % (landmark error, or mean
balanced accuracy for the attribute-only models), then refitted on all training faces with
the chosen alpha.

Methods: the mean shape; one-stage ridge on the HOG of the whole face box; SDM (4 stages,
patch HOG) with landmarks only (ridge: each coordinate independent); SDM with the four
attributes as auxiliary tasks under each coupling penalty (l21, trace, graph, mtrl); the
attributes alone (independent logistic, the same SDM features) against those learnt with
the landmarks.

    python benchmarks/mtfl.py                 # full protocol (about 20-40 min on 2 cores)
    python benchmarks/mtfl.py --quick         # 2,000 / 500 faces, a short grid

Writes ``benchmarks/results/mtfl.json`` (``mtfl_quick.json`` with --quick) and
``mtfl.png`` (test faces with predicted and true points, per-landmark errors).
"""

import argparse
import os
import sys
import time
import warnings

import numpy as np
from sklearn.metrics import balanced_accuracy_score

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine, table, write_json  # noqa: E402

from mtlclassic.datasets import load_mtfl  # noqa: E402
from mtlclassic.features import patch_hog  # noqa: E402
from mtlclassic.landmarks import CascadedShapeRegressor, face_boxes, landmark_errors  # noqa: E402
from mtlclassic.multitask import (MultiTaskClassifier, MultiTaskEstimator,  # noqa: E402
                                  MultiTaskRegressor)

PUBLISHED = [  # mean error (%) on the 2,995 AFLW test faces, with a detector's box
    ("TCDCN (Zhang et al. ECCV 2014)", 8.0),
    ("SDM (Xiong & De la Torre CVPR 2013)", 8.5),
    ("RCPR (Burgos-Artizzu et al. ICCV 2013)", 11.6),
    ("ESR (Cao et al. CVPR 2012)", 12.4),
]


def landmark_report(P, L):
    E = landmark_errors(P, L)
    per_face = np.nanmean(E, axis=1)
    return {"mean_error_pct": float(100 * per_face.mean()),
            "failure_rate_pct": float(100 * (per_face > 0.1).mean()),
            "per_landmark_pct": [float(v) for v in 100 * np.nanmean(E, axis=0)]}


def attribute_report(P, A, names):
    out = {}
    for j, name in enumerate(names):
        p = np.asarray(P[:, j]).astype(int)
        out[name] = {"accuracy": float(np.mean(p == A[:, j])),
                     "balanced_accuracy": float(balanced_accuracy_score(A[:, j], p))}
    return out


class BoxHOGRidge:
    """One stage without a cascade: HOG of the whole face box (resampled to 64 x 64) ->
    ridge regression of the shape in box units."""

    def __init__(self, alpha, n_jobs):
        self.alpha, self.n_jobs = alpha, n_jobs

    def _features(self, images, B):
        centre = B[:, None, :2] + B[:, None, 2:] / 2
        return patch_hog(images, centre, B[:, 2], 64, n_jobs=self.n_jobs)

    def fit(self, images, L, B):
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        U = ((L - B[:, None, :2]) / B[:, None, 2:]).reshape(len(L), -1)
        self.model = make_pipeline(StandardScaler(), MultiTaskRegressor(
            penalty="ridge", alpha=self.alpha)).fit(self._features(images, B), U)
        return self

    def predict(self, images, B):
        U = self.model.predict(self._features(images, B)).reshape(len(B), -1, 2)
        return U * B[:, None, 2:] + B[:, None, :2]


def select(name, alphas, make, score, images, L, B, aux, n_select=4000, seed=0):
    """The alpha of the grid with the best held-out score (lower is better): fitted on 80 %
    of a random subset of ``n_select`` training faces, scored on the other 20 %; returns
    (alpha, {alpha: score})."""
    n = len(images)
    rng = np.random.default_rng(seed)
    sub = rng.permutation(n)[:min(n, n_select)]
    cut = int(0.8 * len(sub))
    tr_i, va_i = np.sort(sub[:cut]), np.sort(sub[cut:])
    scores = {}
    for a in alphas:
        t = time.perf_counter()
        m = make(a)
        args = (aux[tr_i],) if aux is not None else ()
        m.fit([images[i] for i in tr_i], L[tr_i], B[tr_i], *args)
        scores[a] = float(score(m, [images[i] for i in va_i], L[va_i], B[va_i], va_i))
        print(f"  {name}: alpha {a:g}: held-out {scores[a]:.4f} ({time.perf_counter() - t:.0f} s)",
              flush=True)
    return min(scores, key=scores.get), scores


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2,000 training / 500 test faces")
    p.add_argument("--n-train", type=int, default=None, help="the first N training faces")
    p.add_argument("--n-test", type=int, default=None, help="the first N test faces")
    p.add_argument("--out", default=None, help="JSON name (default mtfl.json / mtfl_quick.json)")
    p.add_argument("--data-home", default=None)
    p.add_argument("--n-jobs", type=int, default=-1)
    p.add_argument("--penalties", nargs="+", default=["l21", "trace", "graph", "mtrl"])
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    n_tr, n_te = (2000, 500) if args.quick else (None, None)
    n_tr, n_te = args.n_train or n_tr, args.n_test or n_te
    t = time.perf_counter()
    tr = load_mtfl("train", args.data_home, n_samples=n_tr, grey=True, n_jobs=args.n_jobs)
    te = load_mtfl("test", args.data_home, n_samples=n_te, grey=True, n_jobs=args.n_jobs)
    print(f"loaded {len(tr.images)} training and {len(te.images)} test faces in "
          f"{time.perf_counter() - t:.0f} s", flush=True)
    Btr = face_boxes(tr.landmarks, enlarge=2.0, jitter=0.1, random_state=0)
    Bte = face_boxes(te.landmarks, enlarge=2.0, jitter=0.1, random_state=1)
    Ltr, Lte, Atr, Ate = tr.landmarks, te.landmarks, tr.attributes, te.attributes
    names = tr.attribute_names
    nj = args.n_jobs
    grid = [1e-3, 1e-2, 1e-1]
    wide = grid + [1.0]  # the closed-form fits are cheap: one more value
    rows, results, preds = [], {}, {}

    out_name = args.out or ("mtfl_quick.json" if args.quick else "mtfl.json")

    def save():  # after every method: a long run keeps what it has measured
        return write_json(out_name, {
            "machine": machine(), "protocol": __doc__.split("\n\n")[1],
            "n_train": len(tr.images), "n_test": len(te.images), "alpha_grid": grid,
            "alpha_grid_ridge": wide, "results": results,
            "published_mean_error_pct": dict(PUBLISHED)})

    def lm_score(m, imgs, L, B, _):
        return float(np.nanmean(landmark_errors(m.predict(imgs, B), L)))

    def record(name, model, fit_s, aux_pred=None, extra=None):
        t0 = time.perf_counter()
        P = model.predict(te.images, Bte)
        pred_s = time.perf_counter() - t0
        rep = landmark_report(P, Lte)
        rep.update(train_s=fit_s, test_faces_per_s=len(te.images) / pred_s)
        if aux_pred is not None:
            rep["attributes"] = attribute_report(aux_pred, Ate, names)
        rep.update(extra or {})
        results[name], preds[name] = rep, P
        rows.append([name, f"{rep['mean_error_pct']:.2f}", f"{rep['failure_rate_pct']:.1f}",
                     " / ".join(f"{v:.1f}" for v in rep["per_landmark_pct"]),
                     f"{fit_s:.0f}", f"{rep['test_faces_per_s']:.0f}"])
        print(f"{name}: {rep['mean_error_pct']:.2f} % (failures {rep['failure_rate_pct']:.1f} %)"
              f", train {fit_s:.0f} s, {rep['test_faces_per_s']:.0f} faces/s", flush=True)
        save()
        return P

    # mean shape
    U = np.nanmean((Ltr - Btr[:, None, :2]) / Btr[:, None, 2:], axis=0)
    P0 = U[None] * Bte[:, None, 2:] + Bte[:, None, :2]
    rep = landmark_report(P0, Lte)
    results["mean shape"] = rep
    rows.append(["mean shape", f"{rep['mean_error_pct']:.2f}", f"{rep['failure_rate_pct']:.1f}",
                 " / ".join(f"{v:.1f}" for v in rep["per_landmark_pct"]), "0", "-"])

    # one-stage ridge on the face box's HOG
    a, sc = select("box HOG ridge", wide, lambda a: BoxHOGRidge(a, nj), lm_score,
                   tr.images, Ltr, Btr, None)
    t0 = time.perf_counter()
    m = BoxHOGRidge(a, nj).fit(tr.images, Ltr, Btr)
    record("one-stage ridge, face-box HOG", m, time.perf_counter() - t0,
           extra={"alpha": a, "validation": sc})

    def sdm(est):
        return CascadedShapeRegressor(est, n_stages=4, n_init=4, n_jobs=nj)

    # SDM, landmarks only (ridge: every coordinate on its own)
    a, sc = select("SDM ridge", wide, lambda a: sdm(MultiTaskEstimator(
        penalty="ridge", alpha=a, n_jobs=nj)), lm_score, tr.images, Ltr, Btr, None)
    t0 = time.perf_counter()
    base = sdm(MultiTaskEstimator(penalty="ridge", alpha=a, n_jobs=nj)).fit(
        tr.images, Ltr, Btr)
    record("SDM, landmarks only (independent ridge)", base, time.perf_counter() - t0,
                    extra={"alpha": a, "validation": sc})

    # attributes alone: independent logistic on the final SDM features of the test faces
    def final_features(model, imgs, B):
        S = np.repeat(model.mean_shape_[None], len(imgs), 0)
        scales = model._check_params()
        F = None
        for k, st in enumerate(model.stages_):
            F = model._features(imgs, S, B, k, scales)
            S = S + model._increment(st, F)
        return F

    Ftr, Fte = final_features(base, tr.images, Btr), final_features(base, te.images, Bte)
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    n = len(Ftr)
    val = np.random.default_rng(0).random(n) < 0.2
    best, sc = None, {}
    for a in wide:
        clf = make_pipeline(StandardScaler(), MultiTaskClassifier(penalty="ridge", alpha=a,
                                                                  n_jobs=nj))
        clf.fit(Ftr[~val], Atr[~val])
        Pv = clf.predict(Ftr[val])
        sc[a] = -float(np.mean([balanced_accuracy_score(Atr[val, j], Pv[:, j])
                                for j in range(4)]))
        best = a if best is None or sc[a] < sc[best] else best
    t0 = time.perf_counter()
    clf = make_pipeline(StandardScaler(), MultiTaskClassifier(penalty="ridge", alpha=best,
                                                              n_jobs=nj)).fit(Ftr, Atr)
    alone_s = time.perf_counter() - t0
    results["attributes alone (independent logistic)"] = {
        "attributes": attribute_report(clf.predict(Fte), Ate, names), "alpha": best,
        "train_s": alone_s, "validation": sc}

    # SDM with the attributes as auxiliary tasks, one coupling penalty each
    aux_rows = []
    for pen in args.penalties:
        def make(a, pen=pen):
            return sdm(MultiTaskEstimator(penalty=pen, alpha=a, n_jobs=nj, tol=1e-4,
                                          max_iter=500))
        a, sc = select(f"SDM + attributes ({pen})", grid, make, lm_score, tr.images, Ltr, Btr,
                       Atr)
        t0 = time.perf_counter()
        m = make(a).fit(tr.images, Ltr, Btr, aux=Atr)
        fit_s = time.perf_counter() - t0
        aux_pred = m.predict_aux(te.images, Bte)
        record(f"SDM + 4 attributes ({pen})", m, fit_s, aux_pred=aux_pred,
               extra={"alpha": a, "validation": sc})
    for name, rep in results.items():
        if "attributes" in rep:
            aux_rows.append([name] + [f"{rep['attributes'][k]['accuracy']:.3f} / "
                                      f"{rep['attributes'][k]['balanced_accuracy']:.3f}"
                                      for k in names])
    for label, err in PUBLISHED:
        rows.append([f"{label} -- published, not measured here", f"{err:.1f}", "", "", "", ""])

    print()
    print(table(rows, ["method", "mean error %", "failures %", "per landmark % (" +
                       " / ".join(tr.landmark_names) + ")", "train s", "test faces/s"]))
    print()
    print(table(aux_rows, ["attributes: accuracy / balanced accuracy"] + names))
    try:
        import matplotlib

        matplotlib.use("Agg")
        from mtlclassic.plotting import plot_landmarks

        best_name = min(preds, key=lambda k: results[k]["mean_error_pct"])
        fig = plot_landmarks(te.images, preds[best_name], Lte, tr.landmark_names, n_faces=12,
                             title=f"MTFL test faces: {best_name} (red +), truth (green o)")
        png = os.path.join(os.path.dirname(save()), out_name.replace(".json", ".png"))
        fig.savefig(png, dpi=80)
        print("wrote", png)
    except ImportError:
        print("matplotlib not installed: no figure")
    print("wrote", save())

if __name__ == "__main__":
    main()
