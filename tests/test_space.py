"""Search spaces: dimensions, grid order, sampling (no MPI, no scikit-learn search)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.model_selection import ParameterGrid, ParameterSampler

from mpisearch import Categorical, Integer, Real
from mpisearch.space import SearchSpace, point_key
from mpisearch.strategies.sampling import random_draws


def sample(space, n, seed):
    return list(random_draws(space, n, seed))


@pytest.mark.parametrize("grid", [
    {"C": [1, 10, 100], "kernel": ["rbf", "linear"], "gamma": [0.1, 1.0]},
    [{"kernel": ["linear"], "C": [1, 10]}, {"kernel": ["rbf"], "C": [1, 10], "gamma": [1e-3, 1e-4]}],
    {"a": [None, 1], "b": [[1, 2], (3,)]},
])
def test_grid_order_matches_scikit_learn(grid):
    assert SearchSpace(grid).grid() == list(ParameterGrid(grid))
    assert SearchSpace(grid).grid_size() == len(ParameterGrid(grid))


def test_dimensions_sample_inside_their_bounds_and_are_seeded():
    space = SearchSpace({"C": Real(1e-3, 1e3, log=True), "n": Integer(2, 5), "k": Categorical(["a", "b"]),
                         "alpha": stats.uniform(0, 2), "m": Integer(1, 1000, log=True)})
    a = sample(space, 200, 0)
    b = sample(space, 200, 0)
    assert a == b
    assert all(1e-3 <= p["C"] <= 1e3 and 2 <= p["n"] <= 5 and p["k"] in "ab" and 0 <= p["alpha"] <= 2
               and 1 <= p["m"] <= 1000 for p in a)
    assert {p["n"] for p in a} == {2, 3, 4, 5}
    assert all(isinstance(p["n"], int) and isinstance(p["alpha"], float) for p in a)
    logs = np.log10([p["C"] for p in a])
    assert (logs < 0).sum() > 60 and (logs > 0).sum() > 60  # log-uniform, not uniform


def test_finite_space_is_sampled_without_replacement():
    space = SearchSpace({"a": [1, 2, 3], "b": Categorical(["x", "y"])})
    points = sample(space, 6, 1)
    assert sorted(point_key(p) for p in points) == sorted(point_key(p) for p in space.grid())
    assert len(sample(space, 50, 1)) == 6


@pytest.mark.parametrize("distributions", [
    {"C": [1, 10, 100], "kernel": ["rbf", "linear"], "gamma": [0.1, 1.0]},
    [{"kernel": ["linear"], "C": [1, 10]}, {"kernel": ["rbf"], "C": [1, 10], "gamma": [1e-3, 1e-4]}],
    {"C": stats.loguniform(1e-2, 1e2), "kernel": ["rbf", "linear"], "degree": stats.randint(1, 5)},
    [{"alpha": stats.uniform(0, 2)}, {"l1": [0.1, 0.5], "beta": stats.norm(0, 1)}],
])
@pytest.mark.parametrize("seed", [0, 7])
def test_random_draws_are_randomizedsearchcvs_candidates(distributions, seed):
    """The same candidates, in the same order, as scikit-learn's ParameterSampler (which
    RandomizedSearchCV and HalvingRandomSearchCV use) for the same random_state."""
    theirs = list(ParameterSampler(distributions, n_iter=6, random_state=seed))
    assert sample(SearchSpace(distributions), 6, seed) == theirs


def test_random_draws_keep_the_grid_order_when_n_iter_is_the_grid_size():
    grid = {"a": [1, 2, 3], "b": ["x", "y"]}
    assert sample(SearchSpace(grid), 6, None) == list(ParameterGrid(grid))


@pytest.mark.parametrize("dim", [Real(0.5, 8.0), Real(1e-4, 10, log=True), Integer(3, 17), Integer(1, 1024, log=True),
                                 Categorical(["a", None, 3])])
def test_unit_cube_encoding_round_trips(dim):
    rng = np.random.default_rng(2)
    for _ in range(50):
        value = dim.from_unit(float(rng.random()))
        u = dim.to_unit(value)
        assert 0.0 <= u <= 1.0
        back = dim.from_unit(u)
        assert back == pytest.approx(value, rel=1e-9) if isinstance(dim, Real) else back == value


def test_intervals_cannot_be_enumerated():
    space = SearchSpace({"C": Real(1, 2), "k": ["a"]})
    assert space.intervals() == ["C"] and not space.finite
    with pytest.raises(TypeError):
        space.grid()


@pytest.mark.parametrize("bad", [{"C": []}, {"C": 3}, {"C": "abc"}, []])
def test_bad_spaces_are_rejected(bad):
    with pytest.raises((TypeError, ValueError)):
        SearchSpace(bad)


def test_bad_bounds_are_rejected():
    with pytest.raises(ValueError):
        Real(2, 1)
    with pytest.raises(ValueError):
        Real(0, 1, log=True)
    with pytest.raises(ValueError):
        Integer(1.5, 3)


def test_point_key_is_order_independent():
    assert point_key({"a": 1, "b": np.float64(0.5)}) == point_key({"b": 0.5, "a": 1})
