"""Packing a search's data into buffers and back (what travels to the MPI ranks)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from mpisearch.data.buffers import Packer, Unpacker
from mpisearch.errors import InputError

pd = pytest.importorskip("pandas")


def roundtrip(*objects):
    packer = Packer()
    packed = [packer.pack(o, "X") for o in objects]
    unpacker = Unpacker()
    unpacker.add(packer.slots, [b.copy() for b in packer.buffers])
    return [unpacker.get(p) for p in packed], packer


def test_dataframe_keeps_columns_dtypes_categories_strings_and_missing_values():
    frame = pd.DataFrame({"f": [1.5, 2.5, np.nan], "i": np.array([1, 2, 3], dtype=np.int32),
                          "c": pd.Categorical(["a", "b", "a"], categories=["b", "a"], ordered=True),
                          "s": pd.Series(["x", None, "zz"], dtype=object, index=[10, 20, 30]),
                          "t": pd.array(["u", "v", np.nan], dtype="str")}, index=[10, 20, 30])
    (back,), _ = roundtrip(frame)
    pd.testing.assert_frame_equal(back, frame)
    assert back["s"].iloc[1] is None


def test_series_sparse_and_containers():
    series = pd.Series([3, 1, 2], name="target")
    csr = sp.random(5, 4, density=0.5, format="csr", random_state=0)
    (s, m, d), _ = roundtrip(series, csr, {"w": np.arange(3.0), "k": ("a", 1)})
    pd.testing.assert_series_equal(s, series)
    assert (m != csr).nnz == 0 and m.format == "csr"
    np.testing.assert_array_equal(d["w"], np.arange(3.0))
    assert d["k"] == ("a", 1)


def test_an_object_seen_twice_travels_once():
    X = np.arange(12.0).reshape(4, 3)
    (a, b), packer = roundtrip(X, {"again": X})
    assert len(packer.buffers) == 1
    assert b["again"] is a


@pytest.mark.parametrize("column, message", [
    ([object()] * 3, "X column 'bad' has dtype object holding object values"),
    (pd.array([1, None, 3], dtype="Int64"), "X column 'bad' has dtype Int64"),
])
def test_unshippable_column_is_named(column, message):
    frame = pd.DataFrame({"ok": [1.0, 2.0, 3.0], "bad": column})
    with pytest.raises(InputError, match=message):
        Packer().pack(frame, "X")
