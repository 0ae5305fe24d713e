"""The ``[estimator]`` of a config as an estimator, without running code by accident.

- ``class`` must name a scikit-learn estimator class (a subclass of
  ``sklearn.base.BaseEstimator``); that is checked after the import and before
  anything is called, so ``os.system`` or ``subprocess.Popen`` are refused unrun.
- Nested estimators (a pipeline's steps, a meta-estimator's ``estimator``) are
  written in ``params`` as tables ``{ class = "...", params = { ... } }``, each
  checked the same way; ``[name, { class = ... }]`` pairs become tuples.
- ``factory = "module:function"`` calls a function of the user's and is meant to
  run code: the config's own directory is importable for it.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sklearn.base import BaseEstimator

from .errors import InputError, did_you_mean


def none_strings(value: Any) -> Any:
    """TOML has no null: the string "None" stands for Python None."""
    if value == "None":
        return None
    if isinstance(value, list):
        return [none_strings(v) for v in value]
    if isinstance(value, dict):
        return {k: none_strings(v) for k, v in value.items()}
    return value


def build_estimator(name: str, params: Mapping[str, Any], key: str = "estimator") -> Any:
    """An instance of the scikit-learn estimator class ``name`` with ``params`` (nested tables built too)."""
    cls = import_object(name, f"{key}.class")
    if not (inspect.isclass(cls) and issubclass(cls, BaseEstimator)):
        kind = "a class" if inspect.isclass(cls) else f"a {type(cls).__name__}"
        raise InputError(f"{key}.class: '{name}' is not a scikit-learn estimator class ({kind} not derived from "
                         "sklearn.base.BaseEstimator); to call a function, use estimator.factory = \"module:function\"")
    return _checked(cls, nested(none_strings(dict(params)), f"{key}.params"), f"{key}.params")


def build_from_factory(spec: str, params: Mapping[str, Any], config_dir: Path | None = None) -> Any:
    """The estimator ``function(**params)`` returns, for ``factory = "module:function"`` (runs that code)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise InputError(f"estimator.factory: expected \"module:function\", got {spec!r}")
    if config_dir is not None and str(config_dir) not in sys.path:
        sys.path.insert(0, str(config_dir))  # the config's own directory: its modules are importable
    factory = import_object(f"{module_name}.{attr}", "estimator.factory")
    if not callable(factory):
        raise InputError(f"estimator.factory: '{spec}' is not a function (a {type(factory).__name__})")
    estimator = _checked(factory, nested(none_strings(dict(params)), "estimator.params"), "estimator.params")
    if not (hasattr(estimator, "fit") and hasattr(estimator, "get_params")):
        raise InputError(f"estimator.factory: '{spec}' did not return a scikit-learn estimator (no fit/get_params)")
    return estimator


def nested(value: Any, key: str) -> Any:
    """Tables with a ``class`` key become estimators; lists naming an estimator become tuples."""
    if isinstance(value, dict):
        if "class" not in value:
            return {k: nested(v, f"{key}.{k}") for k, v in value.items()}
        extra = sorted(set(value) - {"class", "params"})
        if extra or not isinstance(value["class"], str) or not isinstance(value.get("params", {}), dict):
            raise InputError(f"{key}: a nested estimator is {{ class = \"package.Class\", params = {{ ... }} }}, "
                             f"got {value!r}")
        return build_estimator(value["class"], value.get("params", {}), key)
    if isinstance(value, list):
        items = [nested(v, f"{key}[{i}]") for i, v in enumerate(value)]
        named = items and isinstance(items[0], str) and any(isinstance(v, BaseEstimator) for v in items)
        return tuple(items) if named else items  # ("name", estimator[, columns]), as pipelines take them
    return value


def _checked(factory: Any, params: dict[str, Any], key: str) -> Any:
    """``factory(**params)``; a bad parameter name or value is an InputError naming it."""
    try:
        estimator = factory(**params)
    except TypeError as exc:
        raise InputError(f"{key}: {_param_hint(factory, params, exc)}") from None
    if hasattr(estimator, "_parameter_constraints"):  # scikit-learn's own check of the fixed parameters
        try:
            estimator._validate_params()
        except (TypeError, ValueError) as exc:
            raise InputError(f"{key}: {exc}") from None
    return estimator


def _param_hint(factory: Any, params: Mapping[str, Any], exc: Exception) -> str:
    try:
        valid = list(inspect.signature(factory).parameters)
    except (TypeError, ValueError):
        return str(exc)
    bad = [p for p in params if p not in valid]
    if bad:
        return f"'{bad[0]}' is not a parameter of {factory.__name__}{did_you_mean(bad[0], valid)}"
    return str(exc)


def import_object(name: str, key: str = "estimator.class") -> Any:
    """``package.module.Name``, imported (which runs that module's top-level code, nothing else)."""
    module_name, _, attr = name.rpartition(".")
    if not module_name:
        raise InputError(f"{key}: expected a dotted name like 'sklearn.svm.SVC', got '{name}'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(f"{key}: cannot import module '{module_name}' ({exc})") from None
    if not hasattr(module, attr):
        names = [n for n in dir(module) if not n.startswith("_")]
        raise InputError(f"{key}: module '{module_name}' has no '{attr}'{did_you_mean(attr, names)}")
    return getattr(module, attr)
