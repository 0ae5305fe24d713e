"""Process settings for the duration of a search loop (rank 0's and the workers').

- :func:`frozen_heap`: everything alive when the loop starts (scikit-learn, SciPy and
  the data: ~500k objects on a worker rank) is taken out of the cyclic garbage
  collector's view (``gc.freeze``), so the collector's full passes scan only what the
  loop itself made. Measured on 4 worker ranks passing 16,000 no-op tasks: each rank
  ran one full collection of 40 ms (10 us per task), rank 0 two (77 ms); frozen, none
  of them took over 1 ms. Objects are unfrozen when the loop ends, so garbage among
  them is collected as usual afterwards.
- :func:`mpisearch.signatures.pinned_signatures` on ranks that clone estimators.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from .signatures import pinned_signatures


@contextmanager
def frozen_heap() -> Iterator[None]:
    """``gc.freeze()`` for the block, unless someone else froze objects already (then
    their freeze is left as it is)."""
    if gc.get_freeze_count() > 0:
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@contextmanager
def search_loop(estimator: Any = None) -> Iterator[None]:
    """The settings above; signatures pinned when ``estimator`` (cloned per task here) is given."""
    with ExitStack() as stack:
        if estimator is not None:
            stack.enter_context(pinned_signatures(estimator))
        stack.enter_context(frozen_heap())
        yield
