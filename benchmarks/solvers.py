"""l21 (FISTA with the duality-gap stop) against scikit-learn's MultiTaskLasso (coordinate
descent, duality-gap stop) at equal tol (issue 14, item 5; celer and skglm are used when
installed, else skipped and said so).

Both stop on a duality gap: MultiTaskLasso when gap <= tol * ||Y - mean(Y)||_F^2 (its
objective times n), mtlclassic when gap <= tol * min_b F(0, b) = tol * ||Y - mean(Y)||^2 /
(2n) -- twice as strict at the same tol. Reported: fit time, iterations, both objectives in
mtlclassic's scaling (F = ||Y - XW - b||^2 / (2n) + alpha sum_j ||W_j||) and their gap to the
best of the two. Writes results/solvers.json.

    PYTHONPATH=. python benchmarks/solvers.py
"""

import importlib.util
import time
import warnings

import numpy as np
from sklearn.linear_model import MultiTaskLasso

from _common import machine, table, write_json  # noqa: E402
from mtlclassic.multitask import MultiTaskRegressor


def problems(rng):
    n, d, T = 500, 2000, 10  # n < d: FISTA on the data (two GEMMs per iteration)
    X = rng.standard_normal((n, d))
    W = np.zeros((d, T))
    W[:30] = rng.standard_normal((30, T))
    yield "n<d: 500 x 2000, T 10, 30 active rows", X, X @ W + rng.standard_normal((n, T))
    n, d = 3000, 300  # n >= d: FISTA on the Gram matrix
    X = rng.standard_normal((n, d)) @ (np.eye(d) + 0.2 * rng.standard_normal((d, d)))
    W = np.zeros((d, T))
    W[:20] = rng.standard_normal((20, T))
    yield "n>d: 3000 x 300 correlated, T 10, 20 active rows", X, X @ W + \
        rng.standard_normal((n, T))


def objective(X, Y, W, b, alpha):
    R = Y - X @ W - b
    return 0.5 * float(np.sum(R * R)) / len(X) + alpha * float(np.sqrt((W * W).sum(1)).sum())


def main():
    rng = np.random.default_rng(0)
    rows, out = [], []
    missing = [m for m in ("celer", "skglm") if importlib.util.find_spec(m) is None]
    for name, X, Y in problems(rng):
        Yc = Y - Y.mean(axis=0)
        a_max = np.sqrt(((X.T @ Yc / len(X)) ** 2).sum(axis=1)).max()
        for frac in (0.1, 0.02):
            alpha = frac * a_max
            for tol in (1e-4, 1e-6):
                res = {}
                for label, est in (("mtlclassic l21", MultiTaskRegressor(
                        penalty="l21", alpha=alpha, tol=tol, max_iter=100000)),
                                   ("MultiTaskLasso", MultiTaskLasso(
                                       alpha=alpha, tol=tol, max_iter=100000))):
                    t = time.perf_counter()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        est.fit(X, Y)
                    dt = time.perf_counter() - t
                    F = objective(X, Y, est.coef_.T, est.intercept_, alpha)
                    res[label] = (dt, int(np.max(est.n_iter_)), F)
                best = min(r[2] for r in res.values())
                for label, (dt, it, F) in res.items():
                    rows.append([name, f"{frac:g} a_max", f"{tol:g}", label, f"{dt:.2f}", it,
                                 f"{(F - best) / (0.5 * np.sum(Yc * Yc) / len(X)):.1e}"])
                    out.append({"problem": name, "alpha": alpha, "tol": tol, "solver": label,
                                "s": dt, "n_iter": it, "objective": F})
    print(table(rows, ["problem", "alpha", "tol", "solver", "s", "iter",
                       "(F - best) / F0"]))
    if missing:
        print(f"skipped (not installed): {', '.join(missing)}")
    write_json("solvers.json", {"machine": machine(), "rows": out, "skipped": missing})


if __name__ == "__main__":
    main()
