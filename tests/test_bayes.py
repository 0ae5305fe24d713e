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
    assert len(design) == strategy.n_initial == at_1  # the design of 1 in flight (at least batch + 1 points)
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


def test_bayes_search_on_a_real_estimator_spends_its_model_points_where_scores_are_good():
    from sklearn.datasets import load_digits
    from sklearn.svm import SVC

    X, y = load_digits(return_X_y=True)
    X, y = X[::3], y[::3]
    space = {"C": Real(1e-2, 1e3, log=True), "gamma": Real(1e-5, 1e-1, log=True)}
    search = MPISearchCV(SVC(), space, strategy="bayes", n_iter=16, cv=3, random_state=0, batch=2).fit(X, y)
    means = search.cv_results_["mean_test_score"]
    assert len(means) == 16
    design = search.n_iter - 6  # the last 6 points come from the model
    assert np.median(means[design:]) >= 0.95 > np.median(means[:design]) and search.best_score_ > 0.95


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
    assert strategy.n_initial == min(45, max(10, batch + 1))
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
        strategy = make_strategy("bayes", space, n_iter=16, random_state=0, batch=3)  # 10 design points, 6 of the model
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


def _small_gp():
    from mpisearch.strategies.gp import GP, fit_hyper

    rng = np.random.default_rng(0)
    X = rng.random((20, 2))
    y = np.sin(6 * X[:, 0]) + X[:, 1] ** 2
    return GP(X, y, fit_hyper(X, y, None, 60)), rng


def test_fantasies_average_the_ei_of_the_gp_conditioned_on_each_draw():
    """Fantasised's closed form (the GP's posterior conditioned on a draw of the pending scores) equals
    refitting the GP's linear algebra with the pending points observed at that draw, and its incumbent
    is the best of the scores and the draw."""
    from scipy.special import logsumexp

    from mpisearch.strategies.fantasy import N_FANTASIES, Fantasised
    from mpisearch.strategies.gp import JITTER, log_h, matern

    gp, rng = _small_gp()
    best = float(np.max(gp.z))
    P = np.array([[0.3, 0.4], [0.7, 0.2], [0.31, 0.45]])  # two of them close together
    acq = Fantasised(gp, P, best, np.random.default_rng(1))
    probe = np.vstack([P + 0.02, rng.random((5, 2))])
    h, XA = gp.hyper, np.vstack([gp.X, P])
    K = matern(XA, XA, h) + (h.noise + JITTER) * np.eye(len(XA))
    ks = matern(probe, XA, h)
    sd = np.sqrt(h.signal - np.einsum("ij,ij->i", ks @ np.linalg.inv(K), ks))
    log_ei = []
    for s in acq.draws.T:
        mean = ks @ np.linalg.solve(K, np.concatenate([gp.z, s]))
        log_ei.append(log_h((mean - max(best, s.max())) / sd) + np.log(sd))
    expected = logsumexp(np.array(log_ei), axis=0) - np.log(N_FANTASIES)
    np.testing.assert_allclose(acq.log_ei(probe, best), expected, rtol=1e-6)


def test_fantasies_keep_away_from_points_in_flight_and_their_gradient_is_right():
    from mpisearch.strategies.fantasy import Fantasised

    gp, rng = _small_gp()
    best = float(np.max(gp.z))
    P = np.array([[0.2, 0.2], [0.8, 0.7]])
    acq = Fantasised(gp, P, best, np.random.default_rng(1))
    assert np.all(acq.log_ei(P + 0.005, best) < gp.log_ei(P + 0.005, best) - 1.0)
    probe = np.vstack([P + [[0.05, -0.03], [-0.04, 0.06]], rng.random((20, 2))])
    probe = probe[acq.log_ei(probe, best) > -50][:6]  # not deep inside a repelled region (values ~ -1e4)
    value, grad = acq.log_ei_grad(probe, best)
    assert len(probe) >= 4
    np.testing.assert_allclose(value, acq.log_ei(probe, best), rtol=1e-6)  # two ways to the same sums
    for row, g in zip(probe, grad, strict=True):  # central differences: the value has ~1e-8 of rounding
        numeric = [(acq.log_ei((row + e)[None], best)[0] - acq.log_ei((row - e)[None], best)[0]) / 2e-5
                   for e in 1e-5 * np.eye(2)]
        np.testing.assert_allclose(g, numeric, rtol=1e-4, atol=1e-3)


def test_with_points_in_flight_a_proposal_refines_the_best_point_within_the_trust_region():
    from mpisearch.strategies import bayes, trust

    space = SearchSpace(PROBLEMS["hartmann6"][1])
    strategy = make_strategy("bayes", space, n_iter=40, random_state=0, batch=4)
    f = PROBLEMS["hartmann6"][0]
    pending = strategy.ask(100)
    checked = 0
    while not strategy.finished:
        done = pending.pop(0)
        strategy.tell([PointResult(0, done.params, -f(done.params), done.tag)])
        new = strategy.ask(1)
        pending += new
        i = len(strategy.points) - 1  # the new point's index
        if not new or i < strategy._local_from:  # the design, then GLOBAL_FIRST of the rest: the whole cube
            continue
        known = range(i - strategy.batch + 1)
        scores = np.array([strategy.scores[j] for j in known])
        X = np.array([strategy._unit[j] for j in known])
        gp_scales = strategy._hyper.length_scales
        centre = X[int(np.argmax(scores))]
        sd = np.minimum(trust.TRUST_SCALE * gp_scales, trust.TRUST_MAX)  # candidates: normal; L-BFGS-B: within 2 sd
        assert np.all(np.abs(strategy._unit[i] - centre) <= max(5, trust.TRUST_BOX) * sd), i
        checked += 1
    assert strategy._local_from == strategy.n_initial + int(bayes.GLOBAL_FIRST * (40 - strategy.n_initial))
    assert checked == 40 - strategy._local_from


def test_a_trust_region_redraws_lists_of_values_and_keeps_inside_the_cube():
    from mpisearch.strategies.trust import LOCAL_CANDIDATES, TrustRegion
    from mpisearch.strategies.unitcube import UnitCube

    cube = UnitCube(SearchSpace({"C": Real(1e-3, 1e3, log=True), "k": Categorical(["a", "b", "c", "d"]),
                                 "n": Integer(1, 64)}))
    centre = cube.snap(np.array([[0.0, 0.5, 0.99]]))[0]
    region = TrustRegion.around(centre, cube, np.ones(cube.n_features))
    C = region.candidates(cube, np.random.default_rng(0))
    assert C.shape == (LOCAL_CANDIDATES, 3) and np.all((C >= 0) & (C <= 1))
    k = [c.name for c in cube.columns].index("k")
    assert region.scale[k] == 0 and region.flip == 1.0  # the one list of values is drawn again
    assert len(set(C[:, k])) == 4
    numeric = np.flatnonzero(cube.numeric)
    assert np.all(np.abs(C[:, numeric] - centre[numeric]).max(0) <= 6 * region.scale[numeric])


def test_a_space_of_lists_only_still_runs_with_points_in_flight():
    space = SearchSpace({"a": Categorical(list(range(6))), "b": Categorical(list("uvwxyz"))})
    strategy = make_strategy("bayes", space, n_iter=25, random_state=0, batch=4)
    seen = drive(strategy, lambda p: abs(p["a"] - 3) + ("uvwxyz".index(p["b"]) - 2) ** 2, 4)
    assert len(seen) == 25 == len({(p["a"], p["b"]) for p in seen})
