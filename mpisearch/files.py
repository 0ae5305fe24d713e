"""Names of the files a run writes to its output directory (one definition each)."""

from __future__ import annotations

CV_RESULTS = "cv_results.csv"  # one row per point, scikit-learn's cv_results_ columns
BEST = "best.json"  # best_params, best_score, best_index, metric
MODEL = "best_model.pkl"  # the refitted best estimator (joblib)
RUN_INFO = "run.json"  # ranks, hosts, versions, times, status
JOURNAL = "journal.jsonl"  # one line per finished task; --resume reads it
JOURNAL_BACKUP = JOURNAL + ".bak"  # the previous run's journal, kept by a run without --resume
ERRORS = "errors.txt"  # tracebacks of a failed search or refit
REPORT_DIR = "report"  # mpisearch report --plot: PNG plots and index.html
