"""The ``tfmlp`` command run as a real program: every subcommand, its errors and
exit codes, and the live progress bar on a pseudo-terminal."""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytestmark = pytest.mark.slow  # every CLI run is a new process: run with -m slow

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SCRIPT = Path(sys.executable).parent / ("tfmlp.exe" if os.name == "nt" else "tfmlp")


def _env():
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the CLI itself must keep TF quiet
    return env


def _run(*args, module=True, timeout=300, env=None):
    cmd = [sys.executable, "-m", "tfmlp"] if module else [str(SCRIPT)]
    return subprocess.run(
        [*cmd, *map(str, args)],
        capture_output=True,
        text=True,
        env=env or _env(),
        timeout=timeout,
    )


def _table(n=200, seed=0):
    rng = np.random.RandomState(seed)
    x1, x2 = rng.randn(n), rng.randn(n)
    shade = rng.choice(["dark", "light"], n)
    label = np.where(x1 - x2 + (shade == "dark") > 0.5, "pos", "neg")
    amount = 3 * x1 + x2 + 0.1 * rng.randn(n)
    return pd.DataFrame(
        {"x1": x1, "x2": x2, "shade": shade, "label": label, "amount": amount}
    )


def _plain_model(path):
    """A model saved by tfmlp.save (no preprocessing) on 2 numeric features."""
    import warnings

    import tfmlp

    rng = np.random.RandomState(0)
    est = tfmlp.MLPRegressor(hidden_layer_sizes=(4,), max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(rng.randn(30, 2), rng.randn(30))
    tfmlp.save(est, path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli_proc")
    frame = _table()
    frame.to_csv(d / "t.csv", index=False)
    frame.to_parquet(d / "t.parquet")
    frame.drop(columns=["x2"]).to_csv(d / "no_x2.csv", index=False)
    text_x1 = frame.astype({"x1": str})
    text_x1.loc[0, "x1"] = "unknown"
    text_x1.to_csv(d / "text_x1.csv", index=False)
    rng = np.random.RandomState(1)
    pd.DataFrame(
        {"id": [f"u{i}" for i in range(300)], "x": rng.randn(300), "y": rng.rand(300)}
    ).to_csv(d / "ids.csv", index=False)
    pd.DataFrame(rng.randn(10, 3)).to_csv(d / "three.csv", index=False)
    _plain_model(d / "plain.tfmlp")
    (d / "garbage.parquet").write_bytes(b"\x00\x01 not parquet at all")
    return d


@pytest.fixture(scope="module")
def model(files):
    """A classifier trained by the installed console script (CSV, plot, progress)."""
    path, plot = files / "clf.tfmlp", files / "clf.png"
    proc = _run(
        "train", files / "t.csv", "--target", "label", "--hidden", "12",
        "--max-iter", "60", "--learning-rate-init", "0.01", "--early-stopping",
        "--n-iter-no-change", "30", "--random-state", "0",
        "--out", path, "--plot", plot, module=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return path, plot, proc


def test_console_script_is_installed():
    assert SCRIPT.exists(), "the `tfmlp` console script is not installed"
    proc = _run("--help", module=False, timeout=60)
    assert proc.returncode == 0
    for sub in ("demo", "train", "predict", "evaluate", "export", "info"):
        assert sub in proc.stdout


def test_train_subprocess(model):
    path, plot, proc = model
    assert path.exists() and plot.read_bytes()[:8] == PNG_SIGNATURE
    assert "Training MLPClassifier (task detected" in proc.stdout
    assert "Held-out report (40 rows):" in proc.stdout and "accuracy" in proc.stdout
    # not a terminal: one plain progress line per epoch, nothing else on stderr
    lines = proc.stderr.splitlines()
    assert lines and all(line.startswith("epoch ") for line in lines), lines
    assert lines[0].startswith("epoch 1/60, loss ") and "val score" in lines[0]


def test_predict_evaluate_info_export_subprocess(model, files, tmp_path):
    path = model[0]
    proc = _run("predict", path, files / "t.parquet", "--proba", "--out",
                tmp_path / "p.csv")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    preds = pd.read_csv(tmp_path / "p.csv")
    assert list(preds.columns) == ["proba_neg", "proba_pos", "prediction"]
    assert len(preds) == 200 and set(preds["prediction"]) <= {"neg", "pos"}

    proc = _run("predict", path, files / "t.csv")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "prediction" and len(lines) == 201

    proc = _run("evaluate", path, files / "t.csv")  # target from the model
    assert proc.returncode == 0, proc.stderr
    accuracy = float(proc.stdout.split("accuracy")[1].split()[0])
    assert 0.7 < accuracy <= 1.0

    proc = _run("info", path)
    assert proc.returncode == 0, proc.stderr
    assert "classes: neg, pos" in proc.stdout and "shade: one-hot over 2" in proc.stdout

    proc = _run("export", path, "--format", "keras", "--out", tmp_path / "m.keras")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "m.keras").stat().st_size > 0


def test_regression_on_parquet_subprocess(files, tmp_path):
    out = tmp_path / "reg.tfmlp"
    proc = _run("train", files / "t.parquet", "--target", "amount", "--hidden",
                "16", "--max-iter", "200", "--solver", "lbfgs", "--random-state",
                "0", "--out", out)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Training MLPRegressor" in proc.stdout
    r2 = float(proc.stdout.split("r2")[1].split()[0])
    assert r2 > 0.8
    proc = _run("predict", out, files / "t.csv")
    assert proc.returncode == 0, proc.stderr
    values = np.array(proc.stdout.splitlines()[1:], dtype=float)
    assert np.corrcoef(values, pd.read_csv(files / "t.csv")["amount"])[0, 1] > 0.9


def test_demo_subprocess():
    proc = _run("demo", "--max-iter", "5")
    assert proc.returncode == 0, proc.stderr
    assert "identical test predictions: True" in proc.stdout
    marker = "max |weight difference| tfmlp vs scikit-learn:"
    diff = float(proc.stdout.split(marker)[1].split()[0])
    assert diff < 1e-8


ERRORS = [
    (["train", "{d}/nothere.csv", "--target", "y", "--out", "{d}/x"], 1,
     "tfmlp train: error: data file not found"),
    (["train", "{d}/garbage.parquet", "--target", "y", "--out", "{d}/x"], 1,
     "cannot read data file"),
    (["train", "{d}/t.csv", "--target", "nope", "--out", "{d}/x"], 1,
     "target column 'nope' not found"),
    (["train", "{d}/ids.csv", "--target", "y", "--out", "{d}/x"], 1,
     "column 'id' is non-numeric with"),
    (["train", "{d}/t.csv", "--target", "label", "--out", "{d}/no/such/dir/m"], 1,
     "folder"),
    (["train", "{d}/t.csv", "--target", "label", "--out", "{d}/x",
      "--hidden", "ten"], 2, "expected comma-separated integers"),
    (["train", "{d}/t.csv", "--out", "{d}/x"], 2,
     "the following arguments are required: --target"),
    (["predict", "{d}/nothere.tfmlp", "{d}/t.csv"], 1, "model file not found"),
    (["predict", "{d}/t.csv", "{d}/t.csv"], 1, "cannot read model file"),
    (["predict", "{model}", "{d}/no_x2.csv"], 1,
     "lacks column(s) the model was trained on: 'x2'"),
    (["predict", "{model}", "{d}/text_x1.csv"], 1,
     "column 'x1' was numeric in training"),
    (["evaluate", "{model}", "{d}/t.csv", "--target", "nope"], 1,
     "target column 'nope' not found"),
    (["export", "{model}", "--format", "keras", "--out", "{d}/no/such/m.keras"], 1,
     "export failed"),
    (["info", "{d}/garbage.parquet"], 1, "cannot read model file"),
    (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
    (["predict", "{d}/plain.tfmlp", "{d}/three.csv"], 1,
     "feature mismatch: the model expects 2 features, the data gives 3"),
]  # fmt: skip


# run as real programs (exit code, nothing but the one line on stderr: no
# TensorFlow start-up noise); every case also runs in-process below
SUBPROCESS_ERRORS = [0, 5, 9, 14, 15]


def _check_error(argv, code, message, returncode, stderr):
    assert returncode == code, (argv, stderr)
    assert message in stderr, (argv, stderr)
    assert stderr.count("\n") == 1, (argv, stderr)
    assert stderr.startswith("tfmlp"), (argv, stderr)
    assert "Traceback" not in stderr


def test_error_cases_subprocess(model, files):
    """Errors of each kind (argument parsing, a missing file, a model that
    needs TensorFlow): the exit code and one line on stderr."""
    fields = {"d": files, "model": model[0]}

    def run(case):
        argv, code, message = case
        return case, _run(*[a.format(**fields) for a in argv])

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(run, [ERRORS[i] for i in SUBPROCESS_ERRORS]))
    for (argv, code, message), proc in results:
        _check_error(argv, code, message, proc.returncode, proc.stderr)


@pytest.mark.parametrize("case", ERRORS, ids=lambda case: " ".join(case[0][:2]))
def test_error_cases_in_process(case, model, files, capsys):
    """Every error case through ``main``: its exit code and one line."""
    from tfmlp._cli import main

    argv, code, message = case
    fields = {"d": files, "model": model[0]}
    capsys.readouterr()
    try:
        returncode = main([a.format(**fields) for a in argv])
    except SystemExit as exc:
        returncode = exc.code
    _check_error(argv, code, message, returncode, capsys.readouterr().err)


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_live_progress_bar_on_a_pseudo_terminal(files, tmp_path):
    """stderr on a real terminal: one bar redrawn with carriage returns."""
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tfmlp", "train", str(files / "t.csv"),
             "--target", "label", "--hidden", "6", "--max-iter", "8",
             "--random-state", "0", "--out", str(tmp_path / "m.tfmlp")],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
            env=_env(),
        )  # fmt: skip
    finally:
        os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    stdout = proc.stdout.read().decode()
    assert proc.wait(timeout=300) == 0, stdout
    text = b"".join(chunks).decode()
    frames = text.split("\r")
    bars = [f for f in frames if f.startswith("[")]
    assert len(bars) == 8, text
    assert bars[0].startswith("[##..") and "epoch 1/8, loss " in bars[0]
    assert bars[-1].startswith("[" + "#" * 20 + "]") and "epoch 8/8" in bars[-1]
    assert "ETA" in bars[-1] and "elapsed" in bars[-1]
    # the bar is the first thing on the terminal and ends with one newline; the
    # only other line is the ConvergenceWarning (8 epochs do not converge)
    assert text.startswith("\r[##..")
    rest = text.split("\n", 1)[1]  # (a pty writes each \n as \r\n)
    assert rest.startswith("warning: Stochastic Optimizer: Maximum iterations (8)")
    assert rest.count("\n") == 1


@pytest.mark.parametrize("level", ["2", "3"])
def test_errors_stay_one_line_with_tf_log_level_set(level, model, files):
    """TensorFlow's start-up notices ignore TF_CPP_MIN_LOG_LEVEL: still muted."""
    env = dict(_env(), TF_CPP_MIN_LOG_LEVEL=level)
    env.pop("TFMLP_DEBUG", None)
    proc = _run("predict", model[0], files / "no_x2.csv", env=env)
    assert proc.returncode == 1
    assert proc.stderr == (
        "tfmlp predict: error: the data lacks column(s) the model was trained "
        "on: 'x2'\n"
    )
