"""l21 beyond ``solvers.py``'s shared-design squared loss (issue 14): logistic loss against
skglm, the School data (139 tasks of unequal sizes) against skglm, and the peak memory of
every fit.

* ``logistic``: mfeat pixels (2000 x 240, standardised), its 10 digits as 10 one-vs-rest
  binary tasks; F = (1/n) sum_{i,t} log(1 + exp(-s_it z_it)) + alpha sum_j ||W_j||_2
  (s = +-1, Z = X W + b; ``MultiTaskClassifier(penalty="l21")``'s objective). mtlclassic
  runs its default solver (``auto``: FISTA for logistic loss) and ``solver="bcd"``; skglm
  has no multi-task logistic, so it solves the same problem stacked: kron(I_T, X) (n T x
  d T, dense, as its LogisticGroup needs) with feature j's T weights as one group of
  ``WeightedGroupL2`` and one unpenalised indicator column per task for the intercepts,
  at alpha / T (its datafit averages over the n T stacked rows), by ``GroupProxNewton``
  (its ``GroupBCD`` took 5-10x longer in a trial run). Every 4th image (500 x 240: the
  stacked design is 5000 x 2410), at 0.1 and 0.01 alpha_max only (no path: skglm's
  solves take minutes each).
* ``School``: the first 60 of its 139 schools (one full-School fit took the working-set
  BCD 14-82 s at tol 1e-8 on this machine; skglm 0.7 s: the ladder of every tool at every
  tol on all 139 would take hours), 27 features, one task each
  (``load_school``'s
  wide form: Y (n, 139) unlabelled outside the pupil's school); F = sum_t 1/(2 n_t) ||y_t
  - X_t w_t - b_t||^2 + alpha sum_j ||W_j||_2 (``MultiTaskRegressor``'s objective with
  unequal task sizes). scikit-learn's and celer's MultiTaskLasso need one design for
  every task; skglm solves it stacked (block-diagonal sparse design, rows scaled by
  sqrt(n / n_t), per-school indicator columns unpenalised) with ``GroupBCD`` and
  ``QuadraticGroup``; mtlclassic runs ``auto`` (FISTA on one Gram matrix per task,
  ``_solver.TaskGramOracle``) and ``solver="bcd"`` (the working-set BCD on the wide form).

School at 0.1 and 0.01 alpha_max, and along a warm-started path of 10 alphas, timed as in
``solvers.py`` (each tool's tol ladder 1e-4 .. 1e-10, single runs; the headline is the time
to 1e-8 of the best objective, median of ``--repeat``; BLAS on 1 thread).

Memory: the peak of the memory traced by Python's ``tracemalloc`` (NumPy's and SciPy's
array buffers, Python objects; not buffers a native library allocates with malloc/new
directly) during one fit at the dense alpha, at each tool's tol of the headline, for
these cases and ``solvers.py``'s (mfeat, HOG, n<d), as a multiple of X's size (skglm's
logistic fit is left out: its Python-level loop runs too slowly under tracemalloc); tall X
with T = 10 (l21, the closed forms of ridge and graph, and the classifier's logistic l21
and trace by FISTA on the targets' signs -- above their medians -- at 0.01 of the logistic
alpha_max, tol 1e-6); and mfeat and HOG in float32 (as a multiple of the float32 X's
size), fitted by every mtlclassic solver: the working set, the closed forms of ridge and
graph, FISTA (l21), L-BFGS (ridge), the logistic l21 and trace fits above and the default
classifier (graph, L-BFGS, tol 1e-6) on the targets' signs.

    PYTHONPATH=. python benchmarks/solvers_more.py [--quick] [--repeat 5]
        [--data-home ../shared/data]

Writes results/solvers_more.json (not in --quick mode) and prints the tables.
"""

import argparse
import importlib.util
import os
import sys
import tracemalloc
import warnings

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import solvers as base  # noqa: E402
from _common import machine, read_json, table, write_json  # noqa: E402

from mtlclassic.multitask import MultiTaskClassifier, MultiTaskRegressor  # noqa: E402


# ---------------------------------------------------------------- logistic l21
def logistic_objective(X, Y, W, b, alpha):
    S = 2.0 * Y - 1.0
    return float(np.logaddexp(0.0, -S * (X @ W + b)).sum()) / len(X) \
        + alpha * float(np.sqrt((W * W).sum(1)).sum())


def logistic_alpha_max(X, Y):
    p0 = Y.mean(0)  # the intercept-only optimum: p = the label frequency
    return float(np.sqrt(((X.T @ (p0 - Y) / len(X)) ** 2).sum(1)).max())


def _mtl_path(cls, solver):
    """Driver: a warm-started l21 path of the estimator class ``cls`` with ``solver``."""
    def run(X, Y, alphas, tol, threads):
        est = cls(penalty="l21", solver=solver, tol=tol, max_iter=100000, warm_start=True,
                  n_jobs=threads)
        out = []
        for a in alphas:
            est.set_params(alpha=a).fit(X, Y)
            out.append((np.asarray(est.coef_).reshape(Y.shape[1], -1).T.copy(),
                        np.asarray(est.intercept_, dtype=float).ravel().copy()))
        return out
    return run


def _groups(d, T, extra):
    """skglm's group layout for stacked task blocks of d columns: group j = feature j's
    T columns (t d + j), then ``extra`` single-column groups (the task indicators)."""
    idx = np.concatenate([np.arange(T) * d + j for j in range(d)]
                         + [np.array([T * d + t]) for t in range(extra)]).astype(np.int32)
    ptr = np.concatenate([[0], np.cumsum([T] * d + [1] * extra)]).astype(np.int32)
    weights = np.concatenate([np.ones(d), np.zeros(extra)])
    return ptr, idx, weights


def _skglm_group(X_st, y_st, d, T, alphas, scale, datafit, solver):
    """Warm-started path of skglm's group solver on a stacked problem; the weights come
    back as (d, T) and the intercepts (T,) from the indicator columns."""
    from skglm.penalties import WeightedGroupL2

    ptr, idx, weights = _groups(d, T, T)
    w = np.zeros(X_st.shape[1])
    out = []
    for a in alphas:
        pen = WeightedGroupL2(alpha=a * scale, weights=weights, grp_ptr=ptr, grp_indices=idx)
        w = solver().solve(X_st, y_st, datafit(ptr, idx), pen, w_init=w.copy(),
                           Xw_init=X_st @ w)[0]
        out.append((w[:d * T].reshape(T, d).T.copy(), w[d * T:].copy()))
    return out


def _stack_logistic(X, Y):
    n, T = Y.shape
    X_st = np.hstack([np.kron(np.eye(T), X), np.kron(np.eye(T), np.ones((n, 1)))])
    return np.asfortranarray(X_st), (2.0 * Y.T.ravel() - 1.0)


def _skglm_logistic(solver_name):
    def run(X, Y, alphas, tol, threads):
        from skglm import solvers
        from skglm.datafits import LogisticGroup

        X_st, y_st = _stack_logistic(X, Y)
        cls = getattr(solvers, solver_name)
        if solver_name == "GroupBCD":
            make = lambda: cls(max_iter=1000, max_epochs=100000, tol=tol)  # noqa: E731
        else:
            make = lambda: cls(max_iter=1000, tol=tol)  # noqa: E731
        return _skglm_group(X_st, y_st, X.shape[1], Y.shape[1], alphas, 1.0 / Y.shape[1],
                            LogisticGroup, make)
    return run


# --------------------------------------------------------------------- School
def school_objective(X, Y, W, b, alpha):
    lab = ~np.isnan(Y)
    R = np.where(lab, np.nan_to_num(Y) - X @ W - b, 0.0)
    return 0.5 * float(np.sum((R * R).sum(0) / lab.sum(0))) \
        + alpha * float(np.sqrt((W * W).sum(1)).sum())


def school_alpha_max(X, Y):
    lab = ~np.isnan(Y)
    n_t = lab.sum(0)
    Rc = np.where(lab, np.nan_to_num(Y) - np.nansum(Y, 0) / n_t, 0.0) / n_t
    return float(np.sqrt(((X.T @ Rc) ** 2).sum(1)).max())


def _stack_school(X, Y):
    """Block-diagonal sparse design: pupil i of school t has its features in columns
    t d .. t d + d - 1 and a 1 in the indicator column T d + t; rows scaled by
    sqrt(n / n_t), so that skglm's 1/(2n) sum of squares is the per-school mean above."""
    n, d = X.shape
    T = Y.shape[1]
    lab = ~np.isnan(Y)
    task = lab.argmax(1)
    scale = np.sqrt(n / lab.sum(0))[task]
    rows = np.repeat(np.arange(n), d + 1)
    cols = np.concatenate([task[:, None] * d + np.arange(d)[None, :],
                           (T * d + task)[:, None]], axis=1).ravel()
    vals = (np.hstack([X, np.ones((n, 1))]) * scale[:, None]).ravel()
    X_st = sp.csc_matrix((vals, (rows, cols)), shape=(n, T * d + T))
    return X_st, Y[np.arange(n), task] * scale


def _skglm_school(X, Y, alphas, tol, threads):
    from skglm.datafits import QuadraticGroup
    from skglm.solvers import GroupBCD

    X_st, y_st = _stack_school(X, Y)
    return _skglm_group(X_st, y_st, X.shape[1], Y.shape[1], alphas, 1.0, QuadraticGroup,
                        lambda: GroupBCD(max_iter=1000, max_epochs=100000, tol=tol))


# ----------------------------------------------------------------------- runs
SCHOOLS = 60  # of 139: one full-School l21 fit at 1e-8 took mtlclassic 14-65 s here
CASES = {
    "logistic": dict(objective=logistic_objective, alpha_max=logistic_alpha_max,
                     drivers={"mtlclassic (auto)": _mtl_path(MultiTaskClassifier, "auto"),
                              "mtlclassic (bcd)": _mtl_path(MultiTaskClassifier, "bcd"),
                              "skglm GroupProxNewton": _skglm_logistic("GroupProxNewton")}),
    "School": dict(objective=school_objective, alpha_max=school_alpha_max,
                   drivers={"mtlclassic (auto)": _mtl_path(MultiTaskRegressor, "auto"),
                            "mtlclassic (bcd)": _mtl_path(MultiTaskRegressor, "bcd"),
                            "skglm GroupBCD": _skglm_school}),
}


def load_case(name, quick, data_home):
    if name == "logistic":  # every 4th image (500; skglm's stacked design is 10x X)
        from multitask_cpu import load_mfeat

        X, Y = load_mfeat()
        if X is None:
            return None
        return (X[::8], Y[::8]) if quick else (X[::4], Y[::4])
    from mtlclassic.datasets import load_school

    try:
        bunch = load_school(data_home=data_home)
    except (OSError, FileNotFoundError) as exc:
        print(f"School skipped: {exc}")
        return None
    X, Y = bunch.X_wide, bunch.Y_wide
    X = (X - X.mean(0)) / (X.std(0) + 1e-12)
    k = 30 if quick else SCHOOLS
    if k < Y.shape[1]:  # the first k schools
        keep = ~np.isnan(Y[:, :k]).all(1)
        X, Y = X[keep], Y[keep][:, :k]
    return X, Y


def peak_memory(fn):
    """Peak traced bytes (tracemalloc) during fn() above what was traced before."""
    tracemalloc.start()
    try:
        base_bytes = tracemalloc.get_traced_memory()[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn()
        return tracemalloc.get_traced_memory()[1] - base_bytes
    finally:
        tracemalloc.stop()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller cases, one repeat, no JSON")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--cases", default="logistic,School,memory")
    p.add_argument("--data-home", default=None)
    p.add_argument("--merge", action="store_true",
                   help="keep results/solvers_more.json's entries of the cases not run")
    a = p.parse_args(argv)
    repeat = 1 if a.quick else a.repeat
    wanted = a.cases.split(",")
    have_skglm = importlib.util.find_spec("skglm") is not None
    results, memory = [], []
    # --merge: the stored file is read now, before this run's first checkpoint overwrites
    # it (read at the end, it had become this run's own partial file: a run of
    # "logistic,School" lost every memory row)
    stored = read_json("solvers_more.json") if a.merge and not a.quick else None

    def save(complete):
        rs, ms = merged(results, memory, stored) if stored else (results, memory)
        return write_json("solvers_more.json", {
            "machine": machine(), "target": base.TARGET, "tols": base.TOLS, "repeat": repeat,
            "results": rs, "memory": ms, "complete": complete})

    for name in ("logistic", "School"):
        if name not in wanted:
            continue
        data = load_case(name, a.quick, a.data_home)
        if data is None:
            continue
        X, Y = data
        spec = CASES[name]
        drivers = {k: v for k, v in spec["drivers"].items()
                   if have_skglm or not k.startswith("skglm")}
        a_max = spec["alpha_max"](X, Y)
        settings = [("sparse (0.1 a_max)", [0.1 * a_max]),
                    ("dense (0.01 a_max)", [0.01 * a_max])]
        if name != "logistic":  # skglm's logistic path would take hours here
            settings.append(("path of 10", list(a_max * np.geomspace(1, 0.01, 10))))
        for setting, alphas in settings:
            r, tol_for = base.bench_case(name, X, Y, setting, alphas, 1, repeat, list(drivers),
                                         drivers=drivers, objective_fn=spec["objective"])
            results.append(r)
            if not a.quick:  # after every setting: a stopped run keeps its part
                save(False)
            print(f"{name} {X.shape[0]}x{X.shape[1]} T={Y.shape[1]} {setting}: "
                  + ", ".join(f"{k} {base._fmt(v)}" for k, v in r["time_to_target"].items()),
                  flush=True)
            if setting.startswith("dense") and "memory" in wanted:
                for label, tol in tol_for.items():
                    if label.startswith("skglm") and name == "logistic":
                        continue  # its Python loop under tracemalloc: far too slow
                    with threadpool_limits(limits=1, user_api="blas"):
                        peak = peak_memory(lambda: drivers[label](X, Y, alphas, tol, 1))
                    memory.append({"case": name, "solver": label, "tol": tol,
                                   "peak_bytes": peak, "x_bytes": X.nbytes})
    if "memory" in wanted:  # solvers.py's squared-loss cases
        rng = np.random.default_rng(0)
        cs = list(base.cases(a.quick, rng))
        # beyond them: tall X with T = 10 (where the (n, T) arrays, not X, set the peak:
        # l21, the closed form of ridge and of the default penalty) and float32 X (kept
        # float32 by the working-set solver)
        n_tall = 20000 if a.quick else 100000
        Xt = rng.standard_normal((n_tall, 20))
        cs.append(("tall (T = 10)", Xt, Xt[:, :10] @ rng.standard_normal((10, base.T))
                   + 0.5 * rng.standard_normal((n_tall, base.T))))
        cs += [(name + " float32", X.astype(np.float32), Y) for name, X, Y in cs[:2]]

        def closed(penalty):
            return lambda X, Y, alphas, tol, threads: MultiTaskRegressor(
                penalty=penalty, alpha=alphas[0], tol=tol).fit(X, Y)

        def other(penalty, solver):
            return lambda X, Y, alphas, tol, threads: MultiTaskRegressor(
                penalty=penalty, alpha=alphas[0], tol=tol, solver=solver,
                max_iter=100000).fit(X, Y)

        # the classifiers take the targets' signs, made before the traced fit (made in
        # it, their int64 array -- half of the tall X -- was counted as the fit's memory)
        def classifier(X, Y, alphas, tol, threads):  # the default one: graph, L-BFGS
            return MultiTaskClassifier(tol=tol).fit(X, Y)

        def signs(Y):
            return (Y > np.median(Y, axis=0)).astype(int)

        def logistic(penalty):  # FISTA on the targets' signs (alphas: the logistic ones)
            return lambda X, Y, alphas, tol, threads: MultiTaskClassifier(
                penalty=penalty, alpha=alphas[0], tol=tol, max_iter=100000).fit(X, Y)

        extra = {"mtlclassic ridge": closed("ridge"), "mtlclassic graph": closed("graph"),
                 "mtlclassic logistic l21": logistic("l21"),
                 "mtlclassic logistic trace": logistic("trace")}
        # float32 X: every solver keeps it float32 (the closed form, FISTA, L-BFGS; tol
        # 1e-6 for the classifier, where its L-BFGS iterates on a float32 copy)
        extra32 = dict(extra, **{"mtlclassic l21 fista": other("l21", "fista"),
                                 "mtlclassic ridge lbfgs": other("ridge", "lbfgs"),
                                 "mtlclassic classifier": classifier})
        for name, X, Y in cs:
            Yc = Y - Y.mean(0)
            a_max = float(np.sqrt(((X.T.astype(np.float64) @ Yc / X.shape[0]) ** 2)
                                  .sum(1)).max())
            # (outside the traced fit: its float64 product would be counted)
            Ys = signs(Y)
            a_log = logistic_alpha_max(X.astype(np.float64), Ys)
            drivers = dict(base.SOLVERS, **(extra if name.startswith("tall") else
                                            extra32 if X.dtype == np.float32 else {}))
            for label in drivers:
                if label in ("celer", "skglm") and importlib.util.find_spec(label) is None:
                    continue
                if not label.startswith("mtlclassic") and X.dtype == np.float32:
                    continue  # the peers' float32 solvers cannot reach tol 1e-8 (scikit-
                    # learn's ran on for minutes) and celer's takes float32 Y only
                tol = 1e-6 if label == "mtlclassic classifier" or "logistic" in label \
                    else 1e-8
                alphas = [0.01 * (a_log if "logistic" in label else a_max)]
                Yl = Ys if label == "mtlclassic classifier" or "logistic" in label else Y
                with threadpool_limits(limits=1, user_api="blas"):
                    # one untraced fit on a few rows first: a JIT compilation (skglm's
                    # numba) or a first import is not the fit's memory (skglm's mfeat row
                    # read 5.35x or 15.6x X by whether numba's cache was warm)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        drivers[label](X[:200], Yl[:200], alphas, tol, 1)
                    peak = peak_memory(lambda: drivers[label](X, Yl, alphas, tol, 1))
                memory.append({"case": name, "solver": label, "tol": tol,
                               "peak_bytes": peak, "x_bytes": X.nbytes,
                               "x_dtype": str(X.dtype), "y_bytes": 8 * Y.size})
            print(f"memory {name} done", flush=True)
        # sub-tasks about as many as the features: 3 tasks of 92 classes (276 one-vs-rest
        # sub-tasks) and 276 regression tasks on 8,000 x 256 -- every (n, T') array is
        # then X's size, and the solvers' maps, not X, set the peak
        nw, dw, k = (2000, 64, 23) if a.quick else (8000, 256, 92)
        Xw = rng.standard_normal((nw, dw))
        Zw = Xw @ rng.standard_normal((dw, 3 * k))
        Yw_cls = np.stack([Zw[:, k * j:k * (j + 1)].argmax(axis=1) for j in range(3)], axis=1)
        Yw_reg = Xw @ rng.standard_normal((dw, 3 * k)) + rng.standard_normal((nw, 3 * k))
        wide = {
            "mtlclassic classifier": (lambda: MultiTaskClassifier(tol=1e-6), Yw_cls),
            "mtlclassic classifier ridge": (
                lambda: MultiTaskClassifier(penalty="ridge", tol=1e-6), Yw_cls),
            # (its peak is reached in the first iterations: every iteration holds the same
            # arrays; to tol 1e-6 the fit takes minutes under tracemalloc)
            "mtlclassic logistic l21 (50 iterations)": (
                lambda: MultiTaskClassifier(penalty="l21", alpha=1e-3, max_iter=50), Yw_cls),
            "mtlclassic (auto)": (
                lambda: MultiTaskRegressor(penalty="l21", alpha=0.01, tol=1e-8), Yw_reg),
            "mtlclassic graph": (lambda: MultiTaskRegressor(tol=1e-8), Yw_reg),
            "mtlclassic ridge": (
                lambda: MultiTaskRegressor(penalty="ridge", alpha=0.01, tol=1e-8), Yw_reg),
        }
        name = f"many sub-tasks (T' = {3 * k})"
        for label, (make, Yl) in wide.items():
            with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # (the 50-iteration fit: not converged)
                make().fit(Xw[:200], Yl[:200])
                peak = peak_memory(lambda: make().fit(Xw, Yl))
            memory.append({"case": name, "solver": label, "tol": make().tol,
                           "peak_bytes": peak, "x_bytes": Xw.nbytes,
                           "x_dtype": str(Xw.dtype), "y_bytes": 8 * Yl.size})
        print(f"memory {name} done", flush=True)

    print(f"\nseconds to F within {base.TARGET:g} (relative) of the best objective "
          f"(median of {repeat}), BLAS on 1 thread")
    body = []
    for r in results:
        tt = r["time_to_target"]
        ours = tt.get("mtlclassic (auto)")
        others = [v for k, v in tt.items() if k.startswith("skglm") and v is not None]
        body.append([f"{r['case']} {r['n']}x{r['d']} T={r['T']}", r["setting"]]
                    + [f"{base._fmt(v)} (tol {r['tol_used'].get(k, float('nan')):g})"
                       if v is not None else "not reached" for k, v in tt.items()]
                    + [f"{min(others) / ours:.2f}x" if ours and others else "-"])
    for case in ("logistic", "School"):
        rows = [b for b, r in zip(body, results) if r["case"] == case]
        if rows:
            labels = list(next(r for r in results if r["case"] == case)["time_to_target"])
            print(table(rows, ["case", "alphas"] + labels + ["faster skglm / ours (auto)"]))
    if memory:
        print("\npeak traced memory of one fit at the dense alpha (MB; x X's size)")
        print(table([[m["case"], m["solver"], f"{m['tol']:g}", f"{m['peak_bytes'] / 1e6:.1f}",
                      f"{m['peak_bytes'] / m['x_bytes']:.2f}x"] for m in memory],
                    ["case", "solver", "tol", "peak MB", "/ X bytes"]))
    if not a.quick:
        print("wrote", save(True))
    return 0


def merged(results, memory, old):
    """This run's results and memory rows, plus the rows of ``old`` (the stored file, read
    before the run) of the cases this run did not measure."""
    have, mem = {r["case"] for r in results}, {m["case"] for m in memory}
    return ([r for r in old.get("results", []) if r["case"] not in have] + results,
            [m for m in old.get("memory", []) if m["case"] not in mem] + memory)


if __name__ == "__main__":
    sys.exit(main())
