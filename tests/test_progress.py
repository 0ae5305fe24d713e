"""Progress display: log lines for batch jobs, a tqdm bar on a terminal, nothing when quiet."""

from __future__ import annotations

import io

from sklearn.datasets import load_iris
from sklearn.svm import SVC

from mpisearch import MPISearchCV, progress
from mpisearch.progress import Progress, Snapshot, describe, eta, format_seconds


def snap(done: int, total: int | None = 100, best: float | None = 0.91) -> Snapshot:
    return Snapshot(done=done, total=total, best_score=best, best_params={"C": 1.0} if best else None,
                    busy=3, workers=4, elapsed=50.0)


def test_log_line_has_counts_time_left_best_and_busy_workers():
    line = describe(snap(25))
    assert line == "25/100 tasks, 50s elapsed, about 2m30s left; best 0.91 {'C': 1.0}, 3/4 workers busy"
    assert describe(snap(3, total=None, best=None)).startswith("3/? tasks, 50s elapsed; best -")
    assert eta(snap(0)) is None and format_seconds(3725) == "1h02m05s"


def test_batch_mode_logs_first_and_forced_updates_only():
    out = io.StringIO()
    p = Progress(1, stream=out, tty=False)
    for i in range(1, 50):
        p.update(snap(i))
    p.close(snap(100))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("[mpisearch] 1/100") and lines[1].startswith("[mpisearch] 100/100")


def test_an_update_is_due_for_the_bar_always_for_log_lines_every_interval_and_never_when_quiet(monkeypatch):
    assert Progress(1, stream=io.StringIO(), tty=True).due()
    assert not Progress(0, stream=io.StringIO(), tty=True).due() and not Progress(0, tty=False).due()
    out = io.StringIO()
    p = Progress(1, stream=out, tty=False)
    assert p.due()
    p.update(snap(1))
    assert not p.due()  # the next log line comes LOG_EVERY_SECONDS later
    monkeypatch.setattr(progress, "LOG_EVERY_SECONDS", 0.0)
    assert p.due()
    p.update(snap(2))
    assert len(out.getvalue().splitlines()) == 2


def test_terminal_mode_draws_a_tqdm_bar():
    out = io.StringIO()
    p = Progress(1, stream=out, tty=True)
    p.update(snap(10))
    p.close(snap(100))
    text = out.getvalue()
    assert "100/100" in text and "task" in text and "3/4 workers busy" in text


def test_quiet_prints_nothing_and_verbose_reports_points():
    out = io.StringIO()
    Progress(0, stream=out, tty=False).update(snap(5), force=True)
    assert out.getvalue() == ""
    X, y = load_iris(return_X_y=True)
    search = MPISearchCV(SVC(), {"C": [0.5, 5.0]}, cv=3, verbose=2)
    import contextlib
    with contextlib.redirect_stdout(io.StringIO()) as out:  # not a terminal: log lines on stdout
        search.fit(X, y)
    text = out.getvalue()
    assert "point 0 {'C': 0.5}: mean score" in text and "point 1 {'C': 5.0}" in text and "6/6 tasks" in text
