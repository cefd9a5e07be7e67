"""What twelve of tfmlp's loop choices buy, each switched off in turn.

    python benchmarks/ablations.py [--quick]

Prints, on this machine (tfmlp only, no scikit-learn, no target; the
README's "Performance" section quotes these figures):

- ``in place vs chunked``: steady MNIST float32 epoch (784-100-10, adam,
  batch 200) with the XLA epoch reading the array in place, and with the
  chunked path (NumPy gathers chunks of rows on a helper thread);
- ``penalty``: the same epoch with the L2 penalty's squared norms as
  matrix-vector products (``_losses._squared_norm``) and as plain
  square-and-sum (XLA's slow CPU reduction);
- ``penalty order``: the same epoch with the penalty's squared norm made an
  input of the optimizer step (``_training._ordered_after``, what tfmlp
  does) and left unordered (XLA then copies each weight matrix per batch);
- ``lean calls``: the first call of a digits epoch function (trace included),
  graph mode, and the median later call, three ways: lean (no Grappler
  rewrite, single-threaded executor: what tfmlp does), without Grappler on
  the default executor, and TensorFlow's defaults;
- ``epochs per call``: a digits fit (50 epochs, traced already) with
  several epochs per compiled call (``_stochastic._train_epochs``, what
  tfmlp does) and one epoch per call;
- ``full garbage collection``: one ``gc.collect()`` in this process with
  the objects that exist after importing TensorFlow frozen
  (``_backend.freeze_startup_objects``, what tfmlp does) and scanned;
- ``CSR input epoch``: the MNIST float32 epoch with X as a SciPy CSR
  matrix, trained through dense chunks (what tfmlp does for narrow rows), as
  CSR batches gathered in the graph (wide or empty rows), and as
  ``tf.SparseTensor`` row ranges of a matrix reordered every epoch (the GPU
  path);
- ``CSR batch X.T @ delta``: sparse training's backward product over
  200-row CSR batches, by TensorFlow's transposed CSR product and with the
  batch transposed first (what tfmlp does: bit-reproducible), on MNIST's rows
  and on a wide random matrix;
- ``predict_proba``: on the MNIST float32 rows as a dense array with the
  first layer's product by NumPy (what tfmlp does on the CPU) and in the
  graph (the path before; still the GPU's); as a SciPy CSR matrix with that
  product by SciPy on all cores (tfmlp on the CPU), by SciPy on one thread,
  and in the graph as TensorFlow's CSR product;
- ``predict_proba of N rows``: a few rows (1, 1,000, 10,000) computed in
  NumPy with the estimator's weight arrays (what tfmlp does below
  ``_host_forward.MAX_VALUES`` activation values) and through the compiled
  function;
- ``lbfgs objective``: one float64 loss-and-gradient evaluation (784-100-10)
  with X as a CSR matrix and as a dense tensor, on MNIST (19% nonzeros) and
  on random data of its shape with 10%, 25% and 40% nonzeros (where the
  dense product wins: ``_lbfgs.CSR_MAX_DENSITY`` sits between); then one
  float32 evaluation on MNIST and random data with 5%, 10% and 19% nonzeros
  (``_lbfgs.CSR_MAX_DENSITY_FLOAT32``).

``--quick`` runs one repeat on 5,000 random rows of MNIST's width (no data
files needed). Each variant is measured with fits interleaved, median of the repeats
(``_common.epoch_time``); compiled-function caches are cleared between
variants that change the traced program.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402


def _mnist_epoch(X, y, k: int) -> float:
    from tfmlp import MLPClassifier

    def make(max_iter):
        return MLPClassifier(
            hidden_layer_sizes=(100,),
            batch_size=200,
            max_iter=max_iter,
            tol=0.0,
            n_iter_no_change=C.BIG,
            random_state=0,
        )

    return C.epoch_time(make, X, y, k)["epoch"]


def in_place_vs_chunked(X, y, k: int, repeats: int) -> str:
    import tfmlp._loop as loop

    viewable, resident = loop._xla_view_ok, loop.RESIDENT_MAX_BYTES
    times: dict[str, list[float]] = {"in place": [], "chunked": []}
    for _ in range(repeats):
        for name in times:
            chunked = name == "chunked"
            loop._xla_view_ok = (lambda X, d: False) if chunked else viewable
            loop.RESIDENT_MAX_BYTES = 0 if chunked else resident
            times[name].append(_mnist_epoch(X, y, k))
    loop._xla_view_ok, loop.RESIDENT_MAX_BYTES = viewable, resident
    return _line("MNIST f32 epoch, s: ", times)


def _epochs_by_form(module, attr: str, forms: dict, X, y, k: int, repeats: int):
    """MNIST epoch times with ``module.attr`` set to each of ``forms`` in
    turn (interleaved), the compiled functions retraced for each."""
    import tfmlp._training as training

    kept = getattr(module, attr)
    times: dict[str, list[float]] = {name: [] for name in forms}
    try:
        for _ in range(repeats):
            for name, form in forms.items():
                setattr(module, attr, form)
                training._CACHE.clear()  # retrace with this form
                times[name].append(_mnist_epoch(X, y, k))
    finally:
        setattr(module, attr, kept)
        training._CACHE.clear()
    return times


def penalty_forms(X, y, k: int, repeats: int) -> str:
    import tensorflow as tf

    import tfmlp._losses as losses

    forms = {
        "matrix-vector": losses._squared_norm,
        "square-and-sum": lambda w: tf.reduce_sum(tf.square(w)),
    }
    times = _epochs_by_form(losses, "_squared_norm", forms, X, y, k, repeats)
    return _line("MNIST f32 epoch by penalty form, s: ", times)


def penalty_order(X, y, k: int, repeats: int) -> str:
    import tfmlp._training as training

    forms = {"ordered": training._ordered_after, "unordered": lambda v, index: index}
    times = _epochs_by_form(training, "_ordered_after", forms, X, y, k, repeats)
    return _line("MNIST f32 epoch by penalty order (XLA), s: ", times)


def lean_calls(repeats: int) -> str:
    from sklearn.datasets import load_digits

    import tfmlp._stochastic as stochastic
    import tfmlp._training as training
    from tfmlp import MLPClassifier

    X, y = load_digits(return_X_y=True)
    fused_rows = stochastic.MAX_FUSED_ROWS
    stochastic.MAX_FUSED_ROWS = 0  # one epoch per call: per-epoch figures
    variants = ("lean", "no-grappler", "defaults")
    first: dict[str, list[float]] = {name: [] for name in variants}
    later: dict[str, list[float]] = {name: [] for name in variants}
    real_call, real_executor = training._Compiled.__call__, training._SINGLE_THREADED
    for _ in range(repeats):
        for name in variants:
            training._CACHE.clear()
            training._LEAN_OPTIONS.clear()
            # "" is TensorFlow's default executor
            training._SINGLE_THREADED = "" if name == "no-grappler" else real_executor
            calls: list[float] = []

            def timed_call(self, *args, _name=name, _calls=calls):
                if _name == "defaults":
                    self._lean = False
                start = time.perf_counter()
                out = real_call(self, *args)
                _calls.append(time.perf_counter() - start)
                return out

            training._Compiled.__call__ = timed_call
            try:
                MLPClassifier(hidden_layer_sizes=(50,), max_iter=20).fit(X, y)
            finally:
                training._Compiled.__call__ = real_call
                training._SINGLE_THREADED = real_executor
                training._LEAN_OPTIONS.clear()
            first[name].append(calls[0])
            later[name].append(statistics.median(calls[1:]))
    training._CACHE.clear()
    stochastic.MAX_FUSED_ROWS = fused_rows
    return (
        _line("digits epoch function, first call (trace included), ms: ", first, 1e3)
        + "\n"
        + _line("digits epoch function, later calls, ms: ", later, 1e3)
    )


def fused_epochs(repeats: int) -> str:
    """A digits fit (64-50-10, 50 epochs, traced already) with several
    epochs per compiled call (what tfmlp does) and one epoch per call."""
    from sklearn.datasets import load_digits

    import tfmlp._stochastic as stochastic
    from tfmlp import MLPClassifier

    X, y = load_digits(return_X_y=True)
    fused_rows = stochastic.MAX_FUSED_ROWS
    times: dict[str, list[float]] = {"fused": [], "one per call": []}
    est = MLPClassifier(hidden_layer_sizes=(50,), max_iter=50, random_state=0)
    for _ in range(repeats + 2):
        for name, rows in (("fused", fused_rows), ("one per call", 0)):
            stochastic.MAX_FUSED_ROWS = rows
            try:
                est.fit(X, y)  # warm (traces)
                start = time.perf_counter()
                for _ in range(5):
                    est.fit(X, y)
                times[name].append((time.perf_counter() - start) / 5)
            finally:
                stochastic.MAX_FUSED_ROWS = fused_rows
    return _line("digits 50-epoch fit, epochs per call, ms: ", times, 1e3)


def gc_pause(repeats: int) -> str:
    """One full garbage collection in this process (TensorFlow imported) with
    the startup objects frozen (what tfmlp does) and scanned."""
    import gc

    import tfmlp  # noqa: F401  (the estimators are imported: frozen)

    times: dict[str, list[float]] = {"frozen": [], "scanned": []}
    frozen = gc.get_freeze_count() > 0
    for _ in range(repeats):
        for name in times:
            if name == "scanned":
                gc.unfreeze()
            start = time.perf_counter()
            gc.collect()
            times[name].append(time.perf_counter() - start)
            if name == "scanned" and frozen:
                gc.freeze()
    return _line("full garbage collection (gc.collect), ms: ", times, 1e3)


def sparse_paths(X, y, repeats: int) -> str:
    """The MNIST epoch with X as a CSR matrix (float32), on the three paths
    sparse training can take (``_loop.make_runner``)."""
    import scipy.sparse as sp

    import tfmlp._loop as loop

    S = sp.csr_matrix(X)
    dense_max, mode = loop.DENSE_BATCH_MAX_BYTES, loop.sparse_mode
    variants = {
        "dense chunks": (dense_max, mode),
        "csr gather": (0, mode),
        "SparseTensor rows": (0, lambda model, training=False: True),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, (limit, choose) in variants.items():
            loop.DENSE_BATCH_MAX_BYTES, loop.sparse_mode = limit, choose
            try:
                times[name].append(_mnist_epoch(S, y, 3))
            finally:
                loop.DENSE_BATCH_MAX_BYTES, loop.sparse_mode = dense_max, mode
    return _line(
        f"CSR input epoch ({S.nnz / np.prod(S.shape):.0%} nonzeros), s: ", times
    )


def csr_transposed_product(X, repeats: int) -> str:
    """``X_batch.T @ delta`` of 200-row CSR batches (sparse training's
    backward product), by the kernel's transposed product and by transposing
    the batch first (``_data.CsrMatrix.transpose_first``, what tfmlp does
    for batches: reproducible), on the MNIST rows and on a 10,000 x 50,000
    random matrix with 0.2% nonzeros; says whether each repeats bit for bit
    and equals SciPy's product."""
    import scipy.sparse as sp
    import tensorflow as tf

    from tfmlp._data import csr_tensors

    rng = np.random.RandomState(0)
    wide = sp.random(10_000, 50_000, density=0.002, format="csr", random_state=rng)
    lines = []
    for title, S in [("MNIST rows", sp.csr_matrix(X)), ("10000 x 50000", wide)]:
        S = S.astype(np.float64)
        data = csr_tensors(S, np.float64)
        delta = rng.randn(200, 100)
        want = S[:200].T @ delta
        times: dict[str, list[float]] = {
            "kernel's transpose": [],
            "transposed first": [],
        }
        notes = []
        for name in times:
            product = _batch_product(data, delta, name == "transposed first")
            runs = [product(tf.constant(0)).numpy() for _ in range(10)]
            same = all(np.array_equal(runs[0], r) for r in runs)
            notes.append(
                f"{name}: {'repeats' if same else 'varies'}, "
                f"{'equals' if np.array_equal(runs[0], want) else 'differs from'} "
                "SciPy"
            )
            starts = [tf.constant(a) for a in range(0, S.shape[0] - 199, 200)]
            for _ in range(repeats):
                t = time.perf_counter()
                for start in starts:
                    product(start)
                times[name].append((time.perf_counter() - t) / len(starts))
        lines.append(
            _line(f"CSR batch X.T @ delta ({title}), ms: ", times, 1e3)
            + " ("
            + "; ".join(notes)
            + ")"
        )
    return "\n".join(lines)


def _batch_product(data, delta, first: bool):
    """Compiled ``start -> rows [start, start + 200).T @ delta`` of CSR data."""
    import tensorflow as tf

    from tfmlp._data import CsrMatrix, _csr_variant, sparse_rows

    def product(start):
        rows = _csr_variant(sparse_rows(data, start, 200))
        batch = CsrMatrix(rows, tf.float64, transpose_first=first)
        return batch.matmul(tf.constant(delta), transpose=True)

    return tf.function(product)


def first_product(X, y, repeats: int) -> str:
    """predict_proba of dense and CSR rows, the first layer's product taken
    outside the graph or in it (``_base._first_product_outside``)."""
    import scipy.sparse as sp

    import tfmlp._base as base
    import tfmlp._data as data
    import tfmlp._host_forward as host
    from tfmlp import MLPClassifier

    S = sp.csr_matrix(X)
    clf = MLPClassifier(hidden_layer_sizes=(100,), max_iter=1, random_state=0)
    clf.fit(X[:2_000], y[:2_000])
    cores, outside = data._cpu_count, base._first_product_outside
    host_max, host.MAX_VALUES = host.MAX_VALUES, 0  # the graph paths, any size
    variants = {
        "dense": {
            "numpy": {},
            "in graph": {"outside": lambda X, model, sparse: False},
        },
        "CSR": {
            "scipy all cores": {},
            "scipy one thread": {"cores": lambda: 1},
            "tensorflow CSR": {"outside": lambda X, model, sparse: False},
        },
    }
    lines = []
    for kind, ways in variants.items():
        rows = X if kind == "dense" else S
        times: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(repeats + 2):
            for name, switch in ways.items():
                data._cpu_count = switch.get("cores", cores)
                base._first_product_outside = switch.get("outside", outside)
                try:
                    clf.predict_proba(rows)  # warm (traces)
                    start = time.perf_counter()
                    clf.predict_proba(rows)
                    times[name].append(time.perf_counter() - start)
                finally:
                    data._cpu_count, base._first_product_outside = cores, outside
        title = f"{kind} predict_proba ({X.shape[0]:,} rows), s: "
        lines.append(_line(title, times))
    host.MAX_VALUES = host_max
    return "\n".join(lines)


def host_forward(X, y, repeats: int) -> str:
    """predict_proba of a few rows in NumPy (``_host_forward``, what tfmlp
    does below ``MAX_VALUES`` activation values) and through the graph."""
    import tfmlp._host_forward as host
    from tfmlp import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=(100,), max_iter=1, random_state=0)
    clf.fit(X[:2_000], y[:2_000])
    host_max = host.MAX_VALUES
    lines = []
    for n_rows in (1, 1_000, 10_000):
        rows = X[:n_rows]
        times: dict[str, list[float]] = {"numpy": [], "graph": []}
        for _ in range(repeats + 2):
            for name, limit in (("numpy", 2**62), ("graph", 0)):
                host.MAX_VALUES = limit
                try:
                    clf.predict_proba(rows)  # warm (traces)
                    start = time.perf_counter()
                    for _ in range(10):
                        clf.predict_proba(rows)
                    times[name].append((time.perf_counter() - start) / 10)
                finally:
                    host.MAX_VALUES = host_max
        label = f"{n_rows:,} row" + ("s" if n_rows > 1 else "")
        title = f"predict_proba of {label} (100 hidden units), ms: "
        lines.append(_line(title, times, scale=1000))
    return "\n".join(lines)


def lbfgs_objective(X, y, repeats: int, dtype=np.float64, densities=()) -> str:
    import tensorflow as tf

    from tfmlp._lbfgs import pass_rows
    from tfmlp._network import StandardForward, init_params
    from tfmlp._params import NetSpec
    from tfmlp._training import loss_grad_function

    X = np.asarray(X, dtype=dtype)
    model = StandardForward(NetSpec.create(3, "relu", "softmax"))
    rng = np.random.RandomState(0)
    coefs, intercepts = init_params(rng, [X.shape[1], 100, 10], "relu", dtype)
    params = [tf.constant(a) for a in coefs + intercepts]
    rows = pass_rows(X, model, [p.shape for p in params]) or 1024
    Y = tf.constant(np.eye(10, dtype=dtype)[np.asarray(y) % 10])
    sw, alpha = tf.constant(np.ones(len(X), dtype)), tf.constant(1e-4, tf.float64)
    lines = []
    datasets = {f"{np.mean(X != 0):.0%} nonzeros (data)": X}
    for density in densities:
        Xr = rng.rand(*X.shape).astype(dtype)
        Xr[rng.rand(*X.shape) >= density] = 0.0
        datasets[f"{density:.0%} nonzeros (random)"] = Xr
    for label, data in datasets.items():
        inputs = {}
        for kind in ("csr", "dense"):
            for r in (0, rows):  # one pass over all rows, slices of ``rows``
                name = f"{kind} {'sliced' if r else 'one pass'}"
                inputs[name] = (kind, r, _objective_input(data, model, r, kind))
        times: dict[str, list[float]] = {name: [] for name in inputs}
        for _ in range(repeats + 2):
            for name, (kind, r, x) in inputs.items():
                fn = loss_grad_function(model, kind, r)
                fn(params, x, Y, sw, alpha)[0].numpy()  # warm
                start = time.perf_counter()
                fn(params, x, Y, sw, alpha)[0].numpy()
                times[name].append(time.perf_counter() - start)
        title = f"lbfgs objective, {np.dtype(dtype).name} ({rows:,}-row slices), "
        title += f"{label}, s: "
        lines.append(_line(title, times))
    return "\n".join(lines)


def _objective_input(X, model, rows: int, kind: str):
    """X for ``loss_grad_function(model, kind, rows)``, whatever its density."""
    from tfmlp import _lbfgs

    if kind == "dense":
        return _lbfgs.dense_tensor(X, X.dtype)
    names = ("CSR_MAX_DENSITY", "CSR_MAX_DENSITY_FLOAT32", "CSR_MIN_SIZE")
    saved = [getattr(_lbfgs, name) for name in names]
    for name, value in zip(names, (1.0, 1.0, 0)):
        setattr(_lbfgs, name, value)
    try:
        return _lbfgs.objective_input(X, model, X.dtype, rows)[0]
    finally:
        for name, value in zip(names, saved):
            setattr(_lbfgs, name, value)


def _line(title: str, times: dict, scale: float = 1.0) -> str:
    return title + ", ".join(
        f"{name} {scale * statistics.median(v):.3f}" for name, v in times.items()
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke version")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    C.cpu_only()
    if args.quick:  # a smoke test: random data of MNIST's width, no files
        rng = np.random.RandomState(0)
        X, y = rng.rand(5_000, 784).astype(np.float32), rng.randint(0, 10, 5_000)
        k, repeats = 3, 1
    else:
        X, y, _, _ = C.load_mnist(np.float32, n_test=0)
        k, repeats = 5, 3
    print(C.environment())
    print(in_place_vs_chunked(X, y, k, repeats))
    print(penalty_forms(X, y, k, repeats))
    print(penalty_order(X, y, k, repeats))
    print(lean_calls(repeats + 2))
    print(fused_epochs(repeats))
    print(gc_pause(repeats))
    print(sparse_paths(X, y, repeats))
    print(csr_transposed_product(X, repeats))
    print(first_product(X, y, repeats))
    print(host_forward(X, y, repeats))
    X64, y64 = (
        (X[:2_000], y[:2_000]) if args.quick else C.load_mnist(np.float64, n_test=0)[:2]
    )
    print(lbfgs_objective(X64, y64, repeats, np.float64, (0.10, 0.25, 0.40)))
    print(lbfgs_objective(X64, y64, repeats, np.float32, (0.05, 0.10, 0.19)))


if __name__ == "__main__":
    main()
