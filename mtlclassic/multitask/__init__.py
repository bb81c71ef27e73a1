"""Multi-task linear models coupled through a penalty (see ``penalties``)."""

from . import penalties
from ._cv import MultiTaskClassifierCV, MultiTaskRegressorCV
from ._estimators import MultiTaskClassifier, MultiTaskRegressor
from ._mixed import MultiTaskEstimator
from ._relation import estimate_task_relation, long_to_wide, signed_laplacian
from ._split import MultiTaskKFold

__all__ = ["MultiTaskClassifier", "MultiTaskClassifierCV", "MultiTaskEstimator", "MultiTaskKFold", "MultiTaskRegressor",
           "MultiTaskRegressorCV", "estimate_task_relation",
           "long_to_wide", "penalties", "signed_laplacian"]
