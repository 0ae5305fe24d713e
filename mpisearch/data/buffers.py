"""Objects as a small picklable skeleton plus raw array buffers, and back.

Used to ship a search's data (X, y, fit and score parameters, CV splits) from
rank 0 to the other ranks: numeric and fixed-width string arrays, the parts of
scipy.sparse matrices and the columns of pandas DataFrames and Series travel as
buffers (categoricals as codes plus their categories); lists, tuples and dicts
are walked; anything else is part of the skeleton (pickled once).

Objects seen twice (by identity) are packed once, so a fit parameter that is X
itself, or a CV split shared by every candidate, travels once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import InputError


@dataclass(frozen=True)
class Buf:
    """Placeholder for the array at ``index`` of the buffer list."""

    index: int


@dataclass(frozen=True)
class SparseSpec:
    """A scipy.sparse matrix or array rebuilt from its component buffers."""

    cls: type
    fmt: str
    shape: tuple[int, ...]
    parts: tuple[Buf, ...]


@dataclass(frozen=True)
class ColumnSpec:
    """One pandas column: its values (or category codes) as a buffer."""

    kind: str  # "numpy", "category", "strings"
    values: Buf
    dtype: Any = None  # the pandas dtype to restore (categories, string dtype)
    na_mask: Buf | None = None  # strings: where the values are missing
    na_value: Any = None  # strings: what a missing value is (None or NaN)


@dataclass(frozen=True)
class FrameSpec:
    """A DataFrame (``name`` is None) or a Series (one column, named ``name``)."""

    columns: Any  # pandas Index of the column names
    specs: tuple[ColumnSpec, ...]
    index: Any  # a RangeIndex as is, else a Buf of the index values
    series: bool = False
    name: Any = None


@dataclass(frozen=True)
class Shared:
    """A second reference to an object already packed (by identity)."""

    slot: int


@dataclass
class Packer:
    """Walks objects, replacing arrays by :class:`Buf` and collecting the buffers."""

    buffers: list[np.ndarray] = field(default_factory=list)
    seen: dict[int, int] = field(default_factory=dict)  # id(obj) -> slot
    slots: list[Any] = field(default_factory=list)  # packed form of each seen object
    keep: list[Any] = field(default_factory=list)  # originals, alive while ids are compared

    def pack(self, obj: Any, where: str = "data") -> Any:
        if id(obj) in self.seen:
            return Shared(self.seen[id(obj)])
        packed = self._pack_new(obj, where)
        if packed is obj:  # left to the skeleton: no need to share it
            return obj
        self.seen[id(obj)] = len(self.slots)
        self.slots.append(packed)
        self.keep.append(obj)
        return Shared(len(self.slots) - 1)

    def _pack_new(self, obj: Any, where: str) -> Any:
        if isinstance(obj, np.ndarray) and not obj.dtype.hasobject:
            return self.buffer(obj)
        if sp.issparse(obj):
            return self._sparse(obj)
        kind = _pandas_kind(obj)
        if kind is not None:
            return _frame(self, obj, where, series=kind == "Series")
        if isinstance(obj, (list, tuple)) and type(obj) in (list, tuple):
            return type(obj)(self.pack(v, f"{where}[{i}]") for i, v in enumerate(obj))
        if type(obj) is dict:
            return {k: self.pack(v, f"{where}[{k!r}]") for k, v in obj.items()}
        return obj

    def buffer(self, arr: np.ndarray) -> Buf:
        self.buffers.append(np.ascontiguousarray(arr))
        return Buf(len(self.buffers) - 1)

    def _sparse(self, mat: Any) -> SparseSpec:
        fmt = mat.format if mat.format in ("csr", "csc") else "csr"
        mat = mat.asformat(fmt)
        parts = tuple(self.buffer(a) for a in (mat.data, mat.indices, mat.indptr))
        return SparseSpec(type(mat) if fmt == mat.format else sp.csr_matrix, fmt, mat.shape, parts)


def check_columns(frame: Any, where: str = "X") -> None:
    """InputError naming the first column of ``frame`` that cannot travel as a buffer."""
    Packer().pack(frame, where)


def is_frame(obj: Any) -> bool:
    """Whether ``obj`` is a pandas DataFrame (pandas is not imported for other objects)."""
    return _pandas_kind(obj) == "DataFrame"


def _pandas_kind(obj: Any) -> str | None:
    """"DataFrame" or "Series" for pandas objects, without importing pandas otherwise."""
    module = type(obj).__module__
    if not module.startswith("pandas"):
        return None
    name = type(obj).__name__
    return name if name in ("DataFrame", "Series") else None


def _frame(packer: Packer, obj: Any, where: str, series: bool) -> FrameSpec:
    import pandas as pd

    frame = obj.to_frame() if series else obj
    specs = tuple(_column(packer, frame.iloc[:, i], f"{where} column {name!r}")
                  for i, name in enumerate(frame.columns))
    index = frame.index if isinstance(frame.index, pd.RangeIndex) else packer.buffer(_index_values(frame, where))
    return FrameSpec(frame.columns, specs, index, series, obj.name if series else None)


def _index_values(frame: Any, where: str) -> np.ndarray:
    values = frame.index.to_numpy()
    if values.dtype.hasobject:
        raise InputError(f"{where}: its index has dtype object, which mpisearch cannot ship to the MPI ranks; "
                         "reset it (df.reset_index(drop=True)) or give it a numeric index")
    return values


def _column(packer: Packer, col: Any, where: str) -> ColumnSpec:
    import pandas as pd

    dtype = col.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return ColumnSpec("category", packer.buffer(col.cat.codes.to_numpy()), dtype)
    if isinstance(dtype, np.dtype) and not dtype.hasobject:
        return ColumnSpec("numpy", packer.buffer(col.to_numpy()))
    if isinstance(dtype, (pd.StringDtype, np.dtype)):  # np.dtype here: object
        return _strings(packer, col, where)
    raise InputError(f"{where} has dtype {dtype}, which mpisearch cannot ship to the MPI ranks; "
                     "convert it to a numeric, category or string dtype")


def _strings(packer: Packer, col: Any, where: str) -> ColumnSpec:
    missing = col.isna().to_numpy()
    present = col[~missing]
    if not all(isinstance(v, str) for v in present):
        kinds = sorted({type(v).__name__ for v in present if not isinstance(v, str)})
        raise InputError(f"{where} has dtype {col.dtype} holding {', '.join(kinds)} values, which mpisearch "
                         "cannot ship to the MPI ranks; only strings (and missing values) can go in such a column")
    na_values = {_na_kind(v) for v in col[missing]}
    if len(na_values) > 1:
        raise InputError(f"{where} mixes None and NaN as missing values; use one of them")
    values = np.asarray(col.where(~missing, "").to_numpy(dtype=object).astype(str))
    na_value = None if not na_values or na_values == {"None"} else np.nan
    return ColumnSpec("strings", packer.buffer(values), col.dtype, packer.buffer(missing), na_value)


def _na_kind(value: Any) -> str:
    return "None" if value is None else "NaN"


class Unpacker:
    """Rebuilds packed objects on a receiving rank; shared objects are rebuilt once and
    kept, so later rounds of one fit refer to data shipped in earlier ones."""

    def __init__(self) -> None:
        self.buffers: list[np.ndarray] = []
        self.slots: list[Any] = []
        self.done: dict[int, Any] = {}

    def add(self, slots: list[Any], buffers: list[np.ndarray]) -> None:
        """The slots and buffers a new round adds to those of earlier rounds."""
        self.slots.extend(slots)
        self.buffers.extend(buffers)

    def get(self, obj: Any) -> Any:
        if isinstance(obj, Shared):
            if obj.slot not in self.done:
                self.done[obj.slot] = self.get(self.slots[obj.slot])
            return self.done[obj.slot]
        if isinstance(obj, Buf):
            return self.buffers[obj.index]
        if isinstance(obj, SparseSpec):
            data, indices, indptr = (self.buffers[b.index] for b in obj.parts)
            return obj.cls((data, indices, indptr), shape=obj.shape)
        if isinstance(obj, FrameSpec):
            return self._frame(obj)
        if type(obj) in (list, tuple):
            return type(obj)(self.get(v) for v in obj)
        if type(obj) is dict:
            return {k: self.get(v) for k, v in obj.items()}
        return obj

    def _frame(self, spec: FrameSpec) -> Any:
        import pandas as pd

        index = spec.index if isinstance(spec.index, pd.RangeIndex) else pd.Index(self.get(spec.index))
        columns = [self._column(c, index) for c in spec.specs]
        if spec.series:
            return columns[0].rename(spec.name)
        frame = pd.concat(columns, axis=1) if columns else pd.DataFrame(index=index)
        frame.columns = spec.columns
        return frame

    def _column(self, spec: ColumnSpec, index: Any) -> Any:
        import pandas as pd

        values = self.get(spec.values)
        if spec.kind == "category":
            return pd.Series(pd.Categorical.from_codes(values, dtype=spec.dtype), index=index)
        if spec.kind == "numpy":
            return pd.Series(values, index=index, copy=False)
        strings = values.astype(object)
        strings[self.get(spec.na_mask)] = spec.na_value
        return pd.Series(strings, index=index, dtype=spec.dtype)
