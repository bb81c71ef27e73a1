"""GPU benchmarks (issue: GPU path): feature kernels and the multi-task solver.

Features -- HOG, LBP and GLCM on 4096 images of 128x128 and 512 of 512x512 (uint8, grey),
GaborBank (16 filters, direct convolutions) on an eighth of those batches: the CUDA kernels
(device-resident input, CUDA-event timing) vs the native kernels with 1 thread (timed on an
eighth of the batch and scaled) and all threads of this machine vs scikit-image (timed on a
subset, per image, and scaled), and the floor: images read + float32 features written over
the device-to-device copy bandwidth measured in the same run (GLCM's count matrices and
Gabor's padded images and magnitudes are scratch the floor does not count).

Solver -- logistic loss, ``graph`` and ``l21`` penalties, n = 200 000, d = 2 048, 64
sub-tasks (float32 on the GPU): time per FISTA iteration vs the time of its two GEMMs
(X W and X^T G, measured in the same run), and full fits GPU vs the CPU path (the CPU
path is timed on a fixed number of iterations and its per-iteration time reported with
the ratio; a full CPU fit at this size takes too long for the check script).

    python benchmarks/gpu.py [--quick] [--skip-solver] [--skip-features]
                             [--descriptors HOG LBP GLCM Gabor]

Writes benchmarks/results/gpu.json (or $MTLCLASSIC_RESULTS) with the device name and
versions, and gpu_features.png / gpu_solver.png when matplotlib is installed.
"""

import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import gpu_event_time, machine, median_time, table, write_json  # noqa: E402

from mtlclassic.backend import cuda_status, effective_n_threads  # noqa: E402
from mtlclassic.features import GLCM, HOG, LBP, GaborBank  # noqa: E402

# name -> (transformer factory, batch divisor: the batch and the scikit-image subset are
# divided by it for descriptors that cost much more per image)
DESCRIPTORS = {
    "HOG": (lambda: HOG(orientations=9, pixels_per_cell=8, cells_per_block=3), 1),
    "LBP": (lambda: LBP(P=8, R=1, method="uniform", grid=4), 1),
    "GLCM": (lambda: GLCM(), 1),  # 32 levels, distance 1, 4 angles, 6 properties
    "Gabor": (lambda: GaborBank(), 8),  # 4 frequencies x 4 orientations, grid 1
}


def copy_bandwidth(cp, nbytes=1 << 30):
    a = cp.empty(nbytes // 4, dtype=cp.float32)
    b = cp.empty_like(a)
    t = gpu_event_time(lambda: b.__setitem__(Ellipsis, a), repeat=10)
    return 2 * a.nbytes / t  # read + write


def bench_features(cp, sizes, skimage_images, repeat, descriptors=tuple(DESCRIPTORS)):
    bw = copy_bandwidth(cp)
    rows = []
    rng = np.random.default_rng(0)
    for n_all, side in sizes:
        x_all = rng.integers(0, 256, (n_all, side, side), dtype=np.uint8)
        for name in descriptors:
            make, div = DESCRIPTORS[name]
            est = make()
            n = max(1, n_all // div)
            x = x_all[:n]
            xd = cp.asarray(x)
            est.fit(x[:1])
            nf = est.n_features_out_
            t_gpu = gpu_event_time(lambda: est.transform(xd), repeat=repeat, warmup=2)
            est.set_params(n_jobs=1)
            k = max(1, n // 8)  # 1-thread native on an eighth of the batch, scaled
            t_1 = median_time(lambda: est.transform(x[:k]), repeat=3) * n / k
            est.set_params(n_jobs=-1)
            t_all = median_time(lambda: est.transform(x), repeat=3)
            est.set_params(backend="skimage")
            m = max(1, min(skimage_images // div, n))
            t_sk = median_time(lambda: est.transform(x[:m]), repeat=1, warmup=0) * n / m
            est.set_params(backend="auto", n_jobs=None)
            moved = x.nbytes + n * nf * 4  # images read once, float32 features written
            floor = moved / bw
            rows.append({"descriptor": name, "n": n, "size": side, "gpu_s": t_gpu,
                         "native_1t_s": t_1, "native_all_s": t_all,
                         "threads_all": effective_n_threads(-1), "skimage_s": t_sk,
                         "floor_s": floor, "gpu_over_floor": t_gpu / floor,
                         "speedup_vs_native_all": t_all / t_gpu,
                         "speedup_vs_skimage": t_sk / t_gpu,
                         "gpu_images_per_s": n / t_gpu, "native_all_images_per_s": n / t_all,
                         "native_1t_images_per_s": n / t_1, "skimage_images_per_s": n / t_sk,
                         "copy_bandwidth_GBps": bw / 1e9})
            print(f"{name} {n}x{side}^2: gpu {t_gpu * 1e3:.2f} ms, floor {floor * 1e3:.2f} ms, "
                  f"native all {t_all:.3f} s, skimage {t_sk:.1f} s", flush=True)
    return rows


def make_problem(n, d, T, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d), dtype=np.float32)
    W = (rng.standard_normal((d, 1)) + 0.5 * rng.standard_normal((d, T))).astype(np.float32)
    W[rng.random(d) < 0.8] = 0  # sparse rows: something for l21 to find
    Z = X @ W / np.sqrt(d * 0.2)
    Y = (Z + rng.standard_normal(Z.shape, dtype=np.float32) > 0).astype(np.int8)
    return X, Y


def bench_solver(cp, n, d, T, cpu_iters, max_iter):
    from mtlclassic.multitask import MultiTaskClassifier

    X, Y = make_problem(n, d, T)
    Xd = cp.asarray(X)
    rows = []
    G = cp.asarray(np.random.default_rng(1).standard_normal((n, T), dtype=np.float32))
    Wd = cp.zeros((d, T), dtype=cp.float32)
    t_gemm = gpu_event_time(lambda: (Xd @ Wd, Xd.T @ G), repeat=10)
    for penalty in ("graph", "l21"):
        kw = dict(penalty=penalty, alpha=1e-4, l2=1e-6, tol=1e-4, task_relation=None)
        est = MultiTaskClassifier(max_iter=max_iter, **kw)
        cp.cuda.get_current_stream().synchronize()
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(Xd, Y)
        cp.cuda.get_current_stream().synchronize()
        t_fit = time.perf_counter() - t0
        it_gpu = est.n_iter_
        cpu = MultiTaskClassifier(max_iter=cpu_iters, device="cpu", **kw)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cpu.fit(X, Y)
        t_cpu = time.perf_counter() - t0
        per_gpu, per_cpu = t_fit / it_gpu, t_cpu / cpu.n_iter_
        rows.append({"penalty": penalty, "n": n, "d": d, "subtasks": T, "gpu_fit_s": t_fit,
                     "gpu_iters": it_gpu, "gpu_s_per_iter": per_gpu, "two_gemms_s": t_gemm,
                     "iter_over_gemms": per_gpu / t_gemm, "cpu_iters": cpu.n_iter_,
                     "cpu_s_per_iter": per_cpu, "speedup_per_iter": per_cpu / per_gpu,
                     "cpu_fit_projected_s": per_cpu * it_gpu,
                     "speedup_fit_projected": per_cpu * it_gpu / t_fit})
        print(f"{penalty}: gpu fit {t_fit:.2f} s ({it_gpu} it, {per_gpu * 1e3:.2f} ms/it, two "
              f"GEMMs {t_gemm * 1e3:.2f} ms); cpu {per_cpu * 1e3:.1f} ms/it", flush=True)
    return rows


def plot(feats, solver, out_dir):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    paths = []
    if feats:
        fig, ax = plt.subplots(figsize=(7, 4))
        labels = [f"{r['descriptor']} {r['n']}x{r['size']}" for r in feats]
        xs = np.arange(len(feats))
        for i, (key, lab) in enumerate([("gpu_s", "GPU"), ("floor_s", "GPU floor"),
                                        ("native_all_s", "native, all threads"),
                                        ("native_1t_s", "native, 1 thread"),
                                        ("skimage_s", "scikit-image")]):
            ax.bar(xs + 0.16 * (i - 2), [r[key] for r in feats], 0.16, label=lab)
        ax.set_yscale("log")
        ax.set_xticks(xs, labels)
        ax.set_ylabel("seconds per batch")
        ax.legend(fontsize=8)
        paths.append(os.path.join(out_dir, "gpu_features.png"))
        fig.tight_layout()
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)
    if solver:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        xs = np.arange(len(solver))
        ax.bar(xs - 0.2, [r["gpu_s_per_iter"] for r in solver], 0.4, label="GPU iteration")
        ax.bar(xs + 0.2, [r["two_gemms_s"] for r in solver], 0.4, label="its two GEMMs")
        ax.set_xticks(xs, [r["penalty"] for r in solver])
        ax.set_ylabel("seconds")
        ax.legend()
        paths.append(os.path.join(out_dir, "gpu_solver.png"))
        fig.tight_layout()
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)
    return paths


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    p.add_argument("--skip-features", action="store_true")
    p.add_argument("--skip-solver", action="store_true")
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--descriptors", nargs="+", choices=tuple(DESCRIPTORS),
                   default=list(DESCRIPTORS), help="feature kernels to time (default: all)")
    a = p.parse_args(argv)
    ok, reason = cuda_status()
    if not ok:
        print(f"benchmarks/gpu.py needs a GPU: {reason}", file=sys.stderr)
        return 2
    import cupy as cp

    if a.quick:
        sizes, sk, solver = [(256, 128), (32, 512)], 8, (20000, 256, 8, 3, 200)
    else:
        sizes, sk, solver = [(4096, 128), (512, 512)], 32, (200000, 2048, 64, 3, 300)
    feats = [] if a.skip_features else bench_features(cp, sizes, sk, a.repeat, a.descriptors)
    solv = [] if a.skip_solver else bench_solver(cp, *solver)
    dev = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
    payload = {"machine": machine(), "device": dev["name"].decode(), "features": feats,
               "solver": solv, "quick": a.quick}
    path = write_json("gpu.json", payload)
    out_dir = os.path.dirname(path)
    if feats:
        print(table([[r["descriptor"], f"{r['n']}x{r['size']}", f"{r['gpu_s'] * 1e3:.2f}",
                      f"{r['gpu_images_per_s']:,.0f}", f"{r['native_all_images_per_s']:,.0f}",
                      f"{r['skimage_images_per_s']:,.1f}", f"{r['gpu_over_floor']:.2f}",
                      f"{r['speedup_vs_native_all']:.1f}", f"{r['speedup_vs_skimage']:.0f}"]
                     for r in feats],
                    ["descriptor", "batch", "GPU ms", "GPU img/s", "native (all) img/s",
                     "skimage img/s", "x floor", "x native (all)", "x skimage"]))
    if solv:
        print(table([[r["penalty"], f"{r['gpu_s_per_iter'] * 1e3:.2f}",
                      f"{r['iter_over_gemms']:.2f}", f"{r['speedup_per_iter']:.1f}",
                      f"{r['gpu_fit_s']:.2f}"] for r in solv],
                    ["penalty", "ms / iter", "x two GEMMs", "x CPU per iter", "GPU fit s"]))
    print("wrote", path, *plot(feats, solv, out_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
