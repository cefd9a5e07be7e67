"""scikit-learn's own MLP test-suite, run against tfmlp.

At test time this copies the installed ``sklearn/neural_network/tests/test_mlp.py``
into a temporary directory, rewrites its single import line

    from sklearn.neural_network import MLPClassifier, MLPRegressor

to ``from tfmlp import MLPClassifier, MLPRegressor``, writes a ``conftest.py``
that provides scikit-learn's ``global_random_seed`` fixture (the rest of
``sklearn/conftest.py`` is not needed by that module), and runs pytest on it in
a subprocess. The temporary directory carries its own ``pytest.ini`` so it is
the rootdir and our own ``pyproject.toml`` pytest configuration does not apply.

Only the tests listed in ``DESELECTED`` are left out: they call private
*methods* of scikit-learn's implementation that tfmlp does not reproduce.
Private *attributes* that tfmlp does provide (``_optimizer.learning_rate``,
``_no_improvement_count``) and ``test_fit`` (which sets ``coefs_`` /
``intercepts_`` and the solver state by hand before ``partial_fit``) are kept.

Self-test of this harness
-------------------------
``TFMLP_UPSTREAM_SELFTEST=1 python -m pytest tests/test_sklearn_upstream.py``
leaves the import line pointing at scikit-learn (the line must still be found),
so the upstream module runs against scikit-learn itself through exactly the same
machinery. Everything must pass; use it to tell harness problems from tfmlp ones.

``SKLEARN_TESTS_GLOBAL_RANDOM_SEED`` is honoured as in scikit-learn (default 42;
an int, a range ``a-b`` or ``all``) and passed through to the subprocess.
"""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sklearn

pytestmark = pytest.mark.slow  # scikit-learn's whole MLP test module

SELFTEST = os.environ.get("TFMLP_UPSTREAM_SELFTEST", "").strip() not in ("", "0")

UPSTREAM_IMPORT = "from sklearn.neural_network import MLPClassifier, MLPRegressor"
TFMLP_IMPORT = "from tfmlp import MLPClassifier, MLPRegressor"
UPSTREAM_MODULE = "test_mlp.py"

# {test function name: why it is deselected}. Each entry must name a test
# function of the upstream module (checked below), so that a renamed or removed
# upstream test is noticed rather than silently running.
DESELECTED = {
    "test_gradient": (
        "calls scikit-learn's private method "
        "`BaseMultilayerPerceptron._loss_grad_lbfgs(packed_coef_inter, X, y, "
        "sample_weight, activations, deltas, coef_grads, intercept_grads)` to "
        "compare analytic and numerical gradients; tfmlp computes gradients with "
        "TensorFlow and has no such method"
    ),
}

# Written next to the copied module. Reproduces sklearn/conftest.py's
# `pytest_generate_tests` parametrisation of `global_random_seed`.
CONFTEST = """\
from os import environ


def pytest_generate_tests(metafunc):
    # Same behaviour as scikit-learn's sklearn/conftest.py: default seed 42,
    # SKLEARN_TESTS_GLOBAL_RANDOM_SEED may be "all", an int, or a range "a-b".
    random_seed_var = environ.get("SKLEARN_TESTS_GLOBAL_RANDOM_SEED")
    if random_seed_var is None:
        random_seeds = [42]
    elif random_seed_var == "all":
        random_seeds = list(range(100))
    else:
        if "-" in random_seed_var:
            start, stop = random_seed_var.split("-")
            random_seeds = list(range(int(start), int(stop) + 1))
        else:
            random_seeds = [int(random_seed_var)]
        if min(random_seeds) < 0 or max(random_seeds) > 99:
            raise ValueError(
                "The value(s) of the environment variable "
                "SKLEARN_TESTS_GLOBAL_RANDOM_SEED must be in the range [0, 99] "
                f"(or 'all'), got: {random_seed_var}"
            )
    if "global_random_seed" in metafunc.fixturenames:
        metafunc.parametrize("global_random_seed", random_seeds)
"""

# Makes the temporary directory the rootdir / config file of the subprocess.
PYTEST_INI = "[pytest]\n"


def _upstream_path() -> Path:
    path = Path(sklearn.__file__).parent / "neural_network" / "tests" / UPSTREAM_MODULE
    if not path.is_file():
        pytest.fail(f"scikit-learn's MLP test module not found at {path}")
    return path


def _rewrite(source: str) -> str:
    lines = source.splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if line.strip() == UPSTREAM_IMPORT]
    if len(hits) != 1:
        pytest.fail(
            f"expected exactly one line {UPSTREAM_IMPORT!r} in scikit-learn's "
            f"{UPSTREAM_MODULE}, found {len(hits)}: the upstream file changed, "
            "update tests/test_sklearn_upstream.py"
        )
    if not SELFTEST:
        (i,) = hits
        lines[i] = lines[i].replace(UPSTREAM_IMPORT, TFMLP_IMPORT)
    rewritten = "".join(lines)
    # No other import of scikit-learn's MLP module may remain.
    if not SELFTEST:
        for node in ast.walk(ast.parse(rewritten)):
            names = []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            if any(n.startswith("sklearn.neural_network") for n in names):
                pytest.fail(
                    f"{UPSTREAM_MODULE} still imports sklearn.neural_network after "
                    f"the rewrite (line {node.lineno}): the upstream file changed, "
                    "update this harness"
                )
    return rewritten


def _check_deselected(source: str) -> None:
    tree = ast.parse(source)
    test_names = [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    ]
    for name in DESELECTED:
        if name not in test_names:
            pytest.fail(
                f"deselected test {name!r} no longer exists in scikit-learn's "
                f"{UPSTREAM_MODULE}: update DESELECTED"
            )
        # --deselect matches node-id prefixes: make sure it hits only `name`.
        clashes = [t for t in test_names if t != name and t.startswith(name)]
        if clashes:
            pytest.fail(
                f"--deselect {name} would also deselect {clashes}: refine DESELECTED"
            )


def test_sklearn_upstream_mlp_suite(tmp_path):
    source = _upstream_path().read_text(encoding="utf-8")
    _check_deselected(source)

    workdir = tmp_path / "upstream"
    workdir.mkdir()
    (workdir / UPSTREAM_MODULE).write_text(_rewrite(source), encoding="utf-8")
    (workdir / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    (workdir / "pytest.ini").write_text(PYTEST_INI, encoding="utf-8")

    cmd = [
        sys.executable,
        "-m",
        "pytest",
        UPSTREAM_MODULE,
        "-q",
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(workdir),
        "-c",
        str(workdir / "pytest.ini"),
        "-rfEs",
        "--tb=short",
        "--basetemp",
        str(tmp_path / "basetemp"),
    ]
    for name in DESELECTED:
        cmd += ["--deselect", f"{UPSTREAM_MODULE}::{name}"]

    env = dict(os.environ)
    # Isolate the inner run from options meant for the outer one.
    for var in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_CURRENT_TEST"):
        env.pop(var, None)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    proc = subprocess.run(
        cmd,
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    output = proc.stdout + proc.stderr
    target = "scikit-learn (SELFTEST)" if SELFTEST else "tfmlp"
    if proc.returncode != 0:
        pytest.fail(
            f"scikit-learn's {UPSTREAM_MODULE} against {target} failed "
            f"(pytest exit code {proc.returncode}):\n{output}",
            pytrace=False,
        )
    # Guard against a run that silently collected / ran nothing.
    if " passed" not in output or f"{len(DESELECTED)} deselected" not in output:
        pytest.fail(f"unexpected pytest summary:\n{output}", pytrace=False)
    print(output)  # the inner run's summary, shown with `pytest -rP` / `-s`
