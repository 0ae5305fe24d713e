"""``mpisearch run``: config file -> data -> search -> output files (SPMD)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from . import config as config_mod
from . import engine
from .data import hdf5


def run_config(path: str | Path, overrides: list[str] | None = None, out: str | None = None,
               resume: bool = False, comm: Any = None) -> engine.Outcome:
    """Run the search described by a config file; every rank calls this."""
    if comm is not None and comm.Get_rank() != 0:
        return engine.search(None, None, None, comm)  # type: ignore[arg-type]
    try:
        t0 = time.perf_counter()
        cfg = config_mod.load(path, overrides)
        X, y = hdf5.read(cfg.data_path, cfg.x_name, cfg.y_name)
        load_s = time.perf_counter() - t0
        out_dir = Path(out) if out else cfg.out_dir
        journal = _open_journal(out_dir, resume)
    except Exception as exc:
        if comm is not None:
            engine.release_workers(comm, exc)
        raise
    spec = engine.SearchSpec(
        estimator=cfg.estimator, space=cfg.space, strategy=cfg.strategy, n_iter=cfg.n_iter,
        random_state=cfg.random_state, scoring=cfg.scoring, refit=cfg.refit, error_score=cfg.error_score,
        max_time=cfg.max_time, cv=cfg.cv,
    )
    try:
        outcome = engine.search(spec, X, y, comm, on_result=journal.write)
    finally:
        journal.close()
    return _finish(spec, cfg, outcome, X, y, out_dir, load_s)


def _open_journal(out_dir: Path, resume: bool) -> Any:
    from .errors import InputError
    from .output import JOURNAL, Journal

    if resume:
        raise InputError("--resume is not available in this version")
    if (out_dir / JOURNAL).exists():
        (out_dir / JOURNAL).unlink()
    return Journal.open(out_dir)


def _finish(spec: engine.SearchSpec, cfg: config_mod.RunConfig, outcome: engine.Outcome, X: Any, y: Any,
            out_dir: Path, load_s: float) -> engine.Outcome:
    from .output import write_outputs

    best_estimator = None
    if cfg.refit and outcome.best_index is not None:
        X, y = engine.prepare_data(X, y)
        best_estimator, outcome.info["refit_s"] = engine.refit(spec, outcome, X, y)
    extra = {"config": str(cfg.source), "data": str(cfg.data_path), "load_s": load_s,
             "strategy": cfg.strategy}
    write_outputs(out_dir, outcome, best_estimator, extra)
    best = outcome.best_params
    print(f"best {outcome.rank_metric} {outcome.best_score:.6g} with {best}; results in {out_dir}")
    return outcome
