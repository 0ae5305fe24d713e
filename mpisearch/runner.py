"""``mpisearch run``: config file -> data -> search -> output files (SPMD)."""

from __future__ import annotations

import os
import signal
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import engine
from .coordinator import StopRequest
from .errors import SearchFailedError
from .failures import write_errors
from .output import Journal, fingerprint, prepare_out_dir, write_outputs
from .progress import Progress
from .slurm import check_step_size

if TYPE_CHECKING:
    from . import config as config_mod

ERRORS_FILE = "errors.txt"  # remote tracebacks of a failed search
EXIT_INTERRUPTED = 99  # stopped by a signal; resumable with --resume
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)  # what Slurm and Kubernetes send before killing


def run_config(path: str | Path, overrides: list[str] | None = None, out: str | None = None,
               resume: bool = False, force: bool = False, comm: Any = None, verbosity: int = 1) -> engine.Outcome:
    """Run the search described by a config file; every rank calls this."""
    check_step_size(comm.Get_size() if comm is not None else 1)  # srun with a wrong --mpi plugin
    if comm is not None and comm.Get_rank() != 0:
        _ignore_stop_signals()  # rank 0 decides how to stop; workers finish their task
        return engine.search(None, None, None, comm)  # type: ignore[arg-type]
    from . import config as config_mod  # rank 0 only: worker ranks need neither TOML nor h5py
    from .data import hdf5

    try:
        t0 = time.perf_counter()
        cfg = config_mod.load(path, overrides)
        X, y = hdf5.read(cfg.data_path, cfg.x_name, cfg.y_name)
        w = hdf5.read_sample_weight(cfg.data_path, cfg.w_name, X.shape[0]) if cfg.w_name else None
        load_s = time.perf_counter() - t0
        out_dir = Path(out) if out else cfg.out_dir
        spec = engine.SearchSpec(
            estimator=cfg.estimator, space=cfg.space, strategy=cfg.strategy, n_iter=cfg.n_iter,
            random_state=cfg.random_state, scoring=cfg.scoring, refit=cfg.refit, error_score=cfg.error_score,
            max_time=cfg.max_time, cv=cfg.cv, grace=cfg.grace, shared_memory=cfg.shared_memory,
            task_timeout=cfg.task_timeout, task_memory=cfg.task_memory, halving=cfg.halving, racing=cfg.racing,
            racing_confidence=cfg.racing_confidence, isolate=True,  # our own process: forking it is safe
        )
        digest = fingerprint(spec.identity(), X, y)
        prior = prepare_out_dir(out_dir, digest, resume, force)
    except Exception as exc:
        if comm is not None:
            engine.release_workers(comm, exc)
        raise
    journal = Journal.open(out_dir)
    stop = StopRequest()
    previous = _on_stop_signals(lambda: _stop_handler(stop, journal, comm))
    try:
        control = engine.RunControl(journal=journal, prior=prior, stop=stop,
                                    progress=Progress(verbosity) if verbosity > 0 else None)
        outcome = engine.search(spec, X, y, comm, control=control, sample_weight=w)
    except SearchFailedError as exc:
        raise _with_error_file(exc, out_dir) from None
    finally:
        _restore_signals(previous)
        journal.close()
    extra = {"config": str(cfg.source), "data": str(cfg.data_path), "load_s": load_s, "strategy": cfg.strategy,
             "config_hash": digest, "status": "interrupted" if outcome.info.get("stopped") else "complete"}
    return _finish(spec, cfg, outcome, X, y, w, out_dir, extra)


def _with_error_file(exc: SearchFailedError, out_dir: Path) -> SearchFailedError:
    """Keep the remote tracebacks in ERRORS_FILE; the one-line message points to it."""
    path = out_dir / ERRORS_FILE
    path.write_text(str(exc) + "\n", encoding="utf-8")
    first, *rest = str(exc).splitlines()
    return type(exc)("\n".join([f"{first} (tracebacks in {path})", *rest]))


def _stop_handler(stop: StopRequest, journal: Journal, comm: Any) -> None:
    """First signal: stop gracefully. Second: leave at once (the journal is flushed per task);
    under MPI the whole job is aborted with status 99, so the launcher reports 99 too
    (a plain exit of rank 0 makes it kill the busy workers and report their signal)."""
    stop.request()
    if stop.count > 1:
        try:
            journal.close()
        except (OSError, RuntimeError):  # interrupted inside a write: lines up to the last flush are kept
            pass
        if comm is not None:
            comm.Abort(EXIT_INTERRUPTED)
        os._exit(EXIT_INTERRUPTED)


def _on_stop_signals(handler: Any) -> dict[int, Any]:
    return {s: signal.signal(s, lambda *_: handler()) for s in STOP_SIGNALS}


def _restore_signals(previous: dict[int, Any]) -> None:
    for s, h in previous.items():
        signal.signal(s, h)


def _ignore_stop_signals() -> None:
    for s in STOP_SIGNALS:
        signal.signal(s, signal.SIG_IGN)


def _finish(spec: engine.SearchSpec, cfg: config_mod.RunConfig, outcome: engine.Outcome, X: Any, y: Any,
            w: Any, out_dir: Path, extra: dict[str, Any]) -> engine.Outcome:
    best_estimator, refit_error = None, None
    write_errors(out_dir, ERRORS_FILE)  # failed fits and crashed fit processes, with their reasons
    if cfg.refit and outcome.best_index is not None and not outcome.info.get("stopped"):
        X, y = engine.prepare_data(X, y)
        try:
            best_estimator, outcome.info["refit_s"] = engine.refit(spec, outcome, X, y, w)
        except Exception:  # the search's results are written all the same
            refit_error = traceback.format_exc()
            extra["status"] = "refit failed"
    write_outputs(out_dir, outcome, best_estimator, extra)
    if refit_error is not None:
        (out_dir / ERRORS_FILE).write_text(refit_error, encoding="utf-8")
        last = refit_error.strip().splitlines()[-1]
        raise SearchFailedError(f"refit of the best point {outcome.best_params} on all the data failed: {last} "
                                f"(traceback in {out_dir / ERRORS_FILE}; cv_results.csv and run.json written)")
    if outcome.best_index is None:
        print(f"no point finished; partial results in {out_dir}")
    else:
        print(f"best {outcome.rank_metric} {outcome.best_score:.6g} with {outcome.best_params}; results in {out_dir}")
    if outcome.info.get("stopped") == "signal":
        print(f"interrupted: resume with `mpisearch run {cfg.source} --out {out_dir} --resume`")
    return outcome
