"""Open strategies: ``strategy = "package.module:Class"``.

``Class`` is either a :class:`~mpisearch.strategies.Strategy` subclass, built as
``Class(space, settings)``, or an Optuna sampler class, built with
``seed=random_state`` and run through :class:`.optuna_sampler.OptunaStrategy`.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from typing import Any

from ..errors import InputError
from ..space import SearchSpace
from ._base import Strategy, StrategySettings

WHERE = "search.strategy"


def load_strategy(spec: str, space: SearchSpace, settings: StrategySettings) -> Strategy:
    """The strategy named ``package.module:Class``; bad names are one-line InputErrors."""
    cls = _resolve(spec)
    if isinstance(cls, type) and issubclass(cls, Strategy):
        return cls(space, settings)
    if _is_optuna_sampler(cls):
        from .optuna_sampler import OptunaStrategy

        return OptunaStrategy(space, settings, _make_sampler(cls, settings.random_state))
    raise InputError(f"{WHERE}: '{spec}' is neither a subclass of mpisearch.strategies.Strategy nor an "
                     "Optuna sampler class")


def _resolve(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise InputError(f"{WHERE}: expected 'package.module:Class', got '{spec}'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(f"{WHERE}: cannot import module '{module_name}' of '{spec}': {exc}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise InputError(f"{WHERE}: module '{module_name}' has no '{attr}'")
        obj = getattr(obj, part)
    return obj


def _is_optuna_sampler(obj: Any) -> bool:
    optuna = sys.modules.get("optuna")
    return optuna is not None and isinstance(obj, type) and issubclass(obj, optuna.samplers.BaseSampler)


def _make_sampler(cls: type, seed: int | None) -> Any:
    try:
        accepts_seed = "seed" in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        accepts_seed = False
    return cls(seed=seed) if accepts_seed else cls()


__all__ = ["load_strategy"]
