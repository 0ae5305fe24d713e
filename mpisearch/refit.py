"""The refit: the best point fitted on all the data, on rank 0, once every worker is idle."""

from __future__ import annotations

import os
import time
import warnings
from collections import Counter
from typing import Any

from sklearn.base import clone


class RefitWarning(UserWarning):
    """Summary of a warning the refit raised (each distinct warning once, with its count)."""


def refit(estimator: Any, params: dict[str, Any], searched: list[str], X: Any, y: Any,
          sample_weight: Any = None) -> tuple[Any, float]:
    """``clone(estimator).set_params(**params)`` fitted on X, y; returns (estimator, seconds)."""
    est = clone(estimator).set_params(**clone(params, safe=False))
    fit_params = {} if sample_weight is None else {"sample_weight": sample_weight}
    spread = idle_core_params(est, searched)
    start = time.perf_counter()
    est.set_params(**spread)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if spread:  # our n_jobs, not the user's: hide "n_jobs has no effect" deprecations
            warnings.filterwarnings("ignore", message=".*n_jobs.*", category=FutureWarning)
        est.fit(X, **fit_params) if y is None else est.fit(X, y, **fit_params)
    est.set_params(**dict.fromkeys(spread))  # back to the user's n_jobs=None
    summarise(caught)
    return est, time.perf_counter() - start


def summarise(caught: list[warnings.WarningMessage]) -> None:
    """One RefitWarning per distinct warning (category and first line), as the fits' are summarised."""
    counts = Counter(f"{w.category.__name__}: {(str(w.message).strip().splitlines() or [''])[0]}" for w in caught)
    for text, n in counts.most_common():
        warnings.warn(f"the refit warned{f' {n} times' if n > 1 else ''}: {text}", RefitWarning, stacklevel=3)


def idle_core_params(estimator: Any, searched: list[str]) -> dict[str, int]:
    """``n_jobs`` parameters left at None and not searched, set to this node's cores.

    By the time of the refit every worker is idle, so the refit may use the
    whole node; the fitted model is the same (scikit-learn's parallel fits are
    deterministic) and n_jobs is put back to None afterwards."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if cores < 2:
        return {}
    params = estimator.get_params(deep=True)
    return {k: cores for k, v in params.items()
            if (k == "n_jobs" or k.endswith("__n_jobs")) and v is None and k not in searched}
