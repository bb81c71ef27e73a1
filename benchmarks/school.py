"""Accuracy study on the School data (139 schools = 139 regression tasks).

Protocol: for each school, a random ``ratio`` of its students is training data, the rest
test; the bias column is dropped; features and targets are z-scored with pooled training
statistics; nMSE = pooled test MSE / Var(y_test). Every method is tuned only by its own
cross-validation on the training part:

* independent ridge: scikit-learn ``RidgeCV`` per school;
* pooled ridge: one scikit-learn ``RidgeCV`` on all schools;
* mtlclassic ``MultiTaskRegressorCV`` with the mean, graph (auto relation), l21, trace and
  mtrl penalties (one column per school, unlabelled elsewhere; alpha on a 13-point
  1e-3..1e3 grid chosen by 3-fold CV on the pooled held-out MSE, the study's own metric;
  tasks weighted by their size, ``task_weight="size"``, so that every pupil counts the
  same as in the pooled nMSE).
  Per-school intercepts: the targets are centred with the pooled training mean; ``mean``
  adds penalised per-school intercepts (``intercept_scaling`` from {1, 3, 10} chosen by
  the same CV), so they are shrunk towards a shared one like a random intercept; the other
  penalties fit none (free intercepts overfit schools with a handful of training pupils).

    python benchmarks/school.py [--seeds 5] [--ratios 0.1 0.2 0.3] [--quick]

Prints mean +/- std nMSE per method and ratio and writes benchmarks/results/school.json.
"""

import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine, table, write_json  # noqa: E402

from mtlclassic.datasets import load_school  # noqa: E402
from mtlclassic.multitask import MultiTaskRegressorCV  # noqa: E402

ALPHAS = np.logspace(-5, 1, 13)
MTL_ALPHAS = np.logspace(-3, 3, 13)
SCALINGS = [1.0, 3.0, 10.0]  # intercept_scaling grid of the mean penalty


def split(task, ratio, rng):
    train = np.zeros(len(task), bool)
    for t in np.unique(task):
        rows = np.flatnonzero(task == t)
        k = max(2, int(round(ratio * len(rows))))
        train[rng.choice(rows, k, replace=False)] = True
    return train


def run_one(X, y, task, ratio, seed, methods):
    from sklearn.linear_model import RidgeCV

    rng = np.random.default_rng(seed)
    tr = split(task, ratio, rng)
    mu, sd = X[tr].mean(0), X[tr].std(0)
    sd[sd == 0] = 1
    Xz = (X - mu) / sd
    ym, ys = y[tr].mean(), y[tr].std()
    yz = (y - ym) / ys
    T = task.max() + 1
    te = ~tr
    var_te = np.var(yz[te])
    out = {}
    if "independent ridge" in methods:
        pred = np.empty(te.sum())
        idx_te = np.flatnonzero(te)
        for t in range(T):
            rtr, rte = tr & (task == t), te & (task == t)
            m = RidgeCV(alphas=ALPHAS * rtr.sum()).fit(Xz[rtr], yz[rtr])
            pred[np.searchsorted(idx_te, np.flatnonzero(rte))] = m.predict(Xz[rte])
        out["independent ridge"] = np.mean((yz[te] - pred) ** 2) / var_te
    if "pooled ridge" in methods:
        m = RidgeCV(alphas=ALPHAS * tr.sum()).fit(Xz[tr], yz[tr])
        out["pooled ridge"] = np.mean((yz[te] - m.predict(Xz[te])) ** 2) / var_te
    Yw = np.full((tr.sum(), T), np.nan)
    Yw[np.arange(tr.sum()), task[tr]] = yz[tr]
    for name, kw in [("mtl mean", dict(penalty="mean", l2=1e-2, intercept_scalings=SCALINGS)),
                     ("mtl graph", dict(penalty="graph", l2=1e-3)),
                     ("mtl l21", dict(penalty="l21")),
                     ("mtl trace", dict(penalty="trace")),
                     ("mtl mtrl", dict(penalty="mtrl", l2=1e-3))]:
        if name not in methods:
            continue
        t0 = time.perf_counter()
        kw = {"alphas": MTL_ALPHAS, "tol": 1e-4, "fit_intercept": False, **kw}
        if "intercept_scalings" in kw:
            kw["fit_intercept"] = True
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # the targets are centred with pooled statistics; per-school intercepts are
            # either left out or penalised (intercept_scaling): free ones overfit schools
            # with a handful of training pupils
            m = MultiTaskRegressorCV(cv=3, max_iter=2000, task_weight="size",
                                     scoring="neg_mean_squared_error", **kw).fit(Xz[tr], Yw)
        P = m.predict(Xz[te])
        pred = P[np.arange(te.sum()), task[te]]
        out[name] = np.mean((yz[te] - pred) ** 2) / var_te
        out[name + " (s)"] = time.perf_counter() - t0
    return out


METHODS = ["independent ridge", "pooled ridge", "mtl mean", "mtl graph", "mtl l21",
           "mtl trace", "mtl mtrl"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--ratios", type=float, nargs="+", default=[0.1, 0.2, 0.3])
    p.add_argument("--methods", nargs="+", default=METHODS)
    p.add_argument("--quick", action="store_true", help="1 seed, ratio 0.1")
    p.add_argument("--out", default="school.json")
    a = p.parse_args(argv)
    if a.quick:
        a.seeds, a.ratios = 1, [0.1]
    d = load_school()
    X, y, task = d.data, d.target, d.task
    results = {}
    for ratio in a.ratios:
        for seed in range(a.seeds):
            r = run_one(X, y, task, ratio, seed, a.methods)
            for k, v in r.items():
                results.setdefault((ratio, k), []).append(v)
            print(f"ratio {ratio} seed {seed}: " +
                  ", ".join(f"{k} {v:.3f}" for k, v in r.items() if "(s)" not in k), flush=True)
            # written after every split, so an interrupted run keeps what it measured
            write_json(a.out, {"machine": machine(), "seeds": a.seeds, "ratios": a.ratios,
                               "results": {f"{k[1]} @ {k[0]}": v for k, v in results.items()}})
    rows = []
    for mth in a.methods:
        row = [mth]
        for ratio in a.ratios:
            v = np.array(results[(ratio, mth)])
            row.append(f"{v.mean():.3f} ± {v.std():.3f}")
        rows.append(row)
    print(f"\nSchool, nMSE (mean ± std over {a.seeds} seeds; lower is better)")
    print(table(rows, ["method"] + [f"{int(100 * r)} % train" for r in a.ratios]))
    payload = {"machine": machine(), "seeds": a.seeds, "ratios": a.ratios,
               "results": {f"{k[1]} @ {k[0]}": v for k, v in results.items()}}
    print("wrote", write_json(a.out, payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
