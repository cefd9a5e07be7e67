"""scikit-learn's common estimator checks on tfmlp's estimators.

Runs ``sklearn.utils.estimator_checks.parametrize_with_checks`` on
``MLPClassifier`` / ``MLPRegressor`` exactly as scikit-learn 1.9 runs them on its
own MLP in ``sklearn/tests/test_common.py::test_estimators``:

* the instances are built with scikit-learn's ``INIT_PARAMS`` for the MLP
  (``max_iter=100``), from ``sklearn/utils/_test_common/instance_generator.py``;
* the per-check parameters of ``PER_ESTIMATOR_CHECK_PARAMS`` are applied (for the
  MLP: only ``check_sample_weight_equivalence_on_dense_data``). scikit-learn's
  generator applies them only to its own classes (it looks them up by type), so
  this module applies them itself to tfmlp's;
* the expected failed checks are the ones scikit-learn declares for its MLP in
  ``PER_ESTIMATOR_XFAIL_CHECKS`` / ``_get_expected_failed_checks``: none;
* each check runs under ``ignore_warnings(FutureWarning, ConvergenceWarning,
  UserWarning, LinAlgWarning)``, as in ``test_estimators``.

``test_settings_match_sklearn`` fails if scikit-learn's private tables above no
longer agree with the copies kept here.

Self-test of this harness
-------------------------
``TFMLP_CHECKS_SELFTEST=1 python -m pytest tests/test_sklearn_checks.py`` runs the
same parametrisation on scikit-learn's own ``MLPClassifier`` / ``MLPRegressor``;
everything must pass.
"""

import os

import pytest
from scipy.linalg import LinAlgWarning
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._testing import ignore_warnings
from sklearn.utils.estimator_checks import parametrize_with_checks

SELFTEST = os.environ.get("TFMLP_CHECKS_SELFTEST", "").strip() not in ("", "0")
if SELFTEST:
    from sklearn.neural_network import MLPClassifier, MLPRegressor
else:
    from tfmlp import MLPClassifier, MLPRegressor

# Copies of scikit-learn 1.9's sklearn/utils/_test_common/instance_generator.py
# entries for its MLP (checked by test_settings_match_sklearn).
INIT_PARAMS = {
    "MLPClassifier": dict(max_iter=100),
    "MLPRegressor": dict(max_iter=100),
}
PER_ESTIMATOR_CHECK_PARAMS = {
    "MLPClassifier": {
        "check_sample_weight_equivalence_on_dense_data": [
            dict(solver="lbfgs"),
        ]
    },
    "MLPRegressor": {
        "check_sample_weight_equivalence_on_dense_data": [
            dict(solver="sgd", tol=1e-2, random_state=42),
        ]
    },
}
# scikit-learn declares no expected failures for its MLP.
EXPECTED_FAILED_CHECKS = {
    "MLPClassifier": {},
    "MLPRegressor": {},
}

ESTIMATORS = [
    MLPClassifier(**INIT_PARAMS["MLPClassifier"]),
    MLPRegressor(**INIT_PARAMS["MLPRegressor"]),
]


def _expected_failed_checks(estimator):
    return dict(EXPECTED_FAILED_CHECKS[type(estimator).__name__])


def _check_name(check):
    func = getattr(check, "func", check)
    return getattr(func, "__name__", "")


def _instances_for_check(estimator, check):
    """tfmlp's counterpart of sklearn's `_yield_instances_for_check`."""
    if SELFTEST:
        # scikit-learn's generator already applied PER_ESTIMATOR_CHECK_PARAMS.
        yield estimator
        return
    param_sets = PER_ESTIMATOR_CHECK_PARAMS[type(estimator).__name__].get(
        _check_name(check)
    )
    if param_sets is None:
        yield estimator
        return
    if isinstance(param_sets, dict):
        param_sets = [param_sets]
    for params in param_sets:
        yield clone(estimator).set_params(**params)


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    with ignore_warnings(
        category=(FutureWarning, ConvergenceWarning, UserWarning, LinAlgWarning)
    ):
        for instance in _instances_for_check(estimator, check):
            check(instance)


def test_settings_match_sklearn():
    """The copied tables still agree with scikit-learn's (private) ones."""
    try:
        from sklearn.neural_network import MLPClassifier as SkC
        from sklearn.neural_network import MLPRegressor as SkR
        from sklearn.utils._test_common import instance_generator as ig
    except ImportError as exc:  # private module moved
        pytest.skip(f"scikit-learn's instance_generator not importable: {exc}")

    for sk_cls in (SkC, SkR):
        name = sk_cls.__name__
        assert ig.INIT_PARAMS.get(sk_cls) == INIT_PARAMS[name], name
        sk_check_params = {
            check: [p] if isinstance(p, dict) else list(p)
            for check, p in ig.PER_ESTIMATOR_CHECK_PARAMS.get(sk_cls, {}).items()
        }
        assert sk_check_params == PER_ESTIMATOR_CHECK_PARAMS[name], name
        sk_instance = sk_cls(**ig.INIT_PARAMS.get(sk_cls, {}))
        assert (
            ig._get_expected_failed_checks(sk_instance)
            == (EXPECTED_FAILED_CHECKS[name])
        ), name


@pytest.mark.parametrize("Est", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize(
    "params", [{}, {"solver": "lbfgs"}, {"compute_dtype": "float32"}]
)
def test_transform_dtype_tags_hold(Est, params):
    # the preserves_dtype tag follows what transform returns
    from sklearn.utils.estimator_checks import check_transformer_preserve_dtypes

    if SELFTEST:
        pytest.skip("scikit-learn's MLP has no transform")
    est = Est(max_iter=20, random_state=0, **params)
    with ignore_warnings(category=(ConvergenceWarning, UserWarning)):
        check_transformer_preserve_dtypes(Est.__name__, est)


@pytest.mark.skipif(SELFTEST, reason="compute_dtype is tfmlp's")
@pytest.mark.parametrize("compute_dtype", ["float32", "mixed_bfloat16"])
@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_lbfgs_in_another_dtype_predicts_without_changing_the_estimator(
    cls, compute_dtype
):
    from sklearn.utils.estimator_checks import check_dict_unchanged

    est = cls(solver="lbfgs", max_iter=20, compute_dtype=compute_dtype)
    with ignore_warnings(category=(ConvergenceWarning, UserWarning)):
        check_dict_unchanged(cls.__name__, est)


@pytest.mark.skipif(SELFTEST, reason="tfmlp's poisson refusal only")
def test_poisson_regressor_declares_positive_targets():
    # it refuses negative targets: scikit-learn's checks must then give it
    # positive ones (its tag), as for scikit-learn's own Poisson regressors
    from sklearn.utils.estimator_checks import (
        check_n_features_in,
        check_n_features_in_after_fitting,
        check_regressor_data_not_an_array,
        check_regressors_no_decision_function,
    )

    assert not MLPRegressor().__sklearn_tags__().target_tags.positive_only
    est = MLPRegressor(loss="poisson", max_iter=5)
    assert est.__sklearn_tags__().target_tags.positive_only
    for check in (
        check_n_features_in,
        check_n_features_in_after_fitting,
        check_regressor_data_not_an_array,
        check_regressors_no_decision_function,
    ):
        with ignore_warnings(category=(ConvergenceWarning, UserWarning)):
            check("MLPRegressor", clone(est))
