"""The tree file's schema: its keys and their types (pydantic); the specs check the values.

`validate` checks a whole file's data and returns every problem at once: a
key pydantic refuses (unknown, mistyped, missing) is reported, then left out
so that the rest of the file is still built and its value errors are found
too (`hedgerow check` promises every problem in one run).
"""

from __future__ import annotations

import copy
import difflib
import math
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from hedgerow._exceptions import _MISSING, ConfigProblem
from hedgerow.supervision._treecheck import set_fields, short

__all__ = [
    "ChildModel",
    "ComponentsModel",
    "ManagementModel",
    "Number",
    "SupervisorModel",
    "TreeFileModel",
    "WorkerModel",
    "set_fields",
    "short",
    "validate",
]

M = TypeVar("M", bound=BaseModel)


def _finite(value: float) -> float:
    """A number a float can hold: NaN, infinities and ints beyond 1e308 are refused."""
    try:
        finite = math.isfinite(value)
    except OverflowError:
        finite = False
    if not finite:
        msg = "expected a finite number"
        raise ValueError(msg)
    return value


Number = Annotated[int | float, AfterValidator(_finite)]
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
    runtime: str | None = None  # where the supervisor runs: thread or loop
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
    start_method: str | None = None  # forkserver (the default on Linux) or spawn


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
        return ConfigProblem(key, short(error["input"]), rule)
    if kind == "value_error" and "error" in error.get("ctx", {}):
        return ConfigProblem(key, short(error["input"]), str(error["ctx"]["error"]))
    rule = _TYPE_RULES.get(kind, str(error["msg"]).lower())
    return ConfigProblem(key, short(error["input"]), rule)


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


def validate(
    model: type[M], data: dict[str, Any], prefix: str = ""
) -> tuple[M | None, list[ConfigProblem]]:
    """`data` as a `model`, and every problem of its structure (keys under `prefix`).

    A refused key is left out (a missing child id gets a stand-in) and the rest
    validated again, so that what remains can still be built and checked; None
    when nothing sensible remains (a list item of the wrong type, a missing
    table).
    """
    problems: dict[str, ConfigProblem] = {}
    current = data
    for _ in range(5):  # each round leaves out what the last one refused
        try:
            return model.model_validate(current), list(problems.values())
        except ValidationError as exc:
            found = _problems(exc, model)
            errors = exc.errors()
        for problem in found:
            key = f"{prefix}.{problem.key}" if prefix and problem.key else prefix or problem.key
            problems.setdefault(key, problem._replace(key=key))
        current = copy.copy(current)
        if not all(_repair(current, tuple(error["loc"])) for error in errors):
            break
    return None, list(problems.values())


def _repair(data: dict[str, Any], loc: tuple[Any, ...]) -> bool:  # noqa: PLR0911
    """Leave out the key at `loc` in `data` (copying what it changes); False if it cannot."""
    if loc and loc[-1] in ("int", "float"):  # a member of Number's union
        loc = loc[:-1]
    if not loc or isinstance(loc[-1], int):
        return False
    parent: Any = data
    for part in loc[:-1]:
        try:
            child = parent[part]
        except (KeyError, IndexError, TypeError):
            return False
        if not isinstance(child, dict | list):
            return False
        child = copy.copy(child)
        parent[part] = child
        parent = child
    if not isinstance(parent, dict):
        return False
    if loc[-1] == "id" and "id" not in parent:
        parent["id"] = f"<missing id {id(parent)}>"  # the problem is reported already
        return True
    if loc[-1] not in parent:
        return False  # a required table: nothing to build without it
    del parent[loc[-1]]
    return True
