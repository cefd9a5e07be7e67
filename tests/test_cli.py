"""The ``tfmlp`` command line: every subcommand, in-process and as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from tfmlp._cli import main  # noqa: E402
from tfmlp._preprocess import PreprocessError, TablePreprocessor  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _frame(n=120, seed=0):
    rng = np.random.RandomState(seed)
    x1, x2 = rng.randn(n), rng.randn(n)
    color = rng.choice(["red", "green", "blue"], n)
    label = np.where(x1 + x2 + (color == "red") > 0.3, "yes", "no")
    value = 2 * x1 - x2 + 0.1 * rng.randn(n)
    return pd.DataFrame(
        {"x1": x1, "x2": x2, "color": color, "label": label, "value": value}
    )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    frame = _frame()
    frame.to_csv(d / "data.csv", index=False)
    frame.to_parquet(d / "data.parquet")
    return d


@pytest.fixture(scope="module")
def trained(data_dir):
    """A classifier trained once through the CLI (with early stopping + plot)."""
    model = data_dir / "clf.tfmlp"
    plot = data_dir / "loss.png"
    code = main(
        [
            "train", str(data_dir / "data.csv"), "--target", "label",
            "--hidden", "8", "--max-iter", "15", "--random-state", "0",
            "--early-stopping", "--out", str(model), "--plot", str(plot),
        ]
    )  # fmt: skip
    assert code == 0
    return model, plot


def _err(capsys):
    return capsys.readouterr().err


def test_train_report_progress_plot(trained, capsys):
    model, plot = trained
    assert model.exists()
    assert plot.read_bytes()[:8] == PNG_SIGNATURE


def test_plot_format_follows_its_extension(data_dir, tmp_path):
    pytest.importorskip("matplotlib")
    kinds = [
        ("loss.svg", b"<?xml"),
        ("loss.pdf", b"%PDF"),
        ("loss.PNG", PNG_SIGNATURE),
        ("loss.plot", PNG_SIGNATURE),
        ("loss.pgf", PNG_SIGNATURE),
    ]  # fmt: skip (pgf needs LaTeX)
    for name, start in kinds:
        argv = ["train", str(data_dir / "data.csv"), "--target", "label",
                "--max-iter", "2", "--no-progress", "--out",
                str(tmp_path / "m.tfmlp"), "--plot", str(tmp_path / name)]  # fmt: skip
        code = main(argv)
        assert code == 0
        assert (tmp_path / name).read_bytes().startswith(start), name


def test_a_plot_may_go_to_a_pipe_but_a_model_may_not(tmp_path):
    from tfmlp._cli import CLIError, _check_writable

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    _check_writable(str(fifo), "plot", in_place_ok=True)
    with pytest.raises(CLIError, match="not a regular file"):
        _check_writable(str(fifo), "model file")


def test_a_file_in_a_folder_taking_no_new_files_is_written_in_place(
    tmp_path, monkeypatch
):
    from tfmlp._cli import CLIError, _check_writable

    existing = tmp_path / "preds.csv"
    existing.write_text("earlier\n")
    real = os.access
    monkeypatch.setattr(  # (tests may run as root, which chmod does not stop)
        os, "access", lambda p, mode: os.fspath(p) != str(tmp_path) and real(p, mode)
    )
    _check_writable(str(existing), "predictions file", in_place_ok=True)
    fifo = tmp_path / "pipe"  # a device or pipe too (/dev/null as a user)
    os.mkfifo(fifo)
    _check_writable(str(fifo), "predictions file", in_place_ok=True)
    for path, kw in [(existing, {}), (tmp_path / "new.csv", {"in_place_ok": True})]:
        with pytest.raises(CLIError, match="is not writable"):
            _check_writable(str(path), "file", **kw)


def test_empty_output_names_are_errors(trained, data_dir, capsys):
    model, _ = trained
    data = str(data_dir / "data.csv")
    for argv in (
        ["predict", str(model), data, "--out", ""],
        ["train", data, "--target", "label", "--out", "m.tfmlp", "--plot", ""],
    ):
        assert main(argv) == 1
        assert "path is empty" in _err(capsys)


def test_train_output_and_progress(data_dir, tmp_path, capsys):
    code = main(
        [
            "train", str(data_dir / "data.parquet"), "--target", "value",
            "--hidden-layer-sizes", "8,4", "--max-iter", "5", "--random-state", "1",
            "--solver", "adam", "--alpha", "0.001", "--out", str(tmp_path / "r.tfmlp"),
        ]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0
    assert "MLPRegressor" in out and "r2" in out and "mae" in out
    assert "epoch 1/5, loss " in err and "ETA" in err  # plain lines: not a TTY
    import tfmlp

    est = tfmlp.load(tmp_path / "r.tfmlp")
    assert est.hidden_layer_sizes == (8, 4) and est.alpha == 0.001
    assert est.callbacks is None


def test_predict_evaluate_info_export(trained, data_dir, tmp_path, capsys):
    model, _ = trained
    capsys.readouterr()
    preds = tmp_path / "p.csv"
    assert main(["predict", str(model), str(data_dir / "data.csv"),
                 "--proba", "--out", str(preds)]) == 0  # fmt: skip
    table = pd.read_csv(preds)
    assert list(table.columns) == ["proba_no", "proba_yes", "prediction"]
    assert set(table["prediction"]) <= {"yes", "no"}
    np.testing.assert_allclose(table[["proba_no", "proba_yes"]].sum(axis=1), 1.0)

    capsys.readouterr()
    assert main(["predict", str(model), str(data_dir / "data.parquet")]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "prediction"

    assert main(["evaluate", str(model), str(data_dir / "data.csv"),
                 "--target", "label"]) == 0  # fmt: skip
    assert "accuracy" in capsys.readouterr().out

    assert main(["info", str(model)]) == 0
    out = capsys.readouterr().out
    assert "classes: no, yes" in out and "color: one-hot over 3" in out
    assert "early_stopping=True" in out and "validation: best score" in out
    # the preprocessed inputs an exported artifact takes, in order
    assert "in order: x1, x2, color=blue, color=green, color=red" in out

    dest = tmp_path / "m.keras"
    assert main(["export", str(model), "--format", "keras", "--out", str(dest)]) == 0
    assert dest.exists()


def _write(path, frame):
    frame.to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "{tmp}/missing.csv", "--target", "y", "--out", "{tmp}/m"],
         "data file not found"),
        (["train", "{data}/data.csv", "--target", "nope", "--out", "{tmp}/m"],
         "target column 'nope' not found"),
        (["train", "{tmp}/bad.parquet", "--target", "y", "--out", "{tmp}/m"],
         "cannot read data file"),
        (["train", "{tmp}/ids.csv", "--target", "label", "--out", "{tmp}/m"],
         "cannot be one-hot encoded"),
        (["train", "{data}/data.csv", "--target", "label", "--loss", "poisson",
          "--out", "{tmp}/m"], "does not apply to MLPClassifier"),
        (["predict", "{tmp}/missing.tfmlp", "{data}/data.csv"],
         "model file not found"),
        (["predict", "{tmp}/bad.parquet", "{data}/data.csv"],
         "cannot read model file"),
        (["predict", "{model}", "{tmp}/fewer.csv"],
         "lacks column(s) the model was trained on: 'x2'"),
        (["evaluate", "{model}", "{data}/data.csv", "--target", "nope"],
         "target column 'nope' not found"),
        (["train", "{tmp}/data.json", "--target", "y", "--out", "{tmp}/m"],
         ".json files are not read; the command line reads CSV / TSV"),
        (["predict", "{model}", "{tmp}/data.xlsx.gz"], ".xlsx files are not read"),
    ],
)  # fmt: skip
def test_errors(argv, message, trained, data_dir, tmp_path, capsys):
    (tmp_path / "bad.parquet").write_bytes(b"not a parquet file")
    _frame().to_json(tmp_path / "data.json")
    (tmp_path / "data.xlsx.gz").write_bytes(b"x")
    rng = np.random.RandomState(0)
    _write(tmp_path / "ids.csv", pd.DataFrame({
        "id": [f"id{i}" for i in range(150)], "x": rng.randn(150),
        "label": rng.randint(0, 2, 150)}))  # fmt: skip
    _write(tmp_path / "fewer.csv", _frame().drop(columns=["x2"]))
    fields = {"tmp": tmp_path, "data": data_dir, "model": trained[0]}
    argv = [a.format(**fields) for a in argv]
    capsys.readouterr()
    assert main(argv) == (2 if "does not apply" in message else 1)  # a bad flag: 2
    err = _err(capsys)
    assert message in err
    assert err.count("\n") == 1 and err.startswith("tfmlp ")
    assert "Traceback" not in err


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_feature_mismatch(tmp_path, capsys):
    """A plain tfmlp.save model: the data's feature count must match."""
    import tfmlp

    rng = np.random.RandomState(0)
    est = tfmlp.MLPRegressor(hidden_layer_sizes=(3,), max_iter=3, tol=1e9)
    est.fit(rng.randn(20, 3), rng.randn(20))
    tfmlp.save(est, tmp_path / "plain.tfmlp")
    data = _write(tmp_path / "four.csv", pd.DataFrame(rng.randn(5, 4)))
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "plain.tfmlp"), data]) == 1
    assert "feature mismatch: the model expects 3 features, the data gives 4" in (
        _err(capsys)
    )


def test_bad_flag_values_exit_2(data_dir, tmp_path, capsys):
    data, out = str(data_dir / "data.csv"), str(tmp_path / "m")
    with pytest.raises(SystemExit) as exc:
        main(["train", data, "--target", "label", "--out", out, "--hidden", "a,b"])
    assert exc.value.code == 2
    err = _err(capsys)
    assert "expected comma-separated integers" in err and err.count("\n") == 1
    with pytest.raises(SystemExit) as exc:
        main(["train", data, "--target", "label", "--out", out, "--solver", "nope"])
    assert exc.value.code == 2
    assert "expected 'adam' or 'lbfgs' or 'sgd', got 'nope'" in _err(capsys)


def test_hidden_sizes_take_a_trailing_comma_but_no_empty_item():
    import argparse

    from tfmlp._cli import _hidden_sizes

    assert _hidden_sizes("100,") == (100,)
    assert _hidden_sizes(" 32, 16 ") == (32, 16)
    for text in ("3,,4", ",4", ",", "", "8,,", "1_0", "\u0661\u0660", "4.0"):
        with pytest.raises(argparse.ArgumentTypeError, match="comma-separated"):
            _hidden_sizes(text)


def test_data_errors_come_before_flag_errors(capsys):
    """The table and paths are checked before TensorFlow is even imported."""
    code = main(["train", "x.csv", "--target", "y", "--out", "m", "--hidden", "a"])
    assert code == 1
    assert _err(capsys) == "tfmlp train: error: data file not found: x.csv\n"


@pytest.mark.parametrize(
    "values, task",
    [
        (["a", "b", "a"], "classify"),
        ([True, False, True], "classify"),
        ([0, 1, 2, 1], "classify"),
        ([0.0, 1.0, 1.0, 0.0], "classify"),  # whole numbers stored as floats
        ([0.5, 1.0, 2.0], "regress"),
        (list(range(50)), "regress"),  # more than 20 distinct integers
        (list(range(20)) * 2, "classify"),  # at the bound: 20 classes
        (list(range(21)) * 2, "regress"),
        ([float(v) for v in range(20)], "classify"),
        ([float(v) for v in range(21)], "regress"),
        ([1.0, np.inf, 2.0], "regress"),
    ],
)
def test_task_detection(values, task):
    from tfmlp._cli import _decide_task

    assert _decide_task(pd.Series(values)) == task


def test_unexpected_value_error_is_one_line(tmp_path, capsys):
    """A plain model on data with NaN: the estimator's ValueError, one line."""
    import tfmlp

    rng = np.random.RandomState(0)
    est = tfmlp.MLPRegressor(hidden_layer_sizes=(3,), max_iter=2)
    with pytest.warns(Warning):
        est.fit(rng.randn(20, 2), rng.randn(20))
    tfmlp.save(est, tmp_path / "plain.tfmlp")
    _write(tmp_path / "nan.csv", pd.DataFrame({"a": [1.0, np.nan], "b": [0.0, 1.0]}))
    capsys.readouterr()
    argv = ["predict", str(tmp_path / "plain.tfmlp"), str(tmp_path / "nan.csv")]
    assert main(argv) == 1
    err = _err(capsys)
    assert err.startswith("tfmlp predict: error: ") and "NaN" in err
    assert err.count("\n") == 1


def test_output_folder_is_checked_before_training(data_dir, tmp_path, capsys):
    code = main(["train", str(data_dir / "data.csv"), "--target", "label",
                 "--out", str(tmp_path / "missing" / "m.tfmlp")])  # fmt: skip
    assert code == 1
    err = _err(capsys)
    assert "folder" in err and "does not exist" in err
    assert "Training" not in capsys.readouterr().out


@pytest.mark.parametrize(
    "out, message",
    [
        ("", "path is empty"),
        ("/dev/null", "not a regular file"),
        ("newdir/", "ends with a separator"),
        ("link.tfmlp", "does not exist"),  # a link into a missing folder
        ("sub/../m.tfmlp", "does not exist"),  # "sub/.." needs sub
    ],
)
def test_unwritable_model_paths_are_refused_before_training(
    data_dir, tmp_path, monkeypatch, capsys, out, message
):
    import tfmlp._base

    def trained(*args, **kwargs):
        raise AssertionError("trained before the path was checked")

    monkeypatch.setattr(tfmlp._base.BaseMLP, "_fit", trained)
    os.symlink(tmp_path / "missing" / "m.tfmlp", tmp_path / "link.tfmlp")
    monkeypatch.chdir(tmp_path)
    code = main(["train", str(data_dir / "data.csv"), "--target", "label",
                 "--out", out])  # fmt: skip
    assert code == 1
    assert message in _err(capsys)
    assert "Training" not in capsys.readouterr().out


@pytest.mark.parametrize("sub", ["train", "predict", "evaluate", "export", "info"])
def test_help_has_example(sub, capsys):
    with pytest.raises(SystemExit) as exc:
        main([sub, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "example:" in out and f"tfmlp {sub}" in out


def test_train_help_lists_generated_flags(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for flag in ("--hidden-layer-sizes", "--hidden", "--learning-rate-init",
                 "--early-stopping", "--no-shuffle", "--n-iter-no-change",
                 "--class-weight", "--loss", "--dropout"):  # fmt: skip
        assert flag in out
    assert "--callbacks" not in out and "--hidden-stack" not in out


def test_preprocessor_round_trip_and_errors():
    frame = _frame(30)
    pre = TablePreprocessor(target="label", task="classify").fit(frame)
    again = TablePreprocessor.from_dict(pre.to_dict())
    np.testing.assert_array_equal(pre.transform(frame), again.transform(frame))
    assert again.feature_names[:2] == ["x1", "x2"]
    with pytest.raises(PreprocessError, match="lacks column"):
        pre.transform(frame.drop(columns=["color"]))
    dates = pd.DataFrame({"d": pd.date_range("2020", periods=3), "y": [0, 1, 0]})
    with pytest.raises(PreprocessError, match="cannot be encoded"):
        TablePreprocessor(target="y").fit(dates)
    with pytest.raises(PreprocessError, match="malformed"):
        TablePreprocessor.from_dict({"format": "x"})


def test_plot_loss_curve_axes(trained):
    import matplotlib

    matplotlib.use("Agg")
    import tfmlp
    from tfmlp._plotting import plot_loss_curve

    est = tfmlp.load(trained[0])
    ax = plot_loss_curve(est)
    assert ax.get_ylabel() == "training loss"
    assert len(ax.figure.axes) == 2  # validation score on a twin axis
    assert list(ax.lines[0].get_ydata()) == list(est.loss_curve_)


def _run(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "tfmlp", *args],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


@pytest.mark.slow
def test_subprocess_predict_and_error(trained, data_dir):
    proc = _run("predict", str(trained[0]), str(data_dir / "data.csv"), "--proba")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "proba_no,proba_yes,prediction"
    proc = _run("info", str(data_dir / "missing.tfmlp"))
    assert proc.returncode == 1
    assert "tfmlp info: error: model file not found" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_subprocess_help_is_fast_enough():
    proc = _run("--help")
    assert proc.returncode == 0
    for sub in ("demo", "train", "predict", "evaluate", "export", "info"):
        assert sub in proc.stdout


def test_progress_bar_on_a_terminal():
    import io

    from tfmlp._cli import _progress_callback

    class TTY(io.StringIO):
        def isatty(self):
            return True

    stream = TTY()
    cb = _progress_callback(4, stream)
    cb.on_train_begin()
    for epoch in range(2):
        cb.on_epoch_end(epoch, {"loss": 0.5, "val_score": 0.75})
    cb.on_train_end()
    text = stream.getvalue()
    assert text.startswith("\r[#####") and "epoch 2/4, loss 0.500000" in text
    assert "val score 0.7500" in text and "ETA" in text and text.endswith("\n")


def test_identifier_columns_are_refused():
    """A text column whose values are mostly distinct is an id, not a category."""
    rng = np.random.RandomState(0)
    names = pd.DataFrame({"name": [f"p{i}" for i in range(30)],
                          "x": rng.randn(30), "y": rng.randint(0, 2, 30)})  # fmt: skip
    with pytest.raises(PreprocessError, match="30 distinct values in 30 rows"):
        TablePreprocessor(target="y").fit(names)
    few = pd.DataFrame({"city": ["a", "b", "c", "d"], "y": [0, 1, 0, 1]})
    assert TablePreprocessor(target="y").fit(few).feature_names == [
        "city=a",
        "city=b",
        "city=c",
        "city=d",
    ]  # a tiny table keeps its categories
    # the bounds: more than 10 values, and more than half the rows distinct
    for n_distinct, n_rows, refused in [(10, 10, False), (11, 11, True),
                                        (11, 22, False), (11, 21, True)]:  # fmt: skip
        ids = [f"p{i % n_distinct}" for i in range(n_rows)]
        table = pd.DataFrame({"name": ids, "y": np.arange(n_rows) % 2})
        if refused:
            with pytest.raises(PreprocessError, match="an identifier"):
                TablePreprocessor(target="y").fit(table)
        else:
            assert len(TablePreprocessor(target="y").fit(table).feature_names) == (
                n_distinct
            )


# ------------------------------------------------ regression tests (QA pass)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(
    "before, after",
    [
        (["--hidden", "5"], []),
        (["--early-stopping"], ["--hidden", "5"]),
        (["--alpha", "0.001", "--hidden=5"], ["--random-state", "3"]),
    ],
)
def test_estimator_flags_before_data(before, after, data_dir, tmp_path, capsys):
    """Any order argparse accepts works, also estimator flags before DATA."""
    import tfmlp

    out = tmp_path / "m.tfmlp"
    argv = ["train", *before, str(data_dir / "data.csv"), *after,
            "--target", "label", "--max-iter", "3", "--no-progress",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0, _err(capsys)
    assert tfmlp.load(out).hidden_layer_sizes == (5,)


def test_flag_value_taken_for_data_is_detected():
    from tfmlp._cli import _data_may_be_a_flag_value

    argv = ["train", "--hidden", "8", "d.csv", "--target", "y"]
    assert _data_may_be_a_flag_value(argv, "8", ["--hidden", "d.csv"])
    argv = ["train", "d.csv", "--hidden", "8", "--target", "y"]
    assert not _data_may_be_a_flag_value(argv, "d.csv", ["--hidden", "8"])
    argv = ["train", "--hidden=8", "d.csv", "--target", "y"]
    assert not _data_may_be_a_flag_value(argv, "d.csv", ["--hidden=8"])


@pytest.mark.parametrize(
    "exc, message",
    [
        (RuntimeError("boom\nsecond line"), "RuntimeError: boom"),
        (KeyError("x"), "KeyError: 'x'"),
        (MemoryError(), "out of memory"),
        (ZeroDivisionError(), "ZeroDivisionError"),
    ],
)
def test_unexpected_errors_are_one_line(exc, message, monkeypatch, capsys):
    import tfmlp._cli as cli

    def fail(path, notes=None):
        raise exc

    monkeypatch.delenv("TFMLP_DEBUG", raising=False)
    monkeypatch.setattr(cli, "_load_model", fail)
    capsys.readouterr()
    assert main(["info", "m.tfmlp"]) == 1
    err = _err(capsys)
    assert err.startswith(f"tfmlp info: error: {message}")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_tensorflow_error_is_one_line(monkeypatch, capsys):
    import tensorflow as tf

    import tfmlp._cli as cli

    def fail(path, notes=None):
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when\nallocating")

    monkeypatch.delenv("TFMLP_DEBUG", raising=False)
    monkeypatch.setattr(cli, "_load_model", fail)
    assert main(["info", "m.tfmlp"]) == 1
    err = _err(capsys)
    assert err.startswith("tfmlp info: error: ResourceExhaustedError: OOM when")
    assert err.count("\n") == 1


def test_interrupt_debug_and_exit_semantics(monkeypatch, capsys):
    import tfmlp._cli as cli

    def interrupt(path, notes=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_load_model", interrupt)
    assert main(["info", "m.tfmlp"]) == 130
    assert _err(capsys) == "tfmlp info: interrupted\n"

    def fail(path, notes=None):
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "_load_model", fail)
    monkeypatch.setenv("TFMLP_DEBUG", "1")  # the traceback, for bug reports
    with pytest.raises(RuntimeError, match="boom"):
        main(["info", "m.tfmlp"])
    with pytest.raises(SystemExit) as exit_info:  # argparse keeps its exit
        main(["info"])
    assert exit_info.value.code == 2


def test_ctrl_c_during_train_still_writes_the_model(
    monkeypatch, capsys, data_dir, tmp_path
):
    """As the README says: training ends at that epoch, --out is written, exit 0."""
    import keras

    import tfmlp
    import tfmlp._cli as cli

    class CtrlC(keras.callbacks.Callback):  # stands in for the progress bar
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_progress_callback", lambda *a, **k: CtrlC())
    out = tmp_path / "m.tfmlp"
    argv = ["train", str(data_dir / "data.csv"), "--target", "label",
            "--hidden", "3", "--max-iter", "10", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert "Training interrupted by user." in _err(capsys)
    assert tfmlp.load(out).n_iter_ == 2


def test_huge_network_is_a_one_line_memory_error(data_dir, tmp_path, capsys):
    argv = ["train", str(data_dir / "data.csv"), "--target", "label",
            "--hidden", "100000000000", "--no-progress",
            "--out", str(tmp_path / "m")]  # fmt: skip
    assert main(argv) == 1
    err = _err(capsys)
    assert err.startswith("tfmlp train: error: out of memory")
    assert err.count("\n") == 1


def _csv_frame(text):
    import io

    return pd.read_csv(io.StringIO(text))


def test_whole_number_categories_match_when_read_as_floats():
    """A missing value makes pandas read 1, 2, 3 as 1.0, 2.0, 3.0."""
    train = _csv_frame("x,grp,y\n0.1,other,a\n0.2,3,b\n0.3,2,a\n0.4,1,b\n")
    new = _csv_frame("x,grp\n0,1.0\n0,2.0\n0,3.0\n0,\n")
    assert new["grp"].dtype == np.float64
    pre = TablePreprocessor(target="y").fit(train)
    assert pre.feature_names[1:] == ["grp=1", "grp=2", "grp=3", "grp=other"]
    onehot = pre.transform(new)[:, 1:]
    np.testing.assert_array_equal(onehot[:3], np.eye(4)[:3])
    assert not onehot[3].any()  # missing: all zeros
    ints = pre.transform(_csv_frame("x,grp\n0,3\n"))[:, 1:]
    np.testing.assert_array_equal(ints[0], [0, 0, 1, 0])
    # float values at training time get the same labels
    mixed = pd.DataFrame({"grp": pd.Series([1.0, "a", 2.0], dtype=object),
                          "y": [0, 1, 0]})  # fmt: skip
    assert TablePreprocessor(target="y").fit(mixed).feature_names == [
        "grp=1", "grp=2", "grp=a"]  # fmt: skip


def test_float_categories_of_older_files_still_match():
    """Files written before the normalisation stored float categories as '1.0'."""
    record = {"format": "tfmlp-table-preprocessing", "version": 1,
              "target": "y", "task": "classify", "max_categories": 100,
              "columns": [{"name": "grp", "kind": "categorical",
                           "categories": ["1.0", "2.5", "a"]}]}  # fmt: skip
    pre = TablePreprocessor.from_dict(record)
    frame = pd.DataFrame({"grp": pd.Series([1.0, 2.5, "a", "b"], dtype=object)})
    np.testing.assert_array_equal(pre.transform(frame), np.eye(4, 3))


def test_nullable_missing_values_are_not_a_category():
    frame = pd.DataFrame({
        "s": pd.array(["a", None, "b", "a"], dtype="string"),
        "b": pd.array([True, None, False, True], dtype="boolean"),
        "o": pd.Series(["x", pd.NaT, "y", pd.NA], dtype=object),
        "y": [0, 1, 0, 1],
    })  # fmt: skip
    pre = TablePreprocessor(target="y").fit(frame)
    assert pre.feature_names == ["s=a", "s=b", "b=False", "b=True", "o=x", "o=y"]
    X = pre.transform(frame)
    assert not X[1].any()  # the row of missing values: all zeros
    assert X[3].tolist() == [1, 0, 0, 1, 0, 0]


@pytest.fixture(scope="module")
def named_model(tmp_path_factory):
    """A tfmlp.save model fitted on a DataFrame (it has feature_names_in_)."""
    import warnings

    import tfmlp

    rng = np.random.RandomState(0)
    frame = pd.DataFrame({"b": rng.randn(40), "a": rng.randn(40)})
    est = tfmlp.MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(frame, frame["b"] - 2 * frame["a"])
    path = tmp_path_factory.mktemp("named") / "named.tfmlp"
    tfmlp.save(est, path)
    return path, est, frame


def test_named_plain_model_matches_columns_by_name(named_model, tmp_path, capsys):
    import warnings

    path, est, frame = named_model
    data = frame[["a", "b"]].assign(extra=1.0)  # other order, one more column
    csv = _write(tmp_path / "d.csv", data)
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["predict", str(path), csv]) == 0
    assert not [w for w in caught if "feature names" in str(w.message)]
    out = capsys.readouterr().out.splitlines()
    np.testing.assert_allclose(np.array(out[1:], dtype=float), est.predict(frame))


def test_named_plain_model_missing_column(named_model, tmp_path, capsys):
    path, _, frame = named_model
    csv = _write(tmp_path / "d.csv", frame[["b"]].assign(c=0.0))
    capsys.readouterr()
    assert main(["predict", str(path), csv]) == 1
    err = _err(capsys)
    assert err == (
        "tfmlp predict: error: the data lacks column(s) the model was trained on: 'a'\n"
    )


def test_unfitted_model_is_refused(tmp_path, capsys):
    import tfmlp

    tfmlp.save(tfmlp.MLPClassifier(), tmp_path / "unfit.tfmlp")
    data = _write(tmp_path / "d.csv", _frame(10))
    for argv in (["evaluate", str(tmp_path / "unfit.tfmlp"), data,
                  "--target", "label"],
                 ["predict", str(tmp_path / "unfit.tfmlp"), data]):  # fmt: skip
        assert main(argv) == 1
        err = _err(capsys)
        assert "is not fitted" in err and "regressor" not in err
        assert err.count("\n") == 1


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_info_says_iterations_for_lbfgs(tmp_path, capsys):
    import tfmlp

    rng = np.random.RandomState(0)
    est = tfmlp.MLPRegressor(hidden_layer_sizes=(3,), solver="lbfgs", max_iter=4)
    est.fit(rng.randn(20, 2), rng.randn(20))
    tfmlp.save(est, tmp_path / "l.tfmlp")
    capsys.readouterr()
    assert main(["info", str(tmp_path / "l.tfmlp")]) == 0
    out = capsys.readouterr().out
    assert f"training: {est.n_iter_} iterations, final loss" in out


def test_info_describes_a_model_interrupted_before_its_first_epoch(tmp_path, capsys):
    """A fit stopped before its first epoch ended is fitted but has no loss_:
    info describes it (it failed with an AttributeError)."""
    import keras

    import tfmlp

    class InterruptAtStart(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            raise KeyboardInterrupt

    rng = np.random.RandomState(0)
    est = tfmlp.MLPClassifier(hidden_layer_sizes=(3,), callbacks=[InterruptAtStart()])
    with pytest.warns(UserWarning, match="interrupted"):
        est.fit(rng.randn(20, 2), rng.randn(20) > 0)
    assert est.n_iter_ == 0 and not hasattr(est, "loss_")
    tfmlp.save(est.set_params(callbacks=None), tmp_path / "i.tfmlp")
    capsys.readouterr()
    assert main(["info", str(tmp_path / "i.tfmlp")]) == 0
    assert "training: 0 epochs, final loss nan" in capsys.readouterr().out


def test_export_error_names_the_users_path(trained, tmp_path, capsys):
    dest = tmp_path / "no" / "such" / "m.keras"
    capsys.readouterr()
    assert main(["export", str(trained[0]), "--format", "keras",
                 "--out", str(dest)]) == 1  # fmt: skip
    err = _err(capsys)
    assert str(dest) in err and ".tmp" not in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--alpha", "-1", "expected a float in the range [0.0, inf), got '-1'"),
        ("--max-iter", "0", "expected an int in the range [1, inf), got '0'"),
        ("--learning-rate-init", "0", "expected a float in the range (0.0, inf)"),
        ("--hidden", "8,0", "layer sizes must be positive integers"),
        ("--test-size", "1", "expected a fraction in the range [0, 1)"),
        ("--random-state", "-3", "expected an int in the range [0, 4294967295]"),
    ],
)
def test_out_of_range_flags_exit_2(flag, value, message, data_dir, tmp_path, capsys):
    argv = ["train", str(data_dir / "data.csv"), "--target", "label",
            flag, value, "--out", str(tmp_path / "m")]  # fmt: skip
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert message in err and err.count("\n") == 1 and "Training" not in out


def test_in_range_flag_values_are_kept():
    from tfmlp._cli import _estimator_params, _make_converter

    convert = {
        name: _make_converter(name, constraints)[0]
        for name, _, constraints, _ in _estimator_params()
    }
    assert convert["n_iter_no_change"]("inf") == np.inf
    assert convert["n_iter_no_change"]("5") == 5
    assert convert["batch_size"]("auto") == "auto"
    assert convert["dropout"]("none") is None
    assert convert["momentum"]("1") == 1.0


def test_predict_writes_a_column_per_output(data_dir, tmp_path, capsys):
    # models saved with tfmlp.save may have several outputs (multi-output
    # regression, multilabel): one prediction column each
    from sklearn.datasets import make_multilabel_classification

    import tfmlp

    rng = np.random.RandomState(0)
    X3 = rng.randn(60, 3)
    table = tmp_path / "x.csv"
    pd.DataFrame(X3, columns=list("abc")).to_csv(table, index=False)
    reg = tfmlp.MLPRegressor(hidden_layer_sizes=(4,), max_iter=5).fit(X3, X3[:, :2])
    _, Y = make_multilabel_classification(60, 3, n_classes=3, random_state=0)
    clf = tfmlp.MLPClassifier(hidden_layer_sizes=(4,), max_iter=5).fit(X3, Y)
    for est, extra in [(reg, []), (clf, []), (clf, ["--proba"])]:
        path = tmp_path / "m.tfmlp"
        tfmlp.save(est, path)
        out = tmp_path / "p.csv"
        assert main(["predict", str(path), str(table), "--out", str(out), *extra]) == 0
        got = pd.read_csv(out)
        names = [f"prediction_{k}" for k in range(est.n_outputs_)]
        if extra:
            names = [f"proba_{k}" for k in range(3)] + names
        assert list(got.columns) == names
        pred = est.predict(X3)
        np.testing.assert_allclose(
            got[names[-est.n_outputs_ :]].to_numpy(), pred, rtol=1e-6
        )
    capsys.readouterr()


def test_classify_a_continuous_target_is_one_line(data_dir, tmp_path, capsys):
    code = main(
        [
            "train", str(data_dir / "data.csv"), "--target", "value",
            "--task", "classify", "--out", str(tmp_path / "m.tfmlp"), "--no-progress",
        ]
    )  # fmt: skip
    err = _err(capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "'value' holds continuous values" in err and "--task regress" in err
    assert not (tmp_path / "m.tfmlp").exists()


def test_targets_are_labelled_as_the_file_writes_them(tmp_path, capsys):
    rng = np.random.RandomState(0)
    n = 90
    x = rng.randn(n)
    frame = pd.DataFrame({"x": x, "zip": np.where(x > 0, "02134", "10001")})
    frame["flag"] = (x > 0.2).astype(object)
    frame["grade"] = np.where(x > 0, 1, 2).astype(object)
    frame.loc[3, ["flag", "grade"]] = None  # read back as objects / floats
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    model = tmp_path / "m.tfmlp"
    common = ["--hidden", "4", "--max-iter", "5", "--out", str(model), "--no-progress"]
    for target, classes in [
        ("zip", "02134, 10001"),
        ("flag", "False, True"),
        ("grade", "1, 2"),
    ]:
        assert main(["train", str(path), "--target", target, *common]) == 0, target
        capsys.readouterr()
        assert main(["info", str(model)]) == 0
        assert f"classes: {classes}" in capsys.readouterr().out, target
        assert main(["evaluate", str(model), str(path)]) == 0, target
        assert "accuracy" in capsys.readouterr().out
    out = tmp_path / "pred.csv"
    assert main(["predict", str(model), str(path), "--out", str(out)]) == 0
    assert set(pd.read_csv(out)["prediction"]) <= {1, 2}


def test_evaluate_reads_text_labels_that_look_like_numbers(tmp_path, capsys):
    rng = np.random.RandomState(1)
    x = rng.randn(120)
    labels = np.where(x > 0.5, "x", np.where(x > 0, "1", "2"))
    train = tmp_path / "train.csv"
    pd.DataFrame({"x": x, "y": labels}).to_csv(train, index=False)
    test = tmp_path / "test.csv"  # only "1" and "2": pandas reads integers
    keep = labels != "x"
    pd.DataFrame({"x": x[keep], "y": labels[keep]}).to_csv(test, index=False)
    model = tmp_path / "m.tfmlp"
    args = ["--hidden", "4", "--max-iter", "5", "--out", str(model), "--no-progress"]
    assert main(["train", str(train), "--target", "y", *args]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(model), str(test)]) == 0
    assert "accuracy" in capsys.readouterr().out


def test_demo_random_state_is_checked_as_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--random-state", "-1"])
    assert exc.value.code == 2
    assert "--random-state" in capsys.readouterr().err


def _train_csv(tmp_path, frame, target, *flags) -> int:
    """``tfmlp train`` on ``frame`` written as a CSV (a small, quick fit)."""
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    args = ["--hidden", "3", "--max-iter", "3", "--no-progress", *flags]
    return main(
        ["train", str(path), "--target", target, *args, "--out", str(tmp_path / "m")]
    )


def test_a_test_split_too_small_to_stratify_falls_back_to_a_plain_split(tmp_path):
    rng = np.random.RandomState(2)
    x = rng.randn(30)
    frame = pd.DataFrame({"x": x, "y": np.repeat(list("abcdef"), 5)})
    assert _train_csv(tmp_path, frame, "y", "--test-size", "0.1") == 0


def test_evaluate_matches_text_classes_however_the_file_reads(tmp_path, capsys):
    rng = np.random.RandomState(3)
    x = rng.randn(120)
    labels = np.where(x > 0, " cat", " dog")  # written with a leading space
    path = tmp_path / "space.csv"
    path.write_text("x,y\n" + "\n".join(f"{a},{b}" for a, b in zip(x, labels)))
    model = tmp_path / "m.tfmlp"
    args = ["--hidden", "4", "--max-iter", "200", "--test-size", "0", "--no-progress"]
    args += ["--random-state", "0", "--learning-rate-init", "0.05"]
    assert main(["train", str(path), "--target", "y", *args, "--out", str(model)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(model), str(path)]) == 0
    accuracy = float(capsys.readouterr().out.split("accuracy")[1].split()[0])
    assert accuracy > 0.9  # 0 when the file's labels were compared stripped


def test_whole_floats_beyond_exact_integers_are_not_wrapped(tmp_path, capsys):
    x = np.random.RandomState(4).randn(60)
    frame = pd.DataFrame({"x": x, "y": np.where(x > 0, 1e19, 2e19)})
    path = tmp_path / "huge.csv"
    frame.to_csv(path, index=False)
    model = tmp_path / "m.tfmlp"
    code = main(["train", str(path), "--target", "y", "--task", "classify",
                 "--max-iter", "3", "--no-progress", "--out", str(model)])  # fmt: skip
    if code == 0:  # trained on the float labels themselves, never wrapped
        capsys.readouterr()
        main(["info", str(model)])
        assert "-9223372036854775808" not in capsys.readouterr().out


@pytest.mark.slow
def test_train_into_a_closed_pipe_still_saves_the_model(tmp_path, data_dir):
    model = tmp_path / "piped.tfmlp"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    cmd = [sys.executable, "-m", "tfmlp", "train", str(data_dir / "data.csv"),
           "--target", "label", "--hidden", "4", "--max-iter", "3",
           "--no-progress", "--out", str(model)]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    proc.stdout.close()  # the reader goes away before the first line (`| true`)
    proc.wait(timeout=300)
    assert proc.returncode == 0, proc.stderr.read().decode()
    assert model.exists()


def test_identifier_check_is_made_on_the_whole_table(tmp_path):
    rng = np.random.RandomState(5)
    frame = pd.DataFrame(
        {
            "x": rng.randn(24),
            "city": [f"c{i % 12}" for i in range(24)],
            "y": [0, 1] * 12,
        }
    )  # 12 values in 24 rows: a category; in a 19-row split it would look like ids
    assert _train_csv(tmp_path, frame, "y", "--test-size", "0.2") == 0


def test_random_state_none_is_accepted_as_the_help_says(data_dir, tmp_path):
    args = [
        "--hidden",
        "3",
        "--max-iter",
        "2",
        "--no-progress",
        "--random-state",
        "none",
    ]
    out = str(tmp_path / "m.tfmlp")
    assert (
        main(
            [
                "train",
                str(data_dir / "data.csv"),
                "--target",
                "label",
                *args,
                "--out",
                out,
            ]
        )
        == 0
    )


def test_text_categories_keep_their_encoding_however_a_file_reads(tmp_path, capsys):
    """Category text that another file's values let pandas read as numbers or
    bools (zip codes with leading zeros, true/false, 2.50) is matched as the
    file writes it: the same rows predict the same in any file."""
    rng = np.random.RandomState(6)
    n = 90
    zips = rng.choice(["02134", "10001", "unknown"], n)
    flags = rng.choice(["true", "false", "maybe"], n)
    prices = rng.choice(["2.50", "3.00", "n/a"], n)
    x = rng.randn(n)
    y = np.where(x + (zips == "02134") - (flags == "true") > 0, "a", "b")
    frame = pd.DataFrame({"x": x, "zip": zips, "flag": flags, "price": prices, "y": y})
    assert _train_csv(tmp_path, frame, "y", "--test-size", "0") == 0
    model = tmp_path / "m"
    keep = (zips != "unknown") & (flags != "maybe") & (prices != "n/a")
    subset = frame[keep]
    both = {"all": frame, "subset": subset}
    probas = {}
    for name, table in both.items():
        path = tmp_path / f"{name}.csv"
        table.to_csv(path, index=False)
        out = tmp_path / f"{name}_pred.csv"
        assert (
            main(["predict", str(model), str(path), "--proba", "--out", str(out)]) == 0
        )
        probas[name] = pd.read_csv(out).filter(like="proba_").to_numpy()
    assert pd.read_csv(tmp_path / "subset.csv")["zip"].dtype.kind in "iuf"  # as numbers
    np.testing.assert_array_equal(probas["all"][keep], probas["subset"])


def test_a_mixed_column_in_a_large_csv_is_read_without_pandas_warnings(tmp_path):
    import warnings

    from tfmlp._cli import _read_table

    path = tmp_path / "big.csv"
    path.write_text("a,b\n" + "1,2\n" * 300_000 + "?,3\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame = _read_table(str(path))
    assert len(frame) == 300_001


def test_report_warnings_are_warning_lines(tmp_path, capsys):
    import warnings

    frame = pd.DataFrame({"x": np.arange(5.0), "v": [0.1, 0.5, 0.2, 0.9, 0.4]})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _train_csv(tmp_path, frame, "v", "--test-size", "0.2") == 0
    assert not [w for w in caught if "well-defined" in str(w.message)]
    assert "warning: R^2 score is not well-defined" in capsys.readouterr().err


def test_plot_and_out_may_not_overwrite_each_other_or_the_data(tmp_path, capsys):
    path = tmp_path / "table.csv"
    _frame().to_csv(path, index=False)
    model = tmp_path / "m.tfmlp"
    base = ["train", str(path), "--target", "label", "--max-iter", "2", "--no-progress"]
    for extra, what in [
        (["--out", str(model), "--plot", str(model)], "is the --out model file"),
        (["--out", str(model), "--plot", str(path)], "is the data file"),
        (["--out", str(path)], "is the data file"),
    ]:
        assert main([*base, *extra]) == 1
        assert what in _err(capsys)
    assert pd.read_csv(path).shape == _frame().shape  # the data is untouched
    assert not model.exists()


def test_lbfgs_training_reports_progress_per_iteration(tmp_path, capsys):
    path = tmp_path / "table.csv"
    _frame().to_csv(path, index=False)
    args = ["--solver", "lbfgs", "--max-iter", "5", "--out", str(tmp_path / "m")]
    assert main(["train", str(path), "--target", "label", *args]) == 0
    err = _err(capsys)
    assert "iteration 1/5, loss" in err and "iteration 5/5" in err


def test_verbose_lines_on_a_terminal_get_plain_progress_lines(tmp_path, monkeypatch):
    import tfmlp._cli as cli

    made = []
    original = cli._progress_callback

    def recording(*args, **kwargs):
        made.append(kwargs.get("bar", True))
        return original(*args, **kwargs)

    monkeypatch.setattr(cli, "_progress_callback", recording)
    monkeypatch.setattr(cli, "_isatty", lambda stream: True)
    path = tmp_path / "table.csv"
    _frame().to_csv(path, index=False)
    for flags, bar in [(["--verbose"], False), ([], True)]:
        out = ["--max-iter", "2", "--out", str(tmp_path / "m"), *flags]
        assert main(["train", str(path), "--target", "label", *out]) == 0
        assert made[-1] is bar


def test_plot_loss_curve_errors_and_lbfgs_point():
    import matplotlib

    matplotlib.use("Agg")
    from sklearn.exceptions import NotFittedError

    from tfmlp import MLPClassifier
    from tfmlp._plotting import plot_loss_curve

    with pytest.raises(NotFittedError):
        plot_loss_curve(MLPClassifier())
    with pytest.raises(TypeError, match="expects a fitted MLPClassifier"):
        plot_loss_curve(None)
    X = np.random.RandomState(0).randn(40, 3)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = MLPClassifier(solver="lbfgs", max_iter=7).fit(X, X[:, 0] > 0)
    ax = plot_loss_curve(est)
    assert ax.get_xlabel() == "iteration"
    assert list(ax.lines[0].get_xdata()) == [est.n_iter_]
    for not_axes in ("axes", 1, matplotlib.figure.Figure()):
        with pytest.raises(TypeError, match="ax must be a matplotlib Axes"):
            plot_loss_curve(est, ax=not_axes)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_plot_draws_validation_scores_at_the_epochs_they_scored():
    """Scoring can start after the first epoch (a warm start that turns
    early stopping on, partial_fit given validation data from some call on)
    or stop before the last: each score is drawn at its own epoch."""
    import matplotlib

    matplotlib.use("Agg")
    from sklearn.neural_network import MLPClassifier as SkMLP

    from tfmlp import MLPClassifier
    from tfmlp._plotting import plot_loss_curve

    X, y = _frame(60)[["x1", "x2"]].values, _frame(60)["label"].values

    def scores_at(est):
        ax = plot_loss_curve(est)
        ax2 = next(a for a in ax.figure.axes if a is not ax)
        x, v = ax2.lines[0].get_xdata(), ax2.lines[0].get_ydata()
        return [int(e) for e in x], list(v)

    est = MLPClassifier(hidden_layer_sizes=(3,), max_iter=4, random_state=0).fit(X, y)
    est.set_params(early_stopping=True, warm_start=True, max_iter=3).fit(X, y)
    x, v = scores_at(est)
    assert x == [5, 6, 7] and v == list(est.validation_scores_)
    est.set_params(early_stopping=False, max_iter=2).fit(X, y)
    assert scores_at(est)[0] == [5, 6, 7]
    est.set_params(early_stopping=True).fit(X, y)
    x, v = scores_at(est)
    assert x == list(range(5, 12)) and np.isnan(v[3:5]).all()
    pf = MLPClassifier(hidden_layer_sizes=(3,), random_state=0)
    for i in range(4):
        pf.partial_fit(X, y, classes=np.unique(y), **(
            {"validation_data": (X, y)} if i >= 2 else {}))  # fmt: skip
    assert scores_at(pf)[0] == [3, 4]
    sk = SkMLP(hidden_layer_sizes=(3,), max_iter=5, early_stopping=True).fit(X, y)
    assert scores_at(sk)[0] == list(range(1, sk.n_iter_ + 1))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_awkward_tables_train_as_their_values_say(tmp_path, capsys):
    import decimal

    frame = _frame(80)
    base = ["--hidden", "4", "--max-iter", "3", "--random-state", "0"]
    model = str(tmp_path / "m.tfmlp")
    # rows ending in a separator the header lacks (Excel and script exports)
    text = "x1,x2,label\n" + "".join(
        f"{a},{b},{c},\n" for a, b, c in frame[["x1", "x2", "label"]].values
    )
    (tmp_path / "trailing.csv").write_text(text)
    assert main(["train", str(tmp_path / "trailing.csv"), "--target", "label",
                 "--out", model, *base]) == 0  # fmt: skip
    info = capsys.readouterr()
    assert main(["predict", model, str(tmp_path / "trailing.csv")]) == 0
    assert set(capsys.readouterr().out.split()[1:]) <= {"yes", "no"}, info.err
    # a pandas index saved with the data is not a feature
    frame.to_csv(tmp_path / "indexed.csv")
    assert main(["train", str(tmp_path / "indexed.csv"), "--target", "label",
                 "--out", model, *base]) == 0  # fmt: skip
    assert "'Unnamed: 0'" in capsys.readouterr().err
    assert main(["info", model]) == 0
    assert "Unnamed" not in capsys.readouterr().out
    # Parquet decimals are numbers; values near 1e200 are standardised
    decimals = frame.assign(
        value=[decimal.Decimal(f"{v:.2f}") for v in frame["value"]],
        big=frame["x1"] * 1e200,
    )
    decimals.to_parquet(tmp_path / "decimal.parquet")
    assert main(["train", str(tmp_path / "decimal.parquet"), "--target", "value",
                 "--out", model, *base]) == 0  # fmt: skip
    assert "regress" in capsys.readouterr().out.lower()
    pre = TablePreprocessor("label", "classify").fit(decimals.drop(columns="value"))
    big = [c for c in pre.columns if c["name"] == "big"][0]
    assert np.isfinite(big["scale"]) and big["scale"] > 1e199


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_model_feature_named_like_a_saved_index_is_kept(tmp_path, capsys):
    frame = _frame(80)
    base = ["--hidden", "4", "--max-iter", "3", "--random-state", "0"]
    model = str(tmp_path / "m.tfmlp")
    frame.iloc[20:].to_csv(tmp_path / "rows.csv")  # index 20..79: a feature
    assert main(["train", str(tmp_path / "rows.csv"), "--target", "label",
                 "--out", model, *base]) == 0  # fmt: skip
    capsys.readouterr()
    frame.iloc[:20].to_csv(tmp_path / "new.csv")  # its index is 0..19
    assert main(["predict", model, str(tmp_path / "new.csv")]) == 0
    assert len(capsys.readouterr().out.split()) == 21
    assert main(["evaluate", model, str(tmp_path / "new.csv")]) == 0
    # values near 1e200: no raw NumPy overflow warning on stderr
    import warnings

    frame.assign(big=frame["x1"] * 1e200).to_csv(tmp_path / "big.csv", index=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["train", str(tmp_path / "big.csv"), "--target", "label",
                     "--out", model, *base]) == 0  # fmt: skip
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]


def test_predict_and_export_may_not_overwrite_the_data_or_the_model(
    trained, tmp_path, capsys
):
    model, _ = trained
    path = tmp_path / "table.csv"
    _frame().to_csv(path, index=False)
    before = model.read_bytes()
    for argv, what in [
        (["predict", str(model), str(path), "--out", str(path)], "is the data file"),
        (["predict", str(model), str(path), "--out", str(model)], "is the model file"),
        (
            ["export", str(model), "--format", "keras", "--out", str(model)],
            "model file",
        ),
    ]:
        assert main(argv) == 1
        assert what in _err(capsys)
    assert pd.read_csv(path).shape == _frame().shape
    assert model.read_bytes() == before


def test_repeated_target_is_a_usage_error(tmp_path, capsys):
    # argparse keeps the last: the first target would silently be a feature
    path = tmp_path / "table.csv"
    _frame().to_csv(path, index=False)
    argv = ["train", str(path), "--target", "value", "--target", "label"]
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--out", str(tmp_path / "m")])
    assert exc.value.code == 2
    assert "--target given more than once" in _err(capsys)


def _saved(tmp_path, est, X, y):
    import tfmlp

    path = tmp_path / "plain.tfmlp"
    tfmlp.save(est.fit(X, y), path)
    return path


def test_predict_with_a_plain_model_reads_boolean_columns(tmp_path, capsys):
    from tfmlp import MLPClassifier

    frame = _frame()
    X = frame[["x1", "x2"]].assign(flag=frame["color"] == "red")
    est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    with pytest.warns(Warning):
        model = _saved(tmp_path, est, X, frame["label"])
    for suffix in (".csv", ".parquet"):
        data = tmp_path / f"x{suffix}"
        X.to_csv(data, index=False) if suffix == ".csv" else X.to_parquet(data)
        out = tmp_path / f"p{suffix}.csv"
        assert main(["predict", str(model), str(data), "--out", str(out)]) == 0
        got = pd.read_csv(out)["prediction"].to_numpy()
        np.testing.assert_array_equal(got, est.predict(X))


def test_proba_of_a_regressor_is_a_usage_error(tmp_path, capsys):
    from tfmlp import MLPRegressor

    frame = _frame()
    est = MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    with pytest.warns(Warning):
        model = _saved(tmp_path, est, frame[["x1", "x2"]], frame["value"])
    data = tmp_path / "x.csv"
    frame[["x1", "x2"]].to_csv(data, index=False)
    assert main(["predict", str(model), str(data), "--proba"]) == 2
    assert "--proba needs a classifier model" in _err(capsys)


def test_parquet_files_are_recognised_by_their_content(tmp_path, trained, capsys):
    model, _ = trained
    frame = _frame()
    for name in ("table.parquet.gzip", "table"):
        path = tmp_path / name
        frame.to_parquet(path, compression="gzip")
        out = tmp_path / f"{name}.out.csv"
        assert main(["predict", str(model), str(path), "--out", str(out)]) == 0
        assert len(pd.read_csv(out)) == len(frame)


@pytest.mark.parametrize("kind", ["multilabel", "multioutput"])
def test_evaluate_names_a_model_with_several_outputs(tmp_path, capsys, kind):
    from tfmlp import MLPClassifier, MLPRegressor

    frame = _frame()
    X = frame[["x1", "x2"]]
    if kind == "multilabel":
        est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
        Y = np.c_[frame["x1"] > 0, frame["x2"] > 0].astype(int)
    else:
        est = MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
        Y = np.c_[frame["value"], frame["x1"]]
    with pytest.warns(Warning):
        model = _saved(tmp_path, est, X, Y)
    data = tmp_path / "x.csv"
    X.assign(y=Y[:, 0]).to_csv(data, index=False)
    assert main(["evaluate", str(model), str(data), "--target", "y"]) == 1
    assert "this model predicts 2 outputs" in _err(capsys)


def test_evaluate_scores_a_multiclass_model(tmp_path, capsys):
    # n_outputs_ counts a multiclass model's units: one target column still
    from sklearn.datasets import load_iris

    iris = load_iris(as_frame=True).frame
    path = tmp_path / "iris.csv"
    iris.to_csv(path, index=False)
    model = tmp_path / "iris.tfmlp"
    argv = [
        "train",
        str(path),
        "--target",
        "target",
        "--max-iter",
        "5",
        "--no-progress",
    ]
    assert main([*argv, "--out", str(model)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(model), str(path)]) == 0
    assert "accuracy" in capsys.readouterr().out


def test_a_csv_whose_header_starts_with_par1_is_a_csv(tmp_path, capsys):
    frame = _frame().rename(columns={"x1": "PAR1"})
    path = tmp_path / "params.csv"
    frame.to_csv(path, index=False)
    argv = ["train", str(path), "--target", "label", "--max-iter", "2", "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "m.tfmlp")]) == 0


@pytest.mark.slow
def test_predict_reads_a_pipe(tmp_path, trained):
    # the Parquet check must not consume a pipe's data
    model, _ = trained
    proc = subprocess.run(
        [sys.executable, "-m", "tfmlp", "predict", str(model), "/dev/stdin"],
        input=_frame().to_csv(index=False),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(proc.stdout.strip().splitlines()) == len(_frame()) + 1


def test_missing_pandas_or_pyarrow_names_the_extra(
    tmp_path, trained, monkeypatch, capsys
):
    model, _ = trained
    frame = _frame()
    frame.to_parquet(tmp_path / "t.parquet")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    assert main(["predict", str(model), str(tmp_path / "t.parquet")]) == 1
    assert 'pip install "tfmlp[parquet]"' in _err(capsys)
    monkeypatch.setitem(sys.modules, "pandas", None)
    frame_path = tmp_path / "t.csv"
    frame_path.write_text("x1\n1\n")
    # the missing model is named first; then the missing extra
    assert main(["predict", str(tmp_path / "nope.tfmlp"), str(frame_path)]) == 1
    assert "model file not found" in _err(capsys)
    assert main(["predict", str(model), str(frame_path)]) == 1
    assert 'pip install "tfmlp[pandas]"' in _err(capsys)


def test_parquet_columns_named_by_integers(tmp_path, capsys):
    rng = np.random.RandomState(0)
    frame = pd.DataFrame(rng.rand(60, 3))
    frame[3] = (frame[0] > 0.5).astype(int)
    path = tmp_path / "t.parquet"
    frame.to_parquet(path)
    model = tmp_path / "m.tfmlp"
    argv = ["train", str(path), "--target", "3", "--max-iter", "3", "--no-progress"]
    assert main([*argv, "--out", str(model)]) == 0
    assert "3 features" in capsys.readouterr().out  # the target is no feature
    assert main(["evaluate", str(model), str(path)]) == 0


@pytest.mark.parametrize("value", ["inf", "-inf", "1e999"])
def test_infinite_feature_values_are_refused(tmp_path, trained, capsys, value):
    # not missing values: scikit-learn refuses them too
    frame = _frame().astype({"x1": object})
    frame.loc[4, "x1"] = value
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    argv = ["train", str(path), "--target", "label", "--max-iter", "2"]
    assert main([*argv, "--out", str(tmp_path / "m.tfmlp")]) == 1
    assert "column 'x1' holds infinite values" in _err(capsys)
    model, _ = trained
    assert main(["predict", str(model), str(path)]) == 1
    assert "column 'x1' holds infinite values" in _err(capsys)


def test_compressed_tsv_is_read_with_tabs(tmp_path, capsys):
    path = tmp_path / "t.tsv.gz"
    _frame().to_csv(path, sep="\t", index=False)
    argv = ["train", str(path), "--target", "label", "--max-iter", "2", "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "m.tfmlp")]) == 0


def test_a_header_naming_a_column_twice_is_refused(tmp_path, trained, capsys):
    """pandas renames a repeated CSV column (x1, x1 -> x1, x1.1): train used
    a column the file never names, predict one of the two x1 columns."""
    import threading

    model, _ = trained
    text = _frame().rename(columns={"x2": "x1"}).to_csv(index=False)
    plain, packed = tmp_path / "dup.csv", tmp_path / "dup.csv.gz"
    plain.write_text(text)
    _frame().rename(columns={"x2": "x1"}).to_csv(packed, index=False)
    for path in (plain, packed):
        args = ["train", str(path), "--target", "label", "--out", str(tmp_path / "m")]
        assert main(args) == 1
        assert "names columns ['x1'] more than once" in _err(capsys)
        assert main(["predict", str(model), str(path)]) == 1
        assert "names columns ['x1'] more than once" in _err(capsys)
    assert not (tmp_path / "m").exists()
    fifo = tmp_path / "pipe.csv"
    for content, code in ((text, 1), (_frame().to_csv(index=False), 0)):
        os.mkfifo(fifo)
        writer = threading.Thread(target=fifo.write_text, args=(content,))
        writer.start()
        assert main(["predict", str(model), str(fifo)]) == code
        writer.join()
        fifo.unlink()
        out, err = capsys.readouterr()
        assert ("more than once" in err) == (code == 1)
        assert len(out.splitlines()) == (len(_frame()) + 1 if code == 0 else 0)


def test_a_failed_predictions_or_plot_write_keeps_the_earlier_file(
    trained, data_dir, tmp_path, capsys, monkeypatch
):
    """Written through a temporary file renamed over the old one: a full
    disk midway leaves the earlier predictions (or plot) whole."""
    model, _ = trained
    out, plot = tmp_path / "preds.csv", tmp_path / "loss.png"
    out.write_text("earlier predictions\n")
    plot.write_bytes(b"earlier plot")
    real_to_csv = pd.DataFrame.to_csv

    def disk_full(self, target=None, *args, **kwargs):
        if (
            hasattr(target, "write")
            and target is not sys.stdout
            or isinstance(target, (str, os.PathLike))
        ):
            real_to_csv(self.head(2), target, *args, **kwargs)  # partly written
            raise OSError(28, "No space left on device")
        return real_to_csv(self, target, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", disk_full)
    assert (
        main(["predict", str(model), str(data_dir / "data.csv"), "--out", str(out)])
        == 1
    )
    assert "No space left on device" in _err(capsys)
    assert out.read_text() == "earlier predictions\n"
    monkeypatch.undo()

    import matplotlib.figure

    def savefig_fails(self, fname, *args, **kwargs):
        (fname.write if hasattr(fname, "write") else open(fname, "wb").write)(b"PNG?")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig_fails)
    argv = ["train", str(data_dir / "data.csv"), "--target", "label", "--hidden", "4"]
    argv += ["--max-iter", "2", "--out", str(tmp_path / "m"), "--plot", str(plot)]
    assert main(argv) == 1
    assert "cannot write plot" in _err(capsys)
    assert plot.read_bytes() == b"earlier plot"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_predictions_are_compressed_as_the_out_name_says(trained, data_dir, tmp_path):
    model, _ = trained
    out = tmp_path / "preds.csv.gz"
    assert (
        main(["predict", str(model), str(data_dir / "data.csv"), "--out", str(out)])
        == 0
    )
    assert out.read_bytes()[:2] == b"\x1f\x8b"  # gzip
    assert len(pd.read_csv(out)) == len(_frame())


def test_predictions_go_in_place_where_the_directory_takes_no_new_file(
    trained, data_dir, tmp_path, monkeypatch
):
    """A writable file in a directory that refuses the temporary file
    (permissions, an immutable directory): written in place, as before."""
    import tfmlp._files as files

    model, _ = trained
    out = tmp_path / "preds.csv"
    out.write_text("earlier\n")

    def refused(path, suffix=".tmp"):
        raise PermissionError(1, f"Cannot write {path!r}: Operation not permitted")

    monkeypatch.setattr(files, "temp_file", refused)
    assert (
        main(["predict", str(model), str(data_dir / "data.csv"), "--out", str(out)])
        == 0
    )
    assert len(pd.read_csv(out)) == len(_frame())
    new = tmp_path / "new.csv"  # no file to write in place: the error, once
    assert (
        main(["predict", str(model), str(data_dir / "data.csv"), "--out", str(new)])
        == 1
    )


def test_evaluate_refuses_an_input_feature_as_the_target(trained, data_dir, capsys):
    model, _ = trained
    data = str(data_dir / "data.csv")
    for column in ("x1", "color", "value"):
        assert main(["evaluate", str(model), data, "--target", column]) == 1
        err = _err(capsys)
        assert f"target column {column!r} is one of the model's input" in err
        assert "lacks column" not in err


def test_evaluate_refuses_a_plain_model_feature_as_the_target(tmp_path, capsys):
    from tfmlp import MLPRegressor

    frame = _frame()
    est = MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    with pytest.warns(Warning):
        model = _saved(tmp_path, est, frame[["x1", "x2"]], frame["value"])
    data = tmp_path / "x.csv"
    frame[["x1", "x2", "value"]].to_csv(data, index=False)
    assert main(["evaluate", str(model), str(data), "--target", "x2"]) == 1
    assert "target column 'x2' is one of the model's input features" in _err(capsys)
    assert main(["evaluate", str(model), str(data), "--target", "value"]) == 0


def _two_layer_stack(x):
    import keras

    x = keras.layers.Dense(6, activation="relu")(x)
    return keras.layers.Dropout(0.1)(keras.layers.Dense(4, activation="tanh")(x))


def test_info_describes_a_hidden_stack_network(tmp_path, capsys, monkeypatch):
    import tfmlp
    import tfmlp._cli as cli
    from tfmlp import MLPClassifier

    frame = _frame()
    est = MLPClassifier(hidden_stack=_two_layer_stack, max_iter=3, random_state=0)
    with pytest.warns(Warning):
        model = _saved(tmp_path, est, frame[["x1", "x2"]], frame["label"])
    capsys.readouterr()
    assert main(["info", str(model)]) == 0  # the file cannot hold the code
    out = capsys.readouterr().out
    assert "network: fitted with hidden_stack=" in out
    assert "_two_layer_stack, code the file does not hold" in out
    # the stack at hand (as in Python): the fitted layers too
    loaded = tfmlp.load(model, hidden_stack=_two_layer_stack)
    monkeypatch.setattr(cli, "_load_model", lambda path, notes=None: loaded)
    assert main(["info", str(model)]) == 0
    out = capsys.readouterr().out
    assert "network: hidden_stack=_two_layer_stack (hidden_layer_sizes" in out
    assert "layers: Dense(6) -> Dense(4) -> Dropout -> Dense(1)" in out


def test_info_names_a_custom_stack_set_back_to_none_before_saving(tmp_path, capsys):
    import tfmlp
    from tfmlp import MLPClassifier

    frame = _frame()
    est = MLPClassifier(hidden_stack=_two_layer_stack, max_iter=3, random_state=0)
    with pytest.warns(Warning):
        est.fit(frame[["x1", "x2"]], frame["label"])
    est.set_params(hidden_stack=None)  # the fitted network is unchanged
    model = tmp_path / "reset.tfmlp"
    tfmlp.save(est, model)
    capsys.readouterr()
    assert main(["info", str(model)]) == 0
    assert "network: fitted with a custom hidden_stack" in capsys.readouterr().out


def test_evaluate_refuses_an_empty_target_name(trained, data_dir, capsys):
    model, _ = trained
    assert main(["evaluate", str(model), str(data_dir / "data.csv"), "--target", ""])
    assert "target column '' not found" in _err(capsys)


def test_predict_proba_of_a_one_class_model_is_one(tmp_path, capsys):
    frame = _frame().assign(label="yes")
    path = tmp_path / "one.csv"
    frame.to_csv(path, index=False)
    model = tmp_path / "one.tfmlp"
    argv = ["train", str(path), "--target", "label", "--max-iter", "3"]
    assert main([*argv, "--no-progress", "--out", str(model)]) == 0
    out = tmp_path / "p.csv"
    assert main(["predict", str(model), str(path), "--proba", "--out", str(out)]) == 0
    got = pd.read_csv(out)
    assert list(got.columns) == ["proba_yes", "prediction"]
    assert (got["proba_yes"] == 1.0).all() and (got["prediction"] == "yes").all()


def test_evaluate_refuses_labels_that_share_nothing_with_the_classes(
    trained, data_dir, tmp_path, capsys
):
    model, _ = trained
    frame = _frame().assign(
        code=lambda f: (f["x1"] > 0).astype(int), answer=lambda f: f["color"]
    )
    path = tmp_path / "codes.csv"
    frame.to_csv(path, index=False)
    for column in ("code", "answer"):  # numbers against 'no'/'yes'; other text
        assert main(["evaluate", str(model), str(path), "--target", column]) == 1
        assert f"target column {column!r} holds none of the model's classes" in (
            _err(capsys)
        )
    assert main(["evaluate", str(model), str(path), "--target", "label"]) == 0
