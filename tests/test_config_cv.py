"""The config file's reach: [cv] class/params, [data] groups and metric lists named as scikit-learn names them."""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, GroupKFold

from mpisearch import config
from mpisearch.data import hdf5
from mpisearch.errors import InputError
from mpisearch.runner import run_config

GROUPS = np.arange(150) % 7


def write_config(tmp_path: Path, cv: str, data_extra: str = 'groups = "g"', metrics: str = '["accuracy"]') -> Path:
    X, y = load_iris(return_X_y=True)
    data = hdf5.write(tmp_path / "iris.h5", X, y)
    with h5py.File(data, "a") as fh:
        fh["g"] = GROUPS
        fh["short"] = GROUPS[:10]
    path = tmp_path / "run.toml"
    path.write_text(f'[data]\npath = "iris.h5"\n{data_extra}\n\n'
                    '[estimator]\nclass = "sklearn.linear_model.LogisticRegression"\nparams = { max_iter = 300 }\n\n'
                    f'[space]\nC = [0.1, 1.0, 10.0]\n\n[cv]\n{cv}\n\n[scoring]\nmetrics = {metrics}\n')
    return path


def test_splitter_with_groups_equals_scikit_learn(tmp_path):
    path = write_config(tmp_path, 'class = "sklearn.model_selection.GroupKFold"\nparams = { n_splits = 3 }')
    outcome = run_config(path, out=str(tmp_path / "out"), verbosity=0)
    X, y = load_iris(return_X_y=True)
    theirs = GridSearchCV(LogisticRegression(max_iter=300), {"C": [0.1, 1.0, 10.0]}, cv=GroupKFold(n_splits=3),
                          scoring=["accuracy"], refit="accuracy").fit(X, y, groups=GROUPS)
    for key in ("mean_test_accuracy", "split2_test_accuracy", "rank_test_accuracy"):
        np.testing.assert_allclose(outcome.cv_results[key], theirs.cv_results_[key], rtol=0, atol=1e-12)
    assert outcome.rank_metric == "accuracy"


@pytest.mark.parametrize("cv, data_extra, message", [
    ('class = "sklearn.model_selection.GroupKFold"\nfolds = 3', "", "cv.folds: not used with cv.class"),
    ('class = "sklearn.model_selection.GroupKFold"\nparams = { n_split = 3 }', "",
     "cv.params: 'n_split' is not a parameter of GroupKFold (did you mean 'n_splits'?)"),
    ('class = "GroupKFlod"', "", "cv.class: 'GroupKFlod' is not a splitter of sklearn.model_selection"),
    ('class = "os.system"', "", "cv.class: 'os.system' is not a splitter of sklearn.model_selection"),
    ("params = { n_splits = 3 }", "", "cv.params: given without cv.class"),
])
def test_bad_cv_is_named(tmp_path, cv, data_extra, message):
    with pytest.raises(InputError, match=re.escape(message)):
        config.load(write_config(tmp_path, cv, data_extra))


def test_groups_of_another_length_are_refused(tmp_path):
    path = write_config(tmp_path, 'class = "sklearn.model_selection.GroupKFold"', 'groups = "short"')
    with pytest.raises(InputError, match="dataset 'short' \\(groups\\) has 10 labels but X has 150 rows"):
        run_config(path, out=str(tmp_path / "out"), verbosity=0)


def test_return_train_score_gives_scikit_learns_train_columns_in_csv_and_report(tmp_path, capsys):
    from mpisearch.report import main as report

    path = write_config(tmp_path, "folds = 3", "")
    with path.open("a") as fh:
        fh.write("\n[search]\nreturn_train_score = true\n")
    outcome = run_config(path, out=str(tmp_path / "out"), verbosity=0)
    X, y = load_iris(return_X_y=True)
    theirs = GridSearchCV(LogisticRegression(max_iter=300), {"C": [0.1, 1.0, 10.0]}, cv=3, scoring=["accuracy"],
                          refit="accuracy", return_train_score=True).fit(X, y)
    train = [k for k in theirs.cv_results_ if "_train_" in k]
    assert len(train) == 5 and train == [k for k in outcome.cv_results if "_train_" in k]
    header = (tmp_path / "out" / "cv_results.csv").read_text().splitlines()[0].split(",")
    for key in train:
        np.testing.assert_array_equal(outcome.cv_results[key], theirs.cv_results_[key], err_msg=key)
        assert key in header
    report(str(tmp_path / "out"), False)
    assert "train accuracy" in capsys.readouterr().out


def test_return_train_score_must_be_true_or_false(tmp_path):
    path = write_config(tmp_path, "folds = 3", "")
    with pytest.raises(InputError, match=re.escape("search.return_train_score: expected true or false, got 'yes'")):
        config.load(path, ["search.return_train_score=yes"])
