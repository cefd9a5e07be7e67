"""Streaming from Parquet larger than memory: rows/s and peak RSS (issue 6).

Writes a generated Parquet file (``--rows`` x ``--features`` float32, binary
target), then, each in a fresh subprocess so peak RSS is its own:

* tfmlp: ``MLPClassifier.fit`` on ``tfmlp.data.read_parquet`` (one epoch, the
  whole epoch including the file reading runs in one tf.data + graph loop);
* scikit-learn: ``MLPClassifier.partial_fit`` over the same file read chunk by
  chunk with pyarrow (the usual out-of-core baseline).

Peak RSS is VmHWM from /proc (not ru_maxrss, which survives exec). The TF
runtime alone costs ~600-700 MB of RSS; the issue's bound is 1.5 GB in all.

``--small`` times many epochs over small data instead, where a stream's
per-epoch cost shows: digits (1,797 x 64, batches of 200) as a
``tf.data.Dataset.from_tensor_slices`` stream, as arrays, and (scikit-learn)
as arrays; milliseconds per epoch of a 20-epoch fit after a warm-up fit.

    python benchmarks/bench_streaming.py --rows 3000000   # ~1.2 GB file
    python benchmarks/bench_streaming.py --quick
    python benchmarks/bench_streaming.py --small
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import positive_int  # noqa: E402

CHUNK = 100_000

WRITE = """
import numpy as np, pyarrow as pa, pyarrow.parquet as pq
rows, features, path = {rows}, {features}, {path!r}
rng = np.random.default_rng(0)
w = rng.standard_normal(features).astype(np.float32)
writer = None
for start in range(0, rows, {chunk}):
    n = min({chunk}, rows - start)
    x = rng.standard_normal((n, features), dtype=np.float32)
    cols = {{f"f{{i}}": x[:, i] for i in range(features)}}
    cols["y"] = (x @ w > 0).astype(np.int64)
    table = pa.table(cols)
    writer = writer or pq.ParquetWriter(path, table.schema)
    writer.write_table(table)
writer.close()
"""

TFMLP = """
import time, json
from tfmlp import MLPClassifier
from tfmlp.data import read_parquet
ds = read_parquet({path!r}, target="y", batch_size=256)
clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=1)
t = time.perf_counter(); clf.fit(ds, classes=[0, 1]); elapsed = time.perf_counter() - t
"""

SKLEARN = """
import time, json, numpy as np, pyarrow.parquet as pq, warnings
from sklearn.neural_network import MLPClassifier
warnings.simplefilter("ignore")
clf = MLPClassifier(hidden_layer_sizes=(64,), batch_size=256)
t = time.perf_counter(); rows = 0
for rb in pq.ParquetFile({path!r}, pre_buffer=False).iter_batches(batch_size={chunk}):
    names = [n for n in rb.schema.names if n != "y"]
    x = np.column_stack([rb.column(n).to_numpy() for n in names])
    y = rb.column("y").to_numpy()
    clf.partial_fit(x, y, classes=[0, 1]); rows += len(y)
elapsed = time.perf_counter() - t
"""

REPORT = """
hwm = [ln for ln in open("/proc/self/status") if ln.startswith("VmHWM")]
rows = {rows}
print("RESULT", json.dumps({{"seconds": elapsed, "rows": rows,
      "peak_mb": int(hwm[0].split()[1]) / 1024}}))
"""


def _run(code: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")][-1]
    return json.loads(line[len("RESULT ") :])


def run(quick: bool = False, rows: int | None = None, features: int = 100) -> list:
    if rows is None:
        rows = 200_000 if quick else 3_000_000
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "stream.parquet")
        subprocess.run(
            [
                sys.executable,
                "-c",
                WRITE.format(rows=rows, features=features, path=path, chunk=CHUNK),
            ],
            check=True,
        )
        size_mb = os.path.getsize(path) / 2**20
        fmt = dict(path=path, chunk=CHUNK, rows=rows)
        tf_res = _run(TFMLP.format(**fmt) + REPORT.format(rows=rows))
        sk_res = _run(SKLEARN.format(**fmt) + REPORT.format(rows="rows"))
    out = []
    for name, res in (
        ("scikit-learn partial_fit", sk_res),
        ("tfmlp read_parquet", tf_res),
    ):
        out.append(
            {
                "case": f"stream {rows:,} x {features} ({size_mb:.0f} MB parquet)",
                "who": name,
                "rows_per_s": res["rows"] / res["seconds"],
                "peak_rss_mb": res["peak_mb"],
            }
        )
    return out


def small_epochs(epochs: int = 20, repeats: int = 3) -> list:
    """Milliseconds per epoch on digits: a tf.data stream vs arrays."""
    import warnings

    import tensorflow as tf
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier as SkMLP

    from tfmlp import MLPClassifier

    X, y = load_digits(return_X_y=True)
    ds = tf.data.Dataset.from_tensor_slices((X, y)).batch(200)
    fits = {
        "tfmlp, tf.data stream": lambda k: MLPClassifier(
            max_iter=k, random_state=0, tol=0
        ).fit(ds, classes=list(range(10))),
        "tfmlp, arrays": lambda k: MLPClassifier(max_iter=k, random_state=0, tol=0).fit(
            X, y
        ),
        "scikit-learn, arrays": lambda k: SkMLP(max_iter=k, random_state=0, tol=0).fit(
            X, y
        ),
    }
    times: dict = {name: [] for name in fits}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for fit in fits.values():
            fit(2)  # warm-up: traces
        for _ in range(repeats):  # interleaved
            for name, fit in fits.items():
                start = time.perf_counter()
                fit(epochs)
                times[name].append((time.perf_counter() - start) / epochs)
    return [
        {"who": name, "ms_per_epoch": 1000 * sorted(t)[len(t) // 2]}
        for name, t in times.items()
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=positive_int, default=None)
    parser.add_argument("--features", type=positive_int, default=100)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--small", action="store_true", help=small_epochs.__doc__)
    args = parser.parse_args(argv)
    if args.small:
        print(f"{'digits, 20-epoch fit (median of 3)':44}{'ms per epoch':>14}")
        for r in small_epochs():
            print(f"{r['who']:44}{r['ms_per_epoch']:>14,.1f}")
        return 0
    rows = run(args.quick, args.rows, args.features)
    print(f"{'case':44}{'who':28}{'rows/s':>12}{'peak RSS MB':>14}")
    for r in rows:
        print(
            f"{r['case']:44}{r['who']:28}{r['rows_per_s']:>12,.0f}"
            f"{r['peak_rss_mb']:>14,.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
