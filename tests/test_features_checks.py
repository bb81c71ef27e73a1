"""scikit-learn's common estimator checks on every feature transformer.

Configured for the checks' generic 2-D data: each row is a one-pixel-high image
(``image_shape=(1, -1)``), with cell/grid sizes that such an image can hold. The checks'
rows (1, 2, 10, ... values) cannot be 3-channel images, so ColorHistogram is checked in
its one-channel ``space="grey"`` form; its colour spaces are tested in test_features.py.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from mtlclassic.features import GLCM, HOG, LBP, ColorHistogram, GaborBank

ESTIMATORS = [
    HOG(pixels_per_cell=(1, 1), cells_per_block=(1, 1), image_shape=(1, -1)),
    LBP(grid=(1, 1), image_shape=(1, -1)),
    LBP(method="var", grid=(1, 1), image_shape=(1, -1)),
    GLCM(value_range="image", image_shape=(1, -1)),
    ColorHistogram(space="grey", bins=4, value_range="image", image_shape=(1, -1)),
    GaborBank(frequencies=(0.3,), orientations=2, image_shape=(1, -1)),
]

EXPECTED_FAILURES = {}  # none: every check passes


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=lambda est: EXPECTED_FAILURES)
def test_sklearn_compatible(estimator, check):
    check(estimator)
