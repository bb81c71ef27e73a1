"""Backend layer: array namespace (NumPy/CuPy), device resolution, the compiled
kernels' Python entry points, and :func:`info`."""

from ._array import get_namespace, is_cupy_array, to_device, to_numpy
from ._device import DEVICES, cuda_available, cuda_status, resolve_device
from ._info import format_info, info
from ._threads import effective_n_threads

__all__ = [
    "DEVICES",
    "cuda_available",
    "cuda_status",
    "effective_n_threads",
    "format_info",
    "get_namespace",
    "info",
    "is_cupy_array",
    "resolve_device",
    "to_device",
    "to_numpy",
]
