"""The benchmark runner works end to end (smoke test; speed is not asserted)."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # whole benchmark scripts: run with -m slow

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


def test_runner_quick_small_cv_prints_table(tmp_path):
    out_json = tmp_path / "rows.json"
    proc = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--case", "small_cv", "--json", out_json],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    header = next(line for line in lines if line.startswith("| case"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert columns == [
        "case",
        "scikit-learn",
        "tfmlp",
        "ratio",
        "target",
        "met",
        "acc sklearn",
        "acc tfmlp",
    ]
    row = next(line for line in lines if line.startswith("| digits 5-fold CV"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1].endswith("s/CV") and cells[2].endswith("s/CV")
    assert cells[5] in {"yes", "NO"}
    assert cells[6].endswith("%") and cells[7].endswith("%")
    assert out_json.is_file()


def _common():
    sys.path.insert(0, str(RUN.parent))
    try:
        import _common
    finally:
        sys.path.remove(str(RUN.parent))
    return _common


def test_mnist_loader_parses_idx_and_reports_missing_files(tmp_path, monkeypatch):
    import gzip

    import numpy as np
    import pytest

    C = _common()
    monkeypatch.setattr(C, "MNIST_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="never download"):
        C.load_mnist()
    images = np.arange(3 * 28 * 28, dtype=np.uint64).reshape(3, 28, 28) % 256
    labels = np.array([7, 0, 9])
    for split, n in (("train", 3), ("test", 2)):
        img_name, lbl_name = C.MNIST_FILES[split]
        header = b"\x00\x00\x08\x03" + b"".join(
            d.to_bytes(4, "big") for d in (n, 28, 28)
        )
        (tmp_path / img_name).write_bytes(
            gzip.compress(header + images[:n].astype(np.uint8).tobytes())
        )
        header = b"\x00\x00\x08\x01" + n.to_bytes(4, "big")
        (tmp_path / lbl_name).write_bytes(
            gzip.compress(header + labels[:n].astype(np.uint8).tobytes())
        )
    X, y, Xt, yt = C.load_mnist(np.float32)
    assert X.shape == (3, 784) and X.dtype == np.float32 and Xt.shape == (2, 784)
    np.testing.assert_allclose(X * 255, images.reshape(3, -1), atol=1e-4)
    assert y.tolist() == [7, 0, 9] and yt.tolist() == [7, 0]


def test_cpu_description_names_the_processor_kind():
    """Runs on EPYC hosts with and without AVX-512 gave different ratios: the
    header must tell them apart."""
    C = _common()
    block = (
        "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\n"
        "model\t\t: {model}\nmodel name\t: AMD EPYC\nflags\t\t: fpu {flags}\n\n"
        "processor\t: 1\ncpu family\t: 99\nflags\t\t: avx512f\n"
    )
    zen3 = C.cpu_description(block.format(model=1, flags="fma avx2"))
    assert zen3 == "AMD EPYC family 25 model 1, avx2+fma"
    zen4 = C.cpu_description(block.format(model=17, flags="avx2 avx512f avx512_bf16"))
    assert zen4 == "AMD EPYC family 25 model 17, avx512f+avx512_bf16"
    assert C.cpu_description("model name\t: Old\nflags\t: sse2\n") == "Old, no avx2"
    assert C.cpu_description() in C.environment()


def test_table_rows_and_targets():
    C = _common()
    fast = C.make_row("a", 2.0, 1.0, 1.5, unit="s/ep")
    assert fast["ratio"] == 2.0 and fast["met"] is True and fast["target"] == ">= 1.5x"
    acc = C.make_row("b", 2.0, 1.0, 1.5, acc_sklearn=0.9, acc_tfmlp=0.9, acc_tol_pp=0.3)
    assert acc["met"] is True
    acc = C.make_row("b", 2.0, 1.0, 1.5, acc_sklearn=0.9, acc_tfmlp=0.8, acc_tol_pp=0.3)
    assert acc["met"] is False
    skipped = C.make_row("c", None, float("nan"), 20.0, notes="skipped")
    assert skipped["ratio"] is None and skipped["met"] is None
    table = C.format_table([fast, acc, skipped])
    assert "| a " in table and "2.00x" in table and "- c: skipped" in table


def test_ablations_quick_prints_each_pair(tmp_path):
    """benchmarks/ablations.py switches tfmlp internals off by name: it must
    keep running as they change (speed is not asserted)."""
    import re

    script = RUN.parent / "ablations.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    for pair in (
        r"in place [\d.]+, chunked [\d.]+",
        r"matrix-vector [\d.]+, square-and-sum [\d.]+",
        r"penalty order \(XLA\), s: ordered [\d.]+, unordered [\d.]+",
        r"first call .*lean [\d.]+, no-grappler [\d.]+, defaults [\d.]+",
        r"later calls, ms: lean [\d.]+, no-grappler [\d.]+, defaults [\d.]+",
        r"epochs per call, ms: fused [\d.]+, one per call [\d.]+",
        r"garbage collection \(gc.collect\), ms: frozen [\d.]+, scanned [\d.]+",
        r"CSR input epoch .*dense chunks [\d.]+, csr gather [\d.]+, "
        r"SparseTensor rows [\d.]+",
        r"CSR batch X.T @ delta \(10000 x 50000\), ms: kernel's transpose [\d.]+, "
        r"transposed first [\d.]+ \(.*transposed first: repeats, equals SciPy\)",
        r"dense predict_proba .*numpy [\d.]+, in graph [\d.]+",
        r"CSR predict_proba .*scipy all cores [\d.]+, scipy one thread [\d.]+, "
        r"tensorflow CSR [\d.]+",
        r"predict_proba of 1 row .*numpy [\d.]+, graph [\d.]+",
        r"predict_proba of 10,000 rows .*numpy [\d.]+, graph [\d.]+",
        r"lbfgs objective, float64 \([\d,]+-row slices\), \d+% nonzeros \(data\), "
        r"s: csr one pass [\d.]+, csr sliced [\d.]+, dense one pass [\d.]+, "
        r"dense sliced [\d.]+",
        r"lbfgs objective, float64 .*, 40% nonzeros \(random\), s: csr one pass",
        r"lbfgs objective, float32 .*, 19% nonzeros \(random\), s: csr one pass",
    ):
        assert re.search(pair, out), (pair, out)


def test_profile_epoch_quick_lists_operations_and_kinds():
    """benchmarks/profile_epoch.py reads XLA's per-operation trace events from
    the profiler's output: both private formats must keep working."""
    import re

    script = RUN.parent / "profile_epoch.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--quick", "--top", "5"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    header = r"20 batches: epoch .* [\d.]+ ms, of which the compiled call [\d.]+ ms"
    assert re.search(header, out)
    listed = re.findall(r"^  (\S+): [\d.]+ ms, [\d.]+ us, (\d+)$", out, re.M)
    assert len(listed) == 5 and any(n.lower().startswith("matmul") for n, _ in listed)
    # an operation per batch (20 batches); the profiler may drop a few
    # events on a loaded machine (17 of 20 seen once)
    assert all(int(calls) >= 10 for _, calls in listed[:2]), out
    assert re.search(r"by kind, ms per epoch: .*matrix products [\d.]+ \(\d+%\)", out)
    assert "row gathers" in out


def test_sparse_case_quick_runs_without_data_files(tmp_path):
    """bench_sparse --quick falls back to random CSR data of MNIST's shape,
    and its rows say so."""
    import os

    env = dict(os.environ, TFMLP_MNIST_DIR=str(tmp_path))  # no files there
    proc = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--case", "sparse"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "sparse MNIST" not in proc.stdout
    for case in ("epoch", "predict_proba"):
        case = f"sparse random (no MNIST files) {case}"
        row = next(line for line in proc.stdout.splitlines() if f"| {case} " in line)
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[3].endswith("x"), row  # a ratio was measured


def test_epoch_time_times_fused_epochs_by_difference():
    """Where tfmlp trains several epochs per call their timestamps come
    together, so the harness times such fits by the difference of two fits;
    one epoch per call keeps per-epoch timestamps."""
    sys.path.insert(0, str(RUN.parent))
    import _common as C
    from sklearn.datasets import load_digits

    from tfmlp import MLPClassifier

    X, y = load_digits(return_X_y=True)

    def make(early_stopping):
        def estimator(max_iter):
            return MLPClassifier(
                hidden_layer_sizes=(10,),
                max_iter=max_iter,
                tol=0.0,
                n_iter_no_change=C.BIG,
                random_state=0,
                early_stopping=early_stopping,
            )

        return estimator

    fused = C.epoch_time(make(False), X, y, 4)
    assert fused["method"] == "difference of fits"
    single = C.epoch_time(make(True), X, y, 4)  # validation: one per call
    assert single["method"] == "per-epoch timestamps"
    assert single["epoch"] > 0 and len(single["intervals"]) == 3


@pytest.mark.parametrize(
    "argv, code",
    [
        (["micro.py", "--help"], 0),
        (["micro.py", "--bogus"], 2),
        (["bench_streaming.py", "--rows", "0"], 2),
        (["bench_streaming.py", "--rows", "-5"], 2),
        (["bench_streaming.py", "--features", "0"], 2),
        (["profile_epoch.py", "--top", "-3"], 2),
    ],
)
def test_scripts_refuse_bad_options_before_running(argv, code):
    script, *args = argv
    proc = subprocess.run(
        [sys.executable, str(RUN.parent / script), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == code, proc.stderr[-2000:]
    assert ("usage:" in proc.stdout) if code == 0 else ("error:" in proc.stderr)


def test_memory_rows_have_no_speed_ratio():
    C = _common()
    row = C.make_row("peak RSS", 900.0, 1100.0, None, unit="MB", timed=False)
    assert row["ratio"] is None
    assert "x |" not in C.format_table([row]).split("peak RSS")[1].splitlines()[0]


def _script(name, *args, timeout=300):
    """Run ``benchmarks/name`` with ``args``; its stdout (the run must pass)."""
    out = subprocess.run(
        [sys.executable, str(RUN.parent / name), *args],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_cache_memory_prints_rss_rows():
    stdout = _script("cache_memory.py", "--fits", "3", "--every", "2")
    rows = [line.split() for line in stdout.splitlines()[1:]]
    assert [r[0] for r in rows] == ["2", "3"]
    assert all(float(r[1]) > 100 for r in rows)


def test_partial_fit_bench_prints_both_libraries():
    stdout = _script("bench_partial_fit.py", "--rows", "30", "--calls", "3")
    assert "scikit-learn" in stdout and "tfmlp" in stdout
    assert "variable reads per call: 12" in stdout


def test_streaming_small_prints_three_rows():
    rows = _script("bench_streaming.py", "--small", timeout=600).splitlines()[1:]
    assert [r.split(",")[0].strip() for r in rows] == [
        "tfmlp", "tfmlp", "scikit-learn"
    ]  # fmt: skip
    assert all(float(r.split()[-1].replace(",", "")) > 0 for r in rows)
