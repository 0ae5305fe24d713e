"""The fingerprint of a search: a hash of what makes two runs' journal entries comparable.

The estimator, space, cv and scoring (as their repr) and every byte of the data:
X (dense, or a CSR matrix's data, indices and indptr), y, the sample weights and
the groups (with weights, a mark that the test scores are weighted: journals of
earlier versions, which weighted only the fits, are not resumed). ``--resume``
refuses a run whose fingerprint differs from the one in run.json, so a journal is
never reused with changed data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import numpy as np

# Bytes handed to the hash at a time: a buffer view, never a copy of a contiguous array.
# SHA-256 (with the CPU's SHA instructions) hashed 600 MB in 0.45 s of CPU (2.1 s of
# wall time on a 2-core machine at load 16), faster than BLAKE2b (0.60 s of CPU) there;
# chunks of 1 MiB or 16 MiB made no difference. The data is hashed once per run, on rank 0.
HASH_CHUNK_BYTES = 16 << 20


def fingerprint(parts: dict[str, Any], X: Any, y: Any, sample_weight: Any = None, groups: Any = None) -> str:
    """SHA-256 (hex) of ``parts`` (the search's identity) and the whole of the data."""
    h = hashlib.sha256()
    arrays = {"X": _components(X), "y": [y], "sample_weight": [sample_weight], "groups": [groups]}
    described = {k: repr(getattr(v, "subspaces", v)) for k, v in parts.items()}
    described["X_shape"] = list(X.shape)
    if _is_frame(X):
        described["X_columns"] = [[str(c), str(X[c].dtype)] for c in X.columns]
    if sample_weight is not None:  # the test scores are weighted too: a journal from before that is not reused
        described["weighted_scores"] = True
    for name, items in arrays.items():
        described[name] = [_describe(a) for a in items]
    h.update(json.dumps(described, sort_keys=True).encode())
    for items in arrays.values():
        for arr in items:
            for chunk in _chunks(arr):
                h.update(chunk)
    return h.hexdigest()


def _components(X: Any) -> list[Any]:
    """A CSR matrix as its three arrays, a DataFrame as its columns (categoricals as their codes
    and categories), a dense array as itself."""
    if _is_frame(X):
        return [a for c in X.columns for a in _column_arrays(X[c])]
    if hasattr(X, "indptr"):
        return [X.data, X.indices, X.indptr]
    return [X]


def _is_frame(X: Any) -> bool:
    return hasattr(X, "columns") and hasattr(X, "dtypes")


def _column_arrays(col: Any) -> list[Any]:
    if hasattr(col, "cat"):
        return [col.cat.codes.to_numpy(), np.asarray(col.cat.categories.astype(str))]
    values = col.to_numpy()
    return [values if values.dtype.kind in "biuf" else col.astype(str).to_numpy(dtype=str)]


def _describe(arr: Any) -> Any:
    if arr is None:
        return None
    arr = _as_array(arr)
    return [list(arr.shape), arr.dtype.str]


def _as_array(arr: Any) -> np.ndarray:
    arr = np.asarray(arr)
    return arr.astype(str) if arr.dtype == object else arr  # object labels hashed as their text


def _chunks(arr: Any) -> Iterator[memoryview]:
    """The bytes of ``arr`` in C order, HASH_CHUNK_BYTES at a time."""
    if arr is None:
        return
    arr = _as_array(arr)
    if arr.ndim > 1 and not arr.flags.c_contiguous:  # a few rows at a time, never a whole copy
        rows = max(1, HASH_CHUNK_BYTES // max(1, arr[0].nbytes))
        for start in range(0, len(arr), rows):
            yield from _chunks(np.ascontiguousarray(arr[start:start + rows]))
        return
    flat = memoryview(np.ascontiguousarray(arr).reshape(-1).view(np.uint8))
    for start in range(0, len(flat), HASH_CHUNK_BYTES):
        yield flat[start:start + HASH_CHUNK_BYTES]
