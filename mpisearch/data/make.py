"""Datasets users can make without a download: scikit-learn's bundled ones, synthetic, CSV."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, did_you_mean
from . import hdf5

BUNDLED = ("digits", "breast_cancer", "wine", "iris")
SYNTHETIC = ("classification", "regression")
# Sizes of the synthetic sets when --rows/--features are not given: big enough
# that a fit takes milliseconds, small enough for a quick demo.
DEFAULT_ROWS = 1000
DEFAULT_FEATURES = 20
PARQUET = (".parquet", ".pq")  # suffixes `data import` reads as Parquet (through pandas), else CSV


def make(name: str, rows: int | None = None, features: int | None = None, seed: int = 0) -> tuple[Any, Any]:
    """X, y of a named dataset."""
    from sklearn import datasets

    if name in BUNDLED:
        return getattr(datasets, f"load_{name}")(return_X_y=True)
    rows = DEFAULT_ROWS if rows is None else rows
    features = DEFAULT_FEATURES if features is None else features
    if rows < 2 or features < 1:
        raise InputError(f"--rows must be >= 2 and --features >= 1, got rows={rows}, features={features}")
    _check_memory(rows, features)
    if name == "classification":
        informative = max(1, min(features, features // 2 + 1))
        return datasets.make_classification(n_samples=rows, n_features=features, n_informative=informative,
                                            n_redundant=0, random_state=seed)
    if name == "regression":
        return datasets.make_regression(n_samples=rows, n_features=features, noise=1.0, random_state=seed)
    choices = BUNDLED + SYNTHETIC
    raise InputError(f"data make: unknown dataset '{name}'{did_you_mean(name, choices)}; expected one of {choices}")


def _check_memory(rows: int, features: int) -> None:
    """Refuse a synthetic dataset larger than this machine's memory (X and y as float64)."""
    need = rows * (features + 1) * 8
    try:
        have = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return
    if need > have:
        raise InputError(f"--rows {rows} x --features {features} needs {need / 2**30:,.0f} GiB of memory, "
                         f"more than this machine's {have / 2**30:,.0f} GiB")


def import_csv(path: str | os.PathLike[str], target: str) -> tuple[np.ndarray, np.ndarray]:
    """Numeric feature columns and the ``target`` column (numbers or strings) of a CSV file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"data import: file not found: {path}")
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if len(rows) < 2:
        raise InputError(f"{path}: needs a header line and at least one data row")
    header, body = rows[0], rows[1:]
    if target not in header:
        raise InputError(f"{path}: no column '{target}'{did_you_mean(target, header)}; columns: {', '.join(header)}")
    t = header.index(target)
    X = np.empty((len(body), len(header) - 1), dtype=np.float64)
    labels = []
    for line_no, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise InputError(f"{path}, line {line_no}: {len(row)} fields, the header has {len(header)}")
        if not row[t].strip():
            raise InputError(f"{path}, line {line_no}: the target column '{target}' is empty")
        labels.append(row[t])
        X[line_no - 2] = _floats(row[:t] + row[t + 1 :], header[:t] + header[t + 1 :], path, line_no)
    return X, _labels(labels)


def import_frame(path: str | os.PathLike[str], target: str) -> tuple[Any, np.ndarray]:
    """The feature columns of a CSV or Parquet file as a DataFrame (pandas' dtypes: numbers,
    strings; Parquet also categoricals) and the ``target`` column (numbers or strings)."""
    from .table import need_pandas

    path = Path(path)
    if not path.is_file():
        raise InputError(f"data import: file not found: {path}")
    pd = need_pandas(f"data import --table: {path}")
    try:
        frame = pd.read_parquet(path) if path.suffix.lower() in PARQUET else pd.read_csv(path)
    except ImportError as exc:  # Parquet without pyarrow or fastparquet
        raise InputError(f"data import: {path}: {exc}") from None
    except (ValueError, OSError) as exc:
        raise InputError(f"data import: {path}: cannot read it ({exc})") from None
    if target not in frame.columns:
        header = [str(c) for c in frame.columns]
        raise InputError(f"{path}: no column '{target}'{did_you_mean(target, header)}; columns: {', '.join(header)}")
    empty = np.flatnonzero(frame[target].isna().to_numpy())
    if len(empty):
        raise InputError(f"{path}, row {empty[0] + 1}: the target column '{target}' is empty")
    y = frame.pop(target).to_numpy()
    return frame, y.astype(str) if y.dtype.kind not in "biuf" else y


def _floats(cells: list[str], names: list[str], path: Path, line_no: int) -> list[float]:
    out = []
    for cell, name in zip(cells, names, strict=True):
        try:
            out.append(float(cell) if cell.strip() else np.nan)
        except ValueError:
            raise InputError(f"{path}, line {line_no}, column '{name}': '{cell}' is not a number") from None
    return out


def _labels(labels: list[str]) -> np.ndarray:
    try:
        values = np.array([float(v) for v in labels])
    except ValueError:
        return np.array(labels, dtype=str)
    return values.astype(np.int64) if np.all(values == np.round(values)) else values


def make_file(name: str, out: str | os.PathLike[str], rows: int | None = None, features: int | None = None,
              seed: int = 0) -> Path:
    X, y = make(name, rows, features, seed)
    return hdf5.write(out, X, y)
