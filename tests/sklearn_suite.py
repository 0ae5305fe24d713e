"""scikit-learn's own test file for its search classes, with mpisearch's drop-ins swapped in.

``swapped_copy`` writes the installed ``sklearn/model_selection/tests/test_search.py``
to a folder with its ``from sklearn.model_selection import (...)`` block importing
GridSearchCV, RandomizedSearchCV, HalvingGridSearchCV and HalvingRandomSearchCV from
mpisearch instead. Used by tests/test_sklearn_suite.py; also runnable by hand:
``python tests/sklearn_suite.py DIR`` writes the copy into DIR.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import sklearn

SWAPPED = ("GridSearchCV", "RandomizedSearchCV", "HalvingGridSearchCV", "HalvingRandomSearchCV")
SUITE = Path(sklearn.__file__).parent / "model_selection" / "tests" / "test_search.py"
_BLOCK = re.compile(r"^from sklearn\.model_selection import \((?P<names>[^)]*)\)", re.MULTILINE)


def swapped_copy(folder: Path, suite: Path = SUITE) -> Path:
    """The suite's copy in ``folder``, importing the four search classes from mpisearch."""
    text = suite.read_text(encoding="utf-8")
    block = _BLOCK.search(text)
    if block is None:
        raise ValueError(f"{suite}: no `from sklearn.model_selection import (...)` block to swap")
    names = [n.strip() for n in block["names"].split(",") if n.strip()]
    kept = [n for n in names if n not in SWAPPED]
    ours = [n for n in names if n in SWAPPED]
    replacement = (f"from sklearn.model_selection import ({', '.join(kept)})\n"
                   f"from mpisearch import {', '.join(ours)}")
    out = Path(folder) / suite.name
    out.write_text(text[: block.start()] + replacement + text[block.end():], encoding="utf-8")
    return out


if __name__ == "__main__":
    print(swapped_copy(Path(sys.argv[1])))
