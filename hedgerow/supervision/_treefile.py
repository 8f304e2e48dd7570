"""Tree files: a supervision tree written in TOML, YAML or JSON.

A tree file is another way to write a `SupervisorSpec`: `hedgerow.load_tree` returns
the same frozen spec objects that code builds, and `dump_tree` writes a spec
back out. The file's structure is checked by a pydantic schema (unknown keys,
types); the rules on values are the specs' own, so code and files cannot
disagree. Every problem is reported with the file, the key path
(``supervisor.children[2].restart``), the value and what is allowed.

The schema::

    pythonpath = ["."]            # optional; directories (relative to the file)
                                  # to import from; the file's own is always used
    [supervisor]                  # the root supervisor
    name = "root"                 # the tree's name: the first part of every path
    strategy = "one_for_one"      # one_for_all, rest_for_one, simple_one_for_one
    max_restarts = 3              # intensity: restarts allowed ...
    period = 5.0                  # ... within this many seconds
    shutdown_policy = "shutdown-manual"
    backoff = true                # backoff defaults for its own children (the child's
    initial_retry_delay = 1.5     # keys below); with none, they restart at once (OTP)

    [[supervisor.children]]
    id = "worker"
    start = "mypackage.workers:Worker"   # an Actor subclass or a factory
    args = [1, 2]
    kwargs = { retries = 3 }
    restart = "always"            # failed, never (and Crossbar's, OTP's names)
    shutdown = 5.0                # seconds, "brutal_kill" or "infinity"
    significant = false
    ask_errors_fail = false
    event_errors_fail = false     # a component: an event handler that raises fails it
    backoff = true                # off by default (or as the supervisor says); any
    initial_retry_delay = 1.5     # backoff key turns it on; autobahn's names
    max_retry_delay = 300.0
    retry_delay_growth = 1.5
    retry_delay_jitter = 0.1
    max_retries = 10              # restarts in a row before giving up (-1: never)
    retry_reset_after = 5.0       # up this long: the next restart is immediate again

    [[supervisor.children]]
    id = "adder"
    start = "myapp.rpc:adder"     # a hedgerow.Component, joining where the file says:
    realm = "realm1"
    transports = ["ws://127.0.0.1:8080/ws"]   # autobahn's transports (URLs or tables)
    extra = { greeting = "hello" }
    authentication = { ticket = { authid = "svc", ticket = "${HEDGEROW_ROUTER_SECRET}" } }

    [[supervisor.children]]
    id = "pipeline"
    [supervisor.children.supervisor]     # a nested supervisor instead of start
    strategy = "rest_for_one"
    children = [...]

A top-level ``[management]`` table (``transports``, ``realm``,
``authentication``, ``prefix``, ``roles``: `hedgerow.Management`) has
``hedgerow run`` serve the node's management API (``get_tree``,
``shutdown``), which ``hedgerow status`` calls; `read_tree` returns it with
the spec.

A top-level ``[components]`` table (``realm``, ``transports``, ``authentication``)
gives every component child the settings it does not set itself. In those
settings, ``${VAR}`` and ``${VAR:-default}`` are read from the environment
each time the file is loaded (a secret need not be written in the file, and a
worker process reads its own environment); ``$${`` is a literal ``${``. The
specs keep the text as written, so `dump_tree` writes ``${VAR}`` back, never
the secret.

The work is shared by modules of their own: `_treeparse` reads a file's text
safely (no input makes a traceback), `_treecheck` takes data that conforms to
the schema in plain code (a worker process imports no pydantic) and
`_treeschema` says what is wrong with data that does not, `_treebuild` builds
the specs (reporting every problem at once) and `_binding` binds each child's
args and kwargs to what it starts; `_treewrite` writes a spec back out. The
loaders (`load_tree`, `loads_tree`, `read_tree`) are a layer above, in
`hedgerow.node._treeload`: a worker table builds a `hedgerow.node.Worker`
(`hedgerow.node._worker_table`), which they give the builder.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hedgerow._exceptions import ConfigError, ConfigProblem
from hedgerow.supervision._treebuild import Builder
from hedgerow.supervision._treecheck import CHILD, TREE_FILE, conforming, set_fields, short
from hedgerow.supervision._treeparse import (
    FORMATS,
    check_data,
    format_of,
)
from hedgerow.supervision._treewrite import (
    _child_data,
    describe_start,
    dump_tree,
    dumps_tree,
    tree_to_data,
)

if TYPE_CHECKING:
    from hedgerow.supervision._management import Management
    from hedgerow.supervision._spec import ChildSpec, SupervisorSpec
    from hedgerow.supervision._treebuild import WorkerTable

__all__ = [
    "FORMATS",
    "TreeFile",
    "child_from_data",
    "child_to_data",
    "describe_start",
    "dump_tree",
    "dumps_tree",
    "format_of",
    "tree_file_from_data",
    "tree_to_data",
]


@dataclasses.dataclass(frozen=True)
class TreeFile:
    """What a tree file describes: the tree, and how its node is managed (if at all)."""

    spec: SupervisorSpec
    management: Management | None = None
    source: str = "<data>"


# -- reading -----------------------------------------------------------------


def tree_file_from_data(
    data: Any,
    *,
    source: str = "<data>",
    base_dir: str | Path | None = None,
    worker_table: WorkerTable | None = None,
) -> TreeFile:
    """A `TreeFile` from a tree file's parsed data; `worker_table` builds its worker
    tables (`hedgerow.node`'s loaders give it), and without it they are refused."""
    check_data(data, source)
    if not isinstance(data, dict):
        rule = "expected a table (mapping) with a 'supervisor' key at the top"
        raise ConfigError(source, [ConfigProblem("", short(data), rule)])
    model: Any = conforming(TREE_FILE, data)
    found: list[ConfigProblem] = []
    if model is None:  # the schema says what is wrong
        from hedgerow.supervision._treeschema import TreeFileModel, validate  # noqa: PLC0415

        model, found = validate(TreeFileModel, data)
    if model is None:
        raise ConfigError(source, found)
    if base_dir is not None:
        _import_from(Path(base_dir), model.pythonpath, source)
    defaults: dict[str, Any] = {}
    if model.components is not None:
        defaults = set_fields(model.components, exclude=set())
    builder = Builder(defaults, worker_table)
    builder.node = model.supervisor.name or "root"
    builder.base_dir = str(base_dir) if base_dir is not None else None
    management = builder.management(model.management) if model.management else None
    builder.node_management = management
    spec = builder.supervisor(model.supervisor, "supervisor")
    problems = _merge(found, builder.problems)
    if problems or spec is None:
        raise ConfigError(source, problems)
    return TreeFile(spec, management, source)


def _import_from(base: Path, pythonpath: list[str], source: str) -> None:
    """Put `base` and its `pythonpath` entries in front of `sys.path`; a `ConfigError`
    for an entry the system cannot use as a path (too long, a NUL byte...)."""
    directories: list[str] = []
    problems: list[ConfigProblem] = []
    for index, entry in enumerate([".", *pythonpath]):
        try:
            path = (base / entry).resolve()
            path.is_dir()  # raises for a name too long for the system
        except (OSError, ValueError) as exc:
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            rule = f"not a path this system can use: {detail}"
            key = f"pythonpath[{index - 1}]" if index else ""
            problems.append(ConfigProblem(key, entry, rule))
            continue
        directories.append(str(path))
    if problems:
        raise ConfigError(source, problems)
    for directory in directories[::-1]:
        if directory not in sys.path:
            sys.path.insert(0, directory)


def child_from_data(
    child_id: str,
    config: Any,
    *,
    source: str = "<config>",
    key: str = "config",
    component_defaults: dict[str, Any] | None = None,
) -> ChildSpec:
    """A `ChildSpec` from one child's table, less its id (a container's component config).

    The keys are a tree file child's: ``start``, component settings (with
    ``${VAR}``), ``args``, ``kwargs``, ``restart``, backoff and so on. Raises
    `ConfigError` naming `source` and the key under `key`.
    """
    check_data({key: config}, source)
    if not isinstance(config, dict):
        rule = "expected a table (mapping) with a 'start' key"
        raise ConfigError(source, [ConfigProblem(key, short(config), rule)])
    table = {**config, "id": child_id}
    model: Any = conforming(CHILD, table)
    found: list[ConfigProblem] = []
    if model is None:  # the schema says what is wrong
        from hedgerow.supervision._treeschema import ChildModel, validate  # noqa: PLC0415

        model, found = validate(ChildModel, table, key)
    if model is None:
        raise ConfigError(source, found)
    builder = Builder(component_defaults)
    spec = builder.child(model, key)
    problems = _merge(found, builder.problems)
    if problems or spec is None:
        raise ConfigError(source, problems)
    return spec


def child_to_data(child: ChildSpec) -> dict[str, Any]:
    """`child_from_data`'s input for `child` (its tree-file table, less the id)."""
    data = _child_data(child)
    del data["id"]
    return data


def _merge(schema: list[ConfigProblem], built: list[ConfigProblem]) -> list[ConfigProblem]:
    """The schema's problems, then the builder's that are not about the same keys (a key
    the schema refused was left out: what the builder says of it follows from that)."""
    taken = [p.key for p in schema]

    def related(key: str) -> bool:
        return any(_within(key, other) or _within(other, key) for other in taken)

    problems = schema + [p for p in built if not related(p.key)]
    return sorted(problems, key=lambda p: _in_file_order(p.key))


def _in_file_order(key: str) -> list[tuple[int, int]]:
    """Sorts a table's own keys before its children's, and children by their index."""
    order: list[tuple[int, int]] = []
    for part in _PARTS.split(key):
        if part.isdigit():  # an index; or a key of digits, perhaps very long ones
            order.append((1, int(part) if len(part) <= _INDEX_DIGITS else 10**_INDEX_DIGITS))
        elif part in ("children", "components"):
            order.append((2, 0))
        elif part:
            order.append((0, 0))
    return order


_INDEX_DIGITS = 18
_PARTS = re.compile(r"[.\[\]]+")


def _within(key: str, other: str) -> bool:
    """Whether `key` is `other` or a key under it (``a.b`` is under ``a``, ``a[0]`` too)."""
    return key == other or key.startswith((other + ".", other + "["))
