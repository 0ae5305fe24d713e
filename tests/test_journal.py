"""The journal's lines: byte for byte what json.dumps writes for the line's dict, on awkward values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mpisearch.journal import Journal, read_entries
from mpisearch.space import jsonable
from mpisearch.types import Failure, TaskResult

AWKWARD_FLOATS = [0.0, -0.0, 1.0, -2.5, 1e300, -1e-300, 5e-324, 0.1 + 0.2, 1764786000.123456,
                  math.nan, math.inf, -math.inf, np.float64(0.75), np.float64(math.nan), 3, np.float64(-0.0)]
PARAMS = [
    {"C": 1.0},
    {"C": np.float64(0.5), "kernel": "rbf", "gamma": None},
    {"hidden": (10, np.int64(20)), "nested": {"a": [1, 2.5, None], "b": {"c": "d\u00e9\"\n"}}, "flag": True},
    {"estimator": [("scale", None)], "alpha": np.int64(3), "tol": -0.0, "big": math.inf},
    {},
]


def reference_line(point_id, fold, result, params, n_resources=None) -> str:
    """The line as the journal's contract says: json.dumps of the whole line's dict."""
    line = {"point": point_id, "params": jsonable(params), "fold": fold, "scores": result.scores,
            "fit_time": result.fit_time, "score_time": result.score_time, "error": result.error,
            "reason": result.reason, "rank": result.rank, "start": result.started}
    if result.train_scores:
        line["train_scores"] = result.train_scores
    if n_resources is not None:
        line["n_resources"] = int(n_resources)
    return json.dumps(line) + "\n"


def results() -> list[TaskResult]:
    out = []
    for i, value in enumerate(AWKWARD_FLOATS):
        other = AWKWARD_FLOATS[(i * 7 + 3) % len(AWKWARD_FLOATS)]
        out.append(TaskResult({"score": value}, fit_time=other, score_time=value, started=other, rank=i))
        out.append(TaskResult({"accuracy": other, "f1 \u00e9": value, "x\"y": 0.5}, fit_time=value,
                              score_time=0.0, started=1764786000.5, rank=None,
                              train_scores={"accuracy": value, "f1 \u00e9": other}))
    out += [
        TaskResult({}, 0.25, 0.0, error="Traceback (most recent call last):\n  ValueError: \"bad\" \u00e9\t",
                   reason=Failure.FIT, rank=3, started=12.5),
        TaskResult({"score": math.nan}, 0.25, 0.0, error="x", reason="crash", rank=None),
        TaskResult({"score": 1.0}, 0.5, 0.1, reason="timeout", rank=2),  # a reason without an error
        TaskResult({"score": 1.0}, 0.5, 0.1, rank=True),  # a bool rank: json writes true
        TaskResult({"score": True, "n": 7}, 1, 2, rank=np.int64(4).item()),  # ints where floats usually are
        TaskResult({1: 0.5}, 0.5, 0.1),  # a key that is not str: json writes "1"
        TaskResult({"score": 0.5}, 0.5, 0.1, train_scores={"score": math.inf}),
    ]
    return out


@pytest.mark.parametrize("n_resources", [None, 3, np.int64(27)])
def test_every_line_is_what_json_dumps_writes(tmp_path, n_resources):
    journal = Journal.open(tmp_path)
    expected = []
    for i, result in enumerate(results()):
        point_id, fold = i // 3, i % 3
        params = PARAMS[point_id % len(PARAMS)]
        journal.write(point_id, fold, result, params, n_resources)
        expected.append(reference_line(point_id, fold, result, params, n_resources))
    journal.stop(99, PARAMS[2], n_resources)
    expected.append(json.dumps({"point": 99, "params": jsonable(PARAMS[2]), "stopped": True,
                                **({} if n_resources is None else {"n_resources": int(n_resources)})}) + "\n")
    journal.close()
    lines = (tmp_path / "journal.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    assert len(lines) == len(expected)
    for got, want in zip(lines, expected, strict=True):
        assert got == want


def test_lines_read_back_as_the_results_written(tmp_path):
    journal = Journal.open(tmp_path)
    written = [r for r in results() if all(isinstance(k, str) for k in r.scores)]
    for i, result in enumerate(written):
        journal.write(i, 0, result, PARAMS[i % len(PARAMS)])
    journal.close()
    entries = read_entries(tmp_path).entries
    assert len(entries) == len(written)
    for entry, result in zip(entries, written, strict=True):
        got = entry.result
        assert json.dumps([got.scores, got.fit_time, got.score_time, got.error, got.reason, got.rank,
                           got.train_scores]) == \
            json.dumps([result.scores, result.fit_time, result.score_time, result.error, result.reason,
                        result.rank, result.train_scores])
        assert got.started == result.started or math.isnan(result.started)


def test_a_point_keeps_its_first_parameters_line_for_every_fold(tmp_path):
    """A point's parameters are encoded once: later folds of the same point repeat the same text."""
    journal = Journal.open(tmp_path)
    params = {"C": [1.0, {"x": np.float64(2.0)}]}
    for fold in range(3):
        journal.write(5, fold, TaskResult({"score": 0.5}, 0.1, 0.0), params)
    journal.close()
    lines = (tmp_path / "journal.jsonl").read_text().splitlines()
    assert [json.loads(line)["params"] for line in lines] == [{"C": [1.0, {"x": 2.0}]}] * 3
    assert [json.loads(line)["fold"] for line in lines] == [0, 1, 2]
