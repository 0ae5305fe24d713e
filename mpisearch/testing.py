"""Estimators for simulations and benchmarks (importable by every rank).

They cost what their parameters say, not what the data says, so a search's
timing can be controlled exactly:

- :class:`SleepClassifier` / :class:`SleepRegressor`: ``fit`` sleeps ``duration``
  seconds (no CPU used, so many worker ranks can share a few cores). Search
  over ``duration`` to give every point its own cost; ``tag`` is ignored and
  only makes otherwise identical points distinct (e.g. many 20 ms tasks).
- :class:`NoopClassifier`: ``fit`` does nothing; for measuring the per-task
  overhead of the framework itself.
- :class:`SimulatedClassifier`: ``fit`` sleeps in proportion to the rows it
  gets and ``score`` returns ``quality`` less a term that shrinks with those
  rows: a stand-in for a real model when simulating successive halving with
  many ranks on few cores.
- :class:`CrashingClassifier`: a logistic regression whose ``fit`` first does
  what ``crash`` says (segfault, SIGKILL itself, ``sys.exit``, ``os._exit``,
  allocate greedily, stop its parent...): for testing crash isolation.

All predict a constant and score with plain numpy (accuracy / R^2), so that
``scoring=None`` costs a few microseconds; scikit-learn scorers such as
``scoring="accuracy"`` work too (through ``predict``).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.ensemble import RandomForestClassifier


def _check_duration(duration: Any) -> float:
    d = float(duration)
    if not np.isfinite(d) or d < 0:
        raise ValueError(f"duration must be a finite number of seconds >= 0, got {duration!r}")
    return d


class _ConstantClassifier(ClassifierMixin, BaseEstimator):
    """Predicts the first class seen in fit; scores by accuracy."""

    def _learn(self, y: Any) -> None:
        self.classes_ = np.unique(y) if y is not None else np.array([0])

    def predict(self, X: Any) -> np.ndarray:
        return np.full(len(X), self.classes_[0])

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        hit = np.asarray(y) == self.classes_[0]
        return float(np.average(hit, weights=sample_weight))


class SleepClassifier(_ConstantClassifier):
    """``fit`` sleeps ``duration`` seconds, then predicts a constant class."""

    def __init__(self, duration: float = 0.0, tag: Any = 0) -> None:
        self.duration = duration
        self.tag = tag

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> SleepClassifier:
        time.sleep(_check_duration(self.duration))
        self._learn(y)
        return self


class NoopClassifier(_ConstantClassifier):
    """``fit`` does (almost) nothing: the cost of a task is the framework's alone."""

    def __init__(self, tag: Any = 0) -> None:
        self.tag = tag

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> NoopClassifier:
        self._learn(y)
        return self


class SleepRegressor(RegressorMixin, BaseEstimator):
    """``fit`` sleeps ``duration`` seconds, then predicts the mean of y; scores by R^2."""

    def __init__(self, duration: float = 0.0, tag: Any = 0) -> None:
        self.duration = duration
        self.tag = tag

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> SleepRegressor:
        time.sleep(_check_duration(self.duration))
        self.mean_ = float(np.average(np.asarray(y, dtype=float), weights=sample_weight))
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.full(len(X), self.mean_)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        y = np.asarray(y, dtype=float)
        total = float(np.average((y - np.average(y, weights=sample_weight)) ** 2, weights=sample_weight))
        residual = float(np.average((y - self.mean_) ** 2, weights=sample_weight))
        if total == 0.0:
            return 1.0 if residual == 0.0 else 0.0  # as sklearn's r2_score (force_finite)
        return 1.0 - residual / total


class SimulatedClassifier(_ConstantClassifier):
    """``fit`` sleeps ``seconds`` per 1,000 training rows; ``score`` is ``quality - 1/sqrt(rows)``
    plus a small deterministic per-fold offset (from the test labels), so points rank by
    ``quality`` once they have enough rows, as real models roughly do."""

    def __init__(self, quality: float = 0.5, seconds: float = 0.1, tag: Any = 0) -> None:
        self.quality = quality
        self.seconds = seconds
        self.tag = tag

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> SimulatedClassifier:
        self.rows_ = len(X)
        time.sleep(_check_duration(self.seconds) * self.rows_ / 1000)
        self._learn(y)
        return self

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        offset = 0.01 * (int(np.asarray(y, dtype=np.int64).sum()) % 7) / 7
        return float(self.quality - 1 / np.sqrt(max(self.rows_, 1)) + offset)


CRASHES = ("none", "segfault", "sigkill", "exit", "os_exit", "interrupt", "greedy", "stop_parent", "hang")
HANG_SECONDS = 3600.0  # how long a "hang" sleeps: longer than any test's task_timeout


def crash_now(crash: str, code: int = 4, greedy_bytes: int = 1 << 30) -> Any:
    """Do what ``crash`` says (see :class:`CrashingClassifier`); what "greedy" allocated, else None."""
    if crash not in CRASHES:
        raise ValueError(f"crash must be one of {CRASHES}, got {crash!r}")
    if crash == "segfault":
        ctypes.string_at(0)
    elif crash == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif crash == "exit":
        sys.exit(code)
    elif crash == "os_exit":
        os._exit(code)
    elif crash == "interrupt":
        raise KeyboardInterrupt("CrashingClassifier")
    elif crash == "greedy":
        return np.empty(greedy_bytes, dtype=np.uint8)
    elif crash == "stop_parent":
        os.kill(os.getppid(), signal.SIGSTOP)
    elif crash == "hang":
        time.sleep(HANG_SECONDS)
    return None


class CrashingClassifier(ClassifierMixin, BaseEstimator):
    """``LogisticRegression(C=C)`` whose ``fit`` first does what ``crash`` says:

    ``"none"``: nothing; ``"segfault"``: reads address 0 (SIGSEGV); ``"sigkill"``: sends
    itself SIGKILL (what the OOM killer does); ``"exit"``: ``sys.exit(code)``;
    ``"os_exit"``: ``os._exit(code)``; ``"interrupt"``: raises KeyboardInterrupt;
    ``"greedy"``: allocates ``greedy_bytes`` (not touched, so without a memory
    limit it costs no memory); ``"stop_parent"``: sends SIGSTOP to its parent
    process (under crash isolation: the worker rank, which then stops answering);
    ``"hang"``: sleeps HANG_SECONDS.
    """

    def __init__(self, crash: str = "none", C: float = 1.0, code: int = 4, greedy_bytes: int = 1 << 30) -> None:
        self.crash = crash
        self.C = C
        self.code = code
        self.greedy_bytes = greedy_bytes

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> CrashingClassifier:
        from sklearn.linear_model import LogisticRegression

        hoard = crash_now(self.crash, self.code, self.greedy_bytes)
        if hoard is not None:
            self.hoard_ = hoard
        self.model_ = LogisticRegression(C=self.C, max_iter=1000).fit(X, y, sample_weight=sample_weight)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, X: Any) -> np.ndarray:
        return self.model_.predict(X)


class CrashingForest(RandomForestClassifier):
    """``RandomForestClassifier`` whose ``fit`` first does what ``crash`` says (see
    :class:`CrashingClassifier`) when ``n_estimators == crash_at``; otherwise it fits as
    RandomForestClassifier does, also when grown with ``warm_start``. Not in the registry of
    chainable estimators (mpisearch.reuse.growth): tests that chain it add it there."""

    def __init__(self, n_estimators: int = 100, *, crash: str = "none", crash_at: int | None = None,
                 max_features: Any = "sqrt", random_state: Any = None, warm_start: bool = False,
                 greedy_bytes: int = 1 << 30) -> None:
        super().__init__(n_estimators=n_estimators, max_features=max_features, random_state=random_state,
                         warm_start=warm_start)
        self.crash = crash
        self.crash_at = crash_at
        self.greedy_bytes = greedy_bytes

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> CrashingForest:
        if self.n_estimators == self.crash_at:
            crash_now(self.crash, greedy_bytes=self.greedy_bytes)
        return super().fit(X, y, sample_weight=sample_weight)
