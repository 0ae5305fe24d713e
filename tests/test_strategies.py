"""One contract test class, run against every strategy (as Optuna does for samplers):
built-in ones, an open strategy loaded by "module:Class" and Optuna samplers through the adapter."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from scipy import stats
from sklearn.base import BaseEstimator, ClassifierMixin

from mpisearch import MPISearchCV
from mpisearch.errors import InputError
from mpisearch.space import Categorical, Integer, Real, SearchSpace, point_key
from mpisearch.strategies import DataFacts, PointResult, Strategy, StrategySettings, make_strategy
from mpisearch.strategies._base import as_proposal
from mpisearch.strategies.sampling import random_draws

FINITE = {"C": [0.1, 1.0, 10.0], "kernel": ["rbf", "linear"], "degree": Categorical([2, 3])}
MIXED = {"C": Real(1e-3, 1e3, log=True), "n": Integer(1, 9), "kernel": ["rbf", "linear"]}
CONDITIONAL = [{"kernel": ["linear"], "C": Real(1e-3, 1e3, log=True)},
               {"kernel": ["rbf"], "C": Real(1e-3, 1e3, log=True), "gamma": Real(1e-4, 1.0, log=True)}]
DISTRIBUTIONS = {"C": stats.loguniform(1e-3, 1e3), "n": stats.randint(1, 10), "kernel": ["rbf", "linear"]}


class Halton(Strategy):
    """An open strategy as a user writes one: seeded Halton points, batch by batch."""

    def __init__(self, space: SearchSpace, settings: StrategySettings) -> None:
        super().__init__(space)
        from scipy.stats import qmc

        self.settings = settings
        dims = space.subspaces[0]
        self.names = sorted(dims)
        units = qmc.Halton(d=len(self.names), seed=settings.random_state).random(settings.n_iter)
        self.points = [{n: dims[n].from_unit(float(u)) for n, u in zip(self.names, row, strict=True)}
                       for row in units]
        self.asked = 0

    def ask(self, n: int):
        new = self.points[self.asked : self.asked + max(n, 0)]
        self.asked += len(new)
        return new

    @property
    def finished(self) -> bool:
        return self.asked >= len(self.points)


HAS_OPTUNA = importlib.util.find_spec("optuna") is not None
needs_optuna = pytest.mark.skipif(not HAS_OPTUNA, reason="optuna is not installed (extra 'optuna')")

CASES = {
    "grid": ("grid", FINITE, {}),
    "random-finite": ("random", FINITE, {"n_iter": 7, "random_state": 0}),
    "random-mixed": ("random", MIXED, {"n_iter": 15, "random_state": 3}),
    # bayes: 13 design points (11 at batch 2), then the model's
    "bayes-mixed": ("bayes", MIXED, {"n_iter": 16, "random_state": 3}),
    "bayes-conditional": ("bayes", CONDITIONAL, {"n_iter": 14, "random_state": 1, "batch": 2}),
    "bayes-distributions": ("bayes", DISTRIBUTIONS, {"n_iter": 16, "random_state": 2}),
    "open-class": ("test_strategies:Halton", MIXED, {"n_iter": 8, "random_state": 0}),
    "optuna-tpe": ("optuna.samplers:TPESampler", MIXED, {"n_iter": 8, "random_state": 0}),
    "optuna-nsga2": ("optuna.samplers:NSGAIISampler", CONDITIONAL, {"n_iter": 8, "random_state": 0, "batch": 3}),
    "halving-sync": ("halving", FINITE, {"halving": {"mode": "sync", "factor": 2}, "random_state": 0}),
    "halving-async": ("halving", FINITE, {"halving": {"mode": "async", "factor": 3}, "random_state": 0}),
    "halving-random": ("halving", MIXED, {"halving": {"mode": "sync"}, "n_iter": 12, "random_state": 5}),
}
# ASHA promotes a point as soon as the results it has allow: what it proposes next depends
# on how many points were asked for and when their scores came (by design), not only on the seed.
ARRIVAL_ORDER_MATTERS = {"halving-async"}
# What halving knows of the data (it computes its rungs from them).
FACTS = DataFacts(n_samples=600, n_splits=3, n_classes=2)
MARKS = {name: [needs_optuna] if name.startswith("optuna") else [] for name in CASES}


def build(case: str):
    name, space, kwargs = CASES[case]
    if name == "halving":
        kwargs = {**kwargs, "estimator": Echo(), "facts": FACTS}
    return make_strategy(name, SearchSpace(space), **kwargs)


def score(params) -> float:
    return -abs(np.log10(params["C"])) if "C" in params else 0.5


def drain(strategy, batch: int = 4, order_seed: int | None = None):
    """Ask up to ``batch`` points whenever fewer are pending; a pending point finishes (the
    oldest, or a random one with ``order_seed``) and is told with its tag."""
    rng = np.random.default_rng(order_seed)
    points, pending = [], []
    while not strategy.finished or pending:
        new = [as_proposal(p) for p in strategy.ask(batch - len(pending))] if not strategy.finished else []
        assert len(new) <= batch - len(pending)
        assert new or pending, "ask returned nothing, nothing is pending, and the strategy is not finished"
        points += [p.params for p in new]
        pending += new
        done = pending.pop(0 if order_seed is None else int(rng.integers(len(pending))))
        strategy.tell([PointResult(len(points), done.params, score(done.params), done.tag)])
    return points


@pytest.mark.parametrize("case", [pytest.param(c, marks=MARKS[c]) for c in CASES])
class TestStrategyContract:
    def test_ask_respects_n_and_ends(self, case):
        s = build(case)
        points = drain(s)
        assert s.finished and s.ask(5) == []
        assert s.total is None or s.total == len(points)

    def test_points_use_the_names_of_one_subspace(self, case):
        subspaces = [set(sub) for sub in SearchSpace(CASES[case][1]).subspaces]
        assert all(set(p) in subspaces for p in drain(build(case)))

    def test_deterministic_whatever_the_workers_ask_and_the_order_results_arrive(self, case):
        points = drain(build(case), 3)
        assert points == drain(build(case), 3)
        if case not in ARRIVAL_ORDER_MATTERS:
            assert points == drain(build(case), 5) == drain(build(case), 4, order_seed=1)

    def test_ask_zero_is_empty(self, case):
        assert build(case).ask(0) == []

    def test_journal_and_resume_give_the_same_search(self, case, tmp_path):
        from sklearn.datasets import load_iris

        name, space, kwargs = CASES[case]
        if "kernel" not in SearchSpace(space).names:
            pytest.skip("a space of SVC-like parameters")
        X, y = load_iris(return_X_y=True)

        def fit(resume: bool):
            search = MPISearchCV(Echo(), space, strategy=name, cv=2, out=tmp_path, resume=resume, refit=False,
                                 **kwargs)
            return search.fit(X, y)

        full = fit(False).cv_results_
        journal = tmp_path / "journal.jsonl"
        lines = journal.read_text().splitlines()
        journal.write_text("\n".join(lines[: len(lines) // 2]) + "\n")
        again = fit(True)
        resumed = again.cv_results_
        assert again.run_info_["resumed_tasks"] > 0
        if case in ARRIVAL_ORDER_MATTERS:  # which points follow the replayed ones depends on timing
            return
        assert resumed["params"] == full["params"]
        np.testing.assert_array_equal(resumed["mean_test_score"], full["mean_test_score"])


class Echo(ClassifierMixin, BaseEstimator):
    """A classifier whose score is a function of its parameters (fast, deterministic)."""

    def __init__(self, C=1.0, n=1, kernel="rbf", degree=2, gamma=0.1):
        self.C, self.n, self.kernel, self.degree, self.gamma = C, n, kernel, degree, gamma

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[0])

    def score(self, X, y, sample_weight=None):
        return float(1 / (1 + abs(np.log10(self.C)) + abs(self.n - 4) / 4 + (self.kernel == "linear")))


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


@pytest.mark.parametrize("name, message", [
    ("no_such_module_xyz:Thing", "cannot import module 'no_such_module_xyz'"),
    ("test_strategies:Nothing", "module 'test_strategies' has no 'Nothing'"),
    ("test_strategies:Echo", "neither a subclass of mpisearch.strategies.Strategy nor an Optuna sampler"),
    (":Halton", "expected 'package.module:Class'"),
])
def test_a_bad_open_strategy_is_one_line_naming_it(name, message):
    with pytest.raises(InputError, match=f"search.strategy: .*{message}"):
        make_strategy(name, SearchSpace(MIXED), n_iter=3)


def test_batch_is_refused_by_strategies_without_batches_and_must_be_positive():
    with pytest.raises(InputError, match="search.batch: strategy 'random' has no batches"):
        make_strategy("random", SearchSpace(MIXED), n_iter=3, batch=2)
    with pytest.raises(InputError, match="search.batch: expected a positive integer"):
        make_strategy("bayes", SearchSpace(MIXED), n_iter=3, batch=0)


@needs_optuna
def test_optuna_adapter_refuses_distributions_naming_the_parameter():
    with pytest.raises(InputError, match="space.C: an Optuna sampler needs"):
        make_strategy("optuna.samplers:TPESampler", SearchSpace(DISTRIBUTIONS), n_iter=3)


def test_random_draws_lazily_the_same_points_as_drawing_them_up_front():
    from mpisearch.strategies import RandomStrategy

    space = SearchSpace([{"C": Real(1e-3, 1e3, log=True), "k": [1, 2, 3]}, {"g": Real(0.0, 1.0)}])
    eager = list(random_draws(space, 40, 7))
    lazy = RandomStrategy(space, 40, 7)
    assert lazy.ask(3) + lazy.ask(0) + lazy.ask(30) + lazy.ask(100) == eager and lazy.finished
    huge = RandomStrategy(space, 10**9, 7)  # drawing 10**9 points up front would not end within the timeout
    assert huge.total == 10**9 and huge.ask(5) == eager[:5] and not huge.finished
