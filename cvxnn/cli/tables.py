"""Reading data files for the command line: CSV with a header row, or NPZ.

* CSV: the first row names the columns; every feature column must be
  numeric. The target column may hold numbers or text labels.
* NPZ: an array ``X`` (n_samples, n_features), the target under its own key
  (``y`` by default) and optionally ``feature_names``.
"""

import csv
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


def _parse_column(values, name, path, numeric):
    """A column as float64, or when ``numeric`` is False (the target) as int64
    if every entry is an integer literal (labels such as 3 and 7 predicted as
    written), as str if it is text."""
    if not numeric:
        try:
            return np.array([int(value) for value in values], dtype=np.int64)
        except (ValueError, OverflowError):
            pass
    floats = []
    for row, value in enumerate(values, start=2):
        try:
            floats.append(float(value))
        except ValueError:
            if not numeric:
                return np.array(values, dtype=str)
            raise ValueError(f"DATA: column {name!r} of {path} must be numeric; row "
                             f"{row} holds {value!r}.") from None
    return np.array(floats)


def _read_csv(path):
    with open(path, newline="") as f:
        rows = [row for row in csv.reader(f) if row]
    if len(rows) < 2:
        raise ValueError(f"DATA: {path} needs a header row and at least one data row.")
    header = [name.strip() for name in rows[0]]
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ValueError(f"DATA: row {i} of {path} has {len(row)} fields, the "
                             f"header has {len(header)}.")
    columns = list(zip(*[[v.strip() for v in row] for row in rows[1:]], strict=True))
    return header, dict(zip(header, columns, strict=True))


def _pick(header, wanted, path):
    missing = [name for name in wanted if name not in header]
    if missing:
        raise ValueError(f"DATA: {path} has no column {missing[0]!r}; columns: "
                         f"{', '.join(header)}.")
    return wanted


def _csv_table(path, target, features):
    header, columns = _read_csv(path)
    if target is not None:
        _pick(header, [target], path)
    names = _pick(header, features, path) if features is not None else [
        name for name in header if name != target]
    if not names:
        raise ValueError(f"DATA: {path} has no feature columns besides the target.")
    X = np.column_stack([_parse_column(columns[n], n, path, True) for n in names])
    y = None
    if target is not None:
        y = _parse_column(columns[target], target, path, numeric=False)
    return Table(X, y, names, target)


def _npz_table(path, target, features):
    with np.load(path, allow_pickle=False) as data:
        if "X" not in data.files:
            raise ValueError(f"DATA: {path} has no array 'X'; it has "
                             f"{', '.join(data.files)}.")
        X = data["X"]
        key = target if target is not None else ("y" if "y" in data.files else None)
        if target is not None and target not in data.files:
            raise ValueError(f"--target: {path} has no array {target!r}; it has "
                             f"{', '.join(data.files)}.")
        y = data[key] if key is not None else None
        names = (data["feature_names"].astype(str).tolist()
                 if "feature_names" in data.files else None)
    if X.ndim != 2:
        raise ValueError(f"DATA: 'X' in {path} must be 2-D, got shape {X.shape}.")
    if names is None:
        names = [f"x{i}" for i in range(X.shape[1])]
    if features is not None and len(features) != X.shape[1]:
        raise ValueError(f"DATA: 'X' in {path} has {X.shape[1]} columns, the model "
                         f"was trained on {len(features)}.")
    return Table(X, y, names, key)


def load_table(path, target=None, features=None):
    """Read ``path`` (.csv or .npz) into a :class:`Table`.

    Parameters
    ----------
    path : str or Path
    target : str or None
        The target column (CSV) or array (NPZ); NPZ defaults to ``"y"``.
    features : list of str or None
        CSV feature columns to use in this order (default: all but the target).

    Returns
    -------
    Table
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"DATA: no such file: {path}.")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _npz_table(path, target, features)
    if suffix in (".csv", ".txt"):
        return _csv_table(path, target, features)
    raise ValueError(f"DATA: {path} must end in .csv or .npz, got {suffix or 'none'}.")
