"""Names of the files a run writes to its output directory (one definition each)."""

from __future__ import annotations

CV_RESULTS = "cv_results.csv"  # one row per point, scikit-learn's cv_results_ columns
BEST = "best.json"  # best_params, best_score, best_index, metric
MODEL = "best_model.pkl"  # the refitted best estimator (joblib)
RUN_INFO = "run.json"  # ranks, hosts, versions, times, status
JOURNAL = "journal.jsonl"  # one line per finished task; --resume reads it
ERRORS = "errors.txt"  # tracebacks of a failed search or refit
REPORT_DIR = "report"  # mpisearch report --plot: PNG plots and index.html
LOCK = ".mpisearch.lock"  # held (flock) by the run using the directory; says which process holds it
EARLIER = "earlier-"  # + a UTC time: where --force moves an earlier run's files

# Every file of a run: what --force moves aside, and what a new run clears.
RUN_FILES = (JOURNAL, RUN_INFO, CV_RESULTS, BEST, MODEL, ERRORS, REPORT_DIR)
# The files that hold work: an out dir with any of them (or a journal with a line) holds a run.
RESULT_FILES = (CV_RESULTS, BEST, MODEL)
