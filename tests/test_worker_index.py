"""Rank 0's worker indexes against a plain scan of the same state."""

from __future__ import annotations

import random

import pytest

from mpisearch import worker_index
from mpisearch.worker_index import QueueLengths


@pytest.mark.parametrize("seed", range(5))
def test_queue_lengths_agree_with_a_scan_through_compactions_and_a_late_longest(monkeypatch, seed):
    """As the scheduler uses it: a queue taken by pop_shortest is set again before any other
    update, and the longest queue (which counts the taken one) is asked for only late."""
    monkeypatch.setattr(worker_index, "COMPACT_MIN", 8)  # rebuilt often
    rng = random.Random(seed)
    n = 13
    index = QueueLengths(n)
    lengths = [0] * n
    for step in range(3000):
        if rng.random() < 0.5:
            i = rng.randrange(n)
            lengths[i] = rng.randrange(5)
            index.set(i, lengths[i])
        else:
            below = rng.randrange(1, 6)
            live = [(v, i) for i, v in enumerate(lengths) if v < below]
            got = index.pop_shortest(below)
            assert got == (min(live)[1] if live else None)
            if step > 1000:  # stealing comes late in a search, while the thief is taken out
                i, length = index.longest()
                assert length == max(lengths) and i == lengths.index(length)
            if got is not None:
                lengths[got] = rng.randrange(5)
                index.set(got, lengths[got])
        assert index.n_busy == sum(1 for v in lengths if v > 0)
        assert index.total == sum(lengths)
