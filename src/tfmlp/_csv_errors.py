"""Name the file, line and column of a value TensorFlow's CSV decoding refused.

``read_csv`` samples each file's first rows to check that the feature
columns hold numbers and to infer the target's type; a later value that is
not a number fails inside TensorFlow (``DecodeCSV`` for a feature,
``StringToNumber`` for a float target), whose message gives at most a field
index and the value. ``explain_csv_error`` turns that into a message naming
the file, the line and the column, by searching the files for the value.
"""

from __future__ import annotations

import csv
import mmap
import os
import re

# the op's message, up to what TensorFlow appends: the graph node's name
# ("\n\t [[...]]") or, run eagerly, the op's (" [Op:IteratorGetNext] name: ")
_END = r"(.*?)(?=\n\s*\[\[|\s*\[Op:\w+\]|\Z)"
_BAD_FEATURE = re.compile(
    r"Field (\d+) in record(?: \d+)? is not a valid float: " + _END, re.S
)
_BAD_TARGET = re.compile(
    r"StringToNumberOp could not correctly convert string: " + _END, re.S
)


def explain_csv_error(files: list[str], target: str, text: str) -> str | None:
    """The message for TensorFlow's error ``text`` while reading ``files``
    (target column ``target``); None when it is not a refused value."""
    feature = _BAD_FEATURE.search(text)
    if feature is not None:
        field = int(feature.group(1))
        value = feature.group(2).strip()
        column = lambda header: field if len(header) > field else None  # noqa: E731
        what, advice = "feature", "(feature columns are read as numbers)"
    else:
        bad_target = _BAD_TARGET.search(text)
        if bad_target is None:
            return None
        value = bad_target.group(1).strip()
        column = lambda header: header.index(target) if target in header else None  # noqa: E731
        what = "target"
        advice = (
            "(its first rows hold numbers, so it is read as float32), or pass "
            "target_dtype='string' if it holds labels"
        )
    found = _locate(files, column, value)
    if found is not None:
        path, line, name = found
        where = f"CSV file {path!r}, line {line}: the {what} column {name!r}"
    else:
        names = sorted(
            {h[k] for h in map(_header, files) if (k := column(h)) is not None}
        )
        where = f"read_csv: a row of {_name(files)}: the {what} column " + (
            ", ".join(map(repr, names)) or ""
        )
    return (
        f"{where} holds {value!r}, which is not a number; fix or drop that "
        f"row {advice}."
    )


def _name(files: list[str]) -> str:
    if len(files) == 1:
        return f"CSV file {files[0]!r}"
    return f"the CSV files {files[0]!r}, ... ({len(files)} files)"


def _header(path: str) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def _locate(files: list[str], column, value: str):
    """``(path, line number, column name)`` of the first row whose field
    ``column(header)`` reads ``value`` (the files are searched for the value's
    bytes and only the lines holding them are parsed); None if none does (or
    the value spans lines: a quoted line break)."""
    needle = value.encode("utf-8")
    if not needle or b"\n" in needle or b"\r" in needle:
        return None
    for path in files:
        try:
            header = _header(path)
            field = column(header)
            found = None if field is None else _locate_in(path, field, value, needle)
        except (OSError, ValueError, csv.Error):
            continue
        if found is not None:
            return path, found, header[field]
    return None


def _locate_in(path: str, field: int, value: str, needle: bytes) -> int | None:
    """The line number of the first data row of ``path`` whose field
    ``field`` reads ``value``."""
    if os.path.getsize(path) == 0:
        return None
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        line, counted = 1, 0
        at = m.find(needle)
        while at >= 0:
            start = m.rfind(b"\n", 0, at) + 1
            end = m.find(b"\n", at)
            end = len(m) if end < 0 else end
            line += m[counted:start].count(b"\n")
            counted = start
            if line > 1:
                text = m[start:end].decode("utf-8", "replace")
                row = next(csv.reader([text]), [])
                if len(row) > field and row[field].strip() == value:
                    return line
            at = m.find(needle, end)
    return None
