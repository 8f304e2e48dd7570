"""Tree files: a supervision tree written in TOML, YAML or JSON.

A tree file is another way to write a `SupervisorSpec`: `load_tree` returns
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
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import importlib
import json
import os
import re
import stat
import sys
import threading
import tomllib
import weakref
from pathlib import Path
from typing import Any, Literal, NoReturn

import tomli_w
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from hedgerow._exceptions import _MISSING, ConfigError, ConfigProblem, SpecError
from hedgerow.actors._component import SETTINGS, Component
from hedgerow.supervision._management import Management, worker_prefix
from hedgerow.supervision._spec import (
    BACKOFF_FIELDS,
    DEFAULT_WORKER_SHUTDOWN,
    INBOX_FIELDS,
    INFINITY,
    ChildSpec,
    Restart,
    ShutdownPolicy,
    SupervisorSpec,
)

__all__ = [
    "TreeFile",
    "child_from_data",
    "child_to_data",
    "dump_tree",
    "dumps_tree",
    "load_tree",
    "loads_tree",
    "read_tree",
    "tree_file_from_data",
    "tree_from_data",
    "tree_to_data",
]

Format = Literal["toml", "yaml", "json"]

FORMATS: dict[str, Format] = {
    ".toml": "toml",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".json": "json",
}


# -- the schema: structure and types; the specs check the values ------------


Number = int | float
"""Seconds and factors: kept as written (20 stays 20), so errors quote the file."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SupervisorModel(_Model):
    name: str | None = None
    strategy: str | None = None
    max_restarts: int | None = None
    period: Number | None = None
    shutdown_policy: str | None = None
    backoff: bool | None = None
    initial_retry_delay: Number | None = None
    max_retry_delay: Number | None = None
    retry_delay_growth: Number | None = None
    retry_delay_jitter: Number | None = None
    max_retries: int | None = None
    retry_reset_after: Number | None = None
    # The inbox bound its children inherit (issue 14 point 8):
    max_inbox: int | None = None
    inbox_overflow: str | None = None
    inbox_timeout: Number | None = None
    children: list[ChildModel] = []


class ChildModel(_Model):
    id: str
    start: str | None = None
    supervisor: SupervisorModel | None = None
    worker: WorkerModel | None = None
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None
    restart: str | None = None
    shutdown: Any = None  # seconds or a word: ChildSpec says which words
    significant: bool | None = None
    ask_errors_fail: bool | None = None
    event_errors_fail: bool | None = None
    backoff: bool | None = None
    initial_retry_delay: Number | None = None
    max_retry_delay: Number | None = None
    retry_delay_growth: Number | None = None
    retry_delay_jitter: Number | None = None
    max_retries: int | None = None
    retry_reset_after: Number | None = None
    # The child's inbox bound (issue 14 point 8):
    max_inbox: int | None = None
    inbox_overflow: str | None = None
    inbox_timeout: Number | None = None
    # A component's settings (`Component.configured`):
    realm: str | None = None
    transports: Any = None  # autobahn's forms: a URL, a table, or a list of them
    extra: Any = None
    authentication: dict[str, Any] | None = None


class WorkerModel(_Model):
    """A worker process hosting a container of components (`hedgerow.node.Worker`)."""

    restart: str | None = None  # the container's restart mode, for its components
    shutdown: str | None = None  # the container's shutdown mode
    max_restarts: int | None = None
    period: Number | None = None
    backoff: bool | None = None  # the container's backoff defaults for its components
    initial_retry_delay: Number | None = None
    max_retry_delay: Number | None = None
    retry_delay_growth: Number | None = None
    retry_delay_jitter: Number | None = None
    max_retries: int | None = None
    retry_reset_after: Number | None = None
    max_inbox: int | None = None  # the container's inbox bound for its components
    inbox_overflow: str | None = None
    inbox_timeout: Number | None = None
    components: list[ChildModel] = []
    config_timeout: Number | None = None
    ready_timeout: Number | None = None
    env: dict[str, str] | None = None
    standby: bool | None = None
    log_level: str | None = None
    framework: str | None = None  # the worker's WAMP framework: asyncio or twisted


class ComponentsModel(_Model):
    """Settings every component child of the file gets unless it sets its own."""

    realm: str | None = None
    transports: Any = None
    authentication: dict[str, Any] | None = None


class ManagementModel(_Model):
    """Where the node's management API is served (`hedgerow.Management`)."""

    transports: Any = None
    realm: str | None = None
    authentication: dict[str, Any] | None = None
    prefix: str | None = None
    roles: list[str] | None = None


class TreeFileModel(_Model):
    pythonpath: list[str] = []
    components: ComponentsModel | None = None
    management: ManagementModel | None = None
    supervisor: SupervisorModel


@dataclasses.dataclass(frozen=True)
class TreeFile:
    """What a tree file describes: the tree, and how its node is managed (if at all)."""

    spec: SupervisorSpec
    management: Management | None = None
    source: str = "<data>"


SupervisorModel.model_rebuild()
WorkerModel.model_rebuild()

_TYPE_RULES = {
    "int_type": "expected an integer",
    "float_type": "expected a number",
    "string_type": "expected a string",
    "bool_type": "expected true or false",
    "list_type": "expected a list",
    "dict_type": "expected a table (mapping)",
    "model_type": "expected a table (mapping)",
    "missing": "required key",
}

_KEYS: dict[str, type[BaseModel]] = {
    "supervisor": SupervisorModel,
    "children": ChildModel,
    "components": ComponentsModel,
    "management": ManagementModel,
    "worker": WorkerModel,
}

_VARIABLE = re.compile(r"\$(\$)?\{([^}]*)\}")
"""``${VAR}``, ``${VAR:-default}``, or ``$${...}`` (a literal ``${...}``)."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_written: weakref.WeakKeyDictionary[Component, dict[str, Any]] = weakref.WeakKeyDictionary()
"""A configured component's settings as its file wrote them (before ``${VAR}``)."""
_written_lock = threading.Lock()


# -- reading -----------------------------------------------------------------


def format_of(path: str | Path) -> Format:
    """The format a file's extension names; ConfigError for any other."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        allowed = ", ".join(sorted(FORMATS))
        rule = f"unknown extension {suffix or '(none)'!r}: expected one of {allowed}"
        raise ConfigError(str(path), [ConfigProblem("", None, rule)])
    return FORMATS[suffix]


def load_tree(path: str | Path) -> SupervisorSpec:
    """Read a tree file and build its `SupervisorSpec` (see `read_tree`)."""
    return read_tree(path).spec


def read_tree(path: str | Path) -> TreeFile:
    """Read a tree file and build its `SupervisorSpec`, importing every class it names.

    The format follows the extension (``.toml``, ``.yaml``/``.yml``, ``.json``).
    The file's directory (and its ``pythonpath`` entries) go to the front of
    `sys.path`, so that a tree's actors can live next to it. Raises
    `ConfigError` for anything wrong; nothing is started.
    """
    file = Path(path)
    fmt = format_of(file)
    try:
        text = _read_text(file)
    except FileNotFoundError:
        raise ConfigError(str(file), [ConfigProblem("", None, "no such file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        problem = ConfigProblem("", None, f"cannot read the file: {exc}")
        raise ConfigError(str(file), [problem]) from None
    data = _parse(text, fmt, str(file))
    return tree_file_from_data(data, source=str(file), base_dir=file.resolve().parent)


MAX_FILE_BYTES = 16 * 1024 * 1024
"""A tree file larger than this is refused unread (a log or a disk image, not a tree)."""


def _read_text(file: Path) -> str:
    """The file's text, if it is a regular file of at most `MAX_FILE_BYTES`: a FIFO
    would block the reader (a node's reload) for ever, a device never end."""
    fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO's open must not wait
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            _unreadable(file, "not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        _unreadable(file, f"larger than {MAX_FILE_BYTES} bytes")
    return data.decode("utf-8")


def _unreadable(file: Path, why: str) -> NoReturn:
    raise ConfigError(str(file), [ConfigProblem("", None, f"cannot read the file: {why}")])


def loads_tree(
    text: str,
    fmt: Format,
    *,
    source: str = "<string>",
    base_dir: str | Path | None = None,
) -> SupervisorSpec:
    """Build a `SupervisorSpec` from a tree file's text; `source` names it in errors."""
    data = _parse(text, fmt, source)
    return tree_from_data(data, source=source, base_dir=base_dir)


def _parse(text: str, fmt: Format, source: str) -> Any:
    try:
        if fmt == "toml":
            return tomllib.loads(text)
        if fmt == "json":
            return json.loads(text)
        return yaml.safe_load(text)
    except tomllib.TOMLDecodeError as exc:
        problem = ConfigProblem("", None, f"TOML syntax error: {exc}", _toml_line(exc))
    except json.JSONDecodeError as exc:
        problem = ConfigProblem("", None, f"JSON syntax error: {exc.msg}", exc.lineno)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        what = getattr(exc, "problem", None) or str(exc)
        problem = ConfigProblem("", None, f"YAML syntax error: {what}", line)
    except RecursionError:  # the parsers recurse once per level of nesting
        problem = ConfigProblem("", None, "nested too deeply to parse")
    raise ConfigError(source, [problem])


def _toml_line(exc: tomllib.TOMLDecodeError) -> int | None:
    line = getattr(exc, "lineno", None)  # Python 3.14 adds it
    if isinstance(line, int):
        return line
    text = str(exc)
    marker = "(at line "
    if marker in text:
        digits = text.split(marker, 1)[1].split(",", 1)[0]
        if digits.isdigit():
            return int(digits)
    return None


def tree_from_data(
    data: Any,
    *,
    source: str = "<data>",
    base_dir: str | Path | None = None,
) -> SupervisorSpec:
    """Build a `SupervisorSpec` from a tree file's parsed data (nested dicts and lists)."""
    return tree_file_from_data(data, source=source, base_dir=base_dir).spec


def tree_file_from_data(
    data: Any,
    *,
    source: str = "<data>",
    base_dir: str | Path | None = None,
) -> TreeFile:
    """A `TreeFile` from a tree file's parsed data."""
    if not isinstance(data, dict):
        rule = "expected a table (mapping) with a 'supervisor' key at the top"
        raise ConfigError(source, [ConfigProblem("", _short(data), rule)])
    try:
        model = TreeFileModel.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, _problems(exc)) from None
    if base_dir is not None:
        base = Path(base_dir)
        for entry in [".", *model.pythonpath][::-1]:
            directory = str((base / entry).resolve())
            if directory not in sys.path:
                sys.path.insert(0, directory)
    defaults: dict[str, Any] = {}
    if model.components is not None:
        defaults = _set_fields(model.components, exclude=set())
    builder = _Builder(defaults)
    builder.node = model.supervisor.name or "root"
    builder.base_dir = str(base_dir) if base_dir is not None else None
    management = builder.management(model.management) if model.management else None
    builder.node_management = management
    spec = builder.supervisor(model.supervisor, "supervisor")
    if builder.problems or spec is None:
        raise ConfigError(source, builder.problems)
    return TreeFile(spec, management, source)


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
    if not isinstance(config, dict):
        rule = "expected a table (mapping) with a 'start' key"
        raise ConfigError(source, [ConfigProblem(key, _short(config), rule)])
    try:
        model = ChildModel.model_validate({**config, "id": child_id})
    except ValidationError as exc:
        problems = [
            p._replace(key=f"{key}.{p.key}" if p.key else key) for p in _problems(exc, ChildModel)
        ]
        raise ConfigError(source, problems) from None
    builder = _Builder(component_defaults)
    spec = builder.child(model, key)
    if builder.problems or spec is None:
        raise ConfigError(source, builder.problems)
    return spec


def child_to_data(child: ChildSpec) -> dict[str, Any]:
    """`child_from_data`'s input for `child` (its tree-file table, less the id)."""
    data = _child_data(child)
    del data["id"]
    return data


def _problems(exc: ValidationError, root: type[BaseModel] | None = None) -> list[ConfigProblem]:
    """One problem per key: a number that is neither int nor float is one error."""
    problems: dict[str, ConfigProblem] = {}
    for error in exc.errors():
        loc = tuple(error["loc"])
        if loc and loc[-1] in ("int", "float"):  # the members of Number
            loc = loc[:-1]
            error = {**error, "loc": loc, "type": "float_type"}  # noqa: PLW2901
        problem = _problem(error, root or TreeFileModel)
        problems.setdefault(problem.key, problem)
    return list(problems.values())


def _problem(error: Any, root: type[BaseModel]) -> ConfigProblem:
    loc = tuple(error["loc"])
    kind = error["type"]
    key = _key_path(loc)
    if kind == "missing":
        return ConfigProblem(key, _MISSING, "required key")
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1], root)
        allowed = list(model.model_fields) if model is not None else []
        rule = "unknown key"
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        if close:
            rule += f" (did you mean {close[0]!r}?)"
        if allowed:
            rule += f"; allowed: {', '.join(allowed)}"
        return ConfigProblem(key, _short(error["input"]), rule)
    rule = _TYPE_RULES.get(kind, str(error["msg"]).lower())
    return ConfigProblem(key, _short(error["input"]), rule)


def _model_at(loc: tuple[Any, ...], root: type[BaseModel]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = root
    for part in loc:
        if isinstance(part, int):
            continue
        model = ChildModel if (model, part) == (WorkerModel, "components") else _KEYS.get(part)
    return model


def _key_path(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _short(value: Any) -> Any:
    """A value fit to quote in an error: big tables are summarised by their keys."""
    if isinstance(value, dict) and len(repr(value)) > 80:  # noqa: PLR2004
        return dict.fromkeys(value, ...)
    return value


class _Builder:
    """Turns the validated model into specs, collecting every problem found."""

    def __init__(self, component_defaults: dict[str, Any] | None = None) -> None:
        self.problems: list[ConfigProblem] = []
        self.component_defaults = component_defaults or {}
        self.node = "root"
        self.base_dir: str | None = None
        self.node_management: Management | None = None

    def supervisor(self, model: SupervisorModel, key: str) -> SupervisorSpec | None:
        children: list[ChildSpec] = []
        for index, child_model in enumerate(model.children):
            child = self.child(child_model, f"{key}.children[{index}]")
            if child is not None:
                children.append(child)
        if len(children) != len(model.children):
            return None
        fields = _set_fields(model, exclude={"children"})
        try:
            return SupervisorSpec(children=children, **fields)
        except SpecError as exc:
            self.problems.append(self._locate(exc, model, key))
            return None

    def child(self, model: ChildModel, key: str) -> ChildSpec | None:
        given = [k for k in ("start", "supervisor", "worker") if getattr(model, k) is not None]
        if len(given) != 1:
            rule = (
                "give one of 'start' (a 'module:Class'), 'supervisor' (a nested table) "
                "or 'worker' (a worker process's table)"
            )
            self.problems.append(ConfigProblem(key, model.id, rule))
            return None
        start: Any
        if model.worker is not None:
            start = self.worker(model.worker, model.id, f"{key}.worker")
        elif model.supervisor is not None:
            start = self.supervisor(model.supervisor, f"{key}.supervisor")
        else:
            assert model.start is not None
            start = self.resolve(model.start, f"{key}.start")
        if start is None:
            return None
        settings = _set_fields(model, exclude=set()).keys() & set(SETTINGS)
        if isinstance(start, Component):
            start = self.component(start, model, key)
            if start is None:
                return None
        elif settings:
            name = min(settings)
            rule = f"{name!r} is for components only: {model.start!r} is not a hedgerow.Component"
            self.problems.append(ConfigProblem(f"{key}.{name}", getattr(model, name), rule))
            return None
        fields = _set_fields(
            model, exclude={"id", "start", "supervisor", "worker", "args", *SETTINGS}
        )
        args = tuple(model.args) if model.args is not None else ()
        try:
            return ChildSpec(model.id, start, args=args, **fields)
        except SpecError as exc:
            value = model.start if exc.field == "start" else exc.value
            self.problems.append(ConfigProblem(f"{key}.{exc.field}", value, exc.rule))
            return None

    def worker(self, model: WorkerModel, worker_id: str, key: str) -> Any:
        """A `hedgerow.node.Worker` for a worker table: its container's spec, built
        with the container's modes, and the node's management under the worker's prefix."""
        from hedgerow.node._worker import Worker  # noqa: PLC0415 - node imports supervision

        try:
            restart = Restart.parse(model.restart or Restart.NEVER, worker_id, "restart")
            shutdown = ShutdownPolicy.parse(
                model.shutdown or ShutdownPolicy.MANUAL, worker_id, "shutdown"
            )
        except SpecError as exc:
            self.problems.append(ConfigProblem(f"{key}.{exc.field}", exc.value, exc.rule))
            return None
        if restart is Restart.ALWAYS and shutdown is not ShutdownPolicy.MANUAL:
            rule = "restart-always never lets a component stop: use restart-failed or restart-never"
            self.problems.append(ConfigProblem(f"{key}.restart", model.restart, rule))
            return None
        children = self.components(model, restart, shutdown, key)
        if children is None:
            return None
        options = _set_fields(model, exclude={"restart", "shutdown", "components"})
        container_keys = ("max_restarts", "period", "backoff", *BACKOFF_FIELDS, *INBOX_FIELDS)
        supervisor_fields = {k: options.pop(k) for k in container_keys if k in options}
        try:
            container = SupervisorSpec(
                children, name=worker_id, shutdown_policy=shutdown, **supervisor_fields
            )
        except SpecError as exc:
            self.problems.append(ConfigProblem(f"{key}.{exc.field}", exc.value, exc.rule))
            return None
        management = None
        if self.node_management is not None:
            management = self.node_management.with_prefix(
                worker_prefix(self.node, worker_id)
            ).as_data()
        host = {"restart": restart.value, "management": management}
        try:
            return Worker(container, base_dir=self.base_dir, management=host, **options)
        except SpecError as exc:
            self.problems.append(ConfigProblem(f"{key}.{exc.field}", exc.value, exc.rule))
            return None

    def components(
        self, model: WorkerModel, restart: Restart, shutdown: ShutdownPolicy, key: str
    ) -> list[ChildSpec] | None:
        """A worker's components, with the container's modes where they name none."""
        children: list[ChildSpec] = []
        for index, component in enumerate(model.components):
            fields = component.model_fields_set
            updates: dict[str, Any] = {}
            if "restart" not in fields:
                updates["restart"] = restart.value
            if "significant" not in fields:
                try:
                    own = Restart.parse(component.restart or restart, component.id, "restart")
                except SpecError:
                    own = restart  # the child's own check reports it
                counts = shutdown is not ShutdownPolicy.MANUAL
                updates["significant"] = counts and own is not Restart.ALWAYS
            built = self.child(component.model_copy(update=updates), f"{key}.components[{index}]")
            if built is not None:
                children.append(built)
        return children if len(children) == len(model.components) else None

    def management(self, model: ManagementModel) -> Management | None:
        """The node's `Management`, ``${VAR}`` read."""
        fields = _set_fields(model, exclude=set())
        settings = {
            name: self.expand(value, f"management.{name}") for name, value in fields.items()
        }
        try:
            return Management.parse(settings)
        except ValueError as exc:
            self.problems.append(ConfigProblem("management", fields, str(exc)))
            return None

    def component(self, origin: Component, model: ChildModel, key: str) -> Component | None:
        """`origin` with the file's settings (and the file's defaults), ``${VAR}`` read."""
        written = {**self.component_defaults, **_set_fields(model, exclude=set())}
        written = {name: written[name] for name in SETTINGS if name in written}
        if not written:
            return origin
        settings: dict[str, Any] = {}
        for name, value in written.items():
            settings[name] = self.expand(value, f"{key}.{name}")
        if len(self.problems) > 0 and any(p.key.startswith(key) for p in self.problems):
            return None
        try:
            component = origin.configured(**settings)
        except ValueError as exc:
            name = next((n for n in SETTINGS if str(exc).startswith(n)), "transports")
            name = name if name in written else next(iter(written))
            self.problems.append(ConfigProblem(f"{key}.{name}", written[name], str(exc)))
            return None
        with _written_lock:
            _written[component] = written
        return component

    def expand(self, value: Any, key: str) -> Any:
        """`value` with every ``${VAR}`` in its strings read from the environment."""
        if isinstance(value, dict):
            return {k: self.expand(v, f"{key}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [self.expand(v, f"{key}[{i}]") for i, v in enumerate(value)]
        if not isinstance(value, str) or "${" not in value:
            return value

        def substitute(match: re.Match[str]) -> str:
            if match.group(1):
                return match.group(0)[1:]
            name, _, default = match.group(2).partition(":-")
            if not _NAME.fullmatch(name):
                rule = f"${{{match.group(2)}}}: expected ${{NAME}} or ${{NAME:-default}}"
                self.problems.append(ConfigProblem(key, value, rule))
                return ""
            found = os.environ.get(name)
            if found is not None:
                return found
            if ":-" in match.group(2):
                return default
            rule = (
                f"environment variable {name} is not set (give ${{{name}:-default}} for a default)"
            )
            self.problems.append(ConfigProblem(key, value, rule))
            return ""

        return _VARIABLE.sub(substitute, value)

    def resolve(self, target: str, key: str) -> Any:
        """Import ``module:attribute``; a problem (and None) if that fails."""
        module_name, colon, attribute = target.partition(":")
        if not colon or not module_name or not attribute:
            rule = "expected 'module:Class' or 'module:factory' (e.g. 'myapp.workers:Fetcher')"
            self.problems.append(ConfigProblem(key, target, rule))
            return None
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # noqa: BLE001 - any import-time error is reported
            rule = f"cannot import module {module_name!r}: {type(exc).__name__}: {exc}"
            self.problems.append(ConfigProblem(key, target, rule))
            return None
        found: Any = module
        for part in attribute.split("."):
            if not hasattr(found, part):
                where = getattr(module, "__file__", None) or module_name
                rule = f"module {module_name!r} ({where}) has no attribute {attribute!r}"
                self.problems.append(ConfigProblem(key, target, rule))
                return None
            found = getattr(found, part)
        return found

    def _locate(self, exc: SpecError, model: SupervisorModel, key: str) -> ConfigProblem:
        """Point a supervisor's SpecError at the child it is about, if any."""
        ids = [c.id for c in model.children]
        if exc.field in ("id", "significant") and exc.child_id in ids:
            # For a duplicate, the second child with that id is the one at fault.
            hits = [i for i, cid in enumerate(ids) if cid == exc.child_id]
            index = hits[1] if exc.field == "id" and len(hits) > 1 else hits[0]
            return ConfigProblem(f"{key}.children[{index}].{exc.field}", exc.value, exc.rule)
        return ConfigProblem(f"{key}.{exc.field}", exc.value, exc.rule)


def _set_fields(model: BaseModel, exclude: set[str]) -> dict[str, Any]:
    return {
        name: getattr(model, name)
        for name in model.model_fields_set
        if name not in exclude and getattr(model, name) is not None
    }


# -- writing -----------------------------------------------------------------


def tree_to_data(spec: SupervisorSpec) -> dict[str, Any]:
    """The tree file's data for `spec` (fields at their defaults are left out).

    Raises `SpecError` for what a file cannot name: a class or factory that is
    not importable by ``module:name`` (defined in ``__main__`` or in a function).
    """
    return {"supervisor": _supervisor_data(spec)}


def _supervisor_data(spec: SupervisorSpec) -> dict[str, Any]:
    data: dict[str, Any] = {}
    defaults = {f.name: f.default for f in dataclasses.fields(SupervisorSpec)}
    names = ("name", "strategy", "max_restarts", "period", "shutdown_policy", "backoff")
    for name in names + BACKOFF_FIELDS + INBOX_FIELDS:
        value = _plain(getattr(spec, name))
        if value != _plain(defaults[name]):
            data[name] = value
    data["children"] = [_child_data(child) for child in spec.children]
    return data


def _worker_data(worker: Any) -> dict[str, Any]:
    """A worker's table; its components name their restart and significance, which
    the container's modes would otherwise fill in differently."""
    container: SupervisorSpec = worker.container
    host = worker.management if isinstance(worker.management, dict) else {}
    data: dict[str, Any] = {}
    if host.get("restart", Restart.NEVER.value) != Restart.NEVER.value:
        data["restart"] = host["restart"]
    supervisor = _supervisor_data(container)
    if "shutdown_policy" in supervisor:
        data["shutdown"] = supervisor["shutdown_policy"]
    for name in ("max_restarts", "period", "backoff", *BACKOFF_FIELDS, *INBOX_FIELDS):
        if name in supervisor:
            data[name] = supervisor[name]
    components = []
    for child in container.children:
        table = _child_data(child)
        table["restart"] = _plain(child.restart)
        table["significant"] = child.significant
        components.append(table)
    data["components"] = components
    defaults = {
        "config_timeout": 10.0,
        "ready_timeout": 30.0,
        "standby": False,
        "env": None,
        "log_level": None,
        "framework": None,
    }
    for name, default in defaults.items():
        value = getattr(worker, name)
        if value not in (default, {}):
            data[name] = dict(value) if name == "env" else value
    return data


def _child_data(child: ChildSpec) -> dict[str, Any]:
    data: dict[str, Any] = {"id": child.id}
    if isinstance(child.start, SupervisorSpec):
        data["supervisor"] = _supervisor_data(child.start)
    elif hasattr(child.start, "container") and hasattr(child.start, "container_data"):
        data["worker"] = _worker_data(child.start)
    else:
        data["start"] = _import_name(child)
    if isinstance(child.start, Component) and child.start.origin is not None:
        with _written_lock:
            written = _written.get(child.start)
        data.update(written if written is not None else child.start.settings)
    if child.args:
        data["args"] = list(child.args)
    if child.kwargs:
        data["kwargs"] = dict(child.kwargs)
    defaults = {
        f.name: f.default
        for f in dataclasses.fields(ChildSpec)
        if f.default is not dataclasses.MISSING
    }
    defaults["shutdown"] = INFINITY if child.is_supervisor else DEFAULT_WORKER_SHUTDOWN
    for name, default in defaults.items():
        if name in ("args", "kwargs"):
            continue
        value = _plain(getattr(child, name))
        if value != _plain(default):
            data[name] = value
    return data


def _plain(value: Any) -> Any:
    """An enum member as the word a file uses for it."""
    return value.value if isinstance(value, enum.Enum) else value


def _import_name(child: ChildSpec) -> str:
    start = child.start
    if isinstance(start, Component):
        start = start.origin or start
        module = start.module
        names = vars(sys.modules[module]) if module in sys.modules else {}
        qualname = next((k for k, v in names.items() if v is start), None)
    else:
        module = getattr(start, "__module__", None)
        qualname = getattr(start, "__qualname__", None)
    if not module or not qualname or module == "__main__" or "<" in qualname:
        rule = "a tree file names what it starts as 'module:name': define it at module level"
        raise SpecError(child.id, "start", start, rule)
    name = f"{module}:{qualname}"
    found: Any = sys.modules.get(module)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if found is not start:
        rule = f"{name} does not name this object (is it importable?)"
        raise SpecError(child.id, "start", start, rule)
    return name


def dumps_tree(spec: SupervisorSpec, fmt: Format) -> str:
    """`spec` as the text of a tree file in `fmt`."""
    data = tree_to_data(spec)
    try:
        if fmt == "toml":
            return tomli_w.dumps(data)
        if fmt == "json":
            return json.dumps(data, indent=2) + "\n"
        return yaml.safe_dump(data, sort_keys=False)
    except (TypeError, ValueError, yaml.YAMLError) as exc:
        rule = f"args and kwargs must be plain {fmt.upper()} data to be written: {exc}"
        raise SpecError(spec.name, "children", "...", rule) from None


def dump_tree(spec: SupervisorSpec, path: str | Path) -> None:
    """Write `spec` to a tree file; the format follows the extension."""
    text = dumps_tree(spec, format_of(path))
    Path(path).write_text(text, encoding="utf-8")


def describe_start(child: ChildSpec) -> str:
    """How a tree view shows what a child starts: ``module:Class`` when it can."""
    start = child.start
    if isinstance(start, SupervisorSpec):
        return "supervisor"
    name = getattr(start, "__qualname__", None)
    if name is None:
        return repr(start)
    return f"{getattr(start, '__module__', '?')}:{name}"
