"""l21 with squared loss: mtlclassic (working-set BCD, ``solver="auto"``) against
scikit-learn's MultiTaskLasso, celer and skglm, in one run (issue 14).

Objective, in mtlclassic's scaling for every solver: F = ||Y - X W - b||^2 / (2n) + alpha
sum_j ||W_j||_2 (= scikit-learn's MultiTaskLasso). Cases (T = 10 targets each):

* ``mfeat``: UCI mfeat pixels (2000 x 240, standardised), targets a dense random
  projection of X plus noise;
* ``HOG``: HOG (8x8 cells, 2x2 blocks: 1764 values, standardised) of 6000 64x64 crops of
  skimage.data images (``multitask_cpu.attribute_crops``), targets from a 60-row sparse W
  plus noise;
* ``n<d``: Gaussian 500 x 5000, targets from a 30-row sparse W plus noise;

each at a sparse alpha (0.1 alpha_max), a dense one (0.01 alpha_max) and along a
warm-started path of 10 alphas from alpha_max to 0.01 alpha_max (geometric).

Each solver is run at tol 1e-4, 1e-6, 1e-8, 1e-10 (each tool's own tol: mtlclassic's
is the duality gap relative to min_b F(0, b), scikit-learn's and celer's the gap relative
to ||Y||^2 / n (centred Y), skglm's the largest KKT violation); the time of a setting is
the median of ``--repeat`` runs after one warm-up (skglm compiles with numba in it). The
headline figure is the time to reach an objective within 1e-8 (relative) of the best any
solver reached (for a path: at every alpha), i.e. the cheapest tol that gets there. BLAS
is pinned to 1 thread, then 2 (mtlclassic's n_jobs caps its pools the same way).

The drivers: mtlclassic ``MultiTaskRegressor(penalty="l21")``, path by ``warm_start`` and
``set_params(alpha=...)``; scikit-learn ``MultiTaskLasso``, path by ``warm_start``; celer
``celer.homotopy.mtl_path`` on centred X and Y (its MultiTaskLasso estimator breaks on
scikit-learn 1.9; centring is timed), one call for the path; skglm ``MultiTaskLasso``, path
by its ``MultiTaskBCD`` solver with ``w_init`` (the estimator's warm_start does not pass the
previous coefficients).

    PYTHONPATH=. python benchmarks/solvers.py [--quick] [--repeat 5] [--threads 1,2]

Writes results/solvers.json (not in --quick mode) and prints the tables.
"""

import argparse
import importlib.util
import os
import statistics
import sys
import time
import warnings

import numpy as np
from sklearn.linear_model import MultiTaskLasso
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine, table, write_json  # noqa: E402

from mtlclassic.multitask import MultiTaskRegressor  # noqa: E402

TOLS = (1e-4, 1e-6, 1e-8, 1e-10)
TARGET = 1e-8  # relative objective excess of the headline figure
T = 10


def _standardise(X):
    return (X - X.mean(0)) / (X.std(0) + 1e-12)


def cases(quick, rng):
    """(name, X, Y); --quick: smaller versions of the same constructions."""
    from multitask_cpu import attribute_crops, hog_features, load_mfeat

    Xm, _ = load_mfeat()
    if Xm is not None:
        if quick:
            Xm = Xm[::4]
        Y = Xm @ rng.standard_normal((Xm.shape[1], T)) / np.sqrt(Xm.shape[1])
        yield "mfeat", Xm, Y + 0.5 * rng.standard_normal(Y.shape)
    imgs, _ = attribute_crops(1000 if quick else 6000)
    F = hog_features(imgs)
    W = np.zeros((F.shape[1], T))
    W[rng.choice(F.shape[1], 60, replace=False)] = rng.standard_normal((60, T))
    yield "HOG", F, F @ W + rng.standard_normal((len(F), T))
    n, d = (200, 2000) if quick else (500, 5000)
    X = rng.standard_normal((n, d))
    W = np.zeros((d, T))
    W[:30] = rng.standard_normal((30, T))
    yield "n<d", X, X @ W + rng.standard_normal((n, T))


def objective(X, Y, W, b, alpha):
    """F at W (d, T), b (T,)."""
    R = Y - X @ W - b
    return 0.5 * float(np.sum(R * R)) / len(X) + alpha * float(np.sqrt((W * W).sum(1)).sum())


# ------------------------------------------------------------------ solver drivers
# each: (X, Y, alphas, tol, threads) -> list of (W, b), one per alpha (warm-started path)

def run_mtlclassic(X, Y, alphas, tol, threads):
    est = MultiTaskRegressor(penalty="l21", tol=tol, max_iter=100000, warm_start=True,
                             n_jobs=threads)
    out = []
    for a in alphas:
        est.set_params(alpha=a).fit(X, Y)
        out.append((est.coef_.T.copy(), est.intercept_.copy()))
    return out


def run_sklearn(X, Y, alphas, tol, threads):
    est = MultiTaskLasso(tol=tol, max_iter=100000, warm_start=True)
    out = []
    for a in alphas:
        est.set_params(alpha=a).fit(X, Y)
        out.append((est.coef_.T.copy(), est.intercept_.copy()))
    return out


def run_celer(X, Y, alphas, tol, threads):
    from celer.homotopy import mtl_path

    xm, ym = X.mean(0), Y.mean(0)
    _, coefs, _ = mtl_path(X - xm, Y - ym, alphas=np.asarray(alphas), tol=tol,
                           max_iter=1000, max_epochs=100000)
    out = []
    for k in range(len(alphas)):  # mtl_path sorts alphas decreasingly: ours are already
        W = coefs[:, :, k].T
        out.append((W, ym - xm @ W))
    return out


def run_skglm(X, Y, alphas, tol, threads):
    from skglm import MultiTaskLasso as SkglmMTL

    if len(alphas) == 1:
        est = SkglmMTL(alpha=alphas[0], tol=tol, max_iter=1000, max_epochs=100000).fit(X, Y)
        return [(est.coef_.T.copy(), np.asarray(est.intercept_, dtype=float).copy())]
    from skglm.datafits import QuadraticMultiTask
    from skglm.penalties import L2_1
    from skglm.solvers import MultiTaskBCD

    Xf, Yf = np.asfortranarray(X), np.asfortranarray(Y)
    W = np.zeros((X.shape[1] + 1, Y.shape[1]))
    out = []
    for a in alphas:
        solver = MultiTaskBCD(max_iter=1000, max_epochs=100000, tol=tol, fit_intercept=True,
                              warm_start=True)
        XW = np.asfortranarray(Xf @ W[:-1] + W[-1])
        W = solver.solve(Xf, Yf, QuadraticMultiTask(), L2_1(a), w_init=W.copy(),
                         Xw_init=XW)[0]
        out.append((W[:-1].copy(), W[-1].copy()))
    return out


SOLVERS = {"mtlclassic": run_mtlclassic, "scikit-learn": run_sklearn, "celer": run_celer,
           "skglm": run_skglm}


def timed(fn, repeat):
    """(median seconds over ``repeat`` runs after one warm-up, the last result)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fn()
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            res = fn()
            times.append(time.perf_counter() - t)
    return statistics.median(times), res


def bench_case(name, X, Y, setting, alphas, threads, repeat, solvers):
    """Rows for one case x alpha setting x thread count."""
    runs = {}
    for label in solvers:
        for tol in TOLS:
            with threadpool_limits(limits=threads, user_api="blas"):
                s, res = timed(lambda: SOLVERS[label](X, Y, alphas, tol, threads), repeat)
            runs[label, tol] = (s, [objective(X, Y, W, b, a) for (W, b), a in zip(res, alphas)])
    best = np.min([F for _, F in runs.values()], axis=0)
    rows = []
    for (label, tol), (s, F) in runs.items():
        excess = float(np.max((np.asarray(F) - best) / np.abs(best)))
        rows.append({"case": name, "n": X.shape[0], "d": X.shape[1], "T": Y.shape[1],
                     "setting": setting, "alphas": list(map(float, alphas)),
                     "threads": threads, "solver": label, "tol": tol, "s": s,
                     "repeat": repeat, "objectives": F, "rel_excess": excess})
    return rows


def summarise(rows, solvers):
    """Per (case, setting, threads): each solver's time to TARGET and its ratios."""
    out = []
    keys = sorted({(r["case"], r["setting"], r["threads"]) for r in rows},
                  key=lambda k: (k[2], k[0], k[1]))
    for key in keys:
        sel = [r for r in rows if (r["case"], r["setting"], r["threads"]) == key]
        to_target = {}
        for label in solvers:
            ok = [r["s"] for r in sel if r["solver"] == label and r["rel_excess"] <= TARGET]
            to_target[label] = min(ok) if ok else None
        per_tol = {f"{label}@{tol:g}": r["s"] for r in sel for label in [r["solver"]]
                   for tol in [r["tol"]]}
        out.append({"case": key[0], "setting": key[1], "threads": key[2],
                    "time_to_target": to_target, "time_per_tol": per_tol})
    return out


def _fmt(s):
    return "not reached" if s is None else f"{s:.3f}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="smaller cases, one repeat, no JSON (a smoke run)")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--cases", default="mfeat,HOG,n<d")
    a = p.parse_args(argv)
    repeat = 1 if a.quick else a.repeat
    threads = [int(t) for t in a.threads.split(",")]
    solvers = [s for s in SOLVERS if s in ("mtlclassic", "scikit-learn")
               or importlib.util.find_spec(s) is not None]
    skipped = [s for s in SOLVERS if s not in solvers]
    info = machine()
    rng = np.random.default_rng(0)
    rows = []
    wanted = a.cases.split(",")
    for name, X, Y in cases(a.quick, rng):
        if name not in wanted:
            continue
        Yc = Y - Y.mean(0)
        a_max = float(np.sqrt(((X.T @ (X.shape[0] ** -1 * Yc)) ** 2).sum(1)).max())
        settings = [("sparse (0.1 a_max)", [0.1 * a_max]), ("dense (0.01 a_max)", [0.01 * a_max]),
                    ("path of 10", list(a_max * np.geomspace(1, 0.01, 10)))]
        for th in threads:
            for setting, alphas in settings:
                rows += bench_case(name, X, Y, setting, alphas, th, repeat, solvers)
                s = summarise([r for r in rows if r["case"] == name and r["setting"] == setting
                               and r["threads"] == th], solvers)[0]
                print(f"{name} {X.shape[0]}x{X.shape[1]} {setting}, {th} thread(s): "
                      + ", ".join(f"{k} {_fmt(v)}" for k, v in s["time_to_target"].items()),
                      flush=True)
    summary = summarise(rows, solvers)
    print(f"\nseconds to F within {TARGET:g} (relative) of the best objective (median of "
          f"{repeat}); ratio = scikit-learn (or the faster of celer/skglm) / mtlclassic")
    hdr = ["case", "alphas", "threads"] + solvers + ["vs sklearn", "vs best other"]
    body = []
    for s in summary:
        tt = s["time_to_target"]
        ours = tt["mtlclassic"]
        others = [tt[k] for k in ("celer", "skglm") if k in tt and tt[k] is not None]
        body.append([s["case"], s["setting"], s["threads"]] + [_fmt(tt[k]) for k in solvers]
                    + [f"{tt['scikit-learn'] / ours:.1f}x" if ours and tt["scikit-learn"]
                       else "-",
                       f"{min(others) / ours:.2f}x" if ours and others else "-"])
    print(table(body, hdr))
    print("\nseconds at each tol (each tool's own tol meaning)")
    body = []
    for s in summary:
        for tol in TOLS:
            vals = [s["time_per_tol"].get(f"{k}@{tol:g}") for k in solvers]
            body.append([s["case"], s["setting"], s["threads"], f"{tol:g}"]
                        + [_fmt(v) for v in vals]
                        + [f"{vals[1] / vals[0]:.1f}x" if vals[0] and vals[1] else "-"])
    print(table(body, ["case", "alphas", "threads", "tol"] + solvers + ["sklearn / ours"]))
    if skipped:
        print(f"skipped (not installed): {', '.join(skipped)}")
    if not a.quick:
        print("wrote", write_json("solvers.json", {"machine": info, "target": TARGET,
                                                   "tols": TOLS, "repeat": repeat,
                                                   "summary": summary, "rows": rows,
                                                   "skipped": skipped}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
