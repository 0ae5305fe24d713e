"""Bayesian search: finds good points faster than random, in batches, the same at any number of workers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mpisearch import Categorical, Integer, MPISearchCV, Real
from mpisearch.space import SearchSpace
from mpisearch.strategies import PointResult, make_strategy

SEEDS = range(5)


def branin(p):
    x1, x2 = p["x1"], p["x2"]
    b, c, t = 5.1 / (4 * np.pi**2), 5 / np.pi, 1 / (8 * np.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * np.cos(x1) + 10


HART_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8],
                   [17, 8, 0.05, 10, 0.1, 14]])
HART_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                          [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
HART_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann6(p):
    x = np.array([p[f"x{i}"] for i in range(6)])
    return -float(HART_ALPHA @ np.exp(-(HART_A * (x - HART_P) ** 2).sum(axis=1)))


PROBLEMS = {
    "branin": (branin, {"x1": Real(-5, 10), "x2": Real(0, 15)}, 0.397887),
    "hartmann6": (hartmann6, {f"x{i}": Real(0, 1) for i in range(6)}, -3.32237),
}


def drive(strategy, f, in_flight: int = 1, order_seed: int | None = None) -> list:
    """Keep ``in_flight`` points evaluating; the oldest (or a random one) finishes first; score = -f.
    Returns the points in the order they were proposed."""
    rng = np.random.default_rng(order_seed)
    asked, pending = [], []
    while not strategy.finished or pending:
        new = strategy.ask(in_flight - len(pending)) if not strategy.finished else []
        assert new or pending, "the strategy stalled"
        asked += [p.params for p in new]
        pending += new
        done = pending.pop(0 if order_seed is None else int(rng.integers(len(pending))))
        strategy.tell([PointResult(0, done.params, -f(done.params), done.tag)])
    return asked


def regret(name: str, problem: str, seed: int, budget: int, batch: int = 1) -> float:
    f, space, optimum = PROBLEMS[problem]
    kwargs = {"batch": batch} if name == "bayes" else {}
    strategy = make_strategy(name, SearchSpace(space), n_iter=budget, random_state=seed, **kwargs)
    if name == "random":
        points = strategy.ask(budget)
    else:
        points = drive(strategy, f, batch)
    return min(f(p) for p in points) - optimum


@pytest.mark.timeout(900)  # ~20 s on an idle 2-core machine; generous for a loaded one
@pytest.mark.parametrize("problem", list(PROBLEMS))
def test_bayes_regret_is_five_times_lower_than_random_at_60_evaluations(problem):
    bayes = np.median([regret("bayes", problem, s, 60) for s in SEEDS])
    random = np.median([regret("random", problem, s, 60) for s in SEEDS])
    assert bayes * 5 <= random, (bayes, random)


@pytest.mark.timeout(600)
def test_four_points_in_flight_still_beat_random():
    bayes = np.median([regret("bayes", "branin", s, 40, batch=4) for s in SEEDS])
    random = np.median([regret("random", "branin", s, 40) for s in SEEDS])
    assert bayes * 5 <= random, (bayes, random)


@pytest.mark.timeout(600)
def test_points_depend_on_the_batch_not_on_the_workers_nor_the_order_results_arrive():
    def run(in_flight: int, order_seed: int | None, batch: int = 3) -> list:
        strategy = make_strategy("bayes", SearchSpace(PROBLEMS["branin"][1]), n_iter=16, random_state=3,
                                 batch=batch)
        return drive(strategy, PROBLEMS["branin"][0], in_flight, order_seed)

    reference = run(3, None)
    assert run(1, None) == run(2, 0) == run(3, 1) == run(8, 2) == reference
    assert run(3, None, batch=2) != reference


def test_at_most_batch_points_are_in_flight_and_all_are_distinct():
    strategy = make_strategy("bayes", SearchSpace(PROBLEMS["branin"][1]), n_iter=30, random_state=0, batch=4)
    design = strategy.ask(100)  # the design does not depend on scores: all of it at once
    at_1 = make_strategy("bayes", SearchSpace(PROBLEMS["branin"][1]), n_iter=30, random_state=0, batch=1).n_initial
    assert len(design) == strategy.n_initial == at_1 + 3  # 3 more than at batch 1: the first model sees as many scores
    assert strategy.ask(10) == []
    asked = list(design)
    for k, p in enumerate(design):
        strategy.tell([PointResult(0, p.params, -branin(p.params), p.tag)])
        asked += strategy.ask(10)
        assert len(asked) - (k + 1) == max(len(design) - (k + 1), 4)  # in flight: the design's rest, then 4
    assert len({str(sorted(p.params.items())) for p in asked}) == len(asked) == len(design) + 4


def test_failed_points_count_as_worst_and_mixed_spaces_work():
    space = {"C": Real(1e-3, 1e3, log=True), "n": Integer(1, 64, log=True), "k": Categorical(["a", "b", "c"])}
    strategy = make_strategy("bayes", SearchSpace(space), n_iter=25, random_state=0, batch=2)

    def f(p):
        return np.nan if p["k"] == "c" else abs(np.log10(p["C"])) + abs(p["n"] - 8) / 8

    seen = drive(strategy, f, 2)
    assert len(seen) == 25
    assert all(1e-3 <= p["C"] <= 1e3 and 1 <= p["n"] <= 64 and isinstance(p["n"], int) for p in seen)
    assert sum(p["k"] == "c" for p in seen[15:]) <= 2  # failing region avoided once learnt


def test_scipy_distributions_are_searched_through_their_cdf():
    space = {"C": stats.loguniform(1e-3, 1e3), "n": stats.randint(1, 30), "k": ["a", "b"]}
    strategy = make_strategy("bayes", SearchSpace(space), n_iter=30, random_state=0, batch=1)
    seen = drive(strategy, lambda p: (np.log10(p["C"]) - 1) ** 2 + (p["n"] - 20) ** 2 / 50 + (p["k"] == "a"))
    assert all(1e-3 <= p["C"] <= 1e3 and isinstance(p["n"], int) and 1 <= p["n"] < 30 for p in seen)
    best = min(seen, key=lambda p: (np.log10(p["C"]) - 1) ** 2 + (p["n"] - 20) ** 2 / 50 + (p["k"] == "a"))
    assert abs(np.log10(best["C"]) - 1) < 0.5 and abs(best["n"] - 20) <= 3 and best["k"] == "b"


def test_a_list_of_subspaces_finds_the_better_one_and_its_optimum():
    space = [{"kernel": ["linear"], "C": Real(1e-3, 1e3, log=True)},
             {"kernel": ["rbf"], "C": Real(1e-3, 1e3, log=True), "gamma": Real(1e-4, 1.0, log=True)}]

    def f(p):
        if p["kernel"] == "linear":
            return 1.0 + abs(np.log10(p["C"]))
        return abs(np.log10(p["C"]) - 1) + abs(np.log10(p["gamma"]) + 2)

    seen = drive(make_strategy("bayes", SearchSpace(space), n_iter=35, random_state=0, batch=1), f)
    assert all(set(p) in ({"kernel", "C"}, {"kernel", "C", "gamma"}) for p in seen)
    assert all(("gamma" in p) == (p["kernel"] == "rbf") for p in seen)
    assert sum(p["kernel"] == "rbf" for p in seen[20:]) >= 12  # most late points in the better subspace
    assert min(f(p) for p in seen) < 0.3


def test_bayes_search_on_a_real_estimator_beats_its_initial_design():
    from sklearn.datasets import load_digits
    from sklearn.svm import SVC

    X, y = load_digits(return_X_y=True)
    X, y = X[::3], y[::3]
    space = {"C": Real(1e-2, 1e3, log=True), "gamma": Real(1e-5, 1e-1, log=True)}
    search = MPISearchCV(SVC(), space, strategy="bayes", n_iter=16, cv=3, random_state=0, batch=2).fit(X, y)
    means = search.cv_results_["mean_test_score"]
    assert len(means) == 16
    assert means[5:].max() >= means[:5].max() and search.best_score_ > 0.95


def test_a_small_finite_space_is_covered_once_then_the_search_ends():
    from sklearn.datasets import load_iris
    from sklearn.neighbors import KNeighborsClassifier

    X, y = load_iris(return_X_y=True)
    search = MPISearchCV(KNeighborsClassifier(), {"n_neighbors": Integer(1, 4)}, strategy="bayes", n_iter=10, cv=3)
    search.fit(X, y)
    assert sorted(p["n_neighbors"] for p in search.cv_results_["params"]) == [1, 2, 3, 4]


@pytest.mark.parametrize("batch", [1, 4, 40])
def test_any_batch_runs_to_the_end(batch):
    strategy = make_strategy("bayes", SearchSpace(PROBLEMS["branin"][1]), n_iter=45, random_state=0, batch=batch)
    assert strategy.n_initial > batch or strategy.n_initial == strategy.n_iter  # the first model has data
    assert len(drive(strategy, branin, batch)) == 45


@pytest.mark.parametrize("workers", [2, 5])
def test_the_coordinator_gets_the_same_cv_results_with_any_number_of_workers(workers):
    """In one process: the coordinator with 1 and with ``workers`` in-process workers."""
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier
    from test_coordinator import Workers

    from mpisearch.coordinator import Coordinator
    from mpisearch.cv import make_folds
    from mpisearch.data.dataset import Dataset
    from mpisearch.results import ResultTable
    from mpisearch.scoring import make_scorers
    from mpisearch.worker import Worker

    X, y = load_iris(return_X_y=True)
    estimator = DecisionTreeClassifier(random_state=0)
    space = SearchSpace({"ccp_alpha": Real(1e-4, 0.3, log=True), "min_samples_leaf": Integer(1, 40)})

    def run(n: int):
        strategy = make_strategy("bayes", space, n_iter=16, random_state=0, batch=3)  # 12 design points, 4 of the model
        table = ResultTable(["score"], 3)
        dataset = Dataset(X, y, make_folds(3, estimator, X, y))
        ids = list(range(1, n + 1))
        transport = Workers(lambda: Worker(estimator, dataset, make_scorers(None, estimator)), ids)
        Coordinator(strategy, table, "score", transport, ids).run()
        return table

    one, many = run(1), run(workers)
    assert one.points == many.points and len(one.points) == 16
    np.testing.assert_array_equal(one.cv_results()["split0_test_score"], many.cv_results()["split0_test_score"])
    np.testing.assert_array_equal(one.cv_results()["mean_test_score"], many.cv_results()["mean_test_score"])


def test_the_config_batch_reaches_the_strategy(tmp_path):
    from mpisearch import config

    path = tmp_path / "search.toml"
    path.write_text('[data]\npath = "x.h5"\n[estimator]\nclass = "sklearn.svm.SVC"\n'
                    '[space]\nC = { low = 0.1, high = 10.0, log = true }\n'
                    '[search]\nstrategy = "bayes"\nn_iter = 12\nbatch = 3\n')
    spec = config.load(path).spec
    strategy = make_strategy(spec.strategy, spec.space, spec.n_iter, spec.random_state, batch=spec.batch)
    assert spec.batch == 3 and strategy.batch == 3


def test_pending_points_lower_the_acquisition_only_near_them():
    """Local penalisation: log EI is unchanged far from the points in flight, lower at and
    around them, and its gradient (for L-BFGS-B) is that of the penalised value."""
    from scipy.optimize import approx_fprime

    from mpisearch.strategies.gp import GP, fit_hyper
    from mpisearch.strategies.penalty import Penalised

    rng = np.random.default_rng(0)
    X = rng.random((20, 2))
    y = np.sin(6 * X[:, 0]) + X[:, 1] ** 2
    gp = GP(X, y, fit_hyper(X, y, None, 60))
    best = float(np.max(gp.z))
    pending = np.array([[0.2, 0.2], [0.8, 0.7]])
    acq = Penalised(gp, pending, best, slope_at=rng.random((200, 2)))
    far = np.array([[0.2, 0.95], [0.95, 0.1]])
    np.testing.assert_allclose(acq.log_ei(far, best), gp.log_ei(far, best), atol=1e-3)
    near = pending + 0.01
    assert np.all(acq.log_ei(near, best) < gp.log_ei(near, best) - 0.5)
    probe = np.vstack([pending + [[0.05, -0.03], [-0.04, 0.06]], rng.random((4, 2))])
    value, grad = acq.log_ei_grad(probe, best)
    np.testing.assert_allclose(value, acq.log_ei(probe, best))
    penalty_grad = grad - gp.log_ei_grad(probe, best)[1]  # the penalty's part (log EI's own is gp.py's)
    for row, g in zip(probe, penalty_grad, strict=True):
        numeric = approx_fprime(row, lambda x: acq.log_ei(x[None], best)[0] - gp.log_ei(x[None], best)[0], 1e-7)
        np.testing.assert_allclose(g, numeric, rtol=1e-4, atol=1e-3)
