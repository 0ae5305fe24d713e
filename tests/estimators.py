"""Test estimators, importable by every rank (tests/ is on sys.path under pytest)."""

from __future__ import annotations

import time

from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression


class FailingClassifier(ClassifierMixin, BaseEstimator):
    """LogisticRegression that raises in fit when ``fail`` is True."""

    def __init__(self, C=1.0, fail=False):
        self.C = C
        self.fail = fail

    def fit(self, X, y):
        if self.fail:
            raise ValueError("this point always fails")
        self.model_ = LogisticRegression(C=self.C, max_iter=500).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, X):
        return self.model_.predict(X)


class SleepyClassifier(FailingClassifier):
    """Sleeps ``delay`` seconds in fit: simulated cost without using a core."""

    def __init__(self, C=1.0, fail=False, delay=0.0):
        super().__init__(C=C, fail=fail)
        self.delay = delay

    def fit(self, X, y):
        time.sleep(self.delay)
        return super().fit(X, y)


def _explode(*args):
    raise RuntimeError("cannot be rebuilt on a worker rank")


class BrokenOnWorkers(FailingClassifier):
    """Pickles on rank 0 but cannot be unpickled: a crash on every worker rank."""

    def __reduce__(self):
        return (_explode, ())


class FailsOnAllRows(FailingClassifier):
    """Fits on a fold's training part, raises on more rows (the refit on all the data)."""

    def __init__(self, C=1.0, fail=False, max_rows=100):
        super().__init__(C=C, fail=fail)
        self.max_rows = max_rows

    def fit(self, X, y):
        if len(X) > self.max_rows:
            raise MemoryError(f"{len(X)} rows are more than this estimator can take")
        return super().fit(X, y)
