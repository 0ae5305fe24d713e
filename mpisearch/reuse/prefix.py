"""A worker's cache of fitted pipeline prefixes and their transformed train parts.

Keyed by (fold, subsample, prefix parameters); least recently used entries leave first
once the transformed parts held pass the budget (``search.prefix_cache_memory``). An
entry larger than the whole budget is not kept. Lives in the process that fits (a
worker's fit process), so it survives from one task to the next but not a crash.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..types import Subsample
from .bundles import Key


@dataclass(frozen=True)
class PrefixKey:
    fold: int
    subsample: Subsample | None
    params: Key


@dataclass(frozen=True)
class FittedPrefix:
    """A fitted prefix: its (name, step) pairs, the transformed train part, what it cost."""

    steps: list[tuple[str, Any]]
    X_train: Any
    fit_time: float

    @property
    def nbytes(self) -> int:
        X = self.X_train
        if sp.issparse(X):
            return int(sum(a.nbytes for a in (X.data, getattr(X, "indices", np.empty(0)), getattr(X, "indptr",
                                                                                                     np.empty(0)))))
        return int(getattr(X, "nbytes", 0))


class PrefixCache:
    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.held = 0
        self._entries: OrderedDict[PrefixKey, FittedPrefix] = OrderedDict()

    def get(self, key: PrefixKey) -> FittedPrefix | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: PrefixKey, entry: FittedPrefix) -> None:
        size = entry.nbytes
        if size > self.budget or key in self._entries:
            return
        while self._entries and self.held + size > self.budget:
            _, old = self._entries.popitem(last=False)
            self.held -= old.nbytes
        self._entries[key] = entry
        self.held += size

    def __len__(self) -> int:
        return len(self._entries)
