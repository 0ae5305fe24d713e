"""Helpers shared by the benchmark scripts: use these rather than writing them again.

A benchmark runs as ``python benchmarks/bench_x.py``, so this folder is on ``sys.path``
and ``from _common import ...`` (or ``import _common as common``) needs no path edits.
Only the standard library is imported at the top (matplotlib, and the libraries whose
versions ``machine_info`` records, only inside the functions that need them), so child
modes that start on every MPI rank pay for nothing they do not use.

Running things
  ``tool(name)``                 an executable next to this Python (the venv's bin), else on PATH
  ``launch(cmd, timeout, ...)``  run a command (an ``mpiexec`` job) in its own session; on a
                                 timeout or Ctrl-C the whole process group is killed, not just
                                 ``mpiexec``. Returns a :class:`Launch`: exit status, wall and
                                 CPU seconds, wall clock at launch and exit, output
  ``launch_ok(cmd, timeout, ...)``  the same, but the script exits with the command and the
                                 tail of its output when it fails or times out
  ``ONE_THREAD_ENV``             the variables that limit BLAS/OpenMP to one thread
  ``add_output_args(parser, work)``  ``--out-dir`` (default ``OUT_DIR``, benchmarks/out) and, for
                                 a script with a work folder, ``--work DIR`` and ``--keep-work``
  ``work_dir(path, prefix)``     the ``--work`` folder, or a fresh temporary one
  ``repo_module(path)``          a module of this repository outside the package (such as
                                 tests/testhosts.py), loaded from its file
  ``quiet_barrier(comm)``        an MPI barrier that sleeps instead of spinning a core

Reading and writing mpisearch files
  ``toml_value(v)``, ``toml_config(tables)``  an mpisearch TOML config from dicts
  ``journal_entries(out)``       the lines of a run's journal.jsonl, as dicts

Results
  ``log(msg)``                   a progress line on stderr, prefixed with the script's name
  ``median(values)``             the median, leaving out None; None when nothing is left
  ``ratio(num, den)``            num / den rounded to 4 places; None when either is None or 0
  ``target_entry(...)``          one target's description, value, ``"op threshold"`` and pass
  ``machine_info()``             host, CPUs, Python, platform, library and mpiexec versions
  ``load_average()``             the 1, 5 and 15 minute load averages, rounded
  ``pyplot()``                   ``matplotlib.pyplot`` on the non-interactive Agg backend
  ``save(result, out_dir, name, draw)``  write NAME.json (and, with ``draw``, NAME.png) to
                                 ``out_dir``, record both under ``result["files"]``, close the
                                 figures and print the JSON on stdout
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "benchmarks" / "out"  # git-ignored
SCRIPT = Path(sys.argv[0]).stem if sys.argv[0].endswith(".py") else "bench"  # the prefix of log lines
ONE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
VERSIONS_OF = ("mpisearch", "sklearn", "numpy", "scipy", "joblib", "mpi4py", "h5py")
TAIL_CHARS = 3000  # how much of a failed command's stderr its message shows (enough for a traceback)
BARRIER_SLEEP_S = 0.001  # quiet_barrier's sleep between tests: the value bench_scaling has always used, far
# below the times the benchmarks measure around a barrier


# --------------------------------------------------------------------------- running things

def tool(name: str) -> str:
    """An executable next to this Python (the venv's bin), else on PATH; exits if neither has it."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if not found:
        sys.exit(f"{SCRIPT}: '{name}' not found next to {sys.executable} or on PATH")
    return found


@dataclass
class Launch:
    """One command that ran to its end or was killed when its time was up."""

    cmd: list[str]
    timeout: float
    returncode: int | None  # None: killed after ``timeout`` seconds
    wall_s: float
    cpu_s: float  # CPU seconds of the descendants reaped meanwhile (every rank of an mpiexec job)
    launched: float  # time.time() at launch and at exit, to set against clocks read inside the job
    exited: float
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def problem(self) -> str:
        """What went wrong, with the command and the tail of its stderr."""
        what = f"timed out after {self.timeout:.0f}s" if self.returncode is None else f"exit status {self.returncode}"
        return f"{what}: {' '.join(self.cmd)}\n{self.stderr[-TAIL_CHARS:]}"


def launch(cmd: list[str], timeout: float, logs: Path | None = None, env: Mapping[str, str] | None = None,
           cwd: Path | None = None) -> Launch:
    """Run ``cmd`` in a session of its own; its output goes to ``LOGS.stdout``/``LOGS.stderr``
    when ``logs`` is given (and is read back), else it is captured."""
    cpu0, t0, launched = _children_cpu(), time.perf_counter(), time.time()
    with contextlib.ExitStack() as files:
        out, err = ((files.enter_context(open(f"{logs}.{s}", "w")) for s in ("stdout", "stderr")) if logs
                    else (subprocess.PIPE, subprocess.PIPE))
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=None if env is None else dict(env),
                                cwd=cwd, start_new_session=True)
        returncode: int | None
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
            returncode = proc.returncode
        except subprocess.TimeoutExpired:
            stdout, stderr = _kill(proc)
            returncode = None
        except BaseException:  # Ctrl-C: take the job's ranks down too
            _kill(proc)
            raise
    wall, exited = time.perf_counter() - t0, time.time()
    if logs:
        stdout, stderr = (Path(f"{logs}.{s}").read_text(errors="replace") for s in ("stdout", "stderr"))
    return Launch(list(cmd), timeout, returncode, wall, _children_cpu() - cpu0, launched, exited,
                  stdout or "", stderr or "")


def launch_ok(cmd: list[str], timeout: float, **how: Any) -> Launch:
    """:func:`launch`, exiting the script with :meth:`Launch.problem` unless the command succeeded."""
    done = launch(cmd, timeout, **how)
    if not done.ok:
        sys.exit(f"{SCRIPT}: {done.problem()}")
    return done


def _kill(proc: subprocess.Popen[str]) -> tuple[str | None, str | None]:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    return proc.communicate()


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def add_output_args(parser: argparse.ArgumentParser, work: str | None = None, keep: bool = True) -> None:
    """``--out-dir``; with ``work`` (what the work folder holds) ``--work DIR`` (default: a
    temporary folder) and, with ``keep``, ``--keep-work``."""
    parser.add_argument("--out-dir", default=str(OUT_DIR), help="where the JSON and PNG go (benchmarks/out)")
    if work:
        parser.add_argument("--work", help=f"work directory for {work} (default: a temp dir)")
    if work and keep:
        parser.add_argument("--keep-work", action="store_true", help="keep the temporary work directory")


def work_dir(path: str | None, prefix: str) -> Path:
    """``path`` (created if missing), or a new temporary folder named ``prefix...``."""
    work = Path(path) if path else Path(tempfile.mkdtemp(prefix=prefix))
    work.mkdir(parents=True, exist_ok=True)
    return work


def repo_module(relative: str) -> ModuleType:
    """The module in file ``relative`` (to the repository root), imported under its file's
    stem; loaded once. For helpers that live outside the package, such as tests/testhosts.py."""
    path = ROOT / relative
    if path.stem in sys.modules:
        return sys.modules[path.stem]
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # before running it: dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def quiet_barrier(comm: Any) -> None:
    """A barrier that sleeps instead of spinning (MPICH's blocking waits spin a core)."""
    req = comm.Ibarrier()
    while not req.Test():
        time.sleep(BARRIER_SLEEP_S)


# --------------------------------------------------------------------------- mpisearch files

def toml_value(value: Any) -> str:
    """``value`` in TOML; None as the string "None", which mpisearch configs read as None."""
    if value is None:
        return '"None"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)  # numbers and strings are spelled the same in TOML


def toml_config(tables: Mapping[str, Mapping[str, Any]], comment: str | None = None) -> str:
    """A TOML document: one ``[name]`` table per item (dotted names for sub-tables, such as
    ``search.halving``); dict values become inline tables."""
    lines = [f"# {comment}"] if comment else []
    for name, table in tables.items():
        lines += [f"[{name}]", *(f"{k} = {toml_value(v)}" for k, v in table.items()), ""]
    return "\n".join(lines)


def journal_entries(out: Path) -> list[dict[str, Any]]:
    """Every line of ``out/journal.jsonl`` (task results and stop records), in order."""
    text = (Path(out) / "journal.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# --------------------------------------------------------------------------- results

def log(msg: str) -> None:
    print(f"[{SCRIPT}] {msg}", file=sys.stderr, flush=True)


def median(values: Iterable[float | None]) -> float | None:
    """The median of the values that are not None; None when there are none."""
    kept = [v for v in values if v is not None]
    return float(statistics.median(kept)) if kept else None


def ratio(num: float | None, den: float | None) -> float | None:
    return None if not num or not den else round(num / den, 4)


def target_entry(description: str, value: float | None, op: str, threshold: float) -> dict[str, Any]:
    """A target as the JSON reports it; ``pass`` is None when the value was not measured."""
    ok = None if value is None else (value <= threshold if op == "<=" else value >= threshold)
    return {"description": description, "value": value, "target": f"{op} {threshold:g}", "pass": ok}


def machine_info() -> dict[str, Any]:
    """Host, CPUs (all and usable), Python, platform, library versions, mpiexec's version."""
    info: dict[str, Any] = {"host": socket.gethostname(), "cpus": os.cpu_count(),
                            "cpus_usable": len(os.sched_getaffinity(0)), "python": platform.python_version(),
                            "platform": platform.platform(), "versions": {}}
    for name in VERSIONS_OF:
        try:
            info["versions"][name] = __import__(name).__version__
        except Exception:  # noqa: BLE001 - a missing or broken library is recorded, not fatal
            info["versions"][name] = None
    try:
        text = subprocess.run([tool("mpiexec"), "--version"], capture_output=True, text=True, timeout=30).stdout
        info["mpiexec_version"] = next((ln.strip() for ln in text.splitlines() if "Version" in ln), text[:80].strip())
    except Exception:  # noqa: BLE001
        info["mpiexec_version"] = None
    return info


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (files only, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(result: dict[str, Any], out_dir: str | Path, name: str,
         draw: Callable[[dict[str, Any], Path], None] | None = None) -> None:
    """Write ``out_dir/NAME.json`` and, with ``draw``, ``out_dir/NAME.png``; print the JSON."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, png_path = out / f"{name}.json", out / f"{name}.png"
    result["files"] = {"json": str(json_path), **({"png": str(png_path)} if draw else {})}
    text = json.dumps(result, indent=2, default=str)
    json_path.write_text(text + "\n")
    if draw is not None:
        draw(result, png_path)
        pyplot().close("all")
    print(text)
