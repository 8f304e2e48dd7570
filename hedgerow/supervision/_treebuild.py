"""Building specs from a validated tree file, collecting every problem on the way.

`Builder` turns the schema's models (`hedgerow.supervision._treeschema`) into
`SupervisorSpec` and `ChildSpec` objects; a worker table's `hedgerow.node.Worker`
(a layer above) is built by the `WorkerTable` it is given. It does not
stop at the first problem: a spec that refuses a field is built again without
it, so that a file's every bad value is reported in one run, and each child's
args and kwargs are bound to what it starts (`hedgerow.supervision._binding`).
"""

from __future__ import annotations

import importlib
import os
import re
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from hedgerow._exceptions import ConfigProblem, SpecError
from hedgerow.supervision._binding import binding_problems
from hedgerow.supervision._management import Management
from hedgerow.supervision._spec import (
    ChildSpec,
    Strategy,
    SupervisorSpec,
)
from hedgerow.supervision._treecheck import COMPONENT_SETTINGS as SETTINGS
from hedgerow.supervision._treecheck import set_fields, short
from hedgerow.supervision._treecomponents import Configurable, is_component, remember_written

if TYPE_CHECKING:
    from collections.abc import Callable

    from hedgerow.supervision._treeschema import (
        ChildModel,
        ManagementModel,
        SupervisorModel,
        WorkerModel,
    )

__all__ = ["Builder", "WorkerTable", "drop_field"]

T = TypeVar("T")


_VARIABLE = re.compile(r"\$(\$)?\{([^}]*)\}")
"""``${VAR}``, ``${VAR:-default}``, or ``$${...}`` (a literal ``${...}``)."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


WorkerTable: TypeAlias = "Callable[[Builder, WorkerModel, str, str], Any]"
"""What builds a worker table's child (`hedgerow.node._worker_table.build_worker`),
given the builder, the table, the worker's id and the table's key; None when the
table is at fault (its problems are on the builder)."""


class Builder:
    """Turns the validated model into specs, collecting every problem found.

    A worker table is built by `worker_table`; without one (a container's component
    config), it is refused."""

    def __init__(
        self,
        component_defaults: dict[str, Any] | None = None,
        worker_table: WorkerTable | None = None,
    ) -> None:
        self.problems: list[ConfigProblem] = []
        self.component_defaults = component_defaults or {}
        self.worker_table = worker_table
        self.node = "root"
        self.base_dir: str | None = None
        self.node_management: Management | None = None

    def supervisor(self, model: SupervisorModel, key: str) -> SupervisorSpec | None:
        """A supervisor's spec; its children's problems and its own are all reported."""
        simple = _is_simple(model.strategy)
        children: list[ChildSpec] = []
        for index, child_model in enumerate(model.children):
            child = self.child(child_model, f"{key}.children[{index}]", template=simple)
            if child is not None:
                children.append(child)
        complete = len(children) == len(model.children)
        fields: dict[str, Any] = {**set_fields(model, exclude={"children"}), "children": children}

        def build(given: dict[str, Any]) -> SupervisorSpec:
            return SupervisorSpec(**given)

        def drop(exc: SpecError, given: dict[str, Any]) -> bool:
            if exc.field in ("id", "significant") and exc.child_id is not None:
                ids = [c.id for c in given["children"]]
                if exc.child_id in ids:  # the child at fault is left out, the rest checked
                    at = len(ids) - 1 - ids[::-1].index(exc.child_id)
                    given["children"] = [c for i, c in enumerate(given["children"]) if i != at]
                    return True
            return drop_field(exc, given)

        def report(exc: SpecError) -> ConfigProblem | None:
            if exc.field == "children" and not complete:
                return None  # about a child that failed: its own problem says why
            return self._locate(exc, model, key)

        spec = self.collect(build, fields, drop, report)
        return spec if complete else None

    def child(self, model: ChildModel, key: str, *, template: bool = False) -> ChildSpec | None:
        """A child's spec (its start imported, its args bound); every problem reported."""
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
            start = self.worker(model, key)
        elif model.supervisor is not None:
            start = self.supervisor(model.supervisor, f"{key}.supervisor")
        else:
            assert model.start is not None
            start = self.resolve(model.start, f"{key}.start")
        settings = set_fields(model, exclude=set()).keys() & set(SETTINGS)
        if is_component(start):
            start = self.component(start, model, key)
        elif settings and start is not None:
            name = min(settings)
            rule = f"{name!r} is for components only: {model.start!r} is not a hedgerow.Component"
            self.problems.append(ConfigProblem(f"{key}.{name}", getattr(model, name), rule))
            start = None
        fields = set_fields(
            model, exclude={"id", "start", "supervisor", "worker", "args", *SETTINGS}
        )
        args = tuple(model.args) if model.args is not None else ()
        # Without a start, the other fields are still checked (with a stand-in start).
        checked = start if start is not None else _stand_in

        def build(given: dict[str, Any]) -> ChildSpec:
            return ChildSpec(model.id, checked, args=args, **given)

        def report(exc: SpecError) -> ConfigProblem:
            value = model.start if exc.field == "start" else exc.value
            return ConfigProblem(f"{key}.{exc.field}", value, exc.rule)

        spec = self.collect(build, fields, drop_field, report)
        if spec is None or start is None:
            return None
        problems = binding_problems(start, spec.args, spec.kwargs, partial=template)
        for field, value, rule in problems:
            self.problems.append(ConfigProblem(f"{key}.{field}", value, rule))
        return None if problems else spec

    def worker(self, model: ChildModel, key: str) -> Any:
        """A worker table's child, built by `worker_table`; refused without one."""
        assert model.worker is not None
        if self.worker_table is None:
            table = short(set_fields(model.worker, exclude=set()))
            rule = "a worker process is declared in a tree file (hedgerow.load_tree), not here"
            self.problems.append(ConfigProblem(f"{key}.worker", table, rule))
            return None
        return self.worker_table(self, model.worker, model.id, f"{key}.worker")

    def collect(
        self,
        build: Callable[[dict[str, Any]], T],
        fields: dict[str, Any],
        drop: Callable[[SpecError, dict[str, Any]], bool],
        report: Callable[[SpecError], ConfigProblem | None],
    ) -> T | None:
        """``build(fields)``; on each `SpecError`, report it, `drop` what it is about
        and build again, so that every bad field is reported. None if any was."""
        given = dict(fields)
        failed = False
        for _ in range(len(fields) + 8):
            try:
                built = build(given)
            except SpecError as exc:
                failed = True
                problem = report(exc)
                if problem is not None and problem not in self.problems:
                    self.problems.append(problem)
                if not drop(exc, given):
                    return None
            else:
                return None if failed else built
        return None

    def management(self, model: ManagementModel) -> Management | None:
        """The node's `Management`, ``${VAR}`` read."""
        fields = set_fields(model, exclude=set())
        settings = {
            name: self.expand(value, f"management.{name}") for name, value in fields.items()
        }
        try:
            return Management.parse(settings)
        except ValueError as exc:
            self.problems.append(ConfigProblem("management", fields, str(exc)))
            return None

    def component(self, origin: Configurable, model: ChildModel, key: str) -> Configurable | None:
        """`origin` with the file's settings (and the file's defaults), ``${VAR}`` read."""
        written = {**self.component_defaults, **set_fields(model, exclude=set())}
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
        remember_written(component, written)
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


def drop_field(exc: SpecError, given: dict[str, Any]) -> bool:
    """Leave out the field a `SpecError` is about (and those whose check depends on
    it); False if it is not one that can be left out."""
    if exc.field not in given or exc.field == "children":
        return False
    del given[exc.field]
    for linked in _LINKED.get(exc.field, ()):
        given.pop(linked, None)
    return True


_LINKED = {"restart": ("significant",), "shutdown_policy": ("children",)}
"""Fields checked against another: left out with it, so that no problem is made up."""


def _is_simple(strategy: str | None) -> bool:
    try:
        return Strategy.parse(strategy or "", None, "strategy") is Strategy.SIMPLE_ONE_FOR_ONE
    except SpecError:
        return False


def _stand_in() -> Any:
    """What a child's spec is checked with when its own start could not be used.

    Such a spec only carries the other fields' checks: its file is refused, so
    it never starts."""
    msg = "a child whose start could not be read is never started"
    raise RuntimeError(msg)
