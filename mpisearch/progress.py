"""Live progress on rank 0: a tqdm bar on a terminal, periodic log lines otherwise."""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from typing import Any, TextIO

# Seconds between two log lines when stderr is not a terminal (batch jobs):
# often enough to follow a job's log, rare enough to keep a day-long log short.
LOG_EVERY_SECONDS = 30.0
# Seconds between two refreshes of the terminal bar's text (tqdm itself throttles the bar).
BAR_EVERY_SECONDS = 0.2


@dataclass
class Snapshot:
    done: int  # tasks finished (resumed ones included)
    total: int | None  # tasks in the whole search, when the strategy knows
    best_score: float | None
    best_params: dict[str, Any] | None
    busy: int  # workers with a task
    workers: int
    elapsed: float


class Progress:
    """Reports snapshots; ``verbosity`` 0 = quiet, 1 = normal, 2 = every finished point."""

    def __init__(self, verbosity: int = 1, stream: TextIO | None = None, tty: bool | None = None) -> None:
        """A bar on stderr when it is a terminal; otherwise log lines on stdout (a
        batch job's log), so that stderr holds only warnings and errors."""
        self.verbosity = verbosity
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.stream = stream or (sys.stderr if self.tty else sys.stdout)
        self._bar: Any = None
        self._last = -math.inf
        self._start_done = 0

    def update(self, snap: Snapshot, force: bool = False) -> None:
        if self.verbosity <= 0:
            return
        now = time.monotonic()
        if self.tty:
            self._draw(snap, now, force)
        elif force or now - self._last >= LOG_EVERY_SECONDS:
            self._last = now
            print(f"[mpisearch] {describe(snap)}", file=self.stream, flush=True)

    def due(self) -> bool:
        """Whether an update now would show anything: always for the bar (it counts every task),
        every LOG_EVERY_SECONDS for log lines, never when quiet. Rank 0 builds a snapshot only
        then (once per pass of its loop otherwise, for a log line every 30 s)."""
        if self.verbosity <= 0:
            return False
        return self.tty or time.monotonic() - self._last >= LOG_EVERY_SECONDS

    def point_done(self, text: str) -> None:
        if self.verbosity >= 2:
            self._write(f"[mpisearch] {text}")

    def close(self, snap: Snapshot | None = None) -> None:
        if snap is not None:
            self.update(snap, force=True)
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _draw(self, snap: Snapshot, now: float, force: bool) -> None:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=snap.total, initial=snap.done, file=self.stream, unit="task",
                             dynamic_ncols=True, leave=True)
        if snap.total is not None and self._bar.total != snap.total:
            self._bar.total = snap.total
        self._bar.update(snap.done - self._bar.n)
        if force or now - self._last >= BAR_EVERY_SECONDS:
            self._last = now
            self._bar.set_postfix_str(postfix(snap), refresh=True)

    def _write(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)


def postfix(snap: Snapshot) -> str:
    best = "best -" if snap.best_score is None else f"best {snap.best_score:.4g} {snap.best_params}"
    return f"{best}, {snap.busy}/{snap.workers} workers busy"


def describe(snap: Snapshot) -> str:
    """One log line: tasks done/total, elapsed, time left, best so far, busy workers."""
    total = "?" if snap.total is None else str(snap.total)
    left = eta(snap)
    left_text = "" if left is None else f", about {format_seconds(left)} left"
    return f"{snap.done}/{total} tasks, {format_seconds(snap.elapsed)} elapsed{left_text}; {postfix(snap)}"


def eta(snap: Snapshot) -> float | None:
    if snap.total is None or snap.done <= 0 or snap.elapsed <= 0:
        return None
    return snap.elapsed / snap.done * max(snap.total - snap.done, 0)


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")
