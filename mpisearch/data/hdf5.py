"""Read and write datasets in HDF5 (h5py), validated, with errors naming file and dataset."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import scipy.sparse as sp

from ..errors import InputError
from . import segment
from .dataset import weight_problem
from .table import check_frame, is_table, read_table, write_table

SPARSE_PARTS = ("data", "indices", "indptr")


def read(path: str | os.PathLike[str], x_name: str = "X", y_name: str | None = "y") -> tuple[Any, np.ndarray | None]:
    """Load X (dense dataset, CSR group or a table of named columns: a DataFrame) and y from an HDF5 file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"data.path: file not found: {path}")
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"data.path: {path} is not a readable HDF5 file ({exc})") from None
    with fh:
        X = _read_X(fh, path, x_name)
        y = _read_y(fh, path, y_name) if y_name else None
    if X.shape[0] == 0:
        raise InputError(f"{path}: dataset '{x_name}' has no rows (shape {X.shape}); a search needs samples")
    if y is not None and len(y) != X.shape[0]:
        raise InputError(
            f"{path}: dataset '{y_name}' has {len(y)} rows but '{x_name}' has {X.shape[0]}; they must match"
        )
    return X, y


def read_sample_weight(path: str | os.PathLike[str], name: str, n_rows: int) -> np.ndarray:
    """A 1-D numeric dataset of one weight per row of X."""
    path = Path(path)
    with h5py.File(path, "r") as fh:
        node = _lookup(fh, path, name, "data.sample_weight")
        if not isinstance(node, h5py.Dataset) or node.ndim != 1 or node.dtype.kind not in "biuf":
            raise InputError(f"{path}: dataset '{name}' (sample weights) must be 1-D and numeric")
        if node.shape[0] != n_rows:
            raise InputError(f"{path}: dataset '{name}' has {node.shape[0]} weights but X has {n_rows} rows")
        weights = node[()]
    problem = weight_problem(weights)
    if problem:
        raise InputError(f"{path}: dataset '{name}' (sample weights) {problem}")
    return weights



def _lookup(fh: h5py.File, path: Path, name: str, key: str) -> Any:
    if name not in fh:
        found = ", ".join(sorted(fh.keys())) or "nothing"
        raise InputError(f"{key}: {path} has no dataset or group '{name}' (it holds: {found})")
    return fh[name]


def _read_X(fh: h5py.File, path: Path, name: str) -> Any:
    node = _lookup(fh, path, name, "data.X")
    if is_table(node):
        return read_table(node, path, name)
    if isinstance(node, h5py.Group):
        return _read_csr(node, path, name)
    if node.ndim != 2:
        raise InputError(f"{path}: dataset '{name}' must be 2-D (samples x features), got shape {node.shape}")
    if node.dtype.kind not in "biuf":
        raise InputError(f"{path}: dataset '{name}' must be numeric, got dtype {node.dtype}")
    return _read_shareable(node)


def _read_shareable(node: h5py.Dataset) -> np.ndarray:
    """The dataset's values in a node-shareable segment (the ranks of this node then map
    this very copy), or in private memory where shared memory has no room."""
    try:
        out = segment.empty(node.shape, node.dtype)
    except (MemoryError, OSError):
        return node[()]
    if out.size:
        node.read_direct(out)
    return out


def _read_csr(group: h5py.Group, path: Path, name: str) -> sp.csr_matrix:
    missing = [p for p in SPARSE_PARTS if p not in group]
    if missing or "shape" not in group.attrs:
        what = ", ".join(missing + ([] if "shape" in group.attrs else ["attribute 'shape'"]))
        raise InputError(f"{path}: group '{name}' is not a CSR matrix: missing {what}")
    data, indices, indptr = (group[p][()] for p in SPARSE_PARTS)
    shape = tuple(int(s) for s in group.attrs["shape"])
    if len(shape) != 2 or len(indptr) != shape[0] + 1 or len(indices) != len(data):
        raise InputError(
            f"{path}: group '{name}' is inconsistent: shape {shape}, indptr {len(indptr)}, "
            f"indices {len(indices)}, data {len(data)}"
        )
    problem = _csr_problem(data, indices, indptr, shape)
    if problem:
        raise InputError(f"{path}: group '{name}' is not a valid CSR matrix: {problem}")
    return sp.csr_matrix((data, indices, indptr), shape=shape)


def _csr_problem(data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, shape: tuple[int, ...]) -> str | None:
    """What is wrong with CSR parts (that would crash an estimator's C code later), or None."""
    if data.ndim != 1 or indices.ndim != 1 or indptr.ndim != 1:
        return "'data', 'indices' and 'indptr' must be 1-D"
    if data.dtype.kind not in "biuf":
        return f"'data' must be numeric, got dtype {data.dtype}"
    if indices.dtype.kind not in "iu" or indptr.dtype.kind not in "iu":
        return f"'indices' and 'indptr' must be integers, got {indices.dtype} and {indptr.dtype}"
    if indptr[0] != 0 or indptr[-1] != len(data) or np.any(np.diff(indptr) < 0):
        return "'indptr' must start at 0, never decrease and end at the number of stored values"
    if len(indices) and (indices.min() < 0 or indices.max() >= shape[1]):
        return f"'indices' must lie in [0, {shape[1]}) (the number of columns)"
    return None


def read_groups(path: str | os.PathLike[str], name: str, n_rows: int) -> np.ndarray:
    """A 1-D dataset of one group label (number or string) per row of X, for the splitter."""
    path = Path(path)
    with h5py.File(path, "r") as fh:
        groups = _read_y(fh, path, name, "data.groups")
    if groups.shape[0] != n_rows:
        raise InputError(f"{path}: dataset '{name}' (groups) has {groups.shape[0]} labels but X has {n_rows} rows")
    return groups


def _read_y(fh: h5py.File, path: Path, name: str, key: str = "data.y") -> np.ndarray:
    node = _lookup(fh, path, name, key)
    if not isinstance(node, h5py.Dataset) or node.ndim != 1:
        raise InputError(f"{path}: dataset '{name}' must be 1-D, got {getattr(node, 'shape', 'a group')}")
    if node.dtype.kind in "OSU" or h5py.check_string_dtype(node.dtype):
        return np.asarray(node.asstr()[()], dtype=str)
    if node.dtype.kind not in "biuf":
        raise InputError(f"{path}: dataset '{name}' must hold numbers or strings, got dtype {node.dtype}")
    return node[()]


def write(path: str | os.PathLike[str], X: Any, y: Any = None, x_name: str = "X", y_name: str = "y") -> Path:
    """Write X (dense, CSR, or a DataFrame: a table of named columns) and y; string labels
    become variable-length UTF-8."""
    path = Path(path)
    if hasattr(X, "columns") and hasattr(X, "dtypes"):
        check_frame(X, x_name)  # before the file is opened: a refused column leaves no file
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = h5py.File(path, "w")
    except OSError as exc:
        raise InputError(f"--out: cannot write {path}: {exc}") from None
    with fh:
        if hasattr(X, "columns") and hasattr(X, "dtypes"):  # a pandas DataFrame
            write_table(fh.create_group(x_name), X, x_name)
        elif sp.issparse(X):
            X = sp.csr_matrix(X)
            group = fh.create_group(x_name)
            for part in SPARSE_PARTS:
                group.create_dataset(part, data=getattr(X, part))
            group.attrs["shape"] = X.shape
        else:
            fh.create_dataset(x_name, data=np.asarray(X))
        if y is not None:
            y = np.asarray(y)
            if y.dtype.kind in "OU":
                fh.create_dataset(y_name, data=y.astype(str).astype(object), dtype=h5py.string_dtype())
            else:
                fh.create_dataset(y_name, data=y)
    return path
