"""The package's architecture, checked from its source: floors, each importing only from
its own floor or below; no import cycle among modules (imports inside functions and
``"track1.x.y:Name"`` strings included) nor among folders; wings that do not import each
other. Read as data flows, from the bottom:

0. infrastructure (``infra``, the package root's torchvision hook), and the rank
   arithmetic every floor shares (``infra.ranks``);
1. the generic core: ``ops``, ``data``, ``nas``, ``proxies``, ``scoring``;
2. the wings, one search space each: ``resnet48``, ``nb201``;
3. the catalogue of spaces, the pipelines' way to a supernet: ``registry``;
4. the pipelines: ``train``, ``evaluate``, ``search``, ``bench``, ``export``;
5. the commands: ``commands``, ``cli``, ``__main__``.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "track1"
FLOORS: tuple[tuple[str, ...], ...] = (
    ("track1.infra", "track1._compat", "track1"),
    ("track1.ops", "track1.data", "track1.nas", "track1.proxies", "track1.scoring"),
    ("track1.resnet48", "track1.nb201"),
    ("track1.registry",),
    ("track1.train", "track1.evaluate", "track1.search", "track1.bench", "track1.export"),
    ("track1.commands", "track1.cli", "track1.__main__"),
)
WINGS = FLOORS[2]
#: a string naming a module, as "track1.x.y" or "track1.x.y:Name" (an importlib reference)
MODULE_STRING = re.compile(r"^track1(\.\w+)+(:\w+)?$")


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
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                    MODULE_STRING.match(node.value):
                targets.add(node.value.split(":")[0])
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


def floor_of(module: str) -> int:
    """The floor of a module: the longest matching prefix wins (``track1`` alone is 0)."""
    best, floor = -1, -1
    for i, prefixes in enumerate(FLOORS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best:
                best, floor = len(p), i
    return floor


def folder_of(module: str) -> str:
    """The top-level folder or module under ``track1`` (``track1.nb201.fast`` -> nb201)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "track1"


def test_the_checker_sees_cycles_function_level_imports_and_strings(tmp_path):
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    graph = import_graph()
    # function-level imports count: the CLI imports its commands' pipelines lazily
    assert "track1.train.loop" in graph["track1.commands.train"]
    assert "track1.resnet48.official" in graph["track1.commands.check_submission"]
    # the catalogue imports the wings (inside a function): they count too
    assert {"track1.nb201.supernet", "track1.resnet48.supernet"} <= graph["track1.registry"]
    assert MODULE_STRING.match("track1.nb201.supernet:NB201Supernet")


def test_every_module_has_a_floor():
    assert all(floor_of(m) >= 0 for m in import_graph()), \
        [m for m in import_graph() if floor_of(m) < 0]


def test_no_import_cycle_among_track1_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_import_cycle_among_folders():
    """A loop between folders (e.g. a wing driving a pipeline that builds the wing's
    supernet through the registry) is a layering fault even with no module-level cycle."""
    folders: dict[str, set[str]] = {}
    for m, targets in import_graph().items():
        folders.setdefault(folder_of(m), set()).update(
            folder_of(t) for t in targets if folder_of(t) != folder_of(m))
    cycle = find_cycle({f: {t for t in ts if t in folders} for f, ts in folders.items()})
    assert cycle is None, "folder cycle: " + " -> ".join(cycle)


def test_every_import_goes_down_or_sideways():
    """Wings stand under the pipelines: no module imports from a floor above its own."""
    graph = import_graph()
    up = {m: sorted(t for t in targets if floor_of(t) > floor_of(m))
          for m, targets in graph.items()}
    assert not {m: t for m, t in up.items() if t}


@pytest.mark.parametrize("wing", WINGS)
def test_wings_do_not_import_each_other(wing):
    graph = import_graph()
    other = tuple(w for w in WINGS if w != wing)
    bad = {m: sorted(t for t in graph[m] if _within(t, other))
           for m in graph if _within(m, (wing,))}
    assert not {m: t for m, t in bad.items() if t}
