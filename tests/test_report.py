"""`mpisearch report DIR [--plot]`: real runs, then the content of the summary, the PNGs and the HTML page."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from mpisearch import report
from mpisearch.data.make import make_file
from mpisearch.errors import InputError
from mpisearch.journal import JournalEntry
from mpisearch.space import point_key
from mpisearch.types import TaskResult

TESTS = Path(__file__).parent
MPIEXEC = Path(sys.executable).parent / "mpiexec"
GRID = [1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.1, 1.0, 10.0, 100.0]  # 12 points: more than TOP_N
MIN_PNG_SIDE = 300

MULTI_CONFIG = """
[data]
path = "{data}"
[estimator]
class = "sklearn.naive_bayes.GaussianNB"
[space]
var_smoothing = {grid}
[search]
strategy = "grid"
[cv]
folds = 3
[scoring]
metrics = ["accuracy", "f1_macro"]
refit = false
"""

MPI_CONFIG = """
[data]
path = "{data}"
[estimator]
class = "sklearn.naive_bayes.GaussianNB"
[space]
var_smoothing = [1e-9, 1e-3, 0.1, 1.0]
[search]
strategy = "grid"
[cv]
folds = 3
"""


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(make_file("iris", str(tmp_path_factory.mktemp("data") / "iris.h5"), None, None, 0))


@pytest.fixture(scope="module")
def multi_run(iris: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Grid of 12 points (fast fits), two metrics (accuracy ranks), through the config runner."""
    from mpisearch.runner import run_config

    root = tmp_path_factory.mktemp("multi")
    config = root / "multi.toml"
    config.write_text(MULTI_CONFIG.format(data=iris, grid=json.dumps(GRID)))
    run_config(config, out=str(root / "out"), verbosity=0)
    return root / "out"


@pytest.fixture(scope="module")
def fail_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Single metric; half the points fail on every fold (FailingClassifier), written through the API."""
    from estimators import FailingClassifier
    from sklearn.datasets import load_iris

    from mpisearch import MPISearchCV

    out = tmp_path_factory.mktemp("fail") / "out"
    X, y = load_iris(return_X_y=True)
    with pytest.warns(Warning):  # scikit-learn's FitFailedWarning
        MPISearchCV(FailingClassifier(), {"C": [1.0, 10.0], "fail": [False, True]}, cv=3, out=out).fit(X, y)
    return out


@pytest.fixture(scope="module")
def mpi_run(iris: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not MPIEXEC.exists():
        pytest.skip("no mpiexec next to the Python interpreter")
    root = tmp_path_factory.mktemp("mpi")
    config = root / "mpi.toml"
    config.write_text(MPI_CONFIG.format(data=iris))
    cmd = [str(MPIEXEC), "-n", "3", sys.executable, "-m", "mpisearch", "run", str(config), "--out", str(root / "out")]
    env = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    return root / "out"


def task(params: dict, n_resources: int | None = None, **result: object) -> JournalEntry:
    """A journal entry of one task (fold 0) with these TaskResult fields."""
    return JournalEntry(params, n_resources, 0, TaskResult(**result))  # type: ignore[arg-type]


def summary_of(out: Path, capsys: pytest.CaptureFixture[str], plot: bool = False) -> str:
    assert report.main(str(out), plot) == 0
    return capsys.readouterr().out


def top_rows(text: str) -> list[str]:
    """Data rows of the printed top-N table (between its header line and the blank line)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("top ")) + 2
    return lines[start:lines.index("", start)]


# ---------------------------------------------------------------- summary


def test_summary_multi_metric(multi_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    best = json.loads((multi_run / "best.json").read_text())
    text = summary_of(multi_run, capsys)
    assert best["metric"] == "accuracy"
    assert f"best accuracy: {best['best_score']:.6g}" in text
    assert f"best parameters: {json.dumps(best['best_params'], sort_keys=True)}" in text
    rows = top_rows(text)
    assert len(rows) == report.TOP_N
    assert rows[0].split()[0] == "1" and json.dumps(best["best_params"], sort_keys=True) in rows[0]
    assert "f1_macro" in text and "top 10 of 12 points by accuracy" in text
    assert "failures: 0 failed tasks of 36" in text and "worker utilisation" in text and "search time" in text


def test_summary_failures_single_metric(fail_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = summary_of(fail_run, capsys)
    assert "best score: " in text and '"fail": false' in text.splitlines()[2]
    assert len(top_rows(text)) == 2  # only the two points that do not fail have a score
    assert "(2 without a score)" in text
    assert "failures: 6 failed tasks of 12 in the journal" in text
    failure_line = next(line for line in text.splitlines() if "ValueError: this point always fails" in line)
    assert failure_line.split()[:2] == ["6", "fit"]


def test_failures_grouped_by_last_traceback_line() -> None:
    trace = 'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: bad C\n'
    journal = [task({}, error=trace, reason="fit"), task({}, error=trace, reason="fit"), task({}),
               task({}, error="TaskTimeout: task timed out after 1s and was killed\n", reason="timeout")]
    assert report.failures(journal) == [(2, "fit", "ValueError: bad C"),
                                        (1, "timeout", "TaskTimeout: task timed out after 1s and was killed")]


# ---------------------------------------------------------------- plots and HTML


class PageParser(HTMLParser):
    """Rows of each table's body (by class) and the <img> sources."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, int] = {}
        self.images: list[str] = []
        self.table: str | None = None
        self.in_body = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag == "table":
            self.table = attr.get("class") or ""
            self.rows[self.table] = 0
        elif tag == "tbody":
            self.in_body = True
        elif tag == "tr" and self.in_body and self.table is not None:
            self.rows[self.table] += 1
        elif tag == "img":
            self.images.append(attr["src"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self.in_body = False
        elif tag == "table":
            self.table = None


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def check_png(path: Path) -> None:
    import matplotlib.image

    width, height = png_size(path)
    assert width > MIN_PNG_SIDE and height > MIN_PNG_SIDE, (path, width, height)
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[:2] == (height, width)
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 10  # drawn on, not blank


def test_plot_writes_pngs_and_html(multi_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    text = summary_of(multi_run, capsys, plot=True)
    out = multi_run / report.REPORT_DIR
    names = ["params.png", "best_so_far.png", "timeline.png", "index.html"]
    for name in names:
        assert str(out / name) in text
    for name in names[:-1]:
        check_png(out / name)
    page = (out / "index.html").read_text(encoding="utf-8")
    parser = PageParser()
    parser.feed(page)
    assert parser.rows["top"] == report.TOP_N
    assert sorted(parser.images) == sorted(names[:-1])
    assert all((out / src).is_file() for src in parser.images)
    best = json.loads((multi_run / "best.json").read_text())
    assert f"{best['best_score']:.6g}" in page and parser.rows["facts"] > 5


def test_plot_with_failures(fail_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    summary_of(fail_run, capsys, plot=True)
    out = fail_run / report.REPORT_DIR
    for name in ("params.png", "best_so_far.png", "timeline.png"):
        check_png(out / name)
    parser = PageParser()
    parser.feed((out / "index.html").read_text(encoding="utf-8"))
    assert parser.rows["top"] == 2 and parser.rows["failures"] == 1


def test_params_figure_axes(multi_run: Path, fail_run: Path) -> None:
    pytest.importorskip("matplotlib")
    ax = report.params_figure(report.load(multi_run)).axes[0]
    assert ax.get_xscale() == "log" and ax.get_xlabel().startswith("var_smoothing")
    axes = [a for a in report.params_figure(report.load(fail_run)).axes if a.get_visible()]
    assert [a.get_xlabel().split()[0] for a in axes] == ["C", "fail"]
    assert [t.get_text() for t in axes[1].get_xticklabels()] == ["false", "true"]  # categorical


@pytest.mark.parametrize(("values", "log"), [
    (GRID, True), ([1e-4, 3e-4, 1e-3, 3e-3], True), ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], False),
    ([0.5, 1.0], False), ([-1.0, 10.0, 1000.0], False), ([0.0, 1.0, 100.0, 1e4], False),
])
def test_log_axis_inferred_from_values(values: list[float], log: bool) -> None:
    assert report.use_log(values) is log


def test_best_so_far(multi_run: Path) -> None:
    run = report.load(multi_run)
    scores, best = report.best_so_far(run)
    assert len(scores) == len(GRID)
    assert all(b >= a for a, b in zip(best, best[1:], strict=False))
    assert best[-1] == pytest.approx(run.best["best_score"])


def test_completion_order_is_last_fold_end() -> None:
    journal = [task({"C": 1}, started=0.1, fit_time=1.0), task({"C": 2}, started=0.5, fit_time=1.0),
               task({"C": 1}, started=1.0, fit_time=2.0, score_time=0.5)]
    assert report.completion_order(journal) == ['{"C": 2}', '{"C": 1}']


def test_halving_rungs_with_the_same_parameters_stay_apart() -> None:
    journal = [task({"C": 1}, started=1.0, fit_time=1.0, n_resources=10),
               task({"C": 1}, started=5.0, fit_time=1.0, n_resources=30),
               task({"C": 2}, started=2.0, fit_time=1.0, n_resources=10)]
    assert report.completion_order(journal) == [point_key({"C": 1}, 10), point_key({"C": 2}, 10),
                                                point_key({"C": 1}, 30)]


def test_timeline_lanes() -> None:
    journal = [task({}, rank=2, started=10.0, fit_time=1.0, score_time=0.5),
               task({}, rank=1, started=10.2, fit_time=0.3, error="ValueError: x"),
               task({}, rank=2, started=11.5, fit_time=1.0)]
    assert report.timeline(journal) == {1: [(pytest.approx(0.2), pytest.approx(0.5), True)],
                                        2: [(0.0, 1.5, False), (1.5, 2.5, False)]}


def test_timeline_one_lane_per_worker_rank(mpi_run: Path) -> None:
    run = report.load(mpi_run)
    lanes = report.timeline(run.journal)
    workers = {int(rank): w["tasks"] for rank, w in run.info["workers"].items()}
    assert run.info["ranks"] == 3 and sorted(workers) == [1, 2]
    assert set(lanes) <= set(workers) and lanes  # rank 0 coordinates: it has no lane
    # a stolen task runs twice but is journaled once: run.json may count more tasks than the lane shows
    assert all(len(lanes[rank]) <= workers[rank] for rank in lanes)
    assert sum(len(bars) for bars in lanes.values()) == run.info["tasks"] == len(run.journal)
    assert all(end >= start >= 0 for bars in lanes.values() for start, end, _ in bars)
    pytest.importorskip("matplotlib")
    ax = report.timeline_figure(run).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [f"rank {r}" for r in lanes]


# ---------------------------------------------------------------- bad directories


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nowhere"):
        report.main(str(tmp_path / "nowhere"), False)


def test_directory_without_results_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cv_results.csv is missing"):
        report.main(str(tmp_path), False)


def test_run_with_only_a_journal_says_what_failed(tmp_path: Path) -> None:
    line = {"point": 0, "params": {"C": 1}, "fold": 0, "scores": {}, "fit_time": 0.1, "score_time": 0.0,
            "error": "Traceback:\nValueError: always\n", "reason": "fit", "rank": 1, "start": 1.0}
    (tmp_path / "journal.jsonl").write_text(json.dumps(line) + "\n")
    (tmp_path / "run.json").write_text('{"status": "running"}')
    with pytest.raises(InputError, match="status 'running', 1 tasks.*1 failed: ValueError: always"):
        report.main(str(tmp_path), False)


@pytest.mark.parametrize(("name", "content"), [
    ("best.json", "{not json"), ("best.json", '{"metric": "accuracy"}'), ("run.json", "[1, 2"),
    ("cv_results.csv", "a,b\n1,2\n"), ("cv_results.csv", ""), ("journal.jsonl", "garbage\nmore garbage\n"),
])
def test_corrupt_file_is_named(multi_run: Path, tmp_path: Path, name: str, content: str) -> None:
    for file in ("best.json", "run.json", "cv_results.csv", "journal.jsonl"):
        (tmp_path / file).write_bytes((multi_run / file).read_bytes())
    (tmp_path / name).write_text(content)
    with pytest.raises(InputError, match=name.replace(".", r"\.")):
        report.main(str(tmp_path), False)


def test_warnings_from_run_json(multi_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for file in ("best.json", "cv_results.csv", "journal.jsonl"):
        (tmp_path / file).write_bytes((multi_run / file).read_bytes())
    info = json.loads((multi_run / "run.json").read_text())
    info["warnings"] = {"ConvergenceWarning: lbfgs failed to converge": 4, "UserWarning: odd": 1}
    (tmp_path / "run.json").write_text(json.dumps(info))
    text = summary_of(tmp_path, capsys)
    assert "warnings: 5 warned tasks" in text
    assert next(line for line in text.splitlines() if "lbfgs" in line).split()[0] == "4"
    parser = PageParser()
    parser.feed(report.write_html(report.load(tmp_path), [], tmp_path / "index.html").read_text(encoding="utf-8"))
    assert parser.rows["warn"] == 2 and parser.images == []


def test_journal_without_times_gives_no_timeline(multi_run: Path, tmp_path: Path) -> None:
    """Journals of older versions have no rank/start: the summary works, the timeline is left out."""
    for file in ("best.json", "run.json", "cv_results.csv"):
        (tmp_path / file).write_bytes((multi_run / file).read_bytes())
    lines = [json.loads(line) for line in (multi_run / "journal.jsonl").read_text().splitlines()]
    old = [{k: v for k, v in e.items() if k not in ("rank", "start")} for e in lines]
    (tmp_path / "journal.jsonl").write_text("".join(json.dumps(e) + "\n" for e in old))
    run = report.load(tmp_path)
    assert len(run.journal) == len(lines) and report.timeline(run.journal) == {}
    pytest.importorskip("matplotlib")
    assert [f.name for f in report.write_plots(run, tmp_path / "report")] == ["params.png", "best_so_far.png"]


def test_torn_journal_line_is_skipped(multi_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for file in ("best.json", "run.json", "cv_results.csv", "journal.jsonl"):
        (tmp_path / file).write_bytes((multi_run / file).read_bytes())
    with (tmp_path / "journal.jsonl").open("a") as fh:
        fh.write('{"point": 3, "params": {"C"')
    assert len(report.load(tmp_path).journal) == 3 * len(GRID)
    assert "failures: 0 failed tasks of 36" in summary_of(tmp_path, capsys)
