"""Rank 0's validation and set-up of a search: data, folds, scorers, strategy and result table.

Every check of the user's input that needs the data happens here, before any
worker is told to start, so bad input ends the job with one line and no work lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import is_classifier

from .cv import make_folds
from .data.buffers import check_columns, is_frame
from .data.dataset import Dataset, weight_problem
from .data.foldstore import RESIDENT_FOLDS
from .errors import InputError, did_you_mean
from .racing import check_confidence
from .results import ResultTable
from .scoring import Scorers, make_scorers, refit_metric, warn_unweighted
from .space import SearchSpace
from .spec import SearchSpec
from .strategies import DataFacts, Strategy, make_strategy


@dataclass(frozen=True)
class Plan:
    """What rank 0 has once the input is checked: everything a search needs to start."""

    dataset: Dataset
    table: ResultTable
    strategy: Strategy
    scorers: Scorers
    rank_metric: str  # the metric that ranks points and picks the best (refit's, or the only one)


def prepare_data(X: Any, y: Any) -> tuple[Any, np.ndarray | None]:
    """Arrays as every rank will hold them (numpy or CSR; strings as fixed width; a pandas
    DataFrame stays one, its columns checked: each must travel as a buffer)."""
    if X is None:
        raise InputError("X is None on rank 0; rank 0 must pass the data")
    if is_frame(X):
        check_columns(X, "X")
    else:
        X = sp.csr_matrix(X) if sp.issparse(X) else np.asarray(X)
    if X.ndim != 2:
        raise InputError(f"X must be 2-D, got shape {X.shape}")
    if y is None:
        return X, None
    y = np.asarray(y)
    if y.dtype == object:
        y = y.astype(str)
    if len(y) != X.shape[0]:
        raise InputError(f"X and y have different lengths: X has {X.shape[0]} rows, y has {len(y)}")
    return X, y


def check_weights(sample_weight: Any, n_rows: int) -> np.ndarray | None:
    """Sample weights as float64, one per row, none NaN or infinite."""
    if sample_weight is None:
        return None
    sample_weight = np.asarray(sample_weight, dtype=np.float64)
    if sample_weight.shape != (n_rows,):
        raise InputError(f"sample_weight must have one value per row of X ({n_rows}), "
                         f"got shape {sample_weight.shape}")
    problem = weight_problem(sample_weight)
    if problem:
        raise InputError(f"sample_weight {problem}")
    return sample_weight


def check_params(estimator: Any, space: SearchSpace) -> None:
    """Every searched name must be a parameter of the estimator."""
    valid = estimator.get_params(deep=True)
    for name in space.names:
        if name not in valid:
            hint = did_you_mean(name, valid)
            raise InputError(
                f"space.{name}: '{name}' is not a parameter of {type(estimator).__name__}{hint}; "
                f"valid parameters: {', '.join(sorted(valid))}"
            )


def check_resident_folds(value: Any) -> int | None:
    """MPISearchCV's ``resident_folds``: None or a positive integer."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1):
        raise InputError(f"resident_folds: expected a positive integer (folds a node holds at once) or None, "
                         f"got {value!r}")
    return None if value is None else int(value)


def _resident_folds(spec: SearchSpec) -> int | None:
    """Folds a node's fold store holds at most: the setting; by default RESIDENT_FOLDS, or, for
    fold racing (an order that is not fold-major), as many as its order needs (None)."""
    if spec.resident_folds is not None:
        return spec.resident_folds
    return None if spec.racing else RESIDENT_FOLDS


def make_plan(spec: SearchSpec, X: Any, y: Any, groups: Any = None, sample_weight: Any = None) -> Plan:
    """Check the input and set the search up (rank 0 only); raises InputError on bad input."""
    X, y = prepare_data(X, y)
    sample_weight = check_weights(sample_weight, X.shape[0])
    check_params(spec.estimator, spec.space)
    if spec.racing:
        check_confidence(spec.racing_confidence)
    scorers = make_scorers(spec.scoring, spec.estimator, train=spec.return_train_score)
    if sample_weight is not None:
        warn_unweighted(scorers)
    metric = refit_metric(scorers, spec.refit)
    if spec.strategy != "halving":  # its errors come before the folds' (halving needs the folds)
        strategy = make_strategy(spec.strategy, spec.space, spec.n_iter, spec.random_state, racing=spec.racing,
                                 batch=spec.batch)
    try:
        folds = make_folds(spec.cv, spec.estimator, X, y, groups)
    except ValueError as exc:
        raise InputError(f"cv: {exc}") from None
    if spec.strategy == "halving":
        n_classes = len(np.unique(y)) if y is not None and is_classifier(spec.estimator) else None
        facts = DataFacts(X.shape[0], len(folds), n_classes)
        strategy = make_strategy(spec.strategy, spec.space, spec.n_iter, spec.random_state, spec.halving,
                                 spec.estimator, facts, batch=spec.batch)
    table = ResultTable(list(scorers), len(folds), spec.error_score, racing=spec.racing,
                        train_scores=spec.return_train_score)
    dataset = Dataset(X, y, folds, sample_weight, shared_folds=spec.shared_folds,
                      resident_folds=_resident_folds(spec))
    return Plan(dataset, table, strategy, scorers, metric)
