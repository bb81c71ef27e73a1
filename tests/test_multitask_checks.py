"""scikit-learn's common checks on both multi-task estimators, every penalty."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from mtlclassic.multitask import MultiTaskClassifier, MultiTaskRegressor

PENALTIES = ["ridge", "mean", "graph", "l21", "trace", "mtrl"]
ESTIMATORS = [Est(penalty=p, alpha=1e-2, l2=1e-3) for Est in (MultiTaskRegressor,
                                                              MultiTaskClassifier)
              for p in PENALTIES]

CLASSIFIER_FAILURES = {
    "check_classifier_multioutput": (
        "classes_ is a list with one array per task and decision_function returns one array "
        "per task, as tasks may have different numbers of classes (MultiOutputClassifier's "
        "convention); the check indexes a single shared classes_ array with the stacked "
        "decision values"),
}


def _expected(est):
    return dict(CLASSIFIER_FAILURES) if isinstance(est, MultiTaskClassifier) else {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected)
def test_sklearn_compatible(estimator, check):
    check(estimator)
