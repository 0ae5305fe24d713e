"""Drop-ins for scikit-learn's search classes, with their fits on MPI ranks.

Each class is scikit-learn's own class with one change: the evaluation of
candidates. scikit-learn's ``fit`` keeps owning validation, splitting, scoring
rules, ``refit`` (callable, multi-metric), callbacks, metadata routing, the
fitted attributes and the methods; the (candidate, split) tasks it would hand to
joblib are gathered (:mod:`.collect`) and run by mpisearch: under ``mpiexec`` on
ranks 1..N-1 (:mod:`.farm`), else in this process (``n_jobs`` honoured there, as
scikit-learn does). Each task is scikit-learn's ``_fit_and_score`` itself, so
scores, train scores, fit parameters, sample weights, ``error_score`` and
warnings are scikit-learn's.

SPMD: under ``mpiexec`` every rank calls ``fit`` (ranks other than 0 may pass
``X=None``); afterwards every rank holds rank 0's fitted attributes, including
``best_estimator_``, or raises rank 0's error.
"""

from __future__ import annotations

from typing import Any

from joblib import parallel_config
from sklearn.model_selection import GridSearchCV as _GridSearchCV
from sklearn.model_selection import RandomizedSearchCV as _RandomizedSearchCV
from sklearn.model_selection._search_successive_halving import HalvingGridSearchCV as _HalvingGridSearchCV
from sklearn.model_selection._search_successive_halving import HalvingRandomSearchCV as _HalvingRandomSearchCV

from .collect import CollectingBackend, Runner
from .runners import LocalRunner
from .where import current_comm, use_comm


class _OnMPI:
    """What the four drop-in classes add to scikit-learn's: where the tasks run."""

    def fit(self, X: Any, y: Any = None, **params: Any) -> Any:
        """scikit-learn's ``fit``; SPMD under ``mpiexec`` (every rank calls it, only rank 0 needs X)."""
        comm = current_comm()
        if comm is None:
            return self._fit_with(LocalRunner(self.n_jobs, self.pre_dispatch), X, y, params)
        from .farm import MPIRunner, serve

        if comm.Get_rank() != 0:
            for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
                delattr(self, name)  # a failed fit leaves no attributes of an earlier one
            vars(self).update(serve(comm))
            return self
        return self._fit_root(MPIRunner(comm), X, y, params)

    def _fit_root(self, runner: Any, X: Any, y: Any, params: dict[str, Any]) -> Any:
        from mpi4py import MPI

        from .farm import shared_warnings

        with shared_warnings() as caught:  # the other ranks get rank 0's warnings as well
            try:
                with use_comm(MPI.COMM_SELF):  # searches nested in this one (refit, refit callable) run here
                    self._fit_with(runner, X, y, params)
            except BaseException as exc:
                runner.finish(error=exc, warned=caught)
                raise
            runner.finish(state={k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")},
                          warned=caught)
        return self

    def _fit_with(self, runner: Runner, X: Any, y: Any, params: dict[str, Any]) -> Any:
        # scikit-learn's fit creates its Parallel before calling _run_search, which ends
        # this block: the search's Parallel keeps the collecting backend, while the refit
        # and any joblib call of the estimators see the user's joblib settings.
        self._collecting = parallel_config(backend=CollectingBackend(runner))
        self._collecting.__enter__()
        try:
            return super().fit(X, y, **params)  # type: ignore[misc]
        finally:
            self._stop_collecting()

    def _stop_collecting(self) -> None:
        block = vars(self).pop("_collecting", None)
        if block is not None:
            block.__exit__(None, None, None)

    def _run_search(self, evaluate_candidates: Any, *, callback_ctx: Any = None) -> Any:
        self._stop_collecting()
        return super()._run_search(evaluate_candidates, callback_ctx=callback_ctx)  # type: ignore[misc]


_NOTE = """

    mpisearch's drop-in for scikit-learn's class of the same name (same
    parameters, attributes, methods and results). Under ``mpiexec`` every rank
    calls ``fit`` and the fits run on ranks 1..N-1; ``n_jobs`` and
    ``pre_dispatch`` are then not needed (ignored). Without a launcher the fits
    run in this process, on ``n_jobs`` joblib workers as in scikit-learn.
    See :mod:`mpisearch.dropin.searchcv`.
"""


class GridSearchCV(_OnMPI, _GridSearchCV):
    __doc__ = "Exhaustive search over a parameter grid (scikit-learn's GridSearchCV)." + _NOTE


class RandomizedSearchCV(_OnMPI, _RandomizedSearchCV):
    __doc__ = "Randomized search on hyper parameters (scikit-learn's RandomizedSearchCV)." + _NOTE


class HalvingGridSearchCV(_OnMPI, _HalvingGridSearchCV):
    __doc__ = "Successive halving over a parameter grid (scikit-learn's HalvingGridSearchCV)." + _NOTE


class HalvingRandomSearchCV(_OnMPI, _HalvingRandomSearchCV):
    __doc__ = "Successive halving over random candidates (scikit-learn's HalvingRandomSearchCV)." + _NOTE
