"""Files a run writes (names in mpisearch.files; the journal in mpisearch.journal): cv_results.csv,
best.json, best_model.pkl, run.json; the data fingerprint and the checks of an output directory."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import platform
import socket
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .files import BEST, CV_RESULTS, JOURNAL, JOURNAL_BACKUP, MODEL, RUN_INFO
from .journal import Prior, read_prior
from .space import jsonable
from .types import Outcome, RunStatus

# Bytes of X hashed (from each end) for the data fingerprint: enough to tell
# two datasets apart in practice without reading gigabytes twice.
FINGERPRINT_BYTES = 1 << 20


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
                    force: bool = False) -> Prior:
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
            journal.replace(out_dir / JOURNAL_BACKUP)  # never lose finished work silently
        write_json(out_dir / RUN_INFO, {"status": RunStatus.RUNNING, "config_hash": digest})
        return Prior()
    if not journal.exists():
        raise InputError(f"--resume: {out_dir} holds no {JOURNAL} to resume from")
    previous = _previous_hash(out_dir)
    if previous is not None and previous != digest and not force:
        raise InputError(
            f"--resume: the config or data differ from the run in {out_dir} (config hash "
            f"{previous[:12]} != {digest[:12]}); resume with the same search, or add --force"
        )
    write_json(out_dir / RUN_INFO, {"status": RunStatus.RUNNING, "config_hash": digest, "resumed": True})
    return read_prior(out_dir)


def _previous_hash(out_dir: Path) -> str | None:
    try:
        return json.loads((out_dir / RUN_INFO).read_text()).get("config_hash")
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
    write_cv_results(path / CV_RESULTS, outcome.cv_results)
    if outcome.best_index is not None:
        best = {"best_params": jsonable(outcome.best_params), "best_score": outcome.best_score,
                "best_index": outcome.best_index, "metric": outcome.rank_metric}
        write_json(path / BEST, best)
    if best_estimator is not None:
        import joblib

        joblib.dump(best_estimator, path / MODEL)
    write_json(path / RUN_INFO, {**outcome.info, **(extra_info or {}), "versions": versions()})
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
