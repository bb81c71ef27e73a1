"""``info()``: what this installation can do (versions, native modules, GPUs, BLAS)."""

import platform
import sys
from importlib import metadata

from . import _native
from ._device import cuda_status
from ._threads import _cpu_count

_PACKAGES = ("numpy", "scipy", "scikit-learn", "scikit-image", "cupy-cuda13x", "cupy-cuda12x",
             "cupy", "dask", "matplotlib", "opencv-contrib-python-headless")


def _version(dist):
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _gpus():
    """GPUs seen by the _cuda module (works without CuPy), else by CuPy."""
    gpus = []
    reason = ""
    cuda = _native._cuda
    if cuda is not None:
        n = cuda.device_count()
        if n == 0:
            reason = cuda.device_count_error() or "no CUDA device"
            if not cuda.driver_version():
                # CUDA calls this "driver version is insufficient" when there is no driver
                reason = "no NVIDIA driver installed; the CPU path is used"
        for i in range(n):
            p = cuda.device_properties(i)
            gpus.append({"index": i, "name": p["name"], "memory_bytes": int(p["total_memory"]),
                         "compute_capability": "%d.%d" % tuple(p["compute_capability"]),
                         "multiprocessors": int(p["multiprocessors"])})
        return gpus, reason
    ok, reason = cuda_status()
    if ok:
        import cupy

        for i in range(cupy.cuda.runtime.getDeviceCount()):
            p = cupy.cuda.runtime.getDeviceProperties(i)
            name = p["name"].decode() if isinstance(p["name"], bytes) else str(p["name"])
            gpus.append({"index": i, "name": name, "memory_bytes": int(p["totalGlobalMem"]),
                         "compute_capability": f"{p['major']}.{p['minor']}",
                         "multiprocessors": int(p["multiProcessorCount"])})
    return gpus, reason


def _blas():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [{"library": p.get("internal_api"), "version": p.get("version"),
             "threads": p.get("num_threads"), "user_api": p.get("user_api")}
            for p in threadpool_info()]


def info():
    """Return a dict describing this installation.

    Keys: ``mtlclassic``, ``python``, ``platform``, ``cpu_count``, ``packages``
    (versions or None), ``native`` (``cpu_built``, ``cuda_built``, compiled CUDA
    archs, runtime/driver versions), ``cupy_usable`` with ``cupy_reason``, ``gpus``
    (name, memory, compute capability per device; empty without a GPU), ``gpu_reason``,
    and ``blas`` (threadpoolctl's view).  Never raises for a missing GPU or CuPy.
    """
    from .. import __version__

    cuda = _native._cuda
    native = {
        "cpu_built": _native._cpu is not None,
        "cpu_error": None if _native._cpu is not None else str(_native.CPU_IMPORT_ERROR),
        "cuda_built": cuda is not None,
        "cuda_error": None if cuda is not None else str(_native.CUDA_IMPORT_ERROR),
    }
    if cuda is not None:
        native["cuda_archs"] = cuda.compiled_archs
        native["cuda_runtime_version"] = cuda.runtime_version()
        native["cuda_driver_version"] = cuda.driver_version()
    gpus, gpu_reason = _gpus()
    ok, reason = cuda_status()
    return {
        "mtlclassic": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": _cpu_count(),
        "packages": {p: _version(p) for p in _PACKAGES},
        "native": native,
        "cupy_usable": ok,
        "cupy_reason": reason,
        "gpus": gpus,
        "gpu_reason": gpu_reason,
        "blas": _blas(),
    }


def format_info(d):
    """Human-readable text for :func:`info`'s dict."""
    lines = [f"mtlclassic {d['mtlclassic']}  (Python {d['python']}, {d['platform']})",
             f"CPUs: {d['cpu_count']}"]
    lines.append("packages: " + ", ".join(f"{k} {v}" for k, v in d["packages"].items() if v))
    n = d["native"]
    lines.append("native _cpu: " + ("built" if n["cpu_built"] else f"MISSING ({n['cpu_error']})"))
    if n["cuda_built"]:
        lines.append(f"native _cuda: built for sm {n['cuda_archs']}, CUDA runtime "
                     f"{n['cuda_runtime_version']}, driver {n['cuda_driver_version'] or 'none'}")
    else:
        lines.append("native _cuda: not built")
    if d["gpus"]:
        for g in d["gpus"]:
            lines.append(f"GPU {g['index']}: {g['name']}, {g['memory_bytes'] / 2**30:.1f} GiB, "
                         f"compute {g['compute_capability']}, {g['multiprocessors']} SMs")
    else:
        lines.append(f"GPU: none ({d['gpu_reason'] or d['cupy_reason']})")
    lines.append(f"CuPy usable: {'yes' if d['cupy_usable'] else 'no'} ({d['cupy_reason']})")
    for b in d["blas"]:
        lines.append(f"BLAS: {b['library']} {b['version']}, {b['threads']} threads")
    return "\n".join(lines)
