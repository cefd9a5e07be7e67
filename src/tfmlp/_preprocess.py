"""Table preprocessing for the command line: standardise numbers, one-hot categories.

:class:`TablePreprocessor` is fitted on a pandas DataFrame and turns frames with
the same columns into a float64 feature matrix. Its whole state is plain JSON
data (:meth:`~TablePreprocessor.to_dict` / :meth:`~TablePreprocessor.from_dict`),
so it travels inside a ``.tfmlp`` file without pickle.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PreprocessError", "TablePreprocessor"]

FORMAT = "tfmlp-table-preprocessing"
MAX_CATEGORIES = 100


def _refuse_infinity(name: str, values) -> None:
    """Infinite values are not missing ones (scikit-learn refuses them)."""
    rows = np.flatnonzero(np.isinf(values))
    if rows.size:
        raise PreprocessError(
            f"column {name!r} holds infinite values ({rows.size} row(s), the "
            f"first at data row {rows[0] + 1}); replace them (a missing value "
            "may be left empty: it takes the training mean)."
        )


class PreprocessError(ValueError):
    """Data that the preprocessing cannot encode (a one-line message)."""


def _is_numeric(series) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(
        series
    )


def _is_categorical(series) -> bool:
    import pandas as pd

    api = pd.api.types
    return (
        api.is_bool_dtype(series)
        or api.is_object_dtype(series)
        or api.is_string_dtype(series)
        or isinstance(series.dtype, pd.CategoricalDtype)
    )


def _as_labels(series) -> list:
    """Category values as strings (None for missing), see :func:`_label`."""
    return [_label(v) for v in series.tolist()]


def _label(value) -> str | None:
    """The category label of one value: None when missing, else its text.

    A whole-number float reads as the integer (``1.0`` -> ``"1"``): a column of
    whole numbers turns into floats when the file has a missing value, and the
    same category must get the same label at training and prediction time.
    """
    if _missing(value):
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _missing(value) -> bool:
    """Whether one cell value is missing: None, NaN, ``pd.NA`` or ``NaT``."""
    import pandas as pd

    try:
        result = pd.isna(value)
    except (TypeError, ValueError):  # pragma: no cover - exotic objects
        return False
    return isinstance(result, (bool, np.bool_)) and bool(result)


def _one_hot(series, categories: list, raw=None) -> np.ndarray:
    """One column per stored category; unknown or missing values: all zeros.

    A value is looked up by ``raw``'s text of the same row if given (the
    file as written: a text category such as ``"02134"``, ``"2.50"`` or
    ``"true"`` that this file's other values let pandas read as a number or a
    bool), then by its label (:func:`_label`), then by its plain text (how
    files written before whole-number floats were normalised stored a float
    category, ``"1.0"``), then as a bool written in another case (``"true"``
    for a ``True`` category).
    """
    index = {c: i for i, c in enumerate(categories)}
    block = np.zeros((len(series), len(index)), dtype=np.float64)
    texts = [None] * len(series) if raw is None else raw.tolist()
    for row, (value, text) in enumerate(zip(series.tolist(), texts)):
        label = _label(value)
        if label is None:
            continue
        candidates = [text, text.strip()] if isinstance(text, str) else []
        candidates += [label, str(value)]
        if label.lower() in ("true", "false"):
            candidates += [label.lower(), label.lower().capitalize()]
        j = next((index[c] for c in candidates if c in index), None)
        if j is not None:
            block[row, j] = 1.0
    return block


def _identifier_like(n_distinct: int, n_present: int) -> bool:
    """More than 10 values, mostly different: names or ids, not categories."""
    return n_distinct > 10 and n_distinct > 0.5 * n_present


def _mean_and_scale(values: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation; where they overflow (squares of values
    around 1e200: a scale of inf made the column all zeros), computed on the
    values divided by their largest magnitude."""
    with np.errstate(over="ignore", invalid="ignore"):  # overflow: handled
        mean, scale = float(values.mean()), float(values.std())
        if np.isfinite(mean) and np.isfinite(scale):
            return mean, scale
        top = float(np.abs(values).max())
        unit = values / top
        return float(unit.mean()) * top, float(unit.std()) * top


class TablePreprocessor:
    """Standardise numeric columns and one-hot encode categorical ones.

    Parameters
    ----------
    target : str or None
        The target column, excluded from the features.
    task : {"classify", "regress"} or None
        Stored alongside for the command line.
    max_categories : int
        A non-numeric column with more distinct values is rejected.
    """

    def __init__(self, target=None, task=None, max_categories=MAX_CATEGORIES):
        self.target = target
        self.task = task
        self.max_categories = int(max_categories)
        self.columns: list[dict] = []

    # ----------------------------------------------------------------- fit
    def fit(self, frame, checked: bool = False) -> TablePreprocessor:
        """Learn the encoding of ``frame``'s feature columns.

        ``checked``: the whole table passed ``fit`` already (``frame`` is a
        part of it): a column is not refused as identifier-like because a
        part has fewer rows per value.
        """
        columns = []
        for name in frame.columns:
            if name == self.target:
                continue
            series = frame[name]
            key = str(name)
            if _is_numeric(series):
                values = series.to_numpy(dtype=np.float64, na_value=np.nan)
                _refuse_infinity(key, values)
                finite = values[np.isfinite(values)]
                if finite.size == 0:
                    raise PreprocessError(
                        f"column {key!r} has no finite numeric values to learn from."
                    )
                mean, scale = _mean_and_scale(finite)
                if not (np.isfinite(mean) and np.isfinite(scale)):
                    raise PreprocessError(
                        f"column {key!r} holds values too large to standardise "
                        f"(up to {np.abs(finite).max():.3g}); rescale it."
                    )
                columns.append(
                    {
                        "name": key,
                        "kind": "numeric",
                        "mean": mean,
                        "scale": scale if scale > 0 else 1.0,
                    }
                )
            elif _is_categorical(series):
                labels = _as_labels(series)
                present = sum(v is not None for v in labels)
                categories = sorted({v for v in labels if v is not None})
                if len(categories) > self.max_categories:
                    raise PreprocessError(
                        f"column {key!r} is non-numeric with {len(categories)} "
                        f"distinct values (more than {self.max_categories}); it "
                        "cannot be one-hot encoded. Drop it or convert it to numbers."
                    )
                if not checked and _identifier_like(len(categories), present):
                    raise PreprocessError(
                        f"column {key!r} is non-numeric with {len(categories)} "
                        f"distinct values in {present} rows (an identifier?); it "
                        "cannot be one-hot encoded. Drop it or convert it to numbers."
                    )
                columns.append(
                    {"name": key, "kind": "categorical", "categories": categories}
                )
            else:
                raise PreprocessError(
                    f"column {key!r} has dtype {series.dtype}, which cannot be "
                    "encoded as features. Drop it or convert it to numbers."
                )
        if not columns:
            raise PreprocessError("the data has no feature columns besides the target.")
        self.columns = columns
        return self

    # ----------------------------------------------------------- transform
    @property
    def feature_names(self) -> list[str]:
        names = []
        for col in self.columns:
            if col["kind"] == "numeric":
                names.append(col["name"])
            else:
                names.extend(f"{col['name']}={c}" for c in col["categories"])
        return names

    def categorical_names(self) -> list[str]:
        """The names of the one-hot encoded columns."""
        return [c["name"] for c in self.columns if c["kind"] != "numeric"]

    def transform(self, frame, raw=None) -> np.ndarray:
        """The feature matrix of ``frame``; ``raw`` (optional): the category
        columns as the file writes them (strings, same rows), see
        :func:`_one_hot`."""
        if not self.columns:
            raise PreprocessError("the preprocessing is not fitted.")
        available = {str(c): c for c in frame.columns}
        missing = [c["name"] for c in self.columns if c["name"] not in available]
        if missing:
            raise PreprocessError(
                "the data lacks column(s) the model was trained on: "
                + ", ".join(repr(m) for m in missing)
            )
        blocks = []
        n = len(frame)
        for col in self.columns:
            series = frame[available[col["name"]]]
            if col["kind"] == "numeric":
                if not _is_numeric(series):
                    raise PreprocessError(
                        f"column {col['name']!r} was numeric in training but has "
                        f"dtype {series.dtype} here."
                    )
                values = series.to_numpy(dtype=np.float64, na_value=np.nan)
                _refuse_infinity(col["name"], values)
                values = (values - col["mean"]) / col["scale"]
                values[~np.isfinite(values)] = 0.0  # missing -> the training mean
                blocks.append(values.reshape(n, 1))
            else:
                if not _is_categorical(series) and not _is_numeric(series):
                    raise PreprocessError(
                        f"column {col['name']!r} has dtype {series.dtype}, which "
                        "cannot be encoded."
                    )
                texts = None
                if raw is not None and available[col["name"]] in raw.columns:
                    texts = raw[available[col["name"]]]
                blocks.append(_one_hot(series, col["categories"], texts))
        return np.hstack(blocks) if blocks else np.zeros((n, 0))

    def fit_transform(self, frame) -> np.ndarray:
        return self.fit(frame).transform(frame)

    # --------------------------------------------------------- persistence
    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "version": 1,
            "target": self.target,
            "task": self.task,
            "max_categories": self.max_categories,
            "columns": [dict(c) for c in self.columns],
        }

    @classmethod
    def from_dict(cls, data) -> TablePreprocessor:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise PreprocessError("malformed preprocessing record in the model file.")
        pre = cls(
            target=data.get("target"),
            task=data.get("task"),
            max_categories=data.get("max_categories", MAX_CATEGORIES),
        )
        columns = data.get("columns")
        if not isinstance(columns, list):
            raise PreprocessError("malformed preprocessing record in the model file.")
        for col in columns:
            ok = isinstance(col, dict) and isinstance(col.get("name"), str)
            if ok and col.get("kind") == "numeric":
                ok = all(
                    isinstance(col.get(k), (int, float)) for k in ("mean", "scale")
                )
            elif ok and col.get("kind") == "categorical":
                ok = isinstance(col.get("categories"), list)
            else:
                ok = False
            if not ok:
                raise PreprocessError(
                    "malformed preprocessing record in the model file."
                )
        pre.columns = [dict(c) for c in columns]
        return pre
