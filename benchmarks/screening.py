"""Gap-safe screening in the working-set l21 solver (issue 14 item 3): the time to reach
an objective within 1e-8 (relative) of the best, with and without screening, on
``solvers.py``'s cases (n<d: Gaussian 500 x 5000; HOG: 6000 x 1764; T = 10) at a sparse
alpha (0.1 alpha_max), a dense one (0.01 alpha_max) and along the warm-started paths of
10 and (``--settings``) 100 alphas from alpha_max to 0.01 alpha_max. BLAS pinned to 1
thread.

The tol of each variant is picked by ``solvers.bench_case``'s ladder (single runs), then
both variants are timed alternately (A B A B ..., so that a loaded machine slows both
alike), the median of ``--repeat`` each, in wall time and in CPU time of the process (one
BLAS thread: the same work, less sensitive to other jobs on a shared machine). Also reported: the rows screened by the end of
the last fit. ``--fixed-tols``: the same alternating medians at those tols (where a
small gap reached before the last outer step lets screening act).

    PYTHONPATH=. python benchmarks/screening.py [--repeat 7] [--cases n<d,HOG]
        [--fixed-tols 1e-10] [--settings sparse,dense,path10,path100]

Writes results/screening.json and prints the table.
"""

import argparse
import os
import statistics
import sys
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine, table, write_json  # noqa: E402
from solvers import bench_case, cases, run_mtlclassic  # noqa: E402

from mtlclassic.multitask import _workingset  # noqa: E402

SCREENED = []  # (fit index, rows screened) of the screened variant's last run


def _driver(screen):
    def run(X, Y, alphas, tol, threads):
        _workingset.SCREEN = screen
        SCREENED.clear()
        solve = _workingset.workingset_l21

        def recording(*a, **kw):
            res = solve(*a, **kw)
            SCREENED.append(res.screened.size)
            return res

        _workingset.workingset_l21 = recording
        try:
            return run_mtlclassic(X, Y, alphas, tol, threads)
        finally:
            _workingset.workingset_l21 = solve
            _workingset.SCREEN = True
    return run


DRIVERS = {"screening": _driver(True), "no screening": _driver(False)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--cases", default="n<d,HOG")
    p.add_argument("--fixed-tols", default="1e-10")
    p.add_argument("--settings", default="sparse,dense,path10")
    p.add_argument("--out", default="screening.json")
    a = p.parse_args(argv)
    rng = np.random.default_rng(0)  # solvers.py's cases, the same data
    results = []
    for name, X, Y in cases(False, rng):
        if name not in a.cases.split(","):
            continue
        Yc = Y - Y.mean(0)
        a_max = float(np.sqrt(((X.T @ Yc / X.shape[0]) ** 2).sum(1)).max())
        settings = {"sparse": ("sparse (0.1 a_max)", [0.1 * a_max]),
                    "dense": ("dense (0.01 a_max)", [0.01 * a_max]),
                    "path10": ("path of 10", list(a_max * np.geomspace(1, 0.01, 10))),
                    "path100": ("path of 100", list(a_max * np.geomspace(1, 0.01, 100)))}
        for setting, alphas in [settings[k] for k in a.settings.split(",")]:
            r, tol_for = bench_case(name, X, Y, setting, alphas, 1, 1, list(DRIVERS),
                                    drivers=DRIVERS)
            for fixed in [None] + [float(t) for t in a.fixed_tols.split(",") if t]:
                tols = tol_for if fixed is None else {k: fixed for k in DRIVERS}
                r = dict(r, fixed_tol=fixed, tol_used=tols)
                times = {k: [] for k in DRIVERS}
                cpu = {k: [] for k in DRIVERS}
                with threadpool_limits(limits=1, user_api="blas"), \
                        warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    for _ in range(a.repeat):
                        for k in DRIVERS:
                            t, c = time.perf_counter(), time.process_time()
                            DRIVERS[k](X, Y, alphas, tols[k], 1)
                            times[k].append(time.perf_counter() - t)
                            cpu[k].append(time.process_time() - c)
                            if k == "screening":
                                screened = list(SCREENED)
                med = {k: statistics.median(v) for k, v in times.items()}
                med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
                r.update(times=times, median=med, cpu_times=cpu, median_cpu=med_cpu,
                         screened_per_fit=screened)
                results.append(r)
                print(f"{name} {setting} tol {tols['screening']:g}: "
                      + ", ".join(f"{k} {v:.4f} s" for k, v in med.items())
                      + f", rows screened per fit {screened}", flush=True)
    write_json(a.out, {"machine": machine(), "repeat": a.repeat,
                                  "results": results})
    body = [[r["case"], r["setting"], "to 1e-8 of best" if r["fixed_tol"] is None else "fixed",
             r["tol_used"]["screening"], r["tol_used"]["no screening"],
             f"{r['median']['screening']:.4f}", f"{r['median']['no screening']:.4f}",
             f"{r['median']['no screening'] / r['median']['screening']:.2f}x",
             f"{r['median_cpu']['screening']:.4f}", f"{r['median_cpu']['no screening']:.4f}",
             f"{r['median_cpu']['no screening'] / r['median_cpu']['screening']:.2f}x",
             max(r["screened_per_fit"]), r["d"]] for r in results]
    print(table(body, ["case", "alphas", "tol picked", "tol (scr.)", "tol (no scr.)", "s screening",
                       "s no screening", "speed-up", "CPU s scr.", "CPU s no scr.",
                       "CPU speed-up", "max rows screened", "d"]))


if __name__ == "__main__":
    main()
