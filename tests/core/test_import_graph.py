"""drillbook's modules import each other without a cycle.

A cycle makes import order matter (a module half-initialised when the other reads it) and ties
two concerns together so neither can change alone. The graph is read from the source with
``ast``: every ``import`` and ``from ... import``, at module level, inside functions and under
``if TYPE_CHECKING:`` (a type-only import still ties the two modules together). A package's
``__init__`` that runs because one of its submodules is imported is not an edge: Python always
does that, and it is a cycle only when the ``__init__`` itself imports back, which is an edge.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import drillbook

SRC = Path(drillbook.__file__).resolve().parent.parent


def _modules() -> dict[str, tuple[Path, bool]]:
    found: dict[str, tuple[Path, bool]] = {}
    for path in sorted((SRC / "drillbook").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        found[".".join(parts)] = (path, is_package)
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the drillbook modules it imports."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                deps.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*parts, base] if base else parts)
                # `from pkg import sub` imports the submodule; `from mod import name` the module.
                subs = {f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules}
                deps.update(subs)
                if len(subs) < len(node.names):
                    deps.add(base)
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def test_the_graph_sees_the_imports() -> None:
    """The reader is not blind: known edges, absolute, relative and function-level, are there."""
    graph = import_graph()
    assert "drillbook.backends.base" in graph["drillbook.engine"]
    assert "drillbook.journal" in graph["drillbook.session"]
    assert "drillbook.runner" in graph["drillbook.cli"]  # imported inside a function
    assert "drillbook.backends.aws.clients" in graph["drillbook.backends.aws.common"]  # relative
    assert len(graph) > 50


def test_no_import_cycle_among_drillbooks_modules() -> None:
    try:
        order = list(graphlib.TopologicalSorter(import_graph()).static_order())
    except graphlib.CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        raise AssertionError(f"import cycle: {cycle}") from None
    assert order
