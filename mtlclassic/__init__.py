"""mtlclassic: multi-task learning on images with classic ML.

Hand-crafted image features (``mtlclassic.features``) feed scikit-learn multi-task
estimators (``mtlclassic.multitask``); hot loops run in native C++ (``mtlclassic._cpu``)
or CUDA (``mtlclassic._cuda``).  See ``mtlclassic.backend.info()`` for what was built.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "info"]


def info():
    """Versions, built modules, GPUs and BLAS threads (see :func:`mtlclassic.backend.info`)."""
    from .backend import info as _info

    return _info()
