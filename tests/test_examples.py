"""The scripts in examples/ run and reach a sensible accuracy (so they never rot)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each example is a new process: -m slow runs them

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = {
    "continue_in_keras.py": 0.85,
    "custom_training_loop.py": 0.85,
    "extend_functional.py": 0.85,
}
ACCURACY = re.compile(r"^accuracy: ([0-9.]+)$", re.MULTILINE)


@pytest.fixture(scope="module")
def runs():
    """Run all examples at once (each is mostly TensorFlow's import time)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    procs = {
        name: subprocess.Popen(
            [sys.executable, str(EXAMPLES / name)],
            cwd=EXAMPLES.parent,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in SCRIPTS
    }
    results = {}
    for name, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        results[name] = (proc.returncode, out, err)
    return results


def test_every_example_is_tested():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(SCRIPTS)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_example_runs(runs, name):
    code, out, err = runs[name]
    assert code == 0, f"{name} failed:\n{out}\n{err}"
    found = ACCURACY.findall(out)
    assert found, f"{name} printed no 'accuracy: ...' line:\n{out}"
    assert float(found[-1]) >= SCRIPTS[name], out
