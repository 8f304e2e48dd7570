"""What `hedgerow status` accepts from a node: its answers, checked before they are shown.

The node and its workers answer over the router, and anything that can
register their procedures can answer in their place: an answer is untrusted
input. `check_tree` and `check_component` validate one (pydantic, strict
types; fields this version does not know are let through) and raise
`MalformedAnswer` naming the key at fault. The text in an answer is shown
as text, never as rich markup.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from hedgerow._exceptions import ConfigError, echo
from hedgerow.supervision._treeparse import check_data

__all__ = [
    "ComponentAnswer",
    "MalformedAnswer",
    "RowAnswer",
    "TreeAnswer",
    "check_component",
    "check_ids",
    "check_tree",
]


class MalformedAnswer(ValueError):
    """An answer that is not what the management API returns; says where and why."""


def _finite(value: float) -> float:
    if not math.isfinite(value) or value < 0:
        msg = "expected a finite number >= 0"
        raise ValueError(msg)
    return value


Count = Annotated[int, AfterValidator(lambda v: v if v >= 0 else _negative())]
Seconds = Annotated[int | float, AfterValidator(_finite)]


def _negative() -> int:
    msg = "expected a count >= 0"
    raise ValueError(msg)


class _Answer(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, frozen=True)


class ComponentAnswer(_Answer):
    id: str
    state: str
    restarts: Count = 0


class RowAnswer(_Answer):
    id: str
    state: str
    restarts: Count = 0
    info: dict[str, Any] | None = None
    children: list[RowAnswer] = []


class TreeAnswer(_Answer):
    name: str
    pid: int
    uptime: Seconds
    children: list[RowAnswer] = []


RowAnswer.model_rebuild()


def check_tree(answer: Any) -> TreeAnswer:
    """`answer` to ``get_tree`` as a `TreeAnswer`; `MalformedAnswer` if it is not one."""
    return _check(TreeAnswer, answer)


def check_component(answer: Any) -> ComponentAnswer:
    """`answer` to a worker's ``get_component``; `MalformedAnswer` if it is not one."""
    return _check(ComponentAnswer, answer)


def check_ids(answer: Any) -> list[str]:
    """`answer` to a worker's ``get_components``: a list of ids."""
    if not isinstance(answer, list) or not all(isinstance(i, str) for i in answer):
        msg = f"{echo(answer)}: expected a list of component ids"
        raise MalformedAnswer(msg)
    return answer


M = TypeVar("M", bound=_Answer)


def _check(model: type[M], answer: Any) -> M:
    try:
        check_data(answer, "the answer")
    except ConfigError as exc:
        problem = exc.problems[0]
        raise MalformedAnswer(problem.describe()) from None
    if not isinstance(answer, dict):
        msg = f"{echo(answer)}: expected a table (mapping)"
        raise MalformedAnswer(msg)
    try:
        return model.model_validate(answer)
    except ValidationError as exc:
        raise MalformedAnswer(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    error = exc.errors()[0]
    key = ""
    for part in error["loc"]:
        if isinstance(part, str) and (part in ("int", "float") or "[" in part):
            continue  # a member of a union, or a validator: not a key
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    what = "required key" if error["type"] == "missing" else str(error["msg"])
    value = "missing" if error["type"] == "missing" else echo(error.get("input"))
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{key} = {value}: {what}{more}"
