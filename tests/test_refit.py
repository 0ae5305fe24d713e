"""The refit's warnings are summarised as the fits' are, not printed raw."""

from __future__ import annotations

import warnings

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from mpisearch import MPISearchCV
from mpisearch.refit import RefitWarning


def test_refit_warnings_are_summarised_once():
    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        MPISearchCV(LogisticRegression(max_iter=2), {"C": [1.0]}, cv=2).fit(X, y)
    refit = [str(w.message) for w in caught if w.category is RefitWarning]
    assert len(refit) == 1 and refit[0].startswith("the refit warned: ConvergenceWarning: ")
    assert not [w for w in caught if w.category.__name__ == "ConvergenceWarning"]
