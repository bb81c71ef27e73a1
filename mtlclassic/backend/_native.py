"""Loading of the compiled modules.

``_cpu`` is always built; if it cannot be imported the most common cause is importing
the source checkout (without compiled modules) instead of the installed package, and
the error says so.  ``_cuda`` is optional: ``None`` when it was not built.
"""

import os

try:
    from .. import _cpu  # noqa: F401
    CPU_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised only on broken installs
    _cpu = None
    CPU_IMPORT_ERROR = exc

try:
    from .. import _cuda  # noqa: F401
    CUDA_IMPORT_ERROR = None
except ImportError as exc:
    _cuda = None
    CUDA_IMPORT_ERROR = exc


def require_cpu():
    """Return the ``_cpu`` module or raise an ImportError that says how to fix it."""
    if _cpu is None:
        pkg = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        raise ImportError(
            f"mtlclassic's native module _cpu is missing from {pkg} ({CPU_IMPORT_ERROR}). "
            "Build it with `pip install .` (then run Python outside the source tree) or "
            "`pip install --no-build-isolation -e .` for an in-place build."
        )
    return _cpu


def require_cuda():
    """Return the ``_cuda`` module or raise a RuntimeError naming why it is absent."""
    if _cuda is None:
        raise RuntimeError(
            "mtlclassic was built without its CUDA module _cuda "
            f"({CUDA_IMPORT_ERROR}); rebuild where nvcc is installed "
            "(MTLCLASSIC_CUDA=1 makes a missing toolkit a build error)."
        )
    return _cuda
