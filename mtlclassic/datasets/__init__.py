"""Datasets: image files read by their type (``read_image``), a generated multi-attribute image set (no download), the bundled-data loaders
(School, UCI mfeat digits) and scikit-learn's digits as a multi-task problem."""

from ._images import make_multiattribute_images
from ._io import image_size, load_image, read_image
from ._loaders import (data_home, load_digits_multitask, load_mfeat_digits, load_newsgroup,
                       load_school)
from ._mtfl import load_mtfl

__all__ = ["data_home", "image_size", "load_digits_multitask", "load_image", "load_mfeat_digits",
           "load_mtfl", "load_newsgroup", "load_school", "make_multiattribute_images", "read_image"]
