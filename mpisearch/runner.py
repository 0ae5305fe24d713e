"""``mpisearch run``: config file -> data -> :class:`~mpisearch.lifecycle.SearchRun` -> output files (SPMD)."""

from __future__ import annotations

import os
import shlex
import signal
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import engine
from .errors import SearchFailedError
from .files import ERRORS
from .lifecycle import STOP_SIGNALS, RunOptions, RunResult, SearchRun
from .slurm import check_step_size
from .types import Outcome, StopReason


def run_config(path: str | Path, overrides: list[str] | None = None, out: str | None = None,
               resume: bool = False, force: bool = False, comm: Any = None, verbosity: int = 1) -> Outcome:
    """Run the search described by a config file; every rank calls this."""
    check_step_size(comm.Get_size() if comm is not None else 1)  # srun with a wrong --mpi plugin
    if comm is not None and comm.Get_rank() != 0:
        for s in STOP_SIGNALS:  # rank 0 decides how to stop; workers finish their task
            signal.signal(s, signal.SIG_IGN)
        return engine.serve_search(comm)
    from . import config as config_mod  # rank 0 only: worker ranks need neither TOML nor h5py
    from .data import hdf5

    try:
        t0 = time.perf_counter()
        cfg = config_mod.load(path, overrides)
        X, y = hdf5.read(cfg.data.path, cfg.data.x_name, cfg.data.y_name)
        w = hdf5.read_sample_weight(cfg.data.path, cfg.data.w_name, X.shape[0]) if cfg.data.w_name else None
        g = hdf5.read_groups(cfg.data.path, cfg.data.groups_name, X.shape[0]) if cfg.data.groups_name else None
        load_s = time.perf_counter() - t0
    except Exception as exc:
        if comm is not None:
            engine.release_workers(comm, exc)
        raise
    out_dir = Path(out) if out else cfg.out_dir
    info = {"config": str(cfg.source), "data": str(cfg.data.path), "load_s": load_s, "strategy": cfg.spec.strategy}
    options = RunOptions(out=out_dir, resume=resume, force=force, verbosity=verbosity, signals=True,
                         refit_after_stop=False, info=info)
    spec = replace(cfg.spec, isolate=True)  # mpisearch run owns its process: forking fit processes is safe
    result = SearchRun(spec, comm, options).run(X, y, g, sample_weight=w)
    _report(result, out_dir, resume_command(cfg.source, overrides or [], comm))
    return result.outcome


def resume_command(config: Path, overrides: list[str], comm: Any) -> str:
    """The command line that resumes this run: its launcher and rank count (srun inside a Slurm
    step, else mpiexec; none for one process), config and --set overrides."""
    size = comm.Get_size() if comm is not None else 1
    launcher = []
    if size > 1:
        launcher = ["srun" if "SLURM_STEP_ID" in os.environ else "mpiexec", "-n", str(size)]
    sets = [arg for item in overrides for arg in ("--set", item)]
    return shlex.join([*launcher, "mpisearch", "run", str(config), *sets])


def _report(result: RunResult, out_dir: Path, command: str) -> None:
    """One line on how the run ended (a failed refit: a one-line error, the traceback in ERRORS)."""
    outcome = result.outcome
    if result.refit_error is not None:
        last = traceback.format_exception_only(result.refit_error)[-1].strip()
        raise SearchFailedError(f"refit of the best point {outcome.best_params} on all the data failed: {last} "
                                f"(traceback in {out_dir / ERRORS}; cv_results.csv and run.json written)")
    if outcome.best_index is None:
        print(f"no point finished; partial results in {out_dir}")
    else:
        print(f"best {outcome.rank_metric} {outcome.best_score:.6g} with {outcome.best_params}; results in {out_dir}")
    if outcome.stopped == StopReason.SIGNAL:
        print(f"interrupted: resume with `{command} --out {shlex.quote(str(out_dir))} --resume`")
