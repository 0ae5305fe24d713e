"""Rank 0's loop with an in-process worker: how it asks the strategy and how long it sleeps."""

from __future__ import annotations

import heapq
import itertools
import time
from collections import deque

import numpy as np
import pytest

from mpisearch import batching
from mpisearch import coordinator as coord
from mpisearch.control import RunControl
from mpisearch.coordinator import Coordinator, Limits
from mpisearch.cv import make_folds
from mpisearch.data.dataset import Dataset
from mpisearch.files import JOURNAL
from mpisearch.journal import Journal
from mpisearch.messages import Bye, Result, RunTask, Stop
from mpisearch.racing import Racer
from mpisearch.results import ResultTable
from mpisearch.scheduler import PREFETCH, Scheduler
from mpisearch.scoring import make_scorers
from mpisearch.space import SearchSpace
from mpisearch.strategies import GridStrategy
from mpisearch.testing import NoopClassifier, SleepClassifier
from mpisearch.types import TaskResult
from mpisearch.worker import Worker

FOLDS = 2


class RecordingGrid(GridStrategy):
    """A grid that remembers how many points each ask returned."""

    def __init__(self, space: SearchSpace) -> None:
        super().__init__(space)
        self.asks: list[int] = []
        self.sent_before: list[int] = []  # tasks handed out before each ask
        self.serving_before: list[tuple[int, int]] = []  # the scheduler's (n_serving, n_wanted) before each ask
        self.transport: Workers | None = None
        self.scheduler: Scheduler | None = None

    def ask(self, n: int):
        points = super().ask(n)
        self.asks.append(len(points))
        self.sent_before.append(len(self.transport.sent) if self.transport else 0)
        if self.scheduler is not None:
            self.serving_before.append((self.scheduler.n_serving, self.scheduler.n_wanted))
        return points


class Workers:
    """In-process stand-in for several worker ranks: each id has its own Worker; a poll
    runs the next task of the worker whose turn it is. Records the longest sleep each
    poll of the search loop allowed."""

    rank, size = 0, 0

    def __init__(self, make_worker, ids: list[int]) -> None:
        self.workers = {i: make_worker() for i in ids}
        self.byes: set[int] = set()
        self.sleeps: list[float] = []
        self.sent: list[tuple[int, int]] = []  # (point, fold) of every task handed out, in order
        self.sent_to: list[tuple[int, int]] = []  # (worker, tasks in the message) of every message, in order
        self._turn = 0

    def send(self, msg, dest: int) -> None:
        self.sent_to.append((dest, sum(isinstance(m, RunTask) for m in (msg if isinstance(msg, list) else [msg]))))
        self.sent.extend((m.point_id, m.fold) for m in (msg if isinstance(msg, list) else [msg])
                         if isinstance(m, RunTask))
        self.workers[dest].receive(msg)

    def poll(self, timeout: float, max_sleep: float | None = None):
        if max_sleep is not None:  # the shutdown's polls leave it at the default
            self.sleeps.append(max_sleep)
        ids = list(self.workers)
        for k in range(len(ids)):
            i = ids[(self._turn + k) % len(ids)]
            worker = self.workers[i]
            if worker.queue:
                self._turn = (self._turn + k + 1) % len(ids)
                return i, worker.run_next()
            if worker.stopped and i not in self.byes:
                self.byes.add(i)
                return i, Bye(worker.stats())
        return None


def run(estimator, grid: dict, workers: int = 1, max_time: float | None = None, racer=None):
    X = np.arange(40, dtype=float).reshape(20, 2)
    y = np.array([0, 1] * 10)
    strategy = RecordingGrid(SearchSpace(grid))
    table = ResultTable(["score"], FOLDS)
    dataset = Dataset(X, y, make_folds(FOLDS, estimator, X, y))
    ids = list(range(1, workers + 1))
    transport = Workers(lambda: Worker(estimator, dataset, make_scorers(None, estimator)), ids)
    strategy.transport = transport
    coordinator = Coordinator(strategy, table, "score", transport, ids, limits=Limits(max_time=max_time), racer=racer)
    strategy.scheduler = coordinator.scheduler
    return strategy, transport, coordinator.run()


def test_a_small_grid_is_asked_for_whole_at_the_start_after_the_first_tasks_went_out():
    points = batching.UPFRONT_TASKS_PER_WORKER * 4 // FOLDS + 1  # more than used to be asked whole
    strategy, _, stats = run(NoopClassifier(), {"tag": list(range(points))}, workers=4)
    first = 4 * PREFETCH  # fold 0 of these points fills every worker's queue
    assert strategy.asks[:2] == [first, points - first]
    assert strategy.sent_before[:2] == [0, first]  # every worker had its first tasks before the rest was asked
    assert stats.n_tasks == points * FOLDS


def test_the_first_chunk_asked_in_pieces_goes_out_fold_major(monkeypatch):
    monkeypatch.setattr(batching, "START_PIECE_POINTS", 1)  # pieces as small as one dispatch's needs
    points = 60  # 10 ms tasks: the prefetch stays at 2, so the pieces have 4 x 2 points
    strategy, transport, stats = run(SleepClassifier(), {"duration": [0.01], "tag": list(range(points))}, workers=4)
    assert len(strategy.asks) > 2 and sum(strategy.asks) == points
    first_sends = list(dict.fromkeys(transport.sent))  # a stolen task is sent again: its first send counts
    assert [p for p, fold in first_sends if fold == 0] == list(range(points))  # in point order...
    assert [fold for _, fold in first_sends] == sorted(fold for _, fold in first_sends)  # ...before fold 1's
    assert stats.n_tasks == points * FOLDS


def test_a_piece_of_the_first_chunk_is_asked_only_when_the_fold_served_runs_low(monkeypatch):
    monkeypatch.setattr(batching, "START_PIECE_POINTS", 12)
    points = 60  # 10 ms tasks: the prefetch stays at 2; the first 8 points fill the queues, then pieces of 12
    strategy, _, stats = run(SleepClassifier(), {"duration": [0.01], "tag": list(range(points))}, workers=4)
    assert strategy.asks == [8, 12, 12, 12, 12, 4]
    # each piece came once the fold served held fewer tasks than the next dispatch could hand out,
    # not in the pass after the last piece (rank 0's time went to results meanwhile)
    assert all(serving < wanted for serving, wanted in strategy.serving_before[1:])
    assert stats.n_tasks == points * FOLDS


def test_the_first_dispatch_gives_every_worker_a_task_before_any_gets_a_second():
    _, transport, _ = run(SleepClassifier(), {"duration": [0.01], "tag": list(range(20))}, workers=4)
    assert transport.sent_to[:4] == [(1, 1), (2, 1), (3, 1), (4, 1)]  # one task each first...
    assert [n for _, n in transport.sent_to[4:8]] == [1, 1, 1, 1]  # ...then the second of each


def test_a_grid_beyond_the_queue_cap_streams_in_chunks(monkeypatch):
    monkeypatch.setattr(batching, "QUEUE_TASKS", 10)  # below 32 tasks per worker: that floor decides
    chunk = batching.UPFRONT_TASKS_PER_WORKER * 4 // FOLDS
    strategy, _, stats = run(NoopClassifier(), {"tag": list(range(2 * chunk + 3))}, workers=4)
    first = 4 * PREFETCH  # the first chunk: what fills every queue, then the rest of it
    assert strategy.asks[:4] == [first, chunk - first, chunk, 3]  # never more than a chunk queued by one ask
    assert stats.n_tasks == (2 * chunk + 3) * FOLDS


def test_a_time_limit_or_racing_is_asked_for_in_batches():
    strategy, _, _ = run(NoopClassifier(), {"tag": list(range(20))}, workers=4, max_time=600.0)
    assert strategy.asks[0] == batching.BATCH_POINTS_PER_WORKER * 4  # small, but points must finish steadily
    strategy, _, _ = run(NoopClassifier(), {"tag": list(range(20))}, workers=4, racer=Racer(FOLDS))
    assert strategy.asks[0] == batching.BATCH_POINTS_PER_WORKER * 4  # racing needs points finishing early


def test_rank_0_sleeps_longer_between_polls_when_tasks_are_long():
    duration = 0.1
    _, transport, _ = run(SleepClassifier(), {"duration": [duration], "tag": [0, 1]})
    assert transport.sleeps[0] == coord.IDLE_SLEEP_MIN  # nothing measured yet
    later = transport.sleeps[-1]  # 5% of the measured fits (0.1 s sleeps, maybe overrun under load)
    assert coord.IDLE_SLEEP_FRACTION * duration <= later <= coord.IDLE_SLEEP_MAX


def test_rank_0_sleep_is_capped_and_floored():
    _, transport, _ = run(SleepClassifier(), {"duration": [0.5], "tag": [0, 1]})  # a wait after the first fits
    assert transport.sleeps[-1] == coord.IDLE_SLEEP_MAX
    _, transport, _ = run(NoopClassifier(), {"tag": [0, 1, 2]})
    assert set(transport.sleeps) == {coord.IDLE_SLEEP_MIN}


def test_mpi_back_off_respects_the_cap_carries_over_and_restarts_on_a_message(monkeypatch):
    MPI = pytest.importorskip("mpi4py.MPI")
    from mpisearch.transport import mpi as mpi_transport

    slept: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(mpi_transport.time, "sleep", sleep)  # time.sleep itself, for this test
    transport = mpi_transport.MPITransport(MPI.COMM_SELF)
    cap = 0.01
    start = time.perf_counter()
    assert transport.poll(0.1, max_sleep=cap) is None
    assert 0.1 <= time.perf_counter() - start < 0.5
    assert slept and max(slept) <= cap
    assert slept[0] == mpi_transport.MIN_SLEEP  # short sleeps first: a reply may come soon
    slept.clear()
    assert transport.poll(0.05, max_sleep=cap) is None
    assert slept[0] == cap  # still idle: the next poll goes on at the longest sleep
    assert len(slept) <= 6
    transport.send("hello", 0)
    assert transport.poll(1.0, max_sleep=cap) == (0, "hello")
    transport.flush()
    slept.clear()
    assert transport.poll(0.01, max_sleep=cap) is None
    assert slept[0] == mpi_transport.MIN_SLEEP  # a message came: short sleeps again
    slept.clear()
    assert transport.poll(0.01, max_sleep=0.0) is None
    assert slept and min(slept) > 0  # a cap of 0 is not a busy spin


class AnswerAtOnce:
    """Workers that finish every task the moment it is sent: its result waits in rank 0's
    inbox, so many results wait at each poll. Each send notes how many results rank 0 had
    received by then, how many journal lines were on disk, and how many tasks it carried."""

    rank, size = 0, 0

    def __init__(self, make_worker, ids: list[int], journal_file) -> None:
        self.workers = {i: make_worker() for i in ids}
        self.journal_file = journal_file
        self.inbox: deque = deque()
        self.received = 0
        self.at_send: list[tuple[int, int]] = []  # (results received, journal lines on disk)
        self.tasks_per_message: list[int] = []

    def send(self, msg, dest: int) -> None:
        on_disk = self.journal_file.read_text().count("\n") if self.journal_file.exists() else 0
        self.at_send.append((self.received, on_disk))
        self.tasks_per_message.append(len(msg) if isinstance(msg, list) else 1)
        worker = self.workers[dest]
        worker.receive(msg)
        while worker.queue:
            self.inbox.append((dest, worker.run_next()))
        if worker.stopped:
            self.inbox.append((dest, Bye(worker.stats())))

    def poll(self, timeout: float, max_sleep: float | None = None):
        if not self.inbox:
            return None
        self.received += isinstance(self.inbox[0][1], Result)
        return self.inbox.popleft()


def test_results_waiting_together_are_on_disk_before_more_work_goes_out(tmp_path):
    X, y = np.arange(40, dtype=float).reshape(20, 2), np.array([0, 1] * 10)
    estimator = SleepClassifier()  # 20 ms fits: two tasks queued per worker (see scheduler.QUEUE_SECONDS)
    dataset = Dataset(X, y, make_folds(FOLDS, estimator, X, y))
    ids = [1, 2, 3, 4]
    transport = AnswerAtOnce(lambda: Worker(estimator, dataset, make_scorers(None, estimator)), ids,
                             tmp_path / JOURNAL)
    journal = Journal.open(tmp_path)
    table = ResultTable(["score"], FOLDS)
    grid = GridStrategy(SearchSpace({"duration": [0.02], "tag": list(range(16))}))
    stats = Coordinator(grid, table, "score", transport, ids, control=RunControl(journal=journal)).run()
    journal.close()
    assert stats.n_tasks == 16 * FOLDS and len(table.tasks) == 16 * FOLDS
    assert all(on_disk >= received for received, on_disk in transport.at_send)  # the journal's promise
    # one pass handles every waiting result, so a worker's whole queue is refilled in one
    # message, not one task per result (beyond the first round, which fills every queue)
    assert sum(n > 1 for n in transport.tasks_per_message) > len(ids)


class TimedWorkers:
    """Workers on a fake clock: worker i takes ``base + step * i`` seconds per task, so the
    results of one round come ``step`` apart. ``poll`` waits on that clock and returns a
    result once it is due. Records, at each send, how many results rank 0 had received and
    how many journal lines were on disk, the timeout of every poll that followed a message
    without a send in between (a pass gathering results), and how many of those waited while
    a worker had nothing to do."""

    rank, size = 0, 0

    def __init__(self, ids: list[int], base: float, step: float, journal_file) -> None:
        self.now = 0.0
        self.speed = {w: base + step * i for i, w in enumerate(ids)}
        self.free_at = dict.fromkeys(ids, 0.0)
        self.events: list[tuple[float, int, int, object]] = []  # (due, seq, worker, message)
        self.journal_file = journal_file
        self.received = 0
        self.at_send: list[tuple[int, int]] = []
        self.in_pass_timeouts: list[float] = []
        self._after_message = False
        self.stopping = False
        self.idle_waits = 0

    def clock(self) -> float:
        return self.now

    def send(self, msg, dest: int) -> None:
        on_disk = self.journal_file.read_text().count("\n") if self.journal_file.exists() else 0
        self.at_send.append((self.received, on_disk))
        self._after_message = False
        for m in msg if isinstance(msg, list) else [msg]:
            if isinstance(m, RunTask):  # a cancel is ignored: the task runs and reports (a late cancel)
                start = max(self.now, self.free_at[dest])
                self.free_at[dest] = start + self.speed[dest]
                result = Result(m.task_id, m.point_id, m.fold, TaskResult({"score": 1.0}, fit_time=self.speed[dest]))
                heapq.heappush(self.events, (self.free_at[dest], id(result), dest, result))
            elif isinstance(m, Stop):
                self.stopping = True  # the search is over: the shutdown's polls are not a pass's
                heapq.heappush(self.events, (max(self.now, self.free_at[dest]), id(m), dest, Bye({})))

    def poll(self, timeout: float, max_sleep: float | None = None):
        if self._after_message and not self.stopping:
            self.in_pass_timeouts.append(timeout)
            nothing_due = not self.events or self.events[0][0] > self.now
            if timeout > 0 and nothing_due and any(end <= self.now for end in self.free_at.values()):
                self.idle_waits += 1  # a pass waits while a worker has nothing to do
        if self.events and self.events[0][0] <= self.now + timeout:
            due, _, source, msg = heapq.heappop(self.events)
            self.now = max(self.now, due)
            self.received += isinstance(msg, Result)
            self._after_message = True
            return source, msg
        self.now += timeout
        self._after_message = False
        return None


def timed_run(tmp_path, base: float, step: float, points: int = 24,
              workers: int = 4) -> tuple[TimedWorkers, ResultTable]:
    ids = list(range(1, workers + 1))
    transport = TimedWorkers(ids, base, step, tmp_path / JOURNAL)
    journal = Journal.open(tmp_path)
    table = ResultTable(["score"], FOLDS)
    grid = GridStrategy(SearchSpace({"tag": list(range(points))}))
    stats = Coordinator(grid, table, "score", transport, ids, control=RunControl(journal=journal),
                        clock=transport.clock).run()
    journal.close()
    assert stats.n_tasks == points * FOLDS and len(table.tasks) == points * FOLDS
    assert all(on_disk >= received for received, on_disk in transport.at_send)  # the journal's promise
    assert transport.idle_waits == 0
    return transport, table


def test_a_pass_gathers_the_results_due_within_its_window_while_every_worker_keeps_a_task(tmp_path):
    # 0.4 s tasks: a pass may wait 5% of that (20 ms) for more; the four workers drift 1 ms per task apart
    transport, _ = timed_run(tmp_path, base=0.4, step=0.001)
    assert any(t > 0 for t in transport.in_pass_timeouts)
    assert max(transport.in_pass_timeouts) <= coord.GATHER_FRACTION * 0.403 + 1e-9  # of the mean task at most
    passes_that_sent = len({received for received, _ in transport.at_send})
    assert passes_that_sent < transport.received / 2  # several results served by each dispatch


def test_a_pass_waits_at_most_gather_max_with_long_tasks(tmp_path):
    # 4 s tasks: 5% would be 0.2 s; a pass waits up to GATHER_MAX, beyond the 20 ms of a poll's sleep
    transport, _ = timed_run(tmp_path, base=4.0, step=0.01)
    assert max(transport.in_pass_timeouts) <= coord.GATHER_MAX + 1e-9
    assert max(transport.in_pass_timeouts) > coord.IDLE_SLEEP_MAX


def test_a_gathering_pass_takes_more_than_drain_messages_when_its_window_holds_more(tmp_path):
    # 100 workers x 4 s tasks 0.5 ms apart: a round's 100 results come within the 0.1 s window
    transport, _ = timed_run(tmp_path, base=4.0, step=0.0005, points=200, workers=100)
    served = sorted({received for received, _ in transport.at_send})[:-1]  # at each dispatch (not the Stops)
    assert max(b - a for a, b in itertools.pairwise(served)) > coord.DRAIN_MESSAGES


def test_a_pass_does_not_wait_for_results_of_short_tasks(tmp_path):
    # 2 ms tasks: a window of 5% would be under GATHER_MIN: only what is waiting already
    transport, _ = timed_run(tmp_path, base=0.002, step=0.0001)
    assert transport.in_pass_timeouts and set(transport.in_pass_timeouts) == {0.0}
