"""One contract test class, run against every strategy (as Optuna does for samplers)."""

from __future__ import annotations

import numpy as np
import pytest

from mpisearch.errors import InputError
from mpisearch.space import Categorical, Integer, Real, SearchSpace, point_key
from mpisearch.strategies import DataFacts, PointResult, make_strategy
from mpisearch.strategies._base import as_proposal

FINITE = {"C": [0.1, 1.0, 10.0], "kernel": ["rbf", "linear"], "degree": Categorical([2, 3])}
MIXED = {"C": Real(1e-3, 1e3, log=True), "n": Integer(1, 9), "kernel": ["rbf", "linear"]}

CASES = {
    "grid": (FINITE, {}),
    "random-finite": (FINITE, {"n_iter": 7, "random_state": 0}),
    "random-mixed": (MIXED, {"n_iter": 15, "random_state": 3}),
    "bayes-mixed": (MIXED, {"n_iter": 9, "random_state": 3}),
    "halving-sync": (FINITE, {"halving": {"mode": "sync", "factor": 2}, "random_state": 0}),
    "halving-async": (FINITE, {"halving": {"mode": "async", "factor": 3}, "random_state": 0}),
    "halving-random": (MIXED, {"halving": {"mode": "sync"}, "n_iter": 12, "random_state": 5}),
}
# ASHA promotes a point as soon as the results it has allow: what it proposes next depends
# on how many points were asked for and scored before (by design), not only on the seed.
ARRIVAL_ORDER_MATTERS = {"halving-async"}
# What halving knows of the data (it computes its rungs from them).
FACTS = DataFacts(n_samples=600, n_splits=3, n_classes=2)


def build(case: str):
    space, kwargs = CASES[case]
    name = case.split("-")[0]
    if name == "halving":
        from sklearn.svm import SVC

        kwargs = {**kwargs, "estimator": SVC(), "facts": FACTS}
    return make_strategy(name, SearchSpace(space), **kwargs)


def drain(strategy, batch: int = 4):
    """Every point the strategy proposes, scored as it asks (a score that depends on the point)."""
    points = []
    while not strategy.finished:
        new = [as_proposal(p) for p in strategy.ask(batch)]
        assert new, "ask returned nothing but the strategy is not finished"
        assert len(new) <= batch
        points += [p.params for p in new]
        strategy.tell([PointResult(len(points) - len(new) + i, p.params, -len(point_key(p.params)), p.tag)
                       for i, p in enumerate(new)])
    return points


@pytest.mark.parametrize("case", list(CASES))
class TestStrategyContract:
    def test_ask_respects_n_and_ends(self, case):
        s = build(case)
        points = drain(s)
        assert s.finished and s.ask(5) == []
        assert s.total is None or s.total == len(points)

    def test_points_use_only_space_names(self, case):
        names = set(CASES[case][0])
        assert all(set(p) <= names for p in drain(build(case)))

    def test_deterministic(self, case):
        points = drain(build(case), 3)
        assert points == drain(build(case), 3)
        if case not in ARRIVAL_ORDER_MATTERS:
            assert points == drain(build(case), 5)

    def test_ask_zero_is_empty(self, case):
        assert build(case).ask(0) == []


def test_grid_yields_the_whole_grid_in_order():
    assert drain(make_strategy("grid", SearchSpace(FINITE))) == SearchSpace(FINITE).grid()


def test_random_on_finite_space_never_repeats():
    points = drain(make_strategy("random", SearchSpace(FINITE), n_iter=12, random_state=1))
    assert len({point_key(p) for p in points}) == 12


def test_random_depends_on_seed():
    a = drain(make_strategy("random", SearchSpace(MIXED), n_iter=5, random_state=1))
    b = drain(make_strategy("random", SearchSpace(MIXED), n_iter=5, random_state=2))
    assert a != b


def test_grid_over_interval_names_the_parameter():
    with pytest.raises(InputError, match=r"space\.C: .*give values"):
        make_strategy("grid", SearchSpace(MIXED))


def test_unknown_strategy_suggests():
    with pytest.raises(InputError, match="did you mean 'random'"):
        make_strategy("randon", SearchSpace(FINITE))


def test_random_draws_lazily_the_same_points_as_drawing_them_up_front():
    from mpisearch.strategies import RandomStrategy

    space = SearchSpace([{"C": Real(1e-3, 1e3, log=True), "k": [1, 2, 3]}, {"g": Real(0.0, 1.0)}])
    eager = space.sample(40, np.random.default_rng(7))
    lazy = RandomStrategy(space, 40, 7)
    assert lazy.ask(3) + lazy.ask(0) + lazy.ask(30) + lazy.ask(100) == eager and lazy.finished
    huge = RandomStrategy(space, 10**9, 7)  # drawing 10**9 points up front would not end within the timeout
    assert huge.total == 10**9 and huge.ask(5) == eager[:5] and not huge.finished
