"""Writing a spec back out as a tree file (`dump_tree`, `dumps_tree`, `tree_to_data`).

Fields at their defaults are left out; a component configured by a file is
written with its settings as the file wrote them (``${VAR}``, never the secret).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hedgerow._exceptions import SpecError
from hedgerow.supervision._spec import (
    BACKOFF_FIELDS,
    DEFAULT_WORKER_SHUTDOWN,
    INBOX_FIELDS,
    INFINITY,
    ChildSpec,
    Restart,
    SupervisorSpec,
)
from hedgerow.supervision._treecomponents import is_component, written_settings
from hedgerow.supervision._treeparse import format_of

if TYPE_CHECKING:
    from hedgerow.supervision._treeparse import Format

__all__ = ["describe_start", "dump_tree", "dumps_tree", "tree_to_data"]


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
    for name in (*names, *BACKOFF_FIELDS, *INBOX_FIELDS, "runtime"):
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
    if getattr(worker, "start_method_given", None) is not None:
        data["start_method"] = worker.start_method_given
    return data


def _child_data(child: ChildSpec) -> dict[str, Any]:
    data: dict[str, Any] = {"id": child.id}
    if isinstance(child.start, SupervisorSpec):
        data["supervisor"] = _supervisor_data(child.start)
    elif hasattr(child.start, "container") and hasattr(child.start, "container_data"):
        data["worker"] = _worker_data(child.start)
    else:
        data["start"] = _import_name(child)
    if is_component(child.start) and child.start.origin is not None:
        written = written_settings(child.start)
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
    start: Any = child.start
    if is_component(start):
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
    import tomli_w  # noqa: PLC0415 - a worker writes none
    import yaml  # noqa: PLC0415

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
