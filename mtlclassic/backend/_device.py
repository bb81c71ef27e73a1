"""Device resolution: ``device="auto"|"cpu"|"cuda"``."""

import functools

from ._array import is_cupy_array

DEVICES = ("auto", "cpu", "cuda")


@functools.lru_cache(maxsize=1)
def cuda_status():
    """``(usable, reason)``: whether CuPy can use a GPU, and why not when it cannot.

    Never raises: a missing CuPy, a missing driver, or zero devices all give
    ``(False, "<reason>")``.  The result is cached for the process.
    """
    try:
        import cupy
    except Exception as exc:  # ImportError, or a CuPy that fails to initialise
        return False, f"CuPy is not importable ({type(exc).__name__}: {exc})"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return False, f"CuPy cannot reach a GPU ({type(exc).__name__}: {exc})"
    if n < 1:
        return False, "CuPy reports no CUDA device"
    return True, f"{n} CUDA device(s)"


def cuda_available():
    """True when CuPy is installed and at least one CUDA GPU is usable; never raises."""
    return cuda_status()[0]


def resolve_device(device="auto", *arrays):
    """Resolve a ``device`` parameter to ``"cpu"`` or ``"cuda"``.

    ``"auto"`` follows the inputs: any CuPy array gives ``"cuda"``, otherwise ``"cpu"``.
    ``"cuda"`` without a usable GPU raises ``RuntimeError`` with the reason.
    """
    if not isinstance(device, str) or device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if device == "auto":
        return "cuda" if any(a is not None and is_cupy_array(a) for a in arrays) else "cpu"
    if device == "cuda":
        ok, reason = cuda_status()
        if not ok:
            raise RuntimeError(f"device='cuda' was requested but no GPU is usable: {reason}")
    return device
