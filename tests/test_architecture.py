"""The package's imports only run downward: the module graph has no cycle.

Every import of a package module counts, at module level or inside a function
(a lazy import is still a dependency), except those under ``if TYPE_CHECKING``;
importing ``a.b.c`` also depends on the package ``a.b``, whose ``__init__`` runs first.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mpisearch"
# The layers, bottom first, as README.md's Architecture section lists them: a module may
# import only from its own layer's earlier entries or from layers below. A name matches a
# module and everything inside it; the longest match wins.
LAYERS = ["types", "errors", "files", "atomic", "waiting", "progress", "runtime", "signatures", "hotpath", "limits",
          "slurm", "space", "racing", "spec", "data", "scoring", "cv", "evaluate", "reuse", "messages", "transport",
          "liveness", "isolation", "worker", "transport.local", "strategies", "worker_index", "fold_queue",
          "scheduler", "results", "journal", "failures", "control", "policies", "batching", "stats", "outbox",
          "coordinator",
          "estimator_config", "config", "plan", "engine", "refit", "fingerprint", "output", "outdir", "lifecycle",
          "search", "dropin", "runner", "report", "testing", "cli", "__main__"]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(current: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    base = current.split(".") if is_package else current.split(".")[:-1]
    if node.level:
        base = base[: len(base) - node.level + 1]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    if not prefix.startswith("mpisearch"):
        return []
    return [prefix] + [f"{prefix}.{a.name}" for a in node.names]


def _type_checking_only(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for child in node.body for n in ast.walk(child))
    return skip


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_only(tree)
        deps: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.ImportFrom):
                deps.update(m for m in _resolve(name, path.name == "__init__.py", node) if m in files)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name in files)
        deps |= {parent for d in deps for parent in _parents(d) if parent in files}  # importing a.b runs a first
        graph[name] = {d for d in deps if d != name and not name.startswith(d + ".")}  # own packages: already run
    return graph


def _parents(module: str) -> list[str]:
    """Packages whose __init__ runs before ``module`` (the top package excepted: it is the API)."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(2, len(parts))]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_graph_is_read():
    graph = import_graph()
    assert "mpisearch.coordinator" in graph and "mpisearch.scheduler" in graph["mpisearch.coordinator"]


def test_imports_have_no_cycle():
    assert find_cycle(import_graph()) is None, " -> ".join(find_cycle(import_graph()) or [])


@pytest.mark.parametrize("low", ["mpisearch.types", "mpisearch.errors", "mpisearch.files", "mpisearch.waiting"])
def test_the_bottom_layer_imports_nothing_from_the_package(low):
    assert import_graph()[low] == set()


def layer(module: str) -> int:
    """Position of ``module`` in LAYERS (the package itself, the public API, is on top)."""
    name = module.removeprefix("mpisearch").removeprefix(".")
    matches = [i for i, entry in enumerate(LAYERS) if name == entry or name.startswith(entry + ".")]
    if not name:
        return len(LAYERS)
    assert matches, f"{module} is in no layer: add it to LAYERS and to README.md's Architecture section"
    return max(matches, key=lambda i: len(LAYERS[i]))


def test_imports_only_run_downward():
    upward = [f"{m} -> {d}" for m, deps in import_graph().items() for d in deps if layer(d) > layer(m)]
    assert not upward, upward


def test_a_detected_cycle_is_reported():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
