"""HDF5 tables: a pandas DataFrame of named columns of mixed types, kept as one HDF5
dataset per column, and read back with the same names and dtypes.

A table is a group marked ``mpisearch_table``: its ``columns`` attribute lists the
names (JSON), dataset ``"<i>"`` holds column i and says its ``kind``:

* ``number``: a numeric or boolean column, as is (NaN for missing floats);
* ``category``: the category codes (-1: missing), with ``categories`` (JSON) and
  ``ordered``;
* ``string``: UTF-8 strings, with the pandas ``dtype`` to restore and, when some
  cells are missing, a boolean dataset ``"<i>.missing"``.

Any other dtype (dates, nullable extension integers, objects other than strings) is
refused with one line naming the column. pandas is needed only here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..errors import InputError

MARK = "mpisearch_table"  # attribute of a group holding a table
STRING_DTYPES = ("object", "str", "string")  # pandas dtypes of a string column, restored as written


def is_table(node: Any) -> bool:
    return isinstance(node, h5py.Group) and bool(node.attrs.get(MARK, False))


def check_frame(frame: Any, where: str) -> None:
    """InputError naming the first column a table cannot hold."""
    for name in frame.columns:
        _kind(frame[name], f"{where} column {name!r}")


def write_table(group: h5py.Group, frame: Any, where: str = "X") -> None:
    """Write ``frame``'s columns into ``group`` (an empty group), names and dtypes kept."""
    check_frame(frame, where)
    group.attrs[MARK] = True
    group.attrs["columns"] = json.dumps([str(c) for c in frame.columns])
    for i, name in enumerate(frame.columns):
        col = frame[name]
        kind = _kind(col, f"{where} column {name!r}")
        if kind == "category":
            node = group.create_dataset(str(i), data=col.cat.codes.to_numpy())
            node.attrs["categories"] = json.dumps(col.cat.categories.tolist())
            node.attrs["ordered"] = bool(col.cat.ordered)
        elif kind == "string":
            missing = col.isna().to_numpy()
            values = col.where(~missing, "").to_numpy(dtype=object)
            node = group.create_dataset(str(i), data=values, dtype=h5py.string_dtype())
            node.attrs["dtype"] = str(col.dtype)
            if missing.any():
                group.create_dataset(f"{i}.missing", data=missing)
        else:
            node = group.create_dataset(str(i), data=col.to_numpy())
        node.attrs["kind"] = kind


def read_table(group: h5py.Group, path: Path, name: str) -> Any:
    """The DataFrame a table group holds."""
    pd = need_pandas(f"{path}: '{name}' is a table of named columns")
    try:
        names = json.loads(group.attrs["columns"])
        columns = {c: _read_column(pd, group, str(i)) for i, c in enumerate(names)}
    except (KeyError, ValueError, TypeError) as exc:
        raise InputError(f"{path}: group '{name}' is not a valid table: {exc}") from None
    frame = pd.DataFrame(columns)
    if frame.shape[1] == 0:
        raise InputError(f"{path}: table '{name}' has no columns")
    return frame


def _read_column(pd: Any, group: h5py.Group, key: str) -> Any:
    node = group[key]
    kind = node.attrs["kind"]
    if kind == "number":
        return pd.Series(node[()])
    if kind == "category":
        dtype = pd.CategoricalDtype(json.loads(node.attrs["categories"]), ordered=bool(node.attrs["ordered"]))
        return pd.Series(pd.Categorical.from_codes(node[()], dtype=dtype))
    if kind == "string":
        values = node.asstr()[()].astype(object)
        if f"{key}.missing" in group:
            values[group[f"{key}.missing"][()]] = np.nan
        return pd.Series(values, dtype=node.attrs["dtype"])
    raise ValueError(f"column {key} has an unknown kind {kind!r}")


def _kind(col: Any, where: str) -> str:
    import pandas as pd

    dtype = col.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        _check_categories(dtype, where)
        return "category"
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        return "number"
    if str(dtype) in STRING_DTYPES and all(isinstance(v, str) for v in col.dropna()):
        return "string"
    raise InputError(f"{where} has dtype {dtype}{_holding(col)}, which an HDF5 table cannot hold; "
                     "convert it to numbers (float64 for missing values), category or strings")


def _check_categories(dtype: Any, where: str) -> None:
    values = dtype.categories.tolist()
    if not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in values):
        raise InputError(f"{where} has categories of type {dtype.categories.dtype}, which an HDF5 table "
                         "cannot hold; use strings or numbers as categories")


def _holding(col: Any) -> str:
    kinds = sorted({type(v).__name__ for v in col.dropna() if not isinstance(v, str)})
    return f" holding {', '.join(kinds)} values" if kinds and str(col.dtype) in STRING_DTYPES else ""


def need_pandas(what: str) -> Any:
    try:
        import pandas as pd
    except ImportError:
        raise InputError(f"{what}, which needs pandas: pip install pandas") from None
    return pd
