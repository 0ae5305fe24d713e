"""``mpisearch run``: config file -> data -> search -> output files (SPMD)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import config as config_mod
from . import engine
from .coordinator import StopRequest
from .data import hdf5
from .errors import InputError
from .output import JOURNAL, Journal, read_journal, write_json, write_outputs

EXIT_INTERRUPTED = 99  # stopped by a signal; resumable with --resume
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)  # what Slurm and Kubernetes send before killing
# Bytes of X hashed (from each end) for the data fingerprint: enough to tell
# two datasets apart in practice without reading gigabytes twice.
FINGERPRINT_BYTES = 1 << 20


def run_config(path: str | Path, overrides: list[str] | None = None, out: str | None = None,
               resume: bool = False, force: bool = False, comm: Any = None) -> engine.Outcome:
    """Run the search described by a config file; every rank calls this."""
    if comm is not None and comm.Get_rank() != 0:
        _ignore_stop_signals()  # rank 0 decides how to stop; workers finish their task
        return engine.search(None, None, None, comm)  # type: ignore[arg-type]
    try:
        t0 = time.perf_counter()
        cfg = config_mod.load(path, overrides)
        X, y = hdf5.read(cfg.data_path, cfg.x_name, cfg.y_name)
        w = hdf5.read_sample_weight(cfg.data_path, cfg.w_name, X.shape[0]) if cfg.w_name else None
        load_s = time.perf_counter() - t0
        out_dir = Path(out) if out else cfg.out_dir
        digest = fingerprint(cfg, X, y)
        prior = _prepare_out_dir(out_dir, digest, resume, force)
    except Exception as exc:
        if comm is not None:
            engine.release_workers(comm, exc)
        raise
    spec = engine.SearchSpec(
        estimator=cfg.estimator, space=cfg.space, strategy=cfg.strategy, n_iter=cfg.n_iter,
        random_state=cfg.random_state, scoring=cfg.scoring, refit=cfg.refit, error_score=cfg.error_score,
        max_time=cfg.max_time, cv=cfg.cv, grace=cfg.grace, shared_memory=cfg.shared_memory,
    )
    journal = Journal.open(out_dir)
    stop = StopRequest()
    previous = _on_stop_signals(lambda: _stop_handler(stop, journal))
    try:
        control = engine.RunControl(on_result=journal.write, prior=prior, stop=stop)
        outcome = engine.search(spec, X, y, comm, control=control, sample_weight=w)
    finally:
        _restore_signals(previous)
        journal.close()
    extra = {"config": str(cfg.source), "data": str(cfg.data_path), "load_s": load_s, "strategy": cfg.strategy,
             "config_hash": digest, "status": "interrupted" if outcome.info.get("stopped") else "complete"}
    return _finish(spec, cfg, outcome, X, y, w, out_dir, extra)


def fingerprint(cfg: config_mod.RunConfig, X: Any, y: Any) -> str:
    """Hash of what makes journal entries comparable: estimator, space, cv, scoring, data."""
    h = hashlib.sha256()
    parts = {"estimator": repr(cfg.estimator), "space": repr(cfg.space.subspaces), "cv": repr(cfg.cv),
             "scoring": repr(cfg.scoring), "X": [list(X.shape), str(X.dtype)],
             "y": None if y is None else [list(y.shape), str(y.dtype)]}
    h.update(json.dumps(parts, sort_keys=True).encode())
    for arr in (getattr(X, "data", X), y):
        if arr is not None:
            raw = np.ascontiguousarray(arr).reshape(-1).view(np.uint8)
            h.update(raw[:FINGERPRINT_BYTES].tobytes())
            h.update(raw[-FINGERPRINT_BYTES:].tobytes())
    return h.hexdigest()


def _prepare_out_dir(out_dir: Path, digest: str, resume: bool, force: bool) -> dict[tuple[str, int], Any]:
    """Check a resumed run is the same search; keep an earlier journal aside when not resuming."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out: cannot use {out_dir} as the output directory: {exc.strerror}") from None
    journal = out_dir / JOURNAL
    if not resume:
        if journal.exists():
            journal.replace(out_dir / f"{JOURNAL}.bak")  # never lose finished work silently
        write_json(out_dir / "run.json", {"status": "running", "config_hash": digest})
        return {}
    if not journal.exists():
        raise InputError(f"--resume: {out_dir} holds no {JOURNAL} to resume from")
    previous = _previous_hash(out_dir)
    if previous is not None and previous != digest and not force:
        raise InputError(
            f"--resume: the config or data differ from the run in {out_dir} (config hash "
            f"{previous[:12]} != {digest[:12]}); resume with the same search, or add --force"
        )
    write_json(out_dir / "run.json", {"status": "running", "config_hash": digest, "resumed": True})
    return read_journal(out_dir)


def _previous_hash(out_dir: Path) -> str | None:
    try:
        return json.loads((out_dir / "run.json").read_text()).get("config_hash")
    except (OSError, ValueError):
        return None


def _stop_handler(stop: StopRequest, journal: Journal) -> None:
    """First signal: stop gracefully. Second: leave at once (the journal is flushed per task)."""
    stop.request()
    if stop.count > 1:
        journal.close()
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
    best_estimator = None
    if cfg.refit and outcome.best_index is not None and not outcome.info.get("stopped"):
        X, y = engine.prepare_data(X, y)
        best_estimator, outcome.info["refit_s"] = engine.refit(spec, outcome, X, y, w)
    write_outputs(out_dir, outcome, best_estimator, extra)
    if outcome.best_index is None:
        print(f"no point finished; partial results in {out_dir}")
    else:
        print(f"best {outcome.rank_metric} {outcome.best_score:.6g} with {outcome.best_params}; results in {out_dir}")
    if outcome.info.get("stopped") == "signal":
        print(f"interrupted: resume with `mpisearch run {cfg.source} --out {out_dir} --resume`")
    return outcome
