"""Thread counts for the native kernels (scikit-learn's ``n_jobs`` convention)."""

import numbers
import os


def effective_n_threads(n_jobs):
    """``None`` -> 1, ``-1`` -> all CPUs, ``-k`` -> all CPUs + 1 - k, ``k > 0`` -> k."""
    if n_jobs is None:
        return 1
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0:
        raise ValueError(f"n_jobs must be a non-zero integer or None, got {n_jobs!r}")
    n_cpu = _cpu_count()
    if n_jobs < 0:
        return max(1, n_cpu + 1 + int(n_jobs))
    return int(n_jobs)


def _cpu_count():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
