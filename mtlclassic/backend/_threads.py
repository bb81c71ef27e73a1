"""Thread counts for the native kernels (scikit-learn's ``n_jobs`` convention)."""

import numbers
import os


# The native kernels take the thread count as a C int.
MAX_N_JOBS = 2**31 - 1


def effective_n_threads(n_jobs):
    """``None`` -> 1, ``-1`` -> all CPUs, ``-k`` -> all CPUs + 1 - k, ``k > 0`` -> k.

    ``|n_jobs|`` must be at most ``2**31 - 1`` (the kernels take a C int). The kernels never
    start more threads than they have work items; when the system refuses a thread (process
    or memory limits) they raise a RuntimeError that asks for a smaller ``n_jobs``.
    """
    if n_jobs is None:
        return 1
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0 \
            or abs(int(n_jobs)) > MAX_N_JOBS:
        raise ValueError(f"n_jobs must be None or a non-zero integer between -{MAX_N_JOBS} "
                         f"and {MAX_N_JOBS}, got {n_jobs!r}")
    n_cpu = _cpu_count()
    if n_jobs < 0:
        return max(1, n_cpu + 1 + int(n_jobs))
    return int(n_jobs)


def _cpu_count():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
