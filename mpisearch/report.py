"""``mpisearch report DIR [--plot]``: summary of a run's output, plots and a static HTML page.

Reads only the files a run writes (cv_results.csv, best.json, run.json, journal.jsonl) with the
standard library and numpy; matplotlib is imported only for ``--plot``.
"""

from __future__ import annotations

import csv
import html
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import replacing, write_text
from .errors import InputError
from .files import BEST, CV_RESULTS, REPORT_DIR, RUN_INFO
from .journal import JournalEntry, read_entries
from .space import point_key
from .types import TaskResult

TOP_N = 10
LOG_DECADES = 2.0  # numeric parameters spanning more decades than this get a log axis
MIN_LOG_DECADES = 1.0  # ... and from this span on, those whose values look like a log grid
PLOT_COLUMNS = 3  # subplots per row in the parameter figure
PARAM_FIG_SIZE = (4.5, 3.6)  # inches per subplot
PARAM_FIG_MIN_WIDTH = 7.0  # room for the title over a single subplot
PROGRESS_FIG_SIZE = (7.0, 4.2)
GANTT_FIG_WIDTH = 10.0
GANTT_LANE_HEIGHT = 0.45  # inches per worker rank
GANTT_MIN_HEIGHT = 3.2
DPI = 100
BAR_HEIGHT = 0.8
OK_COLOUR = "tab:blue"
FAILED_COLOUR = "tab:red"
BEST_COLOUR = "tab:orange"
FAILED_MARK_Y = 0.03  # height of the failed-point crosses, in axes fraction
CATEGORY_JITTER = 0.08  # spread of points sharing one category, in category widths

Table = tuple[list[str], list[list[str]]]  # header, rows


@dataclass
class Point:
    index: int
    params: dict[str, Any]
    mean: float
    std: float
    rank: int | None
    others: dict[str, float] = field(default_factory=dict)  # other metrics' means
    note: str = ""  # halving's iteration and resource; fold racing's stop
    n_resources: int | None = None  # halving's resource: the same parameters in two rungs are two points
    train: float = math.nan  # mean train score of the ranking metric (return_train_score), NaN without

    @property
    def key(self) -> str:
        return point_key(self.params, self.n_resources)


@dataclass
class Run:
    path: Path
    metric: str  # the ranking metric as the csv names it ("score" for a single metric)
    others: list[str]  # further metrics
    points: list[Point]
    best: dict[str, Any]
    info: dict[str, Any]
    journal: list[JournalEntry]  # the tasks (lines of points stopped by fold racing are left out)


# ---------------------------------------------------------------- reading


def load(out_dir: str | Path) -> Run:
    """Read a run's output directory; InputError naming the file when it is missing or corrupt."""
    path = Path(out_dir)
    if not path.is_dir():
        raise InputError(f"report: {path} is not a directory (give a run's output directory)")
    best = _check_best(_read_json(path / BEST) or {}, path / BEST)
    journal = read_journal(path)
    info = _read_json(path / RUN_INFO) or {}
    rows = _read_csv(path / CV_RESULTS, info, journal)
    metric, others = _metrics(rows[0].keys(), best, path / CV_RESULTS)
    points = [_point(i, row, metric, others, path / CV_RESULTS) for i, row in enumerate(rows)]
    if not best:
        best = _best_from_points(points, metric)
    return Run(path, metric, others, points, best, info, journal)


def _read_json(file: Path) -> dict[str, Any] | None:
    if not file.is_file():
        return None
    try:
        obj = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"report: {file} is not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise InputError(f"report: {file} does not hold a JSON object")
    return obj


def read_journal(out_dir: Path) -> list[JournalEntry]:
    """The journal's tasks; a torn last line is skipped, any other bad line is an error naming it."""
    return [e for e in read_entries(out_dir).entries if e.result is not None]


BEST_KEYS = ("best_params", "best_score", "best_index", "metric")


def _check_best(best: dict[str, Any], file: Path) -> dict[str, Any]:
    missing = [k for k in BEST_KEYS if k not in best]
    if best and missing:
        raise InputError(f"report: {file} is not a valid best.json (no {', '.join(missing)})")
    if best and not isinstance(best["best_score"], (int, float)):
        raise InputError(f"report: {file} is not a valid best.json (best_score is not a number)")
    return best


def _read_csv(file: Path, info: dict[str, Any], journal: list[JournalEntry]) -> list[dict[str, str]]:
    if not file.is_file():
        status = info.get("status", "unknown")
        failed = sum(1 for e in journal if _error(e))
        raise InputError(f"report: {file} is missing (run status '{status}', {len(journal)} tasks in the journal, "
                         f"{failed} failed{_first_failure(journal)}); is it a finished run's output directory?")
    try:
        with file.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"report: {file} is not a readable CSV file ({exc})") from None
    if not rows or "params" not in rows[0]:
        raise InputError(f"report: {file} holds no points (no rows or no 'params' column)")
    return rows


def _first_failure(journal: list[JournalEntry]) -> str:
    groups = failures(journal)
    return f": {groups[0][2]}" if groups else ""


def _metrics(columns: Any, best: dict[str, Any], file: Path) -> tuple[str, list[str]]:
    """The ranking metric (best.json's, as the csv spells it) and the other metrics, in csv order."""
    names = [c[len("mean_test_"):] for c in columns if c.startswith("mean_test_")]
    if not names:
        raise InputError(f"report: {file} has no mean_test_<metric> column")
    metric = best.get("metric")
    if metric not in names:
        metric = "score" if "score" in names else names[0]
    return metric, [n for n in names if n != metric]


def _point(i: int, row: dict[str, str], metric: str, others: list[str], file: Path) -> Point:
    try:
        params = json.loads(row["params"])
    except (ValueError, TypeError) as exc:
        raise InputError(f"report: {file} row {i + 2}: 'params' is not JSON ({exc})") from None
    rank = _float(row.get(f"rank_test_{metric}"))
    n_resources = _float(row.get("n_resources"))
    return Point(i, params if isinstance(params, dict) else {"params": params},
                 _float(row.get(f"mean_test_{metric}")), _float(row.get(f"std_test_{metric}")),
                 None if math.isnan(rank) else int(rank), {m: _float(row.get(f"mean_test_{m}")) for m in others},
                 _note(row), None if math.isnan(n_resources) else int(n_resources),
                 _float(row.get(f"mean_train_{metric}")))


def _note(row: dict[str, str]) -> str:
    notes = []
    if row.get("n_resources"):
        notes.append(f"iter {row.get('iter', '?')}, n_resources {row['n_resources']}")
    stopped = _float(row.get("stopped_at_fold"))
    if stopped >= 0:
        notes.append(f"stopped after {int(stopped)} folds")
    return "; ".join(notes)


def _float(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


def _best_from_points(points: list[Point], metric: str) -> dict[str, Any]:
    scored = ranked(points)
    if not scored:
        return {}
    top = scored[0]
    return {"best_params": top.params, "best_score": top.mean, "best_index": top.index, "metric": metric}


def ranked(points: list[Point]) -> list[Point]:
    """Points with a score, best first (by the csv's rank, then by mean score)."""
    scored = [p for p in points if math.isfinite(p.mean)]
    return sorted(scored, key=lambda p: (p.rank if p.rank is not None else math.inf, -p.mean, p.index))


# ---------------------------------------------------------------- analysis


def _error(entry: JournalEntry) -> str | None:
    return entry.result.error if entry.result is not None else None


def failures(journal: list[JournalEntry]) -> list[tuple[int, str, str]]:
    """Failed tasks grouped by (reason, last traceback line): (count, reason, line), most frequent first."""
    counts: Counter[tuple[str, str]] = Counter()
    for r in (e.result for e in journal if _error(e)):
        lines = [ln.strip() for ln in str(r.error).splitlines() if ln.strip()]
        counts[(str(r.reason or "error"), lines[-1] if lines else "error")] += 1
    return [(n, reason, line) for (reason, line), n in counts.most_common()]


def timed(journal: list[JournalEntry]) -> list[JournalEntry]:
    """Entries that say when they ran (journals of older versions do not)."""
    return [e for e in journal if e.result is not None and e.result.started > 0]


def task_end(result: TaskResult) -> float:
    return result.started + (result.fit_time or 0.0) + (result.score_time or 0.0)


def timeline(journal: list[JournalEntry]) -> dict[int, list[tuple[float, float, bool]]]:
    """Lanes of the Gantt chart: rank -> [(start, end, failed)] in seconds since the first task started."""
    tasks = sorted((e.result for e in timed(journal)), key=lambda r: r.started)
    if not tasks:
        return {}
    t0 = tasks[0].started
    lanes: dict[int, list[tuple[float, float, bool]]] = {}
    for r in tasks:
        lane = lanes.setdefault(-1 if r.rank is None else int(r.rank), [])
        lane.append((r.started - t0, task_end(r) - t0, bool(r.error)))
    return dict(sorted(lanes.items()))


def completion_order(journal: list[JournalEntry]) -> list[str]:
    """Point keys (mpisearch.space.point_key) in the order their last fold finished."""
    done: dict[str, float] = {}
    for entry in timed(journal):
        done[entry.key] = max(done.get(entry.key, -math.inf), task_end(entry.result))
    return sorted(done, key=done.__getitem__)


def best_so_far(run: Run) -> tuple[list[float], list[float]]:
    """Each point's mean score in completion order, and the best score so far (NaN until one scores)."""
    means = {p.key: p.mean for p in run.points}
    order = completion_order(run.journal) or [p.key for p in run.points]
    scores = [means.get(key, math.nan) for key in order]
    best, running = [], math.nan
    for s in scores:
        running = s if math.isnan(running) or (math.isfinite(s) and s > running) else running
        best.append(running)
    return scores, best


# ---------------------------------------------------------------- tables


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def top_table(run: Run, n: int = TOP_N) -> Table:
    notes = any(p.note for p in run.points)
    train = any(not math.isnan(p.train) for p in run.points)  # return_train_score: the train mean too
    header = ["rank", f"{run.metric} (mean ± std)", *([f"train {run.metric}"] if train else []), *run.others,
              "params", *(["note"] if notes else [])]
    rows = [[str(p.rank if p.rank is not None else "-"), f"{p.mean:.4f} ± {p.std:.4f}",
             *([f"{p.train:.4f}"] if train else []),
             *(f"{p.others[m]:.4f}" for m in run.others), json.dumps(p.params, sort_keys=True),
             *([p.note] if notes else [])]
            for p in ranked(run.points)[:n]]
    return header, rows


def failure_table(run: Run) -> Table:
    return ["tasks", "reason", "last line"], [[str(n), r, line] for n, r, line in failures(run.journal)]


def warning_table(run: Run) -> Table:
    warned = run.info.get("warnings") or {}
    return ["tasks", "warning"], [[str(n), str(text)] for text, n in warned.items()]


def facts(run: Run) -> list[tuple[str, str]]:
    """Run facts from run.json (those present), plus what the csv and journal say."""
    info = run.info
    items: list[tuple[str, Any]] = [
        ("status", info.get("status")), ("strategy", info.get("strategy")), ("ranks", info.get("ranks")),
        ("hosts", ", ".join(hosts(info)) or None), ("points", len(run.points)), ("tasks", info.get("tasks")),
        ("resumed tasks", info.get("resumed_tasks") or None),
        ("failed tasks", sum(n for n, _, _ in failures(run.journal))),
        *((label, _seconds(info.get(key))) for label, key in TIMES),
        ("worker utilisation", _percent(info.get("utilisation"))),
        ("stolen tasks", info.get("stolen_tasks") or None),
        ("duplicate results", info.get("duplicate_results") or None),
        ("stopped", info.get("stopped")), ("timed out", info.get("timed_out") or None),
    ]
    return [(k, fmt(v)) for k, v in items if v is not None]


TIMES = (("search time", "search_s"), ("load time", "load_s"), ("broadcast time", "bcast_s"),
         ("refit time", "refit_s"), ("coordinator CPU time", "coordinator_cpu_s"))


def _seconds(value: Any) -> str | None:
    return f"{float(value):.2f} s" if isinstance(value, (int, float)) else None


def _percent(value: Any) -> str | None:
    return f"{float(value):.1%}" if isinstance(value, (int, float)) else None


def hosts(info: dict[str, Any]) -> list[str]:
    names = info.get("hosts")
    if isinstance(names, (list, dict)):
        return sorted(str(h) for h in names)
    found = {str(w.get("host")) for w in (info.get("workers") or {}).values() if isinstance(w, dict)}
    if info.get("coordinator_host"):
        found.add(str(info["coordinator_host"]))
    return sorted(found - {"None"})


def worker_table(run: Run) -> Table:
    header = ["rank", "host", "tasks", "busy (s)", "idle (s)", "busy share"]
    rows = []
    for rank, w in sorted((run.info.get("workers") or {}).items(), key=lambda kv: int(kv[0])):
        busy, idle = float(w.get("busy_s", math.nan)), float(w.get("idle_s", math.nan))
        share = busy / (busy + idle) if busy + idle > 0 else math.nan
        rows.append([str(rank), str(w.get("host", "")), str(w.get("tasks", "")), f"{busy:.2f}", f"{idle:.2f}",
                     f"{share:.0%}" if math.isfinite(share) else "-"])
    return header, rows


def best_lines(run: Run) -> list[str]:
    best = run.best
    if not best:
        return ["best point: none (no point has a score)"]
    std = next((p.std for p in run.points if p.index == best.get("best_index")), math.nan)
    return [f"best {run.metric}: {float(best['best_score']):.6g} ± {std:.3g} (point {best.get('best_index')})",
            f"best parameters: {json.dumps(best.get('best_params'), sort_keys=True)}"]


# ---------------------------------------------------------------- text


def render_table(table: Table, indent: str = "  ") -> list[str]:
    header, rows = table
    widths = [max(len(c) for c in col) for col in zip(header, *rows, strict=False)]
    widths[-1] = 0  # the last column (params, messages) is not padded
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]


def summary(run: Run) -> str:
    lines = [f"run {run.path}", *best_lines(run), ""]
    header, rows = top_table(run)
    unscored = len(run.points) - len(ranked(run.points))
    lines.append(f"top {len(rows)} of {len(run.points)} points by {run.metric}"
                 + (f" ({unscored} without a score)" if unscored else "") + ":")
    lines += [*render_table((header, rows)), ""]
    failed, warned, workers = failure_table(run), warning_table(run), worker_table(run)
    lines += _section(f"failures: {_total(failed)} failed tasks of {len(run.journal)} in the journal", failed)
    lines += _section(f"warnings: {_total(warned)} warned tasks", warned)
    lines += _section("run facts:", (["fact", "value"], [list(f) for f in facts(run)]))
    lines += _section(f"workers: {len(workers[1])}, busy and idle time per rank", workers)
    return "\n".join(lines).rstrip() + "\n"


def _section(title: str, table: Table) -> list[str]:
    return [title, *(render_table(table) if table[1] else []), ""]


def _total(table: Table) -> int:
    """Sum of the first (count) column."""
    return sum(int(row[0]) for row in table[1])


# ---------------------------------------------------------------- plots


def _figure(size: tuple[float, float]) -> Any:
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

    return Figure(figsize=size, dpi=DPI, layout="constrained")


def searched_params(points: list[Point]) -> list[str]:
    names: dict[str, None] = {}
    for p in points:
        names.update(dict.fromkeys(p.params))
    return list(names)


def is_numeric(values: list[Any]) -> bool:
    return bool(values) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def use_log(values: list[float]) -> bool:
    """A log axis for positive values spanning more than LOG_DECADES decades, or at least MIN_LOG_DECADES
    when their distinct values are spaced more evenly in log than in linear scale (a log grid)."""
    arr = np.unique(np.asarray(values, dtype=float))
    if arr.size < 2 or arr[0] <= 0:
        return False
    decades = float(np.log10(arr[-1] / arr[0]))
    if decades > LOG_DECADES:
        return True
    return decades >= MIN_LOG_DECADES and arr.size >= 3 and _unevenness(np.log10(arr)) < _unevenness(arr)


def _unevenness(sorted_values: np.ndarray) -> float:
    gaps = np.diff(sorted_values)
    return float(gaps.std() / gaps.mean())


def params_figure(run: Run) -> Any:
    names = searched_params(run.points) or ["(none)"]
    ncols = min(PLOT_COLUMNS, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig = _figure((max(PARAM_FIG_MIN_WIDTH, PARAM_FIG_SIZE[0] * ncols), PARAM_FIG_SIZE[1] * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, name in zip(axes, names, strict=False):
        _param_axis(ax, run, name)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    fig.suptitle(f"{run.metric} against each searched parameter (mean ± std over folds)")
    return fig


def _param_axis(ax: Any, run: Run, name: str) -> None:
    pts = [p for p in run.points if name in p.params]
    values = [p.params[name] for p in pts]
    label = name
    if is_numeric(values):
        x = np.asarray(values, dtype=float)
        if use_log(values):
            ax.set_xscale("log")
            label += " (log scale)"
    else:
        x = _category_positions(ax, values)
    ok = np.array([math.isfinite(p.mean) for p in pts], dtype=bool)
    scored = [p for p in pts if math.isfinite(p.mean)]
    ax.errorbar(x[ok], [p.mean for p in scored], yerr=[p.std if math.isfinite(p.std) else 0 for p in scored],
                fmt="o", ms=4, alpha=0.6, color=OK_COLOUR, ecolor="grey", capsize=2, label="point")
    if not ok.all():  # points without a score: crosses along the bottom edge
        ax.plot(x[~ok], np.full((~ok).sum(), FAILED_MARK_Y), "x", color=FAILED_COLOUR, ms=7,
                transform=ax.get_xaxis_transform(), label="no score (failed)")
    best = [i for i, p in enumerate(pts) if p.index == run.best.get("best_index")]
    if best:
        ax.plot(x[best], [pts[i].mean for i in best], "*", ms=14, color=BEST_COLOUR, label="best", zorder=3)
    ax.legend(loc="best", fontsize="small")
    ax.set_xlabel(label)
    ax.set_ylabel(f"mean test {run.metric}")
    ax.grid(alpha=0.3)


def _category_positions(ax: Any, values: list[Any]) -> np.ndarray:
    labels = sorted({json.dumps(v) for v in values})
    where = {label: i for i, label in enumerate(labels)}
    seen: Counter[str] = Counter()
    x = []
    for v in values:
        key = json.dumps(v)
        x.append(where[key] + CATEGORY_JITTER * ((seen[key] % 5) - 2))
        seen[key] += 1
    ax.set_xticks(range(len(labels)), [label.strip('"') for label in labels], rotation=30 if len(labels) > 4 else 0)
    ax.set_xlim(-0.5, len(labels) - 0.5)
    return np.asarray(x)


def progress_figure(run: Run) -> Any:
    scores, best = best_so_far(run)
    n = np.arange(1, len(scores) + 1)
    fig = _figure(PROGRESS_FIG_SIZE)
    ax = fig.subplots()
    ax.plot(n, scores, "o", ms=3, color="grey", alpha=0.6, label="point's mean score")
    failed = ~np.isfinite(np.asarray(scores, dtype=float))
    if failed.any():
        ax.plot(n[failed], np.full(failed.sum(), FAILED_MARK_Y), "x", color=FAILED_COLOUR, ms=7,
                transform=ax.get_xaxis_transform(), label="no score (failed)")
    ax.step(n, best, where="post", color=BEST_COLOUR, lw=2, label="best so far")
    ax.set_xlim(0.5, len(scores) + 0.5)
    ax.set_xlabel("points evaluated (in order of completion)")
    ax.set_ylabel(f"mean test {run.metric}")
    ax.set_title(f"best {run.metric} so far against evaluations")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    return fig


def timeline_figure(run: Run) -> Any:
    lanes = timeline(run.journal)
    fig = _figure((GANTT_FIG_WIDTH, max(GANTT_MIN_HEIGHT, 1.5 + GANTT_LANE_HEIGHT * len(lanes))))
    ax = fig.subplots()
    for y, bars in enumerate(lanes.values()):
        spans = [(s, max(e - s, 0.0)) for s, e, _ in bars]
        colours = [FAILED_COLOUR if failed else OK_COLOUR for _, _, failed in bars]
        ax.broken_barh(spans, (y - BAR_HEIGHT / 2, BAR_HEIGHT), facecolors=colours, edgecolor="white", lw=0.3)
    ax.set_yticks(range(len(lanes)), [f"rank {r}" for r in lanes])
    ax.set_ylim(-0.6, len(lanes) - 0.4)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the first task started")
    ax.set_title(f"tasks per worker rank ({sum(map(len, lanes.values()))} tasks)")
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=OK_COLOUR, label="ok"), Patch(color=FAILED_COLOUR, label="failed")],
              loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    ax.grid(axis="x", alpha=0.3)
    return fig


FIGURES = {"params": params_figure, "best_so_far": progress_figure, "timeline": timeline_figure}


def write_plots(run: Run, out: Path) -> list[Path]:
    """Write the PNGs into ``out``; the timeline only when there is a journal."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise InputError("report --plot needs matplotlib (pip install matplotlib)") from None
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for stem, make in FIGURES.items():
        if stem != "timeline" or timed(run.journal):
            with replacing(out / f"{stem}.png", binary=True) as fh:
                make(run).savefig(fh, format="png")
            files.append(out / f"{stem}.png")
    return files


# ---------------------------------------------------------------- HTML


def html_table(table: Table, cls: str) -> str:
    header, rows = table
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "\n".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}">\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>'


STYLE = ("body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}"
         "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:90%}th{background:#eee}"
         "img{max-width:100%;border:1px solid #ddd;margin:0.5em 0}code{background:#f4f4f4}")


IMAGE_TITLES = {"params": "Score against each searched parameter", "best_so_far": "Best score so far",
                "timeline": "Tasks per worker rank (timeline)"}


def write_html(run: Run, images: list[Path], file: Path) -> Path:
    top = top_table(run)
    parts = [f"<h1>mpisearch report</h1><p><code>{html.escape(str(run.path))}</code></p>",
             "".join(f"<p>{html.escape(line)}</p>" for line in best_lines(run)),
             f"<h2>Top {len(top[1])} of {len(run.points)} points by {html.escape(run.metric)}</h2>",
             html_table(top, "top")]
    parts += [f'<h2>{html.escape(IMAGE_TITLES.get(img.stem, img.stem))}</h2><img src="{html.escape(img.name)}" '
              f'alt="{html.escape(IMAGE_TITLES.get(img.stem, img.stem))}">' for img in images]
    for title, table, cls in (("Failures", failure_table(run), "failures"), ("Warnings", warning_table(run), "warn"),
                              ("Workers", worker_table(run), "workers")):
        if table[1]:
            parts += [f"<h2>{title}</h2>", html_table(table, cls)]
    parts += ["<h2>Run facts</h2>", html_table((["fact", "value"], [list(f) for f in facts(run)]), "facts")]
    body = "\n".join(parts)
    write_text(file, f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>mpisearch report: '
                    f"{html.escape(run.path.name)}</title><style>{STYLE}</style></head>\n<body>\n{body}\n"
                    "</body></html>\n")
    return file


# ---------------------------------------------------------------- entry point


def main(out_dir: str, plot: bool) -> int:
    """Print the summary of the run in ``out_dir``; with ``plot``, write PNGs and index.html to DIR/report/."""
    run = load(out_dir)
    print(summary(run), end="")
    if plot:
        out = run.path / REPORT_DIR
        try:
            images = write_plots(run, out)
            written = [*images, write_html(run, images, out / "index.html")]
        except OSError as exc:  # a read-only or full directory: the files already there stay whole
            raise InputError(f"report --plot: cannot write to {out}: {exc.strerror or exc}") from None
        print("\nwrote:")
        for path in written:
            print(f"  {path}")
    return 0
