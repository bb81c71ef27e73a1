"""Dask-distributed fits against the number of rows (issue 16, item 4).

A LocalCluster of 2 worker processes (1 thread each, a memory limit each) holds X (n, 512)
float32 and Y (n, 4), generated lazily on the workers (random features; 10 % of the labels
missing, so that every FISTA iteration makes passes over the blocks instead of the Gram
form's none). For each n: a fresh cluster, X and Y persisted, then

* MultiTaskRegressor(penalty="l21") and MultiTaskClassifier(penalty="l21") (labels: the sign
  of the targets) fitted on the dask arrays, at most ``max_iter`` FISTA iterations: the
  fit's wall time, its setup (input checks and label statistics, encoding, the Lipschitz
  bound: one pass summing the (d + 1)^2 matrix, and for logistic loss the local constants
  with it) and the **time per FISTA iteration** (time inside FISTA / its
  iterations; an iteration is one round trip -- the candidate's loss and the next
  extrapolated point's loss and gradient -- plus a duality gap every 5th), which should
  grow linearly in n while the blocks fit in the workers' memory, and by the disk's speed
  beyond (spilled blocks are read back on every pass);
* the same squared-loss model in its default form for missing labels: the per-task Gram
  matrices (T (d, d)) summed over the blocks in two passes, FISTA on the client with no
  pass per iteration (row "squared, task Gram"; the row "squared" switches it off);
* the **peak resident memory of each worker process** (ru_maxrss, fresh processes per n)
  next to the data it holds (X and Y blocks, n * 512 * 4 / 2 bytes), and the client's peak
  (one process for the whole run), which should stay flat: nothing is gathered;
* the anchor (when dask-ml is installed and n <= ``anchor_max``): dask-ml's
  LinearRegression / LogisticRegression (dask-glm, solver "gradient_descent", one task)
  for ``anchor_iter`` iterations on the same cluster: its time per iteration for one
  task against mtlclassic's per iteration for T = 4 tasks divided by 4 ("per
  task-iteration").

Medians of ``repeat`` fits per size. Writes results/dask_scale.json.

    PYTHONPATH=. python benchmarks/dask_scale.py            # 1e5, 1e6, 3e6 rows
    PYTHONPATH=. python benchmarks/dask_scale.py --quick    # 1e5, 2e5 rows (a minute)
    PYTHONPATH=. python benchmarks/dask_scale.py --sizes 1e5,1e6,3e6 --lazy --repeat 1 \
        --max-iter 10 --memory-limit 1.5GiB   # 6 GB: twice the cluster's memory, spilled
"""

import argparse
import os
import resource
import statistics
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dask  # noqa: E402
import dask.array as da  # noqa: E402
from distributed import Client, LocalCluster, wait  # noqa: E402

from _common import machine, read_json, table, write_json  # noqa: E402
from mtlclassic.multitask import MultiTaskClassifier, MultiTaskRegressor, _solver  # noqa: E402
from mtlclassic.multitask import _dask  # noqa: E402

D, T = 512, 4
TASK_GRAM = _dask.DaskOracle.task_gram_max_entries


def models_of(result):
    return [k for k in ("squared", "logistic", "squared, task Gram") if k in result]


def make_data(n, chunk, seed=0):
    """X (n, D) float32 N(0, 1); Y = X W + noise with 32 active rows of W, 10 % NaN."""
    rng = da.random.default_rng(seed)
    X = rng.standard_normal((n, D), chunks=(chunk, D), dtype=np.float32)
    W = np.zeros((D, T), dtype=np.float32)
    W[:32] = np.random.default_rng(seed).standard_normal((32, T)) / np.sqrt(32)
    Y = X @ W + rng.standard_normal((n, T), chunks=(chunk, T), dtype=np.float32)
    Y = da.where(rng.random((n, T), chunks=(chunk, T)) < 0.1, np.nan, Y)
    return X, Y.astype(np.float64)


class FistaTimer:
    """Wraps _solver.fista to time the iterations apart from the fit's setup."""

    def __enter__(self):
        self.orig, self.seconds = _solver.fista, 0.0

        def timed(*a, **k):
            t = time.perf_counter()
            res = self.orig(*a, **k)
            self.seconds += time.perf_counter() - t
            return res

        _solver.fista = timed
        return self

    def __exit__(self, *exc):
        _solver.fista = self.orig


def worker_peaks(client):
    """Peak resident bytes of each worker process (fresh processes for each size)."""
    def peak():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return sorted(client.run(peak).values())


def held_bytes(client):
    def held(dask_worker):
        from dask.sizeof import sizeof

        data = dask_worker.data
        return sum(sizeof(v) for v in getattr(data, "fast", data).values())
    return sorted(client.run(held).values())


def fit_once(make_est, X, Y):
    with FistaTimer() as timer, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter caps the larger fits (ConvergenceWarning)
        t = time.perf_counter()
        est = make_est().fit(X, Y)
        total = time.perf_counter() - t
    return {"fit_s": total, "setup_s": total - timer.seconds,
            "per_iter_s": timer.seconds / max(est.n_iter_, 1), "n_iter": int(est.n_iter_),
            "converged": bool(est.dual_gap_ <= est.tol * est._null_scale_)}


def anchor(X, Y, kind, n_iter):
    """dask-ml's one-task model, ``n_iter`` gradient-descent iterations: seconds each."""
    from dask_ml.linear_model import LinearRegression, LogisticRegression

    y = da.nan_to_num(Y[:, 0])
    if kind == "logistic":
        est, y = LogisticRegression(solver="gradient_descent", max_iter=n_iter, tol=0.0), y > 0
    else:
        est = LinearRegression(solver="gradient_descent", max_iter=n_iter, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        est.fit(X, y)
        return (time.perf_counter() - t) / n_iter


def run_size(n, args):
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           memory_limit=args.memory_limit, dashboard_address=None)
    client = Client(cluster)
    try:
        X, Y = make_data(n, args.chunk)
        gen_s = held = None
        if args.persist:
            t = time.perf_counter()
            X, Y = client.persist([X, Y])
            wait([X, Y])
            gen_s = time.perf_counter() - t
            held = held_bytes(client)
        alpha = 0.05
        models = {
            "squared": lambda: MultiTaskRegressor(penalty="l21", alpha=alpha, tol=1e-4,
                                                  max_iter=args.max_iter),
            "logistic": lambda: MultiTaskClassifier(penalty="l21", alpha=alpha / 10,
                                                    tol=1e-4, max_iter=args.max_iter),
            "squared, task Gram": lambda: MultiTaskRegressor(penalty="l21", alpha=alpha,
                                                             tol=1e-4,
                                                             max_iter=args.max_iter),
        }
        Ylab = {"squared": Y, "logistic": da.where(da.isnan(Y), np.nan, (Y > 0) * 1.0),
                "squared, task Gram": Y}
        out = {"n": n, "data_gb": (X.nbytes + Y.nbytes) / 1e9, "generate_s": gen_s,
               "held_bytes_per_worker": held}
        for kind, make_est in models.items():
            if kind not in args.models:
                continue
            # "squared": FISTA on the blocks (a pass per iteration), the per-task Gram form
            # (the default for missing labels) switched off; "squared, task Gram": the default
            _dask.DaskOracle.task_gram_max_entries = 0 if kind == "squared" else TASK_GRAM
            runs = [fit_once(make_est, X, Ylab[kind]) for _ in range(args.repeat)]
            res = {k: statistics.median(r[k] for r in runs)
                   for k in ("fit_s", "setup_s", "per_iter_s")}
            res.update(n_iter=runs[0]["n_iter"], converged=runs[0]["converged"])
            if args.anchor and n <= args.anchor_max and kind != "squared, task Gram":
                a = anchor(X, Y, kind, args.anchor_iter)
                res.update(daskml_per_iter_s=a,
                           ratio_daskml_per_task_iter=a / (res["per_iter_s"] / T))
            res["worker_peak_rss_bytes"] = worker_peaks(client)  # this cluster's, so far
            out[kind] = res
            args.checkpoint(out)  # a run killed later keeps this model's figures
        out["worker_peak_rss_bytes"] = worker_peaks(client)
        out["client_peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return out
    finally:
        client.close()
        cluster.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1e5 and 2e5 rows, 1 repeat")
    ap.add_argument("--sizes", default=None, help="comma-separated row counts (1e5,1e6)")
    ap.add_argument("--memory-limit", default=None, help="per worker (default 5GiB, quick 1GiB)")
    ap.add_argument("--chunk", type=int, default=50_000, help="rows per block")
    ap.add_argument("--max-iter", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--anchor-iter", type=int, default=5)
    ap.add_argument("--anchor-max", type=float, default=1e6)
    ap.add_argument("--no-anchor", dest="anchor", action="store_false")
    ap.add_argument("--out", default="dask_scale.json", help="results/ file name")
    ap.add_argument("--models", default="squared,logistic,taskgram",
                    help="which fits (squared, logistic, taskgram: 'squared, task Gram')")
    ap.add_argument("--merge", action="store_true",
                    help="keep the other models' figures of the same sizes in --out (a size's "
                         "models run in separate invocations, each on a fresh cluster)")
    ap.add_argument("--lazy", dest="persist", action="store_false",
                    help="pass the lazy arrays (the fit persists its blocks once; every "
                         "fit generates the data anew): for data beyond the cluster's memory")
    args = ap.parse_args()
    sizes = args.sizes or ("1e5,2e5" if args.quick else "1e5,1e6,3e6")
    sizes = [int(float(s)) for s in sizes.split(",")]
    args.memory_limit = args.memory_limit or ("1GiB" if args.quick else "5GiB")
    names = {"squared": "squared", "logistic": "logistic", "taskgram": "squared, task Gram"}
    args.models = [names[m] for m in args.models.split(",")]
    stored = read_json(args.out) if args.merge else None  # where write_json writes
    earlier = {r["n"]: r for r in stored["results"]} if stored else {}

    def merged(r):
        """r with the earlier run's figures for the models not run now (its peaks the
        larger of the two runs', each model's own peak in its entry)."""
        old = earlier.get(r["n"])
        if old is None:
            return r
        out = {**old, **{k: v for k, v in r.items() if k not in names.values() or
                         k in args.models}}
        for k in ("worker_peak_rss_bytes", "client_peak_rss_bytes"):
            if k in old and k in r:
                out[k] = np.maximum(old[k], r[k]).tolist() if isinstance(old[k], list) \
                    else max(old[k], r[k])
        out["merged_runs"] = old.get("merged_runs", 1) + 1
        return out
    args.repeat = args.repeat or (1 if args.quick else 3)
    try:
        import dask_ml  # noqa: F401
    except ImportError:
        args.anchor = False
        print("dask-ml not installed: no anchor")
    rows, results = [], []
    config = {"d": D, "T": T, "chunk_rows": args.chunk, "workers": 2,
              "threads_per_worker": 1, "memory_limit": args.memory_limit,
              "max_iter": args.max_iter, "repeat": args.repeat, "quick": args.quick,
              "anchor_iter": args.anchor_iter, "missing_labels": 0.1,
              "persisted_before_fit": args.persist}
    def checkpoint(partial):
        if not args.quick:
            write_json(args.out, {"machine": machine(), "dask": dask.__version__,
                                  "config": config,
                                  "results": [merged(r) for r in results + [partial]],
                                  "complete": False})

    args.checkpoint = checkpoint
    for n in sizes:
        r = merged(run_size(n, args))
        results.append(r)
        if not args.quick:  # after every size: a stopped run keeps its part
            write_json(args.out, {"machine": machine(), "dask": dask.__version__,
                                           "config": config, "results": results,
                                           "complete": False})
        for kind in models_of(r):
            m = r[kind]
            rows.append([f"{n:.0e}", f"{r['data_gb']:.2f}", kind, m["n_iter"],
                         f"{m['fit_s']:.1f}", f"{m['setup_s']:.1f}",
                         f"{1e3 * m['per_iter_s']:.0f}",
                         f"{1e3 * m['per_iter_s'] / n * 1e6:.0f}",
                         f"{max(r['worker_peak_rss_bytes']) / 2**30:.2f}",
                         f"{max(r['held_bytes_per_worker']) / 2**30:.2f}"
                         if r["held_bytes_per_worker"] else "(lazy)",
                         f"{r['client_peak_rss_bytes'] / 2**30:.2f}",
                         f"{m['ratio_daskml_per_task_iter']:.1f}"
                         if "ratio_daskml_per_task_iter" in m else "-"])
        print(f"n = {n:.0e} done", flush=True)
    print(table(rows, ["n", "GB", "loss", "iters", "fit s", "setup s", "ms/iter",
                       "ms/iter per 1e6 rows", "worker peak GiB", "worker data GiB",
                       "client peak GiB", "dask-ml / ours per task-iter"]))
    first, last = results[0], results[-1]
    for kind in ("squared", "logistic"):
        if len(results) < 2:
            break
        scale = last["n"] / first["n"]
        ratio = last[kind]["per_iter_s"] / first[kind]["per_iter_s"]
        print(f"{kind}: time per iteration x{ratio:.1f} for x{scale:.0f} rows")
    path = write_json(args.out, {"machine": machine(), "dask": dask.__version__,
                                          "config": config, "results": results,
                                          "complete": True})
    print("wrote", path)


if __name__ == "__main__":
    main()
