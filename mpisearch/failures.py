"""``errors.txt``: every failed task of a run (this one and, resumed, the earlier ones),
grouped by error, with the points and folds each error hit."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .atomic import write_text
from .journal import read_prior

# Points listed under one error in errors.txt; more are counted, not listed.
LISTED_TASKS = 20


@dataclass
class FailureGroup:
    """Tasks that failed with the same error text."""

    reason: str  # "fit", "score", "timeout", "crash"
    error: str
    tasks: list[tuple[str, int]] = field(default_factory=list)  # (point as JSON, fold)

    @property
    def last_line(self) -> str:
        lines = [ln.strip() for ln in self.error.splitlines() if ln.strip()]
        return lines[-1] if lines else "error"


def failure_groups(out_dir: str | os.PathLike[str]) -> list[FailureGroup]:
    """The journal's failed tasks, grouped by error text, most frequent first."""
    groups: dict[str, FailureGroup] = {}
    for (point, fold), result in read_prior(out_dir).results.items():
        if result.error is not None:
            group = groups.setdefault(result.error, FailureGroup(result.reason or "error", result.error))
            group.tasks.append((point, fold))
    return sorted(groups.values(), key=lambda g: -len(g.tasks))


def write_errors(out_dir: str | os.PathLike[str], name: str) -> Path | None:
    """Write ``out_dir/name`` if the journal holds failed tasks; its path, or None."""
    groups = failure_groups(out_dir)
    if not groups:
        return None
    parts = []
    for g in groups:
        n = len(g.tasks)
        lines = [f"{n} task{'s' if n > 1 else ''} failed ({g.reason}): {g.last_line}"]
        lines += [f"  point {point} fold {fold}" for point, fold in sorted(g.tasks)[:LISTED_TASKS]]
        if n > LISTED_TASKS:
            lines.append(f"  ... and {n - LISTED_TASKS} more")
        if g.error.strip() != g.last_line:
            lines += ["", g.error.rstrip()]
        parts.append("\n".join(lines))
    path = Path(out_dir) / name
    write_text(path, "\n\n".join(parts) + "\n")
    return path
