"""Slurm awareness: the job step's size, and the time left before the job's limit.

Nothing here needs Slurm to be installed; every function takes the environment
(and the clock) as arguments, so it can be tested with a fake one.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable, Mapping

from .errors import InputError

# search.max_time = "auto": stop handing out work this long before the job's end,
# so that running tasks finish, the best point is refitted and the results are
# written. The margin is the larger of a fraction of the time left and a minimum.
AUTO_MARGIN_FRACTION = 0.05
AUTO_MIN_MARGIN_S = 120.0
# Never less than this for max_time, even when the job is nearly over: the search
# stops at once and writes what it has (partial results, resumable).
AUTO_FLOOR_S = 1.0
SQUEUE_TIMEOUT_S = 10.0

_TIME_LEFT = re.compile(r"^(?:(\d+)-)?(?:(?:(\d+):)?(\d+):)?(\d+)$")  # [D-][[H:]M:]S


def step_tasks(environ: Mapping[str, str] = os.environ) -> int | None:
    """Number of tasks of the Slurm job step this process belongs to, or None outside a step.

    Only inside a step (``SLURM_STEP_ID`` is set: started by ``srun``) does the
    count say how many MPI ranks there should be; a batch script itself is not a
    step, and there ``SLURM_NTASKS`` is the allocation's size, not this run's.
    """
    if not environ.get("SLURM_STEP_ID"):
        return None
    text = environ.get("SLURM_STEP_NUM_TASKS") or environ.get("SLURM_NTASKS")
    try:
        return int(text) if text else None
    except ValueError:
        return None


def check_step_size(comm_size: int, environ: Mapping[str, str] = os.environ) -> None:
    """Fail when ``srun`` started N tasks but MPI joined them into fewer ranks.

    That is what a wrong ``--mpi`` plugin does (``--mpi=none`` with any MPI, or
    ``--mpi=pmi2`` with Open MPI): srun starts N separate one-rank runs that
    would all do the whole search and write to the same files. Every one of them
    sees the mismatch, so each fails at once with the same message.

    More ranks than tasks is fine: ``mpiexec``/``mpirun`` inside an allocation
    start one Slurm task per node (their proxy) and the ranks under it.
    """
    tasks = step_tasks(environ)
    if tasks is None or comm_size >= tasks:
        return
    runs = f"{tasks} separate one-rank runs" if comm_size <= 1 else f"separate {comm_size}-rank runs"
    raise InputError(
        f"this Slurm step has {tasks} tasks but MPI sees {comm_size} rank(s): srun started "
        f"{runs} instead of one {tasks}-rank run "
        "(wrong or missing --mpi plugin); use srun --mpi=pmi2 (MPICH) or --mpi=pmix (Open MPI), "
        "or mpiexec inside the allocation")


def parse_time_left(text: str) -> float | None:
    """Seconds from squeue's ``%L`` (``[days-][hours:]minutes:seconds``); None if unlimited/unknown."""
    match = _TIME_LEFT.match(text.strip())
    if not match:
        return None  # UNLIMITED, NOT_SET, INVALID, N/A
    d, h, m, s = (int(g) if g else 0 for g in match.groups())
    return float(86400 * d + 3600 * h + 60 * m + s)


def _squeue(job_id: str, fmt: str, environ: Mapping[str, str]) -> str | None:
    try:
        done = subprocess.run(["squeue", "-h", "-j", job_id, "-o", fmt], capture_output=True, text=True,
                              timeout=SQUEUE_TIMEOUT_S, env=dict(environ))
    except (OSError, subprocess.SubprocessError):
        return None
    lines = done.stdout.strip().splitlines()
    return lines[0].strip() if done.returncode == 0 and lines else None


def job_time_left(environ: Mapping[str, str] = os.environ, now: Callable[[], float] = time.time) -> float | None:
    """Seconds until this Slurm job's time limit; None outside a job, or for a job without limit.

    Reads ``SLURM_JOB_END_TIME`` (epoch seconds; set by Slurm 23.02 and later),
    else asks ``squeue -h -j $SLURM_JOB_ID -o %L`` (time left), else ``%e``
    (end time, local time). Can be negative if the limit is already past.
    """
    end = environ.get("SLURM_JOB_END_TIME", "").strip()
    if end.isdigit() and int(end) > 0:
        return float(end) - now()
    job_id = environ.get("SLURM_JOB_ID")
    if not job_id:
        return None
    left = _squeue(job_id, "%L", environ)
    if left is not None:
        seconds = parse_time_left(left)
        if seconds is not None:
            return seconds
    end_text = _squeue(job_id, "%e", environ)
    if end_text:
        try:
            return time.mktime(time.strptime(end_text, "%Y-%m-%dT%H:%M:%S")) - now()
        except ValueError:
            return None  # N/A, Unknown, NONE
    return None


def auto_max_time(margin_fraction: float = AUTO_MARGIN_FRACTION, min_margin_s: float = AUTO_MIN_MARGIN_S,
                  environ: Mapping[str, str] = os.environ, now: Callable[[], float] = time.time) -> float | None:
    """Seconds for ``search.max_time = "auto"``: the job's time left, less a margin.

    The margin, ``max(margin_fraction * time_left, min_margin_s)`` (5 % and at
    least 2 minutes by default), covers loading the data (the budget starts after
    it), the fits still running when the budget ends, the refit of the best point
    and writing the results. None (no budget) outside a Slurm job or for a job
    without a time limit, so the same config also runs on a workstation. At
    least 1 s: a job with less time left than the margin stops at once and
    writes what it has.
    """
    left = job_time_left(environ, now)
    if left is None:
        return None
    margin = max(margin_fraction * left, min_margin_s)
    return max(left - margin, AUTO_FLOOR_S)
