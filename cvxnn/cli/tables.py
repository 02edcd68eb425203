"""Reading data files for the command line: CSV with a header row, or NPZ.

* CSV: the first row names the columns; every feature column must be
  numeric. The target column may hold numbers or text labels.
* NPZ: an array ``X`` (n_samples, n_features), the target under its own key
  (``y`` by default) and optionally ``feature_names``.
"""

import csv
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Table:
    """Features, optional target, and the names of both."""

    X: np.ndarray
    y: np.ndarray | None
    feature_names: list
    target: str | None


def parse_number(value):
    """``float(value)``, or None where ``value`` is not a number."""
    try:
        return float(value)
    except ValueError:
        return None


def first_text(y):
    """The first entry of ``y`` that is not a number, or None."""
    return next((str(v) for v in np.ravel(y) if parse_number(v) is None), None)


_LEADING_ZERO = re.compile(r"[+-]?0\d+")  # an integer written with leading zeros


def _parse_column(values, name, path, numeric, rows):
    """A column as float64, or when ``numeric`` is False (the target) as int64
    if every entry is an integer literal (labels such as 3 and 7 predicted as
    written; with str where one has leading zeros, so that codes such as 007
    and 7 stay apart: ``cvxnn fit --task regression`` reads them as numbers),
    as str if it is text. Empty cells and non-finite numbers are
    errors naming the row (``rows``: each value's line in the file)."""
    where = f"column {name!r} of {path}"
    if "" in values:
        raise ValueError(f"DATA: {where} is empty in row {rows[values.index('')]}.")
    if not numeric:
        try:
            codes = np.array([int(value) for value in values], dtype=np.int64)
        except (ValueError, OverflowError):
            pass
        else:  # labels such as 007 and 7 stay apart, as written
            if any(_LEADING_ZERO.fullmatch(value.strip()) for value in values):
                return np.array(values, dtype=str)
            return codes
    numbers = [parse_number(value) for value in values]
    if None in numbers:
        if not numeric:
            return np.array(values, dtype=str)
        row = numbers.index(None)
        raise ValueError(f"DATA: {where} must be numeric; row {rows[row]} holds "
                         f"{values[row]!r}.")
    column = np.array(numbers)
    bad = np.flatnonzero(~np.isfinite(column))
    if bad.size:
        raise ValueError(f"DATA: {where} holds {values[bad[0]]!r} in row "
                         f"{rows[bad[0]]}; numbers must be finite.")
    return column


def _read_rows(path):
    """The non-empty rows of the CSV file ``path`` (UTF-8, with or without
    BOM) as (line number, fields) pairs."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            return [(reader.line_num, row) for row in reader if row]
    except UnicodeDecodeError as exc:
        raise ValueError(f"DATA: {path} is not UTF-8 text (it holds byte "
                         f"{exc.object[exc.start]:#04x}); save it as UTF-8.") from None
    except csv.Error as exc:
        raise ValueError(f"DATA: {path} cannot be read as CSV: {exc}.") from None


def _check_header(header, path):
    seen = set()
    for name in header:
        if name in seen:
            raise ValueError(f"DATA: column name {name!r} appears twice in the "
                             f"header of {path}.")
        seen.add(name)


def _read_csv(path):
    """The header, {name: column values} and each data row's line number."""
    rows = _read_rows(path)
    if len(rows) < 2:
        raise ValueError(f"DATA: {path} needs a header row and at least one data row.")
    header = [name.strip() for name in rows[0][1]]
    _check_header(header, path)
    for line, row in rows[1:]:
        if len(row) != len(header):
            raise ValueError(f"DATA: row {line} of {path} has {len(row)} fields, the "
                             f"header has {len(header)}.")
    columns = list(zip(*[[v.strip() for v in row] for _, row in rows[1:]],
                       strict=True))
    lines = [line for line, _ in rows[1:]]
    return header, dict(zip(header, columns, strict=True)), lines


def _pick(header, wanted, path):
    missing = [name for name in wanted if name not in header]
    if missing:
        raise ValueError(f"DATA: {path} has no column {missing[0]!r}; columns: "
                         f"{', '.join(header)}.")
    return wanted


def _csv_table(path, target, features):
    header, columns, lines = _read_csv(path)
    if target is not None:
        _pick(header, [target], path)
    if features is not None and target in features:
        raise ValueError(f"--features: {target!r} is the target column; a column "
                         "cannot be both a feature and the target.")
    names = _pick(header, features, path) if features is not None else [
        name for name in header if name != target]
    if not names:
        raise ValueError(f"DATA: {path} has no feature columns besides the target.")
    if "" in names:  # e.g. the row index a data frame wrote: not a feature
        raise ValueError(f"DATA: column {header.index('') + 1} of {path} has no "
                         "name; name it, or leave it out with --features.")
    X = np.column_stack([_parse_column(columns[n], n, path, True, lines)
                         for n in names])
    y = None
    if target is not None:
        y = _parse_column(columns[target], target, path, False, lines)
    return Table(X, y, names, target)


def _open_npz(path):
    """The archive ``path`` opened by ``np.load``, or a DATA error."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        data = None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"DATA: {path} cannot be read as a .npz archive; it is "
                         "damaged or in another format.")
    return data


def _array(data, key, path):
    """Array ``key`` of the open archive ``data``, or a DATA error."""
    try:
        value = data[key]
        if isinstance(value, np.ndarray):
            return value
        reason = "is not a .npy array (numpy read its raw bytes)"
    except ValueError:
        reason = "holds Python objects (dtype object, not loaded) or is damaged"
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error):
        reason = "is damaged"
    raise ValueError(f"DATA: array {key!r} in {path} cannot be read: it {reason}.")


def _npz_table(path, target, features, model):
    with _open_npz(path) as data:
        if "X" not in data.files:
            raise ValueError(f"DATA: {path} has no array 'X'; it has "
                             f"{', '.join(data.files)}.")
        X = _array(data, "X", path)
        key = target if target is not None else ("y" if "y" in data.files else None)
        if target is not None and target not in data.files:
            raise ValueError(f"--target: {path} has no array {target!r}; it has "
                             f"{', '.join(data.files)}.")
        y = _array(data, key, path) if key is not None else None
        names = (_array(data, "feature_names", path).astype(str)
                 if "feature_names" in data.files else None)
    if X.ndim != 2:
        raise ValueError(f"DATA: 'X' in {path} must be 2-D, got shape {X.shape}.")
    if names is not None and names.shape != (X.shape[1],):
        raise ValueError(f"DATA: 'feature_names' in {path} must name the "
                         f"{X.shape[1]} columns of 'X'; it has shape {names.shape}.")
    named = names is not None
    names = names.tolist() if named else [f"x{i}" for i in range(X.shape[1])]
    if features is None:
        return Table(X, y, names, key)
    # a model fitted on an NPZ without feature_names holds x0, x1, ...: names
    # `cvxnn fit` made up, which another NPZ's names need not repeat
    made_up = list(features) == [f"x{i}" for i in range(len(features))]
    if named and model and not made_up and not set(features) <= set(names):
        missing = [name for name in features if name not in names]
        raise ValueError(f"DATA: 'feature_names' in {path} do not name the model's "
                         f"columns {missing[:5]}{' ...' if len(missing) > 5 else ''}"
                         "; rename them, or leave 'feature_names' out to give "
                         "the columns in the model's order.")
    if named and set(features) <= set(names) or not (named or model):
        # by name: feature_names, else (choosing columns to fit) x0, x1, ...
        X = X[:, [names.index(n) for n in _pick(names, features, path)]]
    elif len(features) != X.shape[1]:  # a model's columns, in order
        raise ValueError(f"DATA: 'X' in {path} has {X.shape[1]} columns, the model "
                         f"was trained on {len(features)}.")
    return Table(X, y, list(features), key)


def load_table(path, target=None, features=None, model=False):
    """Read ``path`` (.csv or .npz) into a :class:`Table`.

    Parameters
    ----------
    path : str or Path
    target : str or None
        The target column (CSV) or array (NPZ); NPZ defaults to ``"y"``.
    features : list of str or None
        Feature columns to use in this order (default: all but the target):
        CSV columns, or NPZ columns named by its ``feature_names`` (without
        them, ``x0, x1, ...`` when choosing columns to fit).
    model : bool
        ``features`` are a trained model's: an NPZ without ``feature_names``
        gives its columns in order, as many as the model takes; one whose
        ``feature_names`` do not hold them all is refused, unless the model's
        are the ``x0, x1, ...`` of an NPZ fitted without names (then in order).

    Returns
    -------
    Table
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"DATA: no such file: {path}.")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _npz_table(path, target, features, model)
    if suffix in (".csv", ".txt"):
        return _csv_table(path, target, features)
    raise ValueError(f"DATA: {path} must end in .csv or .npz, got {suffix or 'none'}.")
