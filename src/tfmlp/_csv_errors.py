"""Name the file, line and column of a value TensorFlow's CSV decoding refused.

``read_csv`` samples each file's first rows to check that the feature
columns hold numbers, to infer the target's type and to see whether quoted
values hold line breaks; a later value that breaks those fails inside
TensorFlow (``DecodeCSV`` for a feature, ``StringToNumber`` for a float
target), whose message gives at most a field index and the value.
``explain_csv_error`` turns that into a message naming the file, the line
and the column, by searching the files for the value.

A *source* is what one ``read_csv`` call read: ``(files, target,
features)``; a dataset may combine several (``concatenate``, ``zip``).
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
_OPEN_QUOTE = "Quoted field has to end with quote followed by delim or end"


def explain_csv_error(sources, text: str) -> str | None:
    """The message for TensorFlow's error ``text`` while reading ``sources``
    (``(files, target, features)`` each); None when it is not one of the
    errors this module explains."""
    if _OPEN_QUOTE in text:
        return _explain_line_break(sources)
    feature = _BAD_FEATURE.search(text)
    if feature is not None:
        field = int(feature.group(1))
        value, what = feature.group(2).strip(), "feature"
        advice = "(feature columns are read as numbers)"

        def column(header, target, features):
            ok = len(header) > field and header[field] in features
            return field if ok else None
    else:
        bad_target = _BAD_TARGET.search(text)
        if bad_target is None:
            return None
        value, what = bad_target.group(1).strip(), "target"
        advice = (
            "(its first rows hold numbers, so it is read as float32), or pass "
            "target_dtype='string' if it holds labels"
        )

        def column(header, target, features):
            return header.index(target) if target in header else None

    files = [
        (path, target, features)
        for paths, target, features in sources
        for path in paths
    ]
    found = _locate(files, column, value)
    if found is not None:
        path, line, name = found
        where = f"CSV file {path!r}, line {line}: the {what} column {name!r}"
    else:
        names = sorted(
            {
                h[k]
                for p, t, f in files
                if (k := column(h := _header(p), t, f)) is not None
            }
        )
        where = (
            f"read_csv: a row of {_name([p for p, _, _ in files])}: the {what} column"
        )
        where += " " + " or ".join(map(repr, names)) if names else ""
    return (
        f"{where} holds {value!r}, which is not a number; fix or drop that "
        f"row {advice}."
    )


def _explain_line_break(sources) -> str:
    """A quoted value with a line break (or a quote left open) past the rows
    sampled in a file read line by line."""
    files = [path for paths, _, _ in sources for path in paths]
    for path in files:
        line = _first_multiline_record(path)
        if line is not None:
            where = f"CSV file {path!r}, line {line}"
            break
    else:
        where = f"read_csv: {_name(files)}"
    return (
        f"{where}: a quoted value holds a line break (or a quote is not "
        "closed); read_csv reads such files record by record only when their "
        "first rows hold one, else one record per line: remove the line "
        "break, or close the quote."
    )


def _first_multiline_record(path: str) -> int | None:
    """The first line of the first record of ``path`` that spans lines."""
    try:
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
            reader = csv.reader(f)
            last = 0
            for _ in reader:
                if reader.line_num > last + 1:
                    return last + 1
                last = reader.line_num
    except (OSError, csv.Error):
        return None
    return None


def _name(files: list[str]) -> str:
    files = list(dict.fromkeys(files))
    if len(files) == 1:
        return f"CSV file {files[0]!r}"
    return f"the CSV files {files[0]!r}, ... ({len(files)} files)"


def _header(path: str) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def _needles(value: str) -> list[bytes]:
    """The bytes ``value`` may appear as in a file: as is, and (a value with
    a quote) with its quotes doubled, as a quoted CSV value writes them."""
    raw = value.encode("utf-8")
    if b'"' in raw:
        return [raw, raw.replace(b'"', b'""')]
    return [raw]


def _locate(files, column, value: str):
    """``(path, line number, column name)`` of the first row whose field
    ``column(header, target, features)`` reads ``value`` (the files are
    searched for the value's bytes and only the lines holding them are
    parsed); None if none does (or the value spans lines)."""
    if not value or "\n" in value or "\r" in value:
        return None
    for path, target, features in files:
        try:
            header = _header(path)
            field = column(header, target, features)
            if field is None:
                continue
            for needle in _needles(value):
                line = _locate_in(path, field, value, needle)
                if line is not None:
                    return path, line, header[field]
        except (OSError, ValueError, csv.Error):
            continue
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
