"""Facial landmark localisation: cascaded shape regression with multi-task stages."""

from ._boxes import face_boxes, landmark_errors
from ._cascade import CascadedShapeRegressor

__all__ = ["CascadedShapeRegressor", "face_boxes", "landmark_errors"]
