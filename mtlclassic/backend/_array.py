"""Array namespace helpers: NumPy or CuPy, decided by the inputs (never by a global)."""

import numpy as np


def is_cupy_array(x):
    """True for a ``cupy.ndarray`` (checked without importing CuPy)."""
    mod = type(x).__module__
    return mod == "cupy" or mod.startswith("cupy.") or mod.startswith("cupy_")


def get_namespace(*arrays):
    """Return ``cupy`` if any argument is a CuPy array, else ``numpy``.

    Mixing CuPy arrays with NumPy arrays is allowed (the NumPy ones are moved by the
    caller); ``None`` arguments are ignored.
    """
    for a in arrays:
        if a is not None and is_cupy_array(a):
            import cupy

            return cupy
    return np


def to_numpy(x):
    """Return ``x`` as a NumPy array (device arrays are copied to the host)."""
    if is_cupy_array(x):
        return x.get()
    return np.asarray(x)


def to_device(x, device):
    """Move an array to ``"cpu"`` (NumPy) or ``"cuda"`` (CuPy on the current device)."""
    if device == "cpu":
        return to_numpy(x)
    if device == "cuda":
        import cupy

        return cupy.asarray(x)
    raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
