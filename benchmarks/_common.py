"""Helpers shared by the benchmarks: timing (median of repeats), machine facts, JSON."""

import json
import os
import platform
import statistics
import time
from datetime import datetime, timezone

import mtlclassic

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def median_time(fn, repeat=7, warmup=1, sync=None):
    """Median wall time of ``fn()`` over ``repeat`` runs after ``warmup`` runs (seconds).

    ``sync`` is called after each run before the clock is read (device work is async).
    """
    for _ in range(warmup):
        fn()
        if sync:
            sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def gpu_event_time(fn, repeat=20, warmup=3):
    """Median time of ``fn()`` measured with CUDA events on the current stream (seconds)."""
    import cupy as cp

    for _ in range(warmup):
        fn()
    cp.cuda.get_current_stream().synchronize()
    times = []
    for _ in range(repeat):
        start, end = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, end) / 1e3)
    return statistics.median(times)


def machine():
    d = mtlclassic.info()
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpu": _cpu_model(),
        "cpu_count": d["cpu_count"],
        "python": d["python"],
        "packages": {k: v for k, v in d["packages"].items() if v},
        "native": d["native"],
        "gpus": d["gpus"],
        "blas": d["blas"],
    }


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def results_dir():
    """Where the benchmarks write their JSON: $MTLCLASSIC_RESULTS, else results/."""
    return os.environ.get("MTLCLASSIC_RESULTS") or RESULTS


def read_json(name):
    """The stored results file ``name`` (a dict), or None where there is none. A run
    that merges with it reads it before its first write (its checkpoints overwrite it)."""
    path = os.path.join(results_dir(), name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def write_json(name, payload, out_dir=None):
    out_dir = out_dir or results_dir()
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, name)
    with open(path, "w") as f:
        json.dump(payload, f, indent=2, default=str)
    return path


def table(rows, headers):
    """Plain-text table for stdout (and the README)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = lambda r: "| " + " | ".join(c.rjust(w) for c, w in zip(r, widths)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), sep] + [line(r) for r in cells[1:]])
