"""One search from start to finish, the same for ``mpisearch run`` and :class:`MPISearchCV`.

:class:`SearchRun` owns the lifecycle on rank 0: the output directory (data
fingerprint, resume, journal), stop signals, the search itself, the refit and
the output files with the run's status. Worker ranks only serve tasks
(:func:`mpisearch.engine.serve_search`). Callers differ only in what they do
with a failure: the CLI prints one line, MPISearchCV raises as scikit-learn does.
"""

from __future__ import annotations

import os
import signal
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import engine
from .atomic import write_text
from .control import RunControl, StopRequest
from .errors import ExitCode, OutputError, SearchFailedError
from .failures import write_errors
from .files import ERRORS, JOURNAL
from .fingerprint import fingerprint
from .journal import Journal
from .outdir import OutDir
from .output import write_outputs
from .plan import prepare_data
from .progress import Progress
from .refit import refit
from .spec import SearchSpec
from .types import Outcome, RunStatus

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)  # what Slurm and Kubernetes send before killing


@dataclass(frozen=True)
class RunOptions:
    """How a search is run and kept, apart from what it searches."""

    out: Path | None = None  # output directory: journal, cv_results.csv, best.json, run.json, ...
    resume: bool = False  # skip the tasks the journal in ``out`` already holds
    # without resume: move an earlier run in ``out`` aside (earlier-<time>/) and start afresh;
    # with resume: resume even if the config or data changed
    force: bool = False
    verbosity: int = 0  # 0 quiet, 1 progress, 2 also every finished point
    signals: bool = False  # SIGTERM/SIGUSR1 stop the search gracefully (a second one: at once)
    refit_after_stop: bool = True  # refit when max_time or a signal ended the search early
    info: dict[str, Any] = field(default_factory=dict)  # more facts for run.json


@dataclass
class RunResult:
    """What rank 0 has after a run; ``refit_error`` is set (and outputs written) if the refit failed."""

    outcome: Outcome
    status: RunStatus
    best_estimator: Any = None
    refit_error: BaseException | None = None


class SearchRun:
    """One search on ``comm`` (None: this process). SPMD: every rank makes one and calls :meth:`run`."""

    def __init__(self, spec: SearchSpec, comm: Any = None, options: RunOptions = RunOptions()) -> None:
        self.spec = spec
        self.comm = comm
        self.options = options
        self.is_root = comm is None or comm.Get_rank() == 0
        self.outdir = None if options.out is None else OutDir(options.out)

    def run(self, X: Any, y: Any, groups: Any = None, sample_weight: Any = None) -> RunResult:
        if not self.is_root:
            return RunResult(engine.serve_search(self.comm), RunStatus.COMPLETE)
        control, digest = self._open(X, y, groups, sample_weight)
        try:
            with self._stop_signals(control), _closing(control):
                try:
                    outcome = engine.search(self.spec, X, y, self.comm, groups, control, sample_weight)
                except SearchFailedError as exc:
                    raise self._with_error_file(exc) from None
            result = self._refit(outcome, X, y, sample_weight)
            if self.outdir is not None:
                self._write(result, digest)
        except BaseException as exc:  # run.json says how the run ended, whatever ended it
            if self.outdir is not None:
                self.outdir.finish(RunStatus.FAILED, _first_line(exc))
            raise
        finally:
            if self.outdir is not None:
                self.outdir.close()
        return result

    # -- before the search --------------------------------------------------------------
    def _open(self, X: Any, y: Any, groups: Any, sample_weight: Any) -> tuple[RunControl, str | None]:
        """Lock and prepare the output directory, open its journal; workers are released on failure."""
        control = RunControl(progress=Progress(self.options.verbosity) if self.options.verbosity > 0 else None)
        if self.outdir is None:
            return control, None
        try:
            digest = fingerprint(self.spec.identity(), *prepare_data(X, y), sample_weight, groups)
            control.prior = self.outdir.open(digest, self.options.resume, self.options.force)
            if self.spec.return_train_score:  # tasks journaled without train scores run again
                control.prior = control.prior.with_train_scores()
            control.journal = self._journal()
        except Exception as exc:
            if self.comm is not None:
                engine.release_workers(self.comm, exc)
            raise
        return control, digest

    def _journal(self) -> Journal:
        assert self.outdir is not None
        try:
            return Journal.open(self.outdir.path)
        except OSError as exc:
            self.outdir.close()
            raise OutputError(f"cannot open {self.outdir.path / JOURNAL}: {exc.strerror}") from None

    @contextmanager
    def _stop_signals(self, control: RunControl) -> Iterator[None]:
        if not self.options.signals:
            yield
            return
        handler = _stop_handler(control, self.comm, self.outdir)
        previous = {s: signal.signal(s, lambda *_: handler()) for s in STOP_SIGNALS}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    # -- after the search -------------------------------------------------------------------
    def _refit(self, outcome: Outcome, X: Any, y: Any, sample_weight: Any) -> RunResult:
        status = RunStatus.INTERRUPTED if outcome.stopped else RunStatus.COMPLETE
        result = RunResult(outcome, status)
        if not self.spec.refit or outcome.best_index is None or (outcome.stopped and not self.options.refit_after_stop):
            return result
        X, y = prepare_data(X, y)
        try:
            result.best_estimator, outcome.info["refit_s"] = refit(
                self.spec.estimator, outcome.best_params, self.spec.space.names, X, y, sample_weight)
        except Exception as exc:  # the search's results are written all the same
            result.status, result.refit_error = RunStatus.REFIT_FAILED, exc
        else:
            result.status = RunStatus.COMPLETE
        return result

    def _write(self, result: RunResult, digest: str | None) -> None:
        """The output files, each whole or not at all; a full disk or a read-only directory: OutputError."""
        assert self.outdir is not None
        out = self.outdir.path
        info = {**self.options.info, "config_hash": digest, "status": result.status}
        try:
            write_errors(out, ERRORS)  # every failed task, with its reason (a failed refit's traceback replaces it)
            if result.refit_error is not None:
                write_text(out / ERRORS, "".join(traceback.format_exception(result.refit_error)))
            write_outputs(out, result.outcome, result.best_estimator, info)
        except OSError as exc:
            raise OutputError(f"cannot write the results to {out}: {exc.strerror} ({exc.filename}); every "
                              f"finished task is in {JOURNAL}: make room, then run again with --resume") from None

    def _with_error_file(self, exc: SearchFailedError) -> SearchFailedError:
        """Keep the remote tracebacks in ERRORS; the one-line message points to it."""
        if self.outdir is None or isinstance(exc, OutputError):
            return exc
        path = self.outdir.path / ERRORS
        try:
            write_text(path, str(exc) + "\n")
        except OSError:
            return exc
        first, *rest = str(exc).splitlines()
        return type(exc)("\n".join([f"{first} (tracebacks in {path})", *rest]))


@contextmanager
def _closing(control: RunControl) -> Iterator[None]:
    try:
        yield
    finally:
        if control.journal is not None:
            control.journal.close()  # type: ignore[attr-defined]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def _stop_handler(control: RunControl, comm: Any, outdir: OutDir | None) -> Callable[[], None]:
    """First signal: stop gracefully. Second: leave at once (the journal is flushed per task;
    run.json says "interrupted"); under MPI the whole job is aborted with status 99, so the
    launcher reports 99 too (a plain exit of rank 0 makes it kill the busy workers and report
    their signal)."""
    stop: StopRequest = control.stop

    def handle() -> None:
        stop.request()
        if stop.count < 2:
            return
        try:
            control.journal.close()  # type: ignore[union-attr]
        except (AttributeError, OSError, RuntimeError):  # interrupted inside a write: lines up to the last flush
            pass
        if outdir is not None:
            outdir.finish(RunStatus.INTERRUPTED)
        if comm is not None:
            comm.Abort(ExitCode.INTERRUPTED)
        os._exit(ExitCode.INTERRUPTED)

    return handle
