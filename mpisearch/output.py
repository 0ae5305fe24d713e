"""Files a run writes: cv_results.csv, best.json, best_model.pkl, run.json, journal.jsonl."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import platform
import socket
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from .coordinator import STOPPED_FOLD
from .engine import Outcome
from .errors import InputError
from .evaluate import TaskResult
from .space import jsonable, point_key

JOURNAL = "journal.jsonl"
# Bytes of X hashed (from each end) for the data fingerprint: enough to tell
# two datasets apart in practice without reading gigabytes twice.
FINGERPRINT_BYTES = 1 << 20


class Journal:
    """One JSON line per finished (point, fold) task, flushed as it finishes."""

    def __init__(self, fh: TextIO) -> None:
        self.fh = fh
        # A point's parameters as JSON, made once: encoding them was a third of rank 0's
        # time per task with tiny tasks (a point's folds all repeat them).
        self._params_json: dict[int, str] = {}

    @classmethod
    def open(cls, out: str | os.PathLike[str]) -> Journal:
        path = Path(out)
        path.mkdir(parents=True, exist_ok=True)
        return cls((path / JOURNAL).open("a", encoding="utf-8"))

    def write(self, point_id: int, fold: int, result: TaskResult, params: Any,
              n_resources: int | None = None) -> None:
        rest = {"fold": fold, "scores": result.scores, "fit_time": result.fit_time, "score_time": result.score_time,
                "error": result.error, "reason": result.reason, "rank": result.rank, "start": result.started}
        if n_resources is not None:
            rest["n_resources"] = int(n_resources)
        params_json = self._params_json.get(point_id)
        if params_json is None:
            params_json = self._params_json[point_id] = json.dumps(jsonable(params))
        # the same line as json.dumps({"point": ..., "params": ..., **rest})
        self.fh.write(f'{{"point": {int(point_id)}, "params": {params_json}, {json.dumps(rest)[1:]}\n')

    def stop(self, point_id: int, params: Any, n_resources: int | None = None) -> None:
        """Fold racing stopped the point: a resumed run stops it at the same place."""
        line = {"point": point_id, "params": jsonable(params), "stopped": True}
        if n_resources is not None:
            line["n_resources"] = int(n_resources)
        self.fh.write(json.dumps(line) + "\n")

    def flush(self) -> None:
        """Push written lines to the operating system (they then survive a kill -9)."""
        self.fh.flush()

    def close(self) -> None:
        if not self.fh.closed:
            self.fh.close()


def read_journal(path: str | os.PathLike[str]) -> dict[tuple[str, int], TaskResult]:
    """Finished tasks of an earlier run, keyed by (point key, fold).

    A torn line (a rank killed while writing it) is skipped; tasks are keyed by
    their parameters, not by rank, order or point number, so a resumed run may
    use another number of ranks. A point stopped by fold racing is reported
    under fold STOPPED_FOLD (with an empty result).
    """
    done: dict[tuple[str, int], TaskResult] = {}
    file = Path(path) / JOURNAL
    if not file.is_file():
        return done
    for line in file.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
            pkey = point_key(entry["params"], entry.get("n_resources"))
            if entry.get("stopped") is True:
                done[(pkey, STOPPED_FOLD)] = TaskResult(reason="stopped")
                continue
            key = (pkey, int(entry["fold"]))
            result = TaskResult(entry["scores"], entry["fit_time"], entry["score_time"], entry["error"],
                                entry.get("reason"), started=entry.get("start", 0.0), rank=entry.get("rank"))
        except (ValueError, KeyError, TypeError):
            continue  # torn or foreign line
        done[key] = result
    return done


def fingerprint(parts: dict[str, Any], X: Any, y: Any) -> str:
    """Hash of what makes journal entries comparable: estimator, space, cv, scoring and the data."""
    h = hashlib.sha256()
    described = {k: repr(getattr(v, "subspaces", v)) for k, v in parts.items()}
    described["X"] = repr((X.shape, str(X.dtype)))
    described["y"] = None if y is None else repr((np.shape(y), str(np.asarray(y).dtype)))
    h.update(json.dumps(described, sort_keys=True).encode())
    for arr in (getattr(X, "data", X), y):
        if arr is not None:
            raw = np.ascontiguousarray(arr).reshape(-1).view(np.uint8)
            h.update(raw[:FINGERPRINT_BYTES].tobytes())
            h.update(raw[-FINGERPRINT_BYTES:].tobytes())
    return h.hexdigest()


def prepare_out_dir(out_dir: str | os.PathLike[str], digest: str, resume: bool,
                    force: bool = False) -> dict[tuple[str, int], TaskResult]:
    """Check a resumed run is the same search; keep an earlier journal aside when not resuming.

    Returns the finished tasks to skip (empty unless resuming)."""
    out_dir = Path(out_dir)
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


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=_default) + "\n", encoding="utf-8")
    tmp.replace(path)


def write_outputs(out: str | os.PathLike[str], outcome: Outcome, best_estimator: Any = None,
                  extra_info: dict[str, Any] | None = None) -> Path:
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    write_cv_results(path / "cv_results.csv", outcome.cv_results)
    if outcome.best_index is not None:
        best = {"best_params": jsonable(outcome.best_params), "best_score": outcome.best_score,
                "best_index": outcome.best_index, "metric": outcome.rank_metric}
        write_json(path / "best.json", best)
    if best_estimator is not None:
        import joblib

        joblib.dump(best_estimator, path / "best_model.pkl")
    write_json(path / "run.json", {**outcome.info, **(extra_info or {}), "versions": versions()})
    return path


def write_cv_results(path: Path, cv_results: dict[str, Any]) -> None:
    """One row per point; ``params`` as JSON, masked parameter cells empty."""
    columns = list(cv_results)
    n = len(cv_results["params"])
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for i in range(n):
            writer.writerow([_cell(cv_results[c], i, c) for c in columns])


def _cell(column: Any, i: int, name: str) -> Any:
    if name == "params":
        return json.dumps(jsonable(column[i]), sort_keys=True)
    if isinstance(column, np.ma.MaskedArray) and column.mask is not np.ma.nomask and np.ma.getmaskarray(column)[i]:
        return ""
    value = column[i]
    if isinstance(value, (np.floating, float)):
        return repr(float(value))
    value = jsonable(value)
    if value is None:
        return "None"
    return value if isinstance(value, (int, float, str)) else json.dumps(value)


def _default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return repr(obj)


def versions() -> dict[str, str]:
    import h5py
    import numpy
    import scipy
    import sklearn

    from . import __version__

    out = {"mpisearch": __version__, "python": platform.python_version(), "numpy": numpy.__version__,
           "scipy": scipy.__version__, "scikit-learn": sklearn.__version__, "h5py": h5py.__version__,
           "host": socket.gethostname()}
    try:
        import mpi4py

        out["mpi4py"] = mpi4py.__version__
    except ImportError:
        pass
    return out
