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

Each solver is run once at tol 1e-4, 1e-6, 1e-8, 1e-10 with BLAS pinned to 1 thread (each
tool's own tol: mtlclassic's is the duality gap relative to min_b F(0, b), scikit-learn's
and celer's the gap relative to ||Y||^2 / n (centred Y), skglm's the largest KKT
violation); these single timings make the per-tol table. The headline figure is the time
to reach an objective within 1e-8 (relative) of the best any solver reached (for a path:
at every alpha): each solver's cheapest tol that gets there, timed again as the median of
``--repeat`` runs (3 when runs take over 10 s), with BLAS pinned to 1 thread, then 2
(mtlclassic's n_jobs caps its pools the same way). skglm's numba compilation is done
before any timing.

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
LONG_S = 10.0  # runs longer than this are repeated 3 times, not --repeat
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


def _run(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        res = fn()
        return time.perf_counter() - t, res


def timed(fn, repeat):
    """Median seconds of ``repeat`` runs (3 when a run takes over LONG_S seconds)."""
    times = []
    while len(times) < repeat and not (len(times) >= 3 and min(times) > LONG_S):
        times.append(_run(fn)[0])
    return statistics.median(times), len(times)


def bench_case(name, X, Y, setting, alphas, threads, repeat, solvers, tol_for=None,
               drivers=None, objective_fn=None):
    """One case x alpha setting x thread count. Without ``tol_for``: each solver's tol
    ladder (single runs), then the median time at its cheapest tol reaching TARGET; with
    it (the ladder's outcome at 1 thread), only the medians at those tols. ``drivers``
    (label -> driver) and ``objective_fn`` replace SOLVERS and :func:`objective` (for
    other objectives: solvers_more.py)."""
    drivers = SOLVERS if drivers is None else drivers
    objective_fn = objective if objective_fn is None else objective_fn
    out = {"case": name, "n": X.shape[0], "d": X.shape[1], "T": Y.shape[1],
           "setting": setting, "alphas": list(map(float, alphas)), "threads": threads,
           "ladder": [], "time_to_target": {}, "tol_used": {}, "repeats": {}}
    with threadpool_limits(limits=threads, user_api="blas"):
        if tol_for is None:
            objs = {}
            for label in solvers:
                for tol in TOLS:
                    s, res = _run(lambda: drivers[label](X, Y, alphas, tol, threads))
                    objs[label, tol] = [objective_fn(X, Y, W, b, a)
                                        for (W, b), a in zip(res, alphas)]
                    out["ladder"].append({"solver": label, "tol": tol, "s": s,
                                          "objectives": objs[label, tol]})
            best = np.min(list(objs.values()), axis=0)
            tol_for = {}
            for r in out["ladder"]:
                r["rel_excess"] = float(np.max((np.asarray(r["objectives"]) - best)
                                               / np.abs(best)))
                if r["rel_excess"] <= TARGET and r["solver"] not in tol_for:
                    tol_for[r["solver"]] = r["tol"]
            out["best_objectives"] = best.tolist()
        for label in solvers:
            tol = tol_for.get(label)
            if tol is None:
                out["time_to_target"][label] = None
                continue
            s, k = timed(lambda: drivers[label](X, Y, alphas, tol, threads), repeat)
            out["time_to_target"][label], out["tol_used"][label] = s, tol
            out["repeats"][label] = k
    return out, tol_for


def _fmt(s):
    return "not reached" if s is None else f"{s:.3f}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="smaller cases, one repeat, no JSON (a smoke run)")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--cases", default="mfeat,HOG,n<d")
    p.add_argument("--rerun-threads", default=None,
                   help="keep results/solvers.json's rows at the other thread counts and "
                        "rerun only these (e.g. 2), at the tols its ladders chose")
    a = p.parse_args(argv)
    repeat = 1 if a.quick else a.repeat
    threads = [int(t) for t in a.threads.split(",")]
    solvers = [s for s in SOLVERS if s in ("mtlclassic", "scikit-learn")
               or importlib.util.find_spec(s) is not None]
    skipped = [s for s in SOLVERS if s not in solvers]
    info = machine()
    rng = np.random.default_rng(0)
    wanted = a.cases.split(",")
    with warnings.catch_warnings():  # numba compiles skglm's solver once, here
        warnings.simplefilter("ignore")
        if "skglm" in solvers:
            run_skglm(np.eye(20, 5), np.ones((20, 2)), [0.01], 1e-4, 1)
            run_skglm(np.eye(20, 5), np.ones((20, 2)), [0.1, 0.01], 1e-4, 1)
    kept = []
    if a.rerun_threads:
        import json

        from _common import RESULTS

        with open(os.path.join(RESULTS, "solvers.json")) as fh:
            old = json.load(fh)
        rerun = [int(t) for t in a.rerun_threads.split(",")]
        kept = [r for r in old["results"] if r["threads"] not in rerun]
        threads = rerun
        info["earlier_run"] = {"date": old["machine"]["date"], "kept_threads":
                               sorted({r["threads"] for r in kept})}
    results = list(kept)
    for name, X, Y in cases(a.quick, rng):
        if name not in wanted:
            continue
        Yc = Y - Y.mean(0)
        a_max = float(np.sqrt(((X.T @ Yc / X.shape[0]) ** 2).sum(1)).max())
        settings = [("sparse (0.1 a_max)", [0.1 * a_max]), ("dense (0.01 a_max)", [0.01 * a_max]),
                    ("path of 10", list(a_max * np.geomspace(1, 0.01, 10)))]
        for setting, alphas in settings:
            tol_for = None
            for r in kept:  # a kept ladder fixes the tols
                if r["case"] == name and r["setting"] == setting and r["ladder"]:
                    tol_for = r["tol_used"]
            for th in threads:
                r, tol_for = bench_case(name, X, Y, setting, alphas, th, repeat, solvers, tol_for)
                results.append(r)
                results.sort(key=lambda r: r["threads"])
                if not a.quick:  # written after every setting: a stopped run keeps its part
                    write_json("solvers.json", {"machine": info, "target": TARGET, "tols": TOLS,
                                                "repeat": repeat, "long_s": LONG_S,
                                                "results": results, "skipped": skipped,
                                                "complete": False})
                print(f"{name} {X.shape[0]}x{X.shape[1]} {setting}, {th} thread(s): "
                      + ", ".join(f"{k} {_fmt(v)}" for k, v in r["time_to_target"].items()),
                      flush=True)
    print(f"\nseconds to F within {TARGET:g} (relative) of the best objective (median of "
          f"{repeat}; 3 for runs over {LONG_S:g} s); ratio = scikit-learn (or the faster of "
          "celer/skglm) / mtlclassic")
    hdr = ["case", "alphas", "threads"] + solvers + ["vs sklearn", "vs best other"]
    body = []
    for r in sorted(results, key=lambda r: r["threads"]):
        tt = r["time_to_target"]
        ours = tt["mtlclassic"]
        others = [tt[k] for k in ("celer", "skglm") if k in tt and tt[k] is not None]
        body.append([r["case"], r["setting"], r["threads"]] + [_fmt(tt[k]) for k in solvers]
                    + [f"{tt['scikit-learn'] / ours:.1f}x" if ours and tt["scikit-learn"]
                       else "-",
                       f"{min(others) / ours:.2f}x" if ours and others else "-"])
    print(table(body, hdr))
    print("\nseconds at each tol, 1 thread, single runs (each tool's own tol meaning); "
          "rel. excess = (F - best) / |best|")
    body = []
    for r in results:
        if not r["ladder"]:
            continue
        for tol in TOLS:
            sel = {x["solver"]: x for x in r["ladder"] if x["tol"] == tol}
            body.append([r["case"], r["setting"], f"{tol:g}"]
                        + [f"{sel[k]['s']:.3f} ({sel[k]['rel_excess']:.0e})" for k in solvers]
                        + [f"{sel['scikit-learn']['s'] / sel['mtlclassic']['s']:.1f}x"])
    print(table(body, ["case", "alphas", "tol"] + solvers + ["sklearn / ours"]))
    if skipped:
        print(f"skipped (not installed): {', '.join(skipped)}")
    if not a.quick:
        print("wrote", write_json("solvers.json", {"machine": info, "target": TARGET,
                                                   "tols": TOLS, "repeat": repeat,
                                                   "long_s": LONG_S, "results": results,
                                                   "skipped": skipped, "complete": True}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
