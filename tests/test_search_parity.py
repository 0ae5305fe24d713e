"""MPISearchCV against scikit-learn's GridSearchCV, in one process: return_train_score,
weighted scores, callable and multi-metric refit (the MPI side: tests/test_mpi.py)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from search_cases import assert_identical, case, cases
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.svm import SVC

from mpisearch import MPISearchCV
from mpisearch.files import JOURNAL
from mpisearch.report import load, top_table


@pytest.mark.parametrize("name", [c.name for c in cases()])
def test_same_as_gridsearchcv(name):
    c = case(name)
    ours = c.make(MPISearchCV).fit(c.X, c.y, **c.fit_params)
    theirs = c.make(GridSearchCV).fit(c.X, c.y, **c.fit_params)
    assert_identical(ours, theirs)
    assert list(ours.cv_results_) == list(theirs.cv_results_)  # the column order too
    if hasattr(theirs, "best_estimator_"):
        np.testing.assert_array_equal(ours.predict(c.X), theirs.predict(c.X))


def test_weights_change_the_test_scores_as_in_scikit_learn():
    c = case("weighted-train-scores")
    weighted = c.make(MPISearchCV).fit(c.X, c.y, **c.fit_params)
    unweighted_scores = c.make(MPISearchCV).fit(c.X, c.y).cv_results_["mean_test_score"]
    assert not np.array_equal(weighted.cv_results_["mean_test_score"], unweighted_scores)


def test_a_scorer_without_weights_is_named_in_a_warning_as_in_scikit_learn():
    c = case("weighted-multimetric")
    with pytest.warns(UserWarning, match="The scoring err=make_scorer.*does not support sample_weight") as seen:
        c.make(MPISearchCV).fit(c.X, c.y, **c.fit_params)
    assert sum("does not support sample_weight" in str(w.message) for w in seen) == 1


@pytest.mark.parametrize("refit", [True, "nope"])
def test_multimetric_refit_must_name_a_metric_as_in_scikit_learn(refit):
    X, y = load_iris(return_X_y=True)
    kwargs = {"scoring": ["accuracy", "f1_macro"], "refit": refit}
    with pytest.raises(ValueError) as theirs:
        GridSearchCV(SVC(), {"C": [1.0]}, **kwargs).fit(X, y)
    with pytest.raises(ValueError, match=re.escape(str(theirs.value))):
        MPISearchCV(SVC(), {"C": [1.0]}, **kwargs).fit(X, y)


@pytest.mark.parametrize("bad, error", [(lambda r: 1.5, TypeError), (lambda r: 99, IndexError)])
def test_a_callable_refit_returning_no_row_raises_as_in_scikit_learn(bad, error):
    X, y = load_iris(return_X_y=True)
    for cls in (GridSearchCV, MPISearchCV):
        with pytest.raises(error, match="best_index_"):
            cls(SVC(), {"C": [1.0, 2.0]}, refit=bad).fit(X, y)


def test_train_scores_come_back_from_a_journal_and_old_journals_still_resume(tmp_path):
    X, y = load_iris(return_X_y=True)
    grid, out = {"C": [0.1, 1.0, 10.0]}, tmp_path / "run"
    theirs = GridSearchCV(LogisticRegression(max_iter=300), grid, cv=3, return_train_score=True).fit(X, y)

    def search(**kwargs):
        return MPISearchCV(LogisticRegression(max_iter=300), grid, cv=3, out=out, **kwargs).fit(X, y)

    search()  # a journal without train scores, as earlier versions wrote them
    lines = (out / JOURNAL).read_text().splitlines()
    assert len(lines) == 9 and all("train_scores" not in json.loads(line) for line in lines)
    resumed = search(resume=True, return_train_score=True)  # those tasks run again, with train scores
    assert len((out / JOURNAL).read_text().splitlines()) == 18
    assert_identical(resumed, theirs)
    again = search(resume=True, return_train_score=True)  # now every task is in the journal
    assert len((out / JOURNAL).read_text().splitlines()) == 18
    assert_identical(again, theirs)
    assert search(resume=True).cv_results_.keys() == GridSearchCV(
        LogisticRegression(max_iter=300), grid, cv=3).fit(X, y).cv_results_.keys()


def test_report_shows_the_train_mean(tmp_path):
    X, y = load_iris(return_X_y=True)
    search = MPISearchCV(SVC(), {"C": [0.1, 10.0]}, cv=3, out=tmp_path, return_train_score=True).fit(X, y)
    header, rows = top_table(load(tmp_path))
    assert header[2] == "train score"
    best = search.cv_results_["mean_train_score"][search.best_index_]
    assert rows[0][2] == f"{best:.4f}"
