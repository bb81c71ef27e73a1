"""L2,1 prox kernel: native C++ (1 thread, all threads) vs the NumPy reference; on a GPU,
the CUDA kernel vs the same reference on CuPy and vs its bandwidth floor (bytes read +
written over the device-to-device copy bandwidth measured in the same run).

    python benchmarks/prox.py [--rows N] [--cols T] [--gpu-rows N] [--repeat R]

Writes benchmarks/results/prox_<cpu|gpu>.json (or $MTLCLASSIC_RESULTS) and prints a table.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import gpu_event_time, machine, median_time, table, write_json  # noqa: E402

from mtlclassic.backend import cuda_available, effective_n_threads, kernels  # noqa: E402
from mtlclassic.backend.reference import prox_l21_reference  # noqa: E402


def tau_for(W):
    return float(np.median(np.linalg.norm(W, axis=1)))


def bench_cpu(rows, cols, repeat):
    rng = np.random.default_rng(0)
    out = []
    for dtype in (np.float32, np.float64):
        W = rng.standard_normal((rows, cols)).astype(dtype)
        tau = tau_for(W)
        res = np.empty_like(W)
        t_ref = median_time(lambda: prox_l21_reference(W, tau), repeat)
        t1 = median_time(lambda: kernels.prox_l21(W, tau, out=res, n_jobs=1), repeat)
        tall = median_time(lambda: kernels.prox_l21(W, tau, out=res, n_jobs=-1), repeat)
        out.append({"dtype": np.dtype(dtype).name, "rows": rows, "cols": cols,
                    "numpy_ref_s": t_ref, "native_1t_s": t1, "native_all_s": tall,
                    "threads_all": effective_n_threads(-1),
                    "speedup_1t_vs_numpy": t_ref / t1, "speedup_all_vs_1t": t1 / tall})
    return out


def bench_gpu(rows, cols):
    import cupy as cp

    rng = np.random.default_rng(0)
    out = []
    for dtype in (np.float32, np.float64):
        W = cp.asarray(rng.standard_normal((rows, cols)).astype(dtype))
        tau = float(cp.median(cp.linalg.norm(W, axis=1)))
        res = cp.empty_like(W)
        t_kernel = gpu_event_time(lambda: kernels.prox_l21(W, tau, out=res))
        t_ref = gpu_event_time(lambda: prox_l21_reference(W, tau))
        t_copy = gpu_event_time(lambda: res.__setitem__(Ellipsis, W))
        nbytes = 2 * W.nbytes  # read W once, write out once
        bw = nbytes / t_copy
        out.append({"dtype": np.dtype(dtype).name, "rows": rows, "cols": cols,
                    "cuda_kernel_s": t_kernel, "cupy_ref_s": t_ref, "d2d_copy_s": t_copy,
                    "copy_bandwidth_GBps": bw / 1e9, "floor_s": nbytes / bw,
                    "kernel_over_floor": t_kernel / (nbytes / bw),
                    "speedup_vs_cupy_ref": t_ref / t_kernel})
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--cols", type=int, default=64)
    p.add_argument("--gpu-rows", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--no-cpu", action="store_true")
    a = p.parse_args(argv)
    info = machine()
    if not a.no_cpu:
        cpu = bench_cpu(a.rows, a.cols, a.repeat)
        print(f"L2,1 prox, CPU ({info['cpu']}, {info['cpu_count']} CPUs), median of {a.repeat}")
        print(table([[r["dtype"], f"{r['rows']}x{r['cols']}", f"{r['numpy_ref_s']*1e3:.2f}",
                      f"{r['native_1t_s']*1e3:.2f}", f"{r['native_all_s']*1e3:.2f}",
                      f"{r['speedup_1t_vs_numpy']:.1f}x", f"{r['speedup_all_vs_1t']:.2f}x"]
                     for r in cpu],
                    ["dtype", "shape", "NumPy ms", "native 1t ms", "native all ms",
                     "1t vs NumPy", "all vs 1t"]))
        print("wrote", write_json("prox_cpu.json", {"machine": info, "results": cpu}))
    if cuda_available():
        gpu = bench_gpu(a.gpu_rows, a.cols)
        name = info["gpus"][0]["name"] if info["gpus"] else "GPU"
        print(f"L2,1 prox, {name}, CUDA events, median of 20")
        print(table([[r["dtype"], f"{r['rows']}x{r['cols']}", f"{r['cuda_kernel_s']*1e3:.3f}",
                      f"{r['cupy_ref_s']*1e3:.3f}", f"{r['floor_s']*1e3:.3f}",
                      f"{r['kernel_over_floor']:.2f}", f"{r['speedup_vs_cupy_ref']:.1f}x"]
                     for r in gpu],
                    ["dtype", "shape", "kernel ms", "CuPy ref ms", "floor ms", "kernel/floor",
                     "vs CuPy ref"]))
        print("wrote", write_json("prox_gpu.json", {"machine": info, "results": gpu}))
    else:
        print("no usable GPU: GPU part skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
