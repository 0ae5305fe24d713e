"""Per-task limits: how long a fit may run and how much memory it may take.

Both are enforced in the fit process (:mod:`mpisearch.isolation`), never in a rank
itself: a timed-out fit's process is killed, a greedy fit gets ``MemoryError``
(or dies) alone, and the rank carries on with a fresh fit process.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .errors import InputError

MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)
UNITS = {"": 1, "B": 1, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4,
         "KI": 1 << 10, "MI": 1 << 20, "GI": 1 << 30, "TI": 1 << 40}


@dataclass(frozen=True)
class TaskLimits:
    """``timeout``: seconds a task (fit and score) may run; ``memory``: bytes it may
    allocate on top of what the fit process holds when the task starts."""

    timeout: float | None = None
    memory: int | None = None

    @property
    def any(self) -> bool:
        return self.timeout is not None or self.memory is not None


def parse_memory(value: Any, key: str = "search.task_memory") -> int | None:
    """Bytes from ``1073741824``, ``"8GiB"``, ``"512MiB"``, ``"2G"`` or ``"1.5GB"`` (G = 10**9, Gi = 2**30)."""
    if value is None:
        return None
    if isinstance(value, bool):
        match = None
    elif isinstance(value, (int, float)):
        match = MEMORY.match(repr(value))
    else:
        match = MEMORY.match(str(value))
    if match is None:
        raise InputError(f"{key}: expected an amount of memory like \"8GiB\" or \"512MiB\", got {value!r}")
    unit = (match.group(2) or "").upper()
    if len(unit) > 1 and unit.endswith("B"):
        unit = unit[:-1]  # "GiB" -> "GI", "GB" -> "G"
    amount = int(float(match.group(1)) * UNITS[unit])
    if amount <= 0:
        raise InputError(f"{key}: expected a positive amount of memory, got {value!r}")
    return amount


def cap_address_space(extra: int) -> None:
    """Let this process map at most ``extra`` bytes more than it has mapped now
    (RLIMIT_AS; a larger allocation fails with MemoryError). Linux only: elsewhere a no-op."""
    import resource

    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            mapped = int(fh.read().split()[0]) * resource.getpagesize()
    except OSError:
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = mapped + extra
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
