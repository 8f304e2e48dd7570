"""The modules of `hedgerow` layer: no import cycles, no import up a layer.

DESIGN.md: "Modules layer: a lower one never imports a higher one, and no two
import each other." This test reads every module of the package with `ast`
(nothing is imported) and builds the graph of its imports of other hedgerow
modules, of four kinds:

- ``runtime``: a module-level import, run when the module is imported;
- ``typing``: under ``if TYPE_CHECKING:``, for annotations only. Allowed, so
  that an annotation can name a class whose module is costly to import (it
  pulls in autobahn, pydantic or click: `import hedgerow` must stay cheap,
  tests/test_imports.py), but held to the same rules as a runtime import: a
  cycle of type-only imports still ties two modules into one concept that a
  reader must take in at once, and it is the usual way to hide a runtime
  cycle. So the kind is never an excuse;
- ``deferred``: inside a function, run on its first call. Only for an import
  that must wait (a costly library behind it, for import time); each one is
  listed in `DEFERRED` with its reason, and the list may only shrink;
- ``lazy``: a package ``__init__``'s `hedgerow._lazy.lazy_exports` mapping,
  which imports a name's module on first use (PEP 562).

Rules, each failure naming the modules and the line:

1. no cycle between modules, over all four kinds;
2. no import of a module in a higher layer (`LAYERS`), nor between two
   packages of the same layer;
3. no ``deferred`` import that `DEFERRED` does not list.

Edges that break a rule in modules another helper owns this session are in
`OWNED_ELSEWHERE`; an entry that no longer occurs, or breaks no rule, fails
the test, so the lists only shrink.

Outside the graph: modules named in strings and imported with `importlib` at
run time. One is a plugin registry (transports/_base.py's built-in transport
types, whose modules register themselves when first asked for: the seam
never names what they define); the other imports the user's modules that a
tree file names.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hedgerow"

Unit = tuple[str, ...]
"""Modules and packages that may import each other (still without a cycle)."""

LAYERS: tuple[tuple[Unit, ...], ...] = (
    # The foundation: plain helpers, exceptions, the clock.
    (
        (
            "hedgerow._version",
            "hedgerow._lazy",
            "hedgerow._seconds",
            "hedgerow._extras",
            "hedgerow._exceptions",
            "hedgerow._clock",
        ),
    ),
    # What every layer reports in: exit reasons, the event stream, log lines.
    # (actors/_reason.py is the actors' vocabulary, and imports no actor.)
    (("hedgerow.actors._reason", "hedgerow._events", "hedgerow._logs"),),
    # The wire: the transport seam, serializers, WAMP sessions, routers, event
    # loops. It knows no actor, so it sits below the actors: a Component (in
    # hedgerow.components) talks through it.
    (("hedgerow.transports",),),
    # Actors, stable refs, links.
    (("hedgerow.actors",),),
    # Specs, supervisors, trees, tree files, the management API's settings.
    (("hedgerow.supervision",),),
    # Components (supervised: their child specs, their reconnect backoff), run(),
    # the management service (a component) and the Container that serves it.
    (("hedgerow.components",),),
    # Worker processes, the bus, signals; loading tree files (a worker table builds a Worker).
    (("hedgerow.node",),),
    # The test kit (chaos runs load tree files).
    (("hedgerow.testing",),),
    (("hedgerow.cli",),),
    # Entry points: the package's public face, ``python -m hedgerow``, the worker's main.
    (("hedgerow", "hedgerow.__main__", "hedgerow.worker"),),
)
"""Lowest first: a module may import its own unit and the layers below. A module
belongs to the longest name listed that is itself or one of its packages."""

DEFERRED: dict[tuple[str, str], str] = {
    ("hedgerow.components._component_runner", "hedgerow.actors._loop"): (
        "the shared event loop (asyncio) is imported, and started, only for a component "
        "with coroutine handlers"
    ),
    ("hedgerow.node._worker_main", "hedgerow.transports._framework"): (
        "only a worker with components needs the WAMP framework (asyncio, ssl): a plain "
        "worker's cold start stays short (issue 15)"
    ),
    ("hedgerow.components._container", "hedgerow.components._management_service"): (
        "the management API imports autobahn; only a container that serves it needs it"
    ),
    ("hedgerow.supervision._treefile", "hedgerow.supervision._treeschema"): (
        "the tree file's schema imports pydantic; trees built in code never need it"
    ),
    ("hedgerow.actors._ref", "hedgerow.actors._async_future"): (
        "an awaitable answer imports asyncio (tens of ms); a worker of thread actors "
        "never needs it (issue 15)"
    ),
    ("hedgerow.node._treeload", "hedgerow.node._worker_table"): (
        "a worker table's Worker imports the worker processes' machinery (subprocess, "
        "the fork server: about 20 ms); a tree file with none never needs it"
    ),
    ("hedgerow.testing._clock", "hedgerow.actors._loop"): (
        "hedgerow's loop starts a thread; only a clock told to drive it needs it"
    ),
}
"""Function-level imports of hedgerow modules, each with why it must wait."""

OWNED_ELSEWHERE: dict[tuple[str, str], str] = {}
"""Edges that break a rule, in modules another helper owns this session: to be
mended there. The value names the kinds of the edge, and a cycle it closes."""


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    kind: str  # runtime, typing, deferred, lazy
    line: int

    def __str__(self) -> str:
        return f"{self.importer} -> {self.imported} ({self.kind}, line {self.line})"


def module_names() -> dict[str, Path]:
    """Every module of the package by its dotted name (a package by its own name)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = module_names()


def _target(base: str, name: str) -> str:
    """What ``from base import name`` imports: the module `base.name`, else `base`."""
    candidate = f"{base}.{name}"
    return candidate if candidate in MODULES else base


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Collector(ast.NodeVisitor):
    """Finds the imports of one module, each with its kind (see the module docstring)."""

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        self.kind = "runtime"
        self.found: set[Import] = set()

    def add(self, imported: str, line: int, kind: str | None = None) -> None:
        if imported.partition(".")[0] == "hedgerow" and imported != self.name:
            self.found.add(Import(self.name, imported, kind or self.kind, line))

    def within(self, kind: str, nodes: list[ast.stmt]) -> None:
        outer, self.kind = self.kind, kind
        for node in nodes:
            self.visit(node)
        self.kind = outer

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.within("deferred", node.body)

    visit_AsyncFunctionDef = visit_FunctionDef  # noqa: N815

    def visit_If(self, node: ast.If) -> None:
        if self.kind == "runtime" and _is_type_checking(node.test):
            self.within("typing", node.body)
            self.within(self.kind, node.orelse)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            parent = self.here.split(".")
            parent = parent[: len(parent) - node.level + 1]
            base = ".".join([*parent, base] if base else parent)
        for alias in node.names:
            self.add(_target(base, alias.name), node.lineno)

    def visit_Call(self, node: ast.Call) -> None:
        """``lazy_exports(__name__, {name: module or (module, attribute)})``."""
        if getattr(node.func, "id", "") == "lazy_exports" and len(node.args) > 1:
            mapping = node.args[1]
            for value in mapping.values if isinstance(mapping, ast.Dict) else []:
                module = value.elts[0] if isinstance(value, ast.Tuple) and value.elts else value
                if isinstance(module, ast.Constant) and isinstance(module.value, str):
                    self.add(module.value, module.lineno, "lazy")
        self.generic_visit(node)


def imports_of(name: str, path: Path) -> list[Import]:
    """The imports of other hedgerow modules that module `name` makes, with their kinds
    (one per line and imported module)."""
    collector = _Collector(name, path)
    collector.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return sorted(collector.found, key=str)


IMPORTS = [i for name, path in MODULES.items() for i in imports_of(name, path)]


def layer_of(module: str) -> tuple[int, Unit]:
    """The layer of `module` and the unit of it that holds the module."""
    best: tuple[int, Unit, str] | None = None
    for index, units in enumerate(LAYERS):
        for unit in units:
            for name in unit:
                if (module == name or module.startswith(f"{name}.")) and (
                    best is None or len(name) > len(best[2])
                ):
                    best = (index, unit, name)
    assert best is not None, f"{module}: in no layer of LAYERS; add it where it belongs"
    return best[0], best[1]


def breaks_layers(edge: Import) -> bool:
    (low, low_unit), (high, high_unit) = layer_of(edge.importer), layer_of(edge.imported)
    return high > low or (high == low and high_unit != low_unit)


def cycles(edges: list[Import]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.importer, set()).add(edge.imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = stack[stack.index(node) :]
            del stack[stack.index(node) :]
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def _mine(edge: Import) -> bool:
    return (edge.importer, edge.imported) not in OWNED_ELSEWHERE


def test_every_module_has_a_layer():
    for module in MODULES:
        layer_of(module)


def test_no_module_imports_one_in_a_higher_layer():
    broken = [str(edge) for edge in IMPORTS if breaks_layers(edge) and _mine(edge)]
    assert not broken, "imports up a layer (or across units of one layer):\n" + "\n".join(broken)


def test_no_import_cycles_between_modules():
    mine = [edge for edge in IMPORTS if _mine(edge)]
    found = []
    for component in cycles(mine):
        members = set(component)
        inside = [str(e) for e in mine if e.importer in members and e.imported in members]
        found.append(" <-> ".join(component) + ":\n    " + "\n    ".join(sorted(inside)))
    assert not found, "import cycles:\n" + "\n".join(found)


def test_imports_inside_functions_are_listed_with_a_reason():
    deferred = {(e.importer, e.imported) for e in IMPORTS if e.kind == "deferred"}
    unlisted = sorted(
        str(e)
        for e in IMPORTS
        if e.kind == "deferred" and (e.importer, e.imported) not in DEFERRED and _mine(e)
    )
    assert not unlisted, (
        "imports inside functions: move them to the top of the module, or list them in "
        "DEFERRED with the reason they must wait:\n" + "\n".join(unlisted)
    )
    assert all(reason.strip() for reason in DEFERRED.values())
    stale = sorted(set(DEFERRED) - deferred)
    assert not stale, f"DEFERRED lists imports that are no longer made: {stale}"


def test_the_allowance_for_other_owners_only_shrinks():
    made = {(e.importer, e.imported) for e in IMPORTS}
    stale = sorted(set(OWNED_ELSEWHERE) - made)
    assert not stale, f"OWNED_ELSEWHERE lists imports that are no longer made: {stale}"
    needed = {
        (e.importer, e.imported)
        for e in IMPORTS
        if breaks_layers(e) or e.kind == "deferred" or _in_a_cycle(e)
    }
    unneeded = sorted(set(OWNED_ELSEWHERE) - needed)
    assert not unneeded, f"OWNED_ELSEWHERE lists imports that break no rule: {unneeded}"


def _in_a_cycle(edge: Import) -> bool:
    return any(
        edge.importer in component and edge.imported in component for component in cycles(IMPORTS)
    )
