"""The package's architecture, checked from its source: no import cycle among ``track1``
modules (imports inside functions included), and no generic module imports a search space.

Generic layers: the NAS core (``nas``), ops, data, proxies, the train and evaluate
pipelines and the infrastructure modules. The wings (``resnet48``, ``nb201``) may import
them; only the composition layer (``commands``, ``cli``, ``registry``) knows every wing.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "track1"
WINGS = ("track1.resnet48", "track1.nb201")
COMPOSITION = ("track1.commands", "track1.cli", "track1.registry", "track1.__main__")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def import_graph() -> dict[str, set[str]]:
    """``{module: track1 modules it imports}``, from every import statement in the file."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                targets.add(base)
                targets.update(f"{base}.{a.name}" for a in node.names)
        resolved = set()
        for target in targets:  # the longest prefix that is a module of the package
            while target and target not in files:
                target = target.rpartition(".")[0]
            if target and target not in (name, "track1"):
                resolved.add(target)
        graph[name] = resolved
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_checker_sees_cycles_and_function_level_imports(tmp_path):
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    graph = import_graph()
    # function-level imports count: the CLI imports its commands' pipelines lazily
    assert "track1.train.loop" in graph["track1.commands.train"]
    assert "track1.resnet48.official" in graph["track1.commands.check_submission"]


def test_no_import_cycle_among_track1_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_generic_module_imports_a_search_space():
    graph = import_graph()
    generic = [m for m in graph if not _within(m, WINGS + COMPOSITION)]
    assert len(generic) > 30  # the core, ops, data, proxies, pipelines, infrastructure
    offenders = {m: sorted(t for t in graph[m] if _within(t, WINGS)) for m in generic}
    assert not {m: t for m, t in offenders.items() if t}


@pytest.mark.parametrize("wing", WINGS)
def test_wings_do_not_import_each_other(wing):
    graph = import_graph()
    other = [w for w in WINGS if w != wing]
    bad = {m: sorted(t for t in graph[m] if _within(t, tuple(other)))
           for m in graph if _within(m, (wing,))}
    assert not {m: t for m, t in bad.items() if t}
