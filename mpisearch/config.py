"""TOML config -> a validated run description. Every error names the key and what was expected."""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cv import KFoldSpec
from .errors import InputError, did_you_mean
from .estimator_config import _param_hint, build_estimator, build_from_factory, none_strings
from .limits import parse_memory
from .racing import DEFAULT_CONFIDENCE, check_confidence
from .space import Categorical, Dimension, Integer, Real, SearchSpace
from .spec import SearchSpec

# section -> key -> (expected Python types, description for errors, default)
SCHEMA: dict[str, dict[str, tuple[tuple[type, ...], str, Any]]] = {
    "data": {"path": ((str,), "a file path", None), "X": ((str,), "a dataset name", "X"),
             "y": ((str,), "a dataset name", "y"),
             "sample_weight": ((str,), "a dataset name", None),
             "groups": ((str,), "a dataset name", None),
             "shared_memory": ((bool,), "true or false", True),
             "shared_folds": ((bool,), "true or false", True),
             "resident_folds": ((int,), "a positive integer (folds a node holds at once)", None)},
    "estimator": {"class": ((str,), "a scikit-learn estimator class like 'sklearn.svm.SVC'", None),
                  "factory": ((str,), "\"module:function\", a function returning an estimator", None),
                  "params": ((dict,), "a table of constructor parameters", {})},
    "search": {"strategy": ((str,), "a strategy name or 'package.module:Class'", "grid"),
               "n_iter": ((int,), "an integer", None),
               "batch": ((int,), "a positive integer (points in flight)", None),
               "random_state": ((int,), "an integer", None),
               "max_time": ((str, int, float), "a duration like \"90s\", \"15m\" or \"2h\", or \"auto\"", None),
               "error_score": ((int, float, str), "a number or \"raise\"", math.nan),
               "grace": ((str, int, float), "a duration like \"60s\"", "60s"),
               "task_timeout": ((str, int, float), "a duration like \"10m\"", None),
               "task_memory": ((str, int), "an amount of memory like \"8GiB\"", None),
               "racing": ((bool,), "true or false", False),
               "return_train_score": ((bool,), "true or false", False),
               "racing_confidence": ((float,), "a number between 0.5 and 1", DEFAULT_CONFIDENCE),
               "halving": ((dict,), "a table of halving options", None),
               "warm_start_chains": ((bool,), "true or false", True),
               "prefix_cache": ((bool,), "true or false", True),
               "prefix_cache_memory": ((str, int), "an amount of memory like \"256MiB\"", "256MiB"),
               "batch_short_tasks": ((bool,), "true or false", True)},
    "cv": {"folds": ((int,), "an integer >= 2", 5), "shuffle": ((bool,), "true or false", False),
           "random_state": ((int,), "an integer", None),
           "class": ((str,), "a splitter of sklearn.model_selection like 'GroupKFold'", None),
           "params": ((dict,), "a table of the splitter's parameters", {})},
    "scoring": {"metrics": ((list, str), "a list of scorer names", None),
                "refit": ((bool, str), "true, false or a metric name", True)},
    "output": {"dir": ((str,), "a directory path", "results")},
}
SECTIONS = (*SCHEMA, "space")
INTERVAL_KEYS = ("low", "high", "log", "type")
DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s)?\s*$")


@dataclass(frozen=True)
class DataSource:
    """Where the data of a run is: an HDF5 file and its datasets."""

    path: Path
    x_name: str
    y_name: str | None
    w_name: str | None  # sample weights, if any
    groups_name: str | None = None  # group labels for the splitter (GroupKFold, ...), if any


@dataclass(frozen=True)
class RunConfig:
    """A validated config file: its data, the search, and where results go."""

    source: Path
    data: DataSource
    spec: SearchSpec
    out_dir: Path


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
    estimator = _estimator(sec["estimator"], path.parent)
    search = sec["search"]
    spec = SearchSpec(  # keyword order = validation order: the first bad key is the one reported
        estimator=estimator, space=parse_space(raw.get("space")), strategy=search["strategy"],
        n_iter=_positive(sec, "search", "n_iter"), batch=_positive(sec, "search", "batch"),
        random_state=search["random_state"],
        max_time=parse_duration(search["max_time"]), grace=parse_duration(search["grace"], "search.grace"),
        task_timeout=parse_duration(search["task_timeout"], "search.task_timeout"),
        task_memory=parse_memory(search["task_memory"]), racing=search["racing"],
        racing_confidence=check_confidence(search["racing_confidence"]), halving=_halving(search),
        error_score=_error_score(search["error_score"]), return_train_score=search["return_train_score"],
        warm_start_chains=search["warm_start_chains"], prefix_cache=search["prefix_cache"],
        prefix_cache_memory=parse_memory(search["prefix_cache_memory"], "search.prefix_cache_memory"),
        batch_short_tasks=search["batch_short_tasks"],
        cv=_cv(raw.get("cv", {}), sec),
        scoring=_metrics(sec["scoring"]["metrics"]), refit=sec["scoring"]["refit"],
        shared_memory=sec["data"]["shared_memory"], shared_folds=sec["data"]["shared_folds"],
        resident_folds=_positive(sec, "data", "resident_folds"),
    )
    data = DataSource(data_path, sec["data"]["X"], sec["data"]["y"], sec["data"]["sample_weight"],
                      sec["data"]["groups"])
    return RunConfig(source=path, data=data, spec=spec, out_dir=Path(sec["output"]["dir"]))


def _estimator(section: dict[str, Any], config_dir: Path) -> Any:
    """A checked estimator class, or (only when the config says so) a user factory's result."""
    if section["factory"] is not None:
        if section["class"] is not None:
            raise InputError("estimator: give class or factory, not both")
        return build_from_factory(section["factory"], section["params"], config_dir)
    if section["class"] is None:
        raise InputError(f"estimator.class: missing; expected {SCHEMA['estimator']['class'][1]}")
    return build_estimator(section["class"], section["params"])


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
    """As scikit-learn names them: a list names the columns after each metric (also a list
    of one); a single name gives ``score``."""
    if isinstance(value, list) and (not value or not all(isinstance(v, str) for v in value)):
        raise InputError(f"scoring.metrics: expected a non-empty list of scorer names, got {value!r}")
    return value


def _cv(given: dict[str, Any], sec: dict[str, dict[str, Any]]) -> Any:
    """k folds (stratified for classifiers), or the sklearn.model_selection splitter named in
    cv.class with cv.params (only there: a config never imports other code)."""
    import sklearn.model_selection as ms

    name, params = sec["cv"]["class"], none_strings(dict(sec["cv"]["params"]))
    if name is None:
        if params:
            raise InputError("cv.params: given without cv.class; name the splitter, e.g. class = \"GroupKFold\"")
        return KFoldSpec(_folds(sec), sec["cv"]["shuffle"], sec["cv"]["random_state"])
    clash = [k for k in ("folds", "shuffle", "random_state") if k in given]
    if clash:
        raise InputError(f"cv.{clash[0]}: not used with cv.class; give the splitter's own parameters in cv.params")
    short = name.removeprefix("sklearn.model_selection.")
    factory = getattr(ms, short, None) if not short.startswith("_") else None
    if not (isinstance(factory, type) and hasattr(factory, "split") and hasattr(factory, "get_n_splits")):
        hint = did_you_mean(short, [n for n in dir(ms) if n.endswith(("Fold", "Split", "Out"))])
        raise InputError(f"cv.class: '{name}' is not a splitter of sklearn.model_selection{hint}")
    try:
        return factory(**params)
    except (TypeError, ValueError) as exc:
        raise InputError(f"cv.params: {_param_hint(factory, params, exc)}") from None


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
