"""TOML config -> a validated run description. Every error names the key and what was expected."""

from __future__ import annotations

import importlib
import inspect
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cv import KFoldSpec
from .errors import InputError, did_you_mean
from .limits import parse_memory
from .racing import DEFAULT_CONFIDENCE
from .space import Categorical, Dimension, Integer, Real, SearchSpace

# section -> key -> (expected Python types, description for errors, default)
SCHEMA: dict[str, dict[str, tuple[tuple[type, ...], str, Any]]] = {
    "data": {"path": ((str,), "a file path", None), "X": ((str,), "a dataset name", "X"),
             "y": ((str,), "a dataset name", "y"),
             "sample_weight": ((str,), "a dataset name", None),
             "shared_memory": ((bool,), "true or false", True)},
    "estimator": {"class": ((str,), "an importable name like 'sklearn.svm.SVC'", None),
                  "params": ((dict,), "a table of constructor parameters", {})},
    "search": {"strategy": ((str,), "a strategy name", "grid"), "n_iter": ((int,), "an integer", None),
               "random_state": ((int,), "an integer", None),
               "max_time": ((str, int, float), "a duration like \"90s\", \"15m\" or \"2h\", or \"auto\"", None),
               "error_score": ((int, float, str), "a number or \"raise\"", math.nan),
               "grace": ((str, int, float), "a duration like \"60s\"", "60s"),
               "task_timeout": ((str, int, float), "a duration like \"10m\"", None),
               "task_memory": ((str, int), "an amount of memory like \"8GiB\"", None),
               "racing": ((bool,), "true or false", False),
               "racing_confidence": ((float,), "a number between 0.5 and 1", DEFAULT_CONFIDENCE),
               "halving": ((dict,), "a table of halving options", None)},
    "cv": {"folds": ((int,), "an integer >= 2", 5), "shuffle": ((bool,), "true or false", False),
           "random_state": ((int,), "an integer", None)},
    "scoring": {"metrics": ((list, str), "a list of scorer names", None),
                "refit": ((bool, str), "true, false or a metric name", True)},
    "output": {"dir": ((str,), "a directory path", "results")},
}
SECTIONS = (*SCHEMA, "space")
INTERVAL_KEYS = ("low", "high", "log", "type")
DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s)?\s*$")


@dataclass
class RunConfig:
    source: Path
    data_path: Path
    x_name: str
    y_name: str
    w_name: str | None
    shared_memory: bool
    estimator: Any
    space: SearchSpace
    strategy: str
    n_iter: int | None
    random_state: int | None
    max_time: float | None
    grace: float
    task_timeout: float | None
    task_memory: int | None
    racing: bool
    racing_confidence: float
    halving: dict[str, Any] | None
    error_score: Any
    cv: KFoldSpec
    scoring: Any
    refit: bool | str
    out_dir: Path
    raw: dict[str, Any]


def load(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Read, override (``--set``) and validate a config file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"config file not found: {path}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML: {exc}") from None
    for item in overrides or []:
        apply_override(raw, item)
    try:
        return _build(raw, path)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply ``KEY=VALUE`` with a dotted key; VALUE is read as TOML, else as a string."""
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise InputError(f"--set: expected KEY=VALUE, got '{item}'")
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    *parents, leaf = key.strip().split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise InputError(f"--set {key}: '{part}' is not a table")
    node[leaf] = value


def _build(raw: dict[str, Any], path: Path) -> RunConfig:
    _check_sections(raw)
    sec = {name: _section(raw, name) for name in SCHEMA}
    data_path = Path(_required(sec, "data", "path"))
    if not data_path.is_absolute():
        data_path = path.parent / data_path
    estimator = build_estimator(_required(sec, "estimator", "class"), sec["estimator"]["params"])
    return RunConfig(
        source=path, data_path=data_path, x_name=sec["data"]["X"], y_name=sec["data"]["y"],
        w_name=sec["data"]["sample_weight"], shared_memory=sec["data"]["shared_memory"],
        estimator=estimator, space=parse_space(raw.get("space")),
        strategy=sec["search"]["strategy"], n_iter=_positive(sec, "search", "n_iter"),
        random_state=sec["search"]["random_state"], max_time=parse_duration(sec["search"]["max_time"]),
        grace=parse_duration(sec["search"]["grace"], "search.grace"),
        task_timeout=parse_duration(sec["search"]["task_timeout"], "search.task_timeout"),
        task_memory=parse_memory(sec["search"]["task_memory"]),
        racing=sec["search"]["racing"], racing_confidence=_confidence(sec["search"]["racing_confidence"]),
        halving=_halving(sec["search"]),
        error_score=_error_score(sec["search"]["error_score"]),
        cv=KFoldSpec(_folds(sec), sec["cv"]["shuffle"], sec["cv"]["random_state"]),
        scoring=_metrics(sec["scoring"]["metrics"]), refit=sec["scoring"]["refit"],
        out_dir=Path(sec["output"]["dir"]), raw=raw,
    )


def _check_sections(raw: dict[str, Any]) -> None:
    for name, value in raw.items():
        if name not in SECTIONS:
            hint = did_you_mean(name, SECTIONS)
            raise InputError(f"unknown section [{name}]{hint}; expected one of {', '.join(SECTIONS)}")
        if name != "space" and not isinstance(value, dict):
            raise InputError(f"[{name}] must be a table")
    if "space" not in raw:
        raise InputError("missing section [space]: say which parameters to search")


def _section(raw: dict[str, Any], name: str) -> dict[str, Any]:
    given, schema = raw.get(name, {}), SCHEMA[name]
    out = {}
    for key, value in given.items():
        if key not in schema:
            hint = did_you_mean(key, schema)
            raise InputError(f"{name}.{key}: unknown key{hint}; expected one of {', '.join(schema)}")
        types, what, _ = schema[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise InputError(f"{name}.{key}: expected {what}, got {value!r}")
        out[key] = value
    return {key: out.get(key, spec[2]) for key, spec in schema.items()}


def _required(sec: dict[str, dict[str, Any]], name: str, key: str) -> Any:
    if sec[name][key] is None:
        raise InputError(f"{name}.{key}: missing; expected {SCHEMA[name][key][1]}")
    return sec[name][key]


def _positive(sec: dict[str, dict[str, Any]], name: str, key: str) -> int | None:
    value = sec[name][key]
    if value is not None and value < 1:
        raise InputError(f"{name}.{key}: expected a positive integer, got {value}")
    return value


def _folds(sec: dict[str, dict[str, Any]]) -> int:
    folds = sec["cv"]["folds"]
    if folds < 2:
        raise InputError(f"cv.folds: expected an integer >= 2, got {folds}")
    return folds


def _confidence(value: float) -> float:
    if not 0.5 < value < 1:
        raise InputError(f"search.racing_confidence: expected a number between 0.5 and 1, got {value!r}")
    return value


def _halving(search: dict[str, Any]) -> dict[str, Any] | None:
    """[search.halving] options, checked here so errors name their key."""
    from .strategies.halving import HalvingOptions

    raw = search["halving"]
    if raw is not None and search["strategy"] != "halving":
        raise InputError(f"search.halving: options given but search.strategy is '{search['strategy']}', "
                         "not \"halving\"")
    try:
        HalvingOptions.parse(raw)
    except TypeError as exc:
        raise InputError(f"search.halving: {exc}") from None
    return raw


def _error_score(value: Any) -> Any:
    if isinstance(value, str) and value != "raise":
        raise InputError(f"search.error_score: expected a number or \"raise\", got {value!r}")
    return value


def _metrics(value: Any) -> Any:
    """One metric is named ``score`` (scikit-learn's convention); several keep their names."""
    if isinstance(value, list):
        if not value or not all(isinstance(v, str) for v in value):
            raise InputError(f"scoring.metrics: expected a non-empty list of scorer names, got {value!r}")
        return value[0] if len(value) == 1 else value
    return value


def parse_duration(value: Any, key: str = "search.max_time") -> float | None:
    """Seconds from ``90``, ``"90s"``, ``"15m"``, ``"2h"`` or ``"1h30m"``."""
    if value is None:
        return None
    if value == "auto" and key == "search.max_time":
        from .slurm import auto_max_time

        return auto_max_time()  # the Slurm job's time left less a margin; None outside Slurm
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = DURATION.match(str(value))
        if not match or not any(match.groups()):
            raise InputError(f"{key}: expected a duration like \"90s\", \"15m\" or \"2h\", got {value!r}")
        h, m, s = (float(g) if g else 0.0 for g in match.groups())
        seconds = 3600 * h + 60 * m + s
    if seconds <= 0:
        raise InputError(f"{key}: expected a positive duration, got {value!r}")
    return seconds


def none_strings(value: Any) -> Any:
    """TOML has no null: the string "None" stands for Python None."""
    if value == "None":
        return None
    if isinstance(value, list):
        return [none_strings(v) for v in value]
    if isinstance(value, dict):
        return {k: none_strings(v) for k, v in value.items()}
    return value


def build_estimator(name: str, params: Mapping[str, Any]) -> Any:
    """Import ``package.module.Name`` and call it with ``params`` (class or factory)."""
    factory = import_object(name)
    if not callable(factory):
        raise InputError(f"estimator.class: '{name}' is not a class or factory (a {type(factory).__name__})")
    params = none_strings(dict(params))
    try:
        estimator = factory(**params)
    except TypeError as exc:
        raise InputError(f"estimator.params: {_param_hint(factory, params, exc)}") from None
    if not (hasattr(estimator, "fit") and hasattr(estimator, "get_params")):
        raise InputError(f"estimator.class: '{name}' did not give a scikit-learn estimator (no fit/get_params)")
    if hasattr(estimator, "_parameter_constraints"):  # scikit-learn's own check of the fixed parameters
        try:
            estimator._validate_params()
        except (TypeError, ValueError) as exc:
            raise InputError(f"estimator.params: {exc}") from None
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


def import_object(name: str) -> Any:
    module_name, _, attr = name.rpartition(".")
    if not module_name:
        raise InputError(f"estimator.class: expected a dotted name like 'sklearn.svm.SVC', got '{name}'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(f"estimator.class: cannot import module '{module_name}' ({exc})") from None
    if not hasattr(module, attr):
        names = [n for n in dir(module) if not n.startswith("_")]
        raise InputError(f"estimator.class: module '{module_name}' has no '{attr}'{did_you_mean(attr, names)}")
    return getattr(module, attr)


def parse_space(raw: Any) -> SearchSpace:
    """[space] table, or [[space]] array of tables (a list of subspaces)."""
    subspaces = raw if isinstance(raw, list) else [raw]
    if not subspaces or not all(isinstance(s, dict) and s for s in subspaces):
        raise InputError("[space]: expected a non-empty table of parameters (or [[space]] tables)")
    return SearchSpace([{name: parse_dimension(name, v) for name, v in s.items()} for s in subspaces])


def parse_dimension(name: str, value: Any) -> Dimension:
    key = f"space.{name}"
    if isinstance(value, list):
        if not value:
            raise InputError(f"{key}: the list of values is empty")
        return Categorical(none_strings(value))
    if not isinstance(value, dict):
        raise InputError(f"{key}: expected a list of values, {{ low, high }} or {{ choice = [...] }}, got {value!r}")
    if "choice" in value:
        return _choice(key, value)
    for k in value:
        if k not in INTERVAL_KEYS:
            raise InputError(f"{key}: unknown key '{k}'{did_you_mean(k, INTERVAL_KEYS + ('choice',))}")
    return _interval(key, value)


def _choice(key: str, value: dict[str, Any]) -> Categorical:
    if set(value) != {"choice"} or not isinstance(value["choice"], list) or not value["choice"]:
        raise InputError(f"{key}: expected {{ choice = [v1, v2, ...] }} and nothing else, got {value!r}")
    return Categorical(none_strings(value["choice"]))


def _interval(key: str, value: dict[str, Any]) -> Dimension:
    if "low" not in value or "high" not in value:
        raise InputError(f"{key}: an interval needs both 'low' and 'high', got {value!r}")
    kind, log = value.get("type", "float"), value.get("log", False)
    if kind not in ("float", "int") or not isinstance(log, bool):
        raise InputError(f"{key}: 'type' must be \"float\" or \"int\" and 'log' true or false, got {value!r}")
    low, high = value["low"], value["high"]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
        raise InputError(f"{key}: 'low' and 'high' must be numbers, got {low!r} and {high!r}")
    try:
        if kind == "int":
            if not (float(low).is_integer() and float(high).is_integer()):
                raise ValueError(f"an integer interval needs integer bounds, got low={low!r}, high={high!r}")
            return Integer(int(low), int(high), log=log)
        return Real(float(low), float(high), log=log)
    except ValueError as exc:
        raise InputError(f"{key}: {exc}") from None
