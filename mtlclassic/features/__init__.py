"""Image features as scikit-learn transformers (native C++ kernels, scikit-image reference)."""

from .hog import HOG

__all__ = ["HOG"]
from .lbp import LBP  # noqa: E402

__all__ += ["LBP"]
from .glcm import GLCM  # noqa: E402

__all__ += ["GLCM"]
from .color import ColorHistogram  # noqa: E402

__all__ += ["ColorHistogram"]
from .gabor import GaborBank  # noqa: E402

__all__ += ["GaborBank"]
from ._combined import ImageFeatures  # noqa: E402

__all__ += ["ImageFeatures"]
from .patches import extract_patches, patch_hog  # noqa: E402

__all__ += ["extract_patches", "patch_hog"]
