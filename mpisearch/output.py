"""Files a run writes at its end (names in mpisearch.files; the journal in mpisearch.journal, the
directory's checks in mpisearch.outdir): cv_results.csv, best.json, best_model.pkl, run.json.
Each is written atomically (mpisearch.atomic): a full disk leaves the old file or none, never half."""

from __future__ import annotations

import csv
import json
import os
import platform
import socket
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import replacing
from .files import BEST, CV_RESULTS, MODEL, RUN_INFO
from .space import jsonable
from .types import Outcome


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as fh:
        fh.write(json.dumps(obj, indent=2, default=_default) + "\n")


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

        with replacing(path / MODEL, binary=True) as fh:
            joblib.dump(best_estimator, fh)
    write_json(path / RUN_INFO, {**outcome.info, **(extra_info or {}), "versions": versions()})
    return path


def write_cv_results(path: Path, cv_results: dict[str, Any]) -> None:
    """One row per point; ``params`` as JSON, masked parameter cells empty."""
    columns = list(cv_results)
    n = len(cv_results["params"])
    with replacing(path) as fh:
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
