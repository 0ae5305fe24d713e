"""MPISearchCV: scikit-learn's SearchCV API, evaluated on MPI ranks."""

from __future__ import annotations

from copy import deepcopy
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted

from .lifecycle import RunOptions, SearchRun
from .limits import parse_memory
from .plan import check_resident_folds
from .racing import DEFAULT_CONFIDENCE
from .runtime import resolve_comm
from .scoring import check_refit, is_multimetric
from .space import SearchSpace
from .spec import DEFAULT_PREFIX_CACHE_BYTES, SearchSpec
from .types import Outcome


class MPISearchCV(MetaEstimatorMixin, BaseEstimator):
    """Hyperparameter search over ``space`` with cross-validation, on MPI ranks.

    SPMD: under ``mpiexec`` every rank calls :meth:`fit` (ranks other than 0
    may pass ``X=None, y=None``); rank 0 coordinates, the others evaluate
    (point, fold) tasks. Without a launcher everything runs in this process.
    Afterwards every rank has ``cv_results_``, ``best_params_``,
    ``best_score_`` and ``best_index_``; ``best_estimator_`` is on rank 0.

    ``scoring``, ``refit`` and ``return_train_score`` follow scikit-learn's rules: with
    several metrics ``refit`` is False (no ``best_*`` then), a metric name or a callable
    choosing the row of ``cv_results_`` (no ``best_score_`` then), else ValueError;
    ``fit(..., sample_weight=w)`` weights the fits and the scores of the scorers that take
    weights, as scikit-learn 1.9 does.

    ``space`` takes what GridSearchCV's ``param_grid`` and
    RandomizedSearchCV's ``param_distributions`` take, plus ``Real``,
    ``Integer`` and ``Categorical``.

    ``strategy="halving"`` runs successive halving, options in ``halving``
    (a dict: ``resource``, ``factor``, ``min_resources``, ``max_resources``,
    ``mode`` "async"/"sync", ``candidates`` "grid"/"random", ``n_candidates``,
    ``subsample_test``, ``aggressive_elimination``; see
    :class:`mpisearch.strategies.HalvingOptions`); ``cv_results_`` then has
    ``iter`` and ``n_resources``. ``racing=True`` stops a point between its
    folds once it cannot beat the best (``stopped_at_fold`` in ``cv_results_``).

    ``strategy`` may also be ``"package.module:Class"``: a Strategy subclass or an
    Optuna sampler class. ``batch``: points in flight of ``bayes`` and such
    strategies (default 4, whatever the number of ranks).

    ``warm_start_chains`` and ``prefix_cache`` (on by default; exact: the same
    ``cv_results_`` scores) let a worker grow a forest or boosting model through a
    grid over its size, and fit a pipeline's shared prefix once per fold
    (``prefix_cache_memory``: bytes of transformed parts each worker keeps, e.g.
    "256MiB"); see mpisearch.reuse. ``run_info_["reused"]`` says what was saved.
    ``batch_short_tasks`` (on by default; exact: each point is fitted afresh) sends
    several short tasks of one fold as one when rank 0's own cost per task would
    make it the bottleneck (many workers, short fits); ``run_info_["batches"]``
    counts them.

    ``out`` (a directory) keeps the journal and the result files. A directory holding an
    earlier run is used only with ``resume=True`` (the same search and data: skip its finished
    tasks) or ``force=True`` (move the earlier run to ``out/earlier-<time>/`` and start afresh;
    with ``resume``: resume even though the search or data changed); else fit raises
    :class:`~mpisearch.errors.InputError`. Two searches never share an ``out`` at once.
    """

    def __init__(self, estimator: Any, space: Any, strategy: str = "grid", n_iter: int | None = None,
                 cv: Any = 5, scoring: Any = None, refit: Any = True, random_state: int | None = None,
                 error_score: Any = np.nan, max_time: float | None = None, out: Any = None,
                 comm: Any = None, resume: bool = False, task_timeout: float | None = None,
                 verbose: int = 0, shared_memory: bool = True, racing: bool = False,
                 racing_confidence: float = DEFAULT_CONFIDENCE, halving: dict[str, Any] | None = None,
                 batch: int | None = None, force: bool = False, shared_folds: bool = True,
                 task_memory: int | str | None = None, return_train_score: bool = False,
                 warm_start_chains: bool = True, prefix_cache: bool = True,
                 prefix_cache_memory: int | str = DEFAULT_PREFIX_CACHE_BYTES,
                 resident_folds: int | None = None, batch_short_tasks: bool = True) -> None:
        self.estimator = estimator
        self.space = space
        self.strategy = strategy
        self.n_iter = n_iter
        self.cv = cv
        self.scoring = scoring
        self.refit = refit
        self.random_state = random_state
        self.error_score = error_score
        self.max_time = max_time
        self.out = out
        self.comm = comm
        self.resume = resume
        self.task_timeout = task_timeout
        self.verbose = verbose
        self.shared_memory = shared_memory
        self.racing = racing
        self.racing_confidence = racing_confidence
        self.halving = halving
        self.batch = batch
        self.force = force
        self.shared_folds = shared_folds
        self.task_memory = task_memory
        self.return_train_score = return_train_score
        self.warm_start_chains = warm_start_chains
        self.prefix_cache = prefix_cache
        self.prefix_cache_memory = prefix_cache_memory
        self.resident_folds = resident_folds
        self.batch_short_tasks = batch_short_tasks

    def _spec(self) -> SearchSpec:
        return SearchSpec(
            estimator=self.estimator, space=SearchSpace(self.space), strategy=self.strategy,
            n_iter=self.n_iter, random_state=self.random_state, scoring=self.scoring,
            refit=check_refit(self.scoring, self.refit),
            error_score=self.error_score, max_time=self.max_time, cv=self.cv, task_timeout=self.task_timeout,
            task_memory=parse_memory(self.task_memory, "task_memory"),
            shared_memory=self.shared_memory, shared_folds=self.shared_folds, halving=self.halving, racing=self.racing,
            resident_folds=check_resident_folds(self.resident_folds),
            racing_confidence=self.racing_confidence, batch=self.batch,
            return_train_score=self.return_train_score,
            warm_start_chains=self.warm_start_chains, prefix_cache=self.prefix_cache,
            prefix_cache_memory=parse_memory(self.prefix_cache_memory, "prefix_cache_memory"),
            batch_short_tasks=self.batch_short_tasks,
        )

    def fit(self, X: Any, y: Any = None, groups: Any = None, sample_weight: Any = None) -> MPISearchCV:
        """Search (SPMD under MPI: every rank calls fit; only rank 0 needs X, y, sample_weight)."""
        options = RunOptions(out=None if self.out is None else Path(self.out), resume=self.resume,
                             force=self.force, verbosity=self.verbose)
        result = SearchRun(self._spec(), resolve_comm(self.comm), options).run(X, y, groups, sample_weight)
        self._store(result.outcome)
        if result.best_estimator is not None:
            self.best_estimator_ = result.best_estimator
            self.refit_time_ = result.outcome.info["refit_s"]
        if result.refit_error is not None:  # as scikit-learn: the refit's own error, the search's results kept
            raise result.refit_error
        return self

    def _store(self, outcome: Outcome) -> None:
        """The fitted attributes, as scikit-learn sets them: with several metrics and
        ``refit=False`` no ``best_*``; with a callable ``refit`` no ``best_score_``."""
        self.cv_results_ = outcome.cv_results
        self.n_splits_ = outcome.n_splits
        self.multimetric_ = is_multimetric(self.scoring)
        self.scorer_names_ = outcome.metrics
        self.refit_metric_ = outcome.rank_metric
        self.run_info_ = outcome.info
        if outcome.best_index is not None and (self.refit is not False or not self.multimetric_):
            self.best_index_ = outcome.best_index
            self.best_params_ = outcome.best_params
            if not callable(self.refit):
                self.best_score_ = outcome.best_score

    # -- delegation to the refitted best estimator, as scikit-learn's SearchCV -------
    def _best(self) -> Any:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_

    def predict(self, X: Any) -> Any:
        return self._best().predict(X)

    def predict_proba(self, X: Any) -> Any:
        return self._best().predict_proba(X)

    def decision_function(self, X: Any) -> Any:
        return self._best().decision_function(X)

    def transform(self, X: Any) -> Any:
        return self._best().transform(X)

    def score(self, X: Any, y: Any = None) -> float:
        from .scoring import make_scorers

        scorer = make_scorers(self.scoring, self.estimator)[self.refit_metric_]
        return scorer(self._best(), X, y)

    @property
    def classes_(self) -> Any:
        return self._best().classes_

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        sub = get_tags(self.estimator)
        tags.estimator_type = sub.estimator_type
        tags.classifier_tags = deepcopy(sub.classifier_tags)
        tags.regressor_tags = deepcopy(sub.regressor_tags)
        tags.input_tags.sparse = sub.input_tags.sparse
        return tags
