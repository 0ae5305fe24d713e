"""Doing less work with identical results: bundles of (point, fold) tasks run on one worker.

- :mod:`.growth`: the estimators whose growth parameter may be grown with ``warm_start``
  (each proven identical to fresh fits by ``tests/test_reuse.py``).
- :mod:`.bundles`: what a bundle is (a warm-start chain or a pipeline prefix group) and how
  rank 0 groups a batch of new points into bundles.
- :mod:`.prefix`: a worker's least-recently-used cache of fitted pipeline prefixes.
- :mod:`.run`: running a bundle on a worker, one TaskResult per (point, fold).
"""
