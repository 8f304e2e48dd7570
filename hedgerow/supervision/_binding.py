"""Binding a child's args and kwargs to what it starts, before anything starts.

A tree file's ``kwargs = { bogus = 1 }`` would otherwise be a `TypeError` when
the tree starts (or when a SIGHUP reload starts it). `bind_child` binds them
to the constructor's signature (`inspect.Signature.bind`) and raises a
`SpecError` naming the argument at fault: ``kwargs.bogus`` for a keyword
nobody takes, ``args`` for a missing or surplus positional argument.
An actor class that defines no ``__init__`` takes no arguments here: the
one it inherits from `hedgerow.Actor` (pykka's) would silently drop them.
`load_tree` calls it for every child, so every path that loads a tree gets it.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from hedgerow._exceptions import SpecError
from hedgerow.supervision._spec import SupervisorSpec

if TYPE_CHECKING:
    from collections.abc import Mapping

    from hedgerow.supervision._spec import ChildSpec

__all__ = ["bind_child", "binding_problems"]

_NOT_BY_KEYWORD = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.VAR_POSITIONAL)


def bind_child(spec: ChildSpec, *, partial: bool = False) -> None:
    """Raise `SpecError` (the first problem) if `spec`'s args and kwargs do not bind to
    what it starts. With `partial` (a simple_one_for_one template, whose
    ``start_child`` adds arguments), missing arguments are allowed."""
    for field, value, rule in binding_problems(spec.start, spec.args, spec.kwargs, partial=partial):
        raise SpecError(spec.id, field, value, rule)


def binding_problems(
    start: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], *, partial: bool = False
) -> list[tuple[str, Any, str]]:
    """Every problem binding ``start(*args, **kwargs)``, as ``(field, value, rule)``: field
    ``kwargs.<name>`` or ``args``. None for a nested supervisor, a worker (its own
    table), or a callable whose signature cannot be read."""
    signature = _signature(start)
    if signature is None:
        return []
    shown = f"{_name(start)}{_describe(signature)}"
    parameters = signature.parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    problems: list[tuple[str, Any, str]] = []
    known: dict[str, Any] = {}
    for name, value in kwargs.items():
        parameter = parameters.get(name)
        if parameter is not None and parameter.kind in _NOT_BY_KEYWORD:
            rule = f"{name!r} is positional only: give it in args ({shown})"
        elif parameter is None and not takes_any:
            rule = f"unexpected keyword argument: {shown} takes no {name!r}"
        else:
            known[name] = value
            continue
        problems.append((f"kwargs.{name}", value, rule))
    try:
        if partial:
            signature.bind_partial(*args, **known)
        else:
            signature.bind(*args, **known)
    except TypeError as exc:
        problems.append(_problem(str(exc), list(args), known, shown))
    return problems


def _problem(
    message: str, args: list[Any], kwargs: dict[str, Any], shown: str
) -> tuple[str, Any, str]:
    """Where a bind's TypeError points: a keyword given twice, else the args."""
    if "multiple values for argument" in message:
        name = message.rsplit("'", 2)[-2] if message.count("'") >= 2 else ""  # noqa: PLR2004
        if name in kwargs:
            return (f"kwargs.{name}", kwargs[name], f"{message} ({shown}): given in args too")
    return ("args", args, f"{message} ({shown})")


def _signature(start: Any) -> inspect.Signature | None:
    if isinstance(start, SupervisorSpec) or hasattr(start, "container_data"):
        return None  # a nested supervisor, or a worker: their own tables say what they take
    if inspect.isclass(start) and _generic_init(start):
        return inspect.Signature()  # no __init__ of its own: arguments would be ignored
    try:
        return inspect.signature(start)
    except Exception:  # noqa: BLE001 - a builtin, or a user's object that misbehaves: it tells at start
        return None


def _generic_init(cls: type) -> bool:
    """Whether `cls` takes its ``__init__`` from a hedgerow runtime's actor or pykka's,
    which accept any arguments and drop them."""
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            module = klass.__module__
            return module.startswith("pykka") or module in _RUNTIME_MODULES
    return False


_RUNTIME_MODULES = frozenset(
    {"hedgerow.actors._actor", "hedgerow.actors._actor_core", "hedgerow.actors._async_actor"}
)
"""Where hedgerow's actor classes define ``__init__`` (both runtimes)."""


def _name(start: Any) -> str:
    return str(getattr(start, "__qualname__", None) or type(start).__name__)


def _describe(signature: inspect.Signature) -> str:
    text = str(signature.replace(return_annotation=inspect.Signature.empty))
    return text if len(text) <= 120 else text[:117] + "..."  # noqa: PLR2004
