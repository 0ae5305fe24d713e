"""What defines a search, apart from the data: the one description the CLI and the API both build."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .limits import TaskLimits
from .racing import DEFAULT_CONFIDENCE
from .space import SearchSpace

# Seconds running tasks may take to finish after a stop signal (search.grace).
DEFAULT_GRACE_SECONDS = 60.0
# Bytes of transformed train parts each worker keeps for pipeline prefixes
# (search.prefix_cache_memory, see mpisearch.reuse.prefix). One fold's transformed train
# part of 20,000 x 40 float64 data is 5 MB: the default keeps dozens of them and stays
# small next to the data and the folds a node holds.
DEFAULT_PREFIX_CACHE_BYTES = 256 * 2**20


@dataclass
class SearchSpec:
    """Everything that defines a search, apart from the data."""

    estimator: Any
    space: SearchSpace
    strategy: str = "grid"
    n_iter: int | None = None
    batch: int | None = None  # points in flight of bayes / open strategies (None: DEFAULT_BATCH)
    random_state: int | None = None
    scoring: Any = None
    refit: Any = True  # True, False, a metric name, or a callable picking the best row of cv_results_
    error_score: Any = np.nan
    max_time: float | None = None
    cv: Any = 5
    grace: float = DEFAULT_GRACE_SECONDS
    shared_memory: bool = True  # one read-only copy of the data per node (MPI-3 shared window)
    shared_folds: bool = True  # with shared_memory: each fold's parts built once per node (data.foldstore)
    resident_folds: int | None = None  # folds a node holds at most (None: 2; fold racing: as its order needs)
    task_timeout: float | None = None  # seconds; a longer fit is killed and recorded as failed
    task_memory: int | None = None  # bytes a task may allocate in its fit process (mpisearch.limits)
    isolate: bool = False  # without MPI too, fits run in a fit process (mpisearch.isolation); MPI workers always
    halving: Mapping[str, Any] | None = None  # options of strategy "halving" (see HalvingOptions)
    racing: bool = False  # stop a point between folds once it cannot beat the best (mpisearch.racing)
    racing_confidence: float = DEFAULT_CONFIDENCE
    return_train_score: bool = False  # tasks also score their train part: cv_results_ gets train_<metric> columns
    warm_start_chains: bool = True  # grow ensembles through a grid over their size (mpisearch.reuse)
    prefix_cache: bool = True  # fit a pipeline's shared prefix once per fold (mpisearch.reuse)
    prefix_cache_memory: int = DEFAULT_PREFIX_CACHE_BYTES  # per worker
    batch_short_tasks: bool = True  # several short tasks per message when rank 0 is the bottleneck (batching)

    def identity(self) -> dict[str, Any]:
        """What makes journal entries of two runs comparable (hashed into run.json)."""
        parts = {"estimator": self.estimator, "space": self.space, "cv": self.cv, "scoring": self.scoring}
        if self.strategy == "halving":  # subsamples depend on these
            parts["halving"] = {**dict(self.halving or {}), "random_state": self.random_state}
        return parts

    @property
    def task_limits(self) -> TaskLimits:
        return TaskLimits(self.task_timeout, self.task_memory)
