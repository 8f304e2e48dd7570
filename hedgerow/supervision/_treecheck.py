"""Tree data that needs no schema library: a yes-or-no check in plain code, and a view.

The tree file's schema is written with pydantic (`hedgerow.supervision._treeschema`),
which also words every problem. Importing pydantic and the schema costs a process
more than all the rest of what a worker hosting plain actors imports, and a worker
restarted after SIGKILL serves again only once its tree is built. So data that
conforms is recognised here, in plain code (`conforming`), and handed to the
`Builder` as a `Checked` view, which reads as the schema's models do (attributes
with their defaults, ``model_fields_set``, ``model_copy``); data that does not
conform goes to the pydantic schema, which says what is wrong. A hypothesis test
keeps the two in agreement (tests/supervision/test_treecheck.py).

Only the structure is checked here (unknown and required keys, strict types,
finite numbers), as the schema does; the rules on values are the specs' own.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "CHILD",
    "COMPONENT_SETTINGS",
    "TREE_FILE",
    "Checked",
    "conforming",
    "set_fields",
    "short",
]

COMPONENT_SETTINGS = ("transports", "realm", "extra", "authentication")
"""A component child's settings: ``hedgerow.components._component.SETTINGS``, which imports
autobahn (tests/supervision/test_treecheck.py keeps the two equal)."""

# The kinds of value (pydantic's strict types, as the schema writes them).
_STR, _INT, _NUMBER, _BOOL, _ANY = "str", "int", "number", "bool", "any"
_LIST, _DICT, _STR_LIST, _STR_DICT = "list", "dict", "list[str]", "dict[str, str]"

_BACKOFF = {
    "backoff": _BOOL,
    "initial_retry_delay": _NUMBER,
    "max_retry_delay": _NUMBER,
    "retry_delay_growth": _NUMBER,
    "retry_delay_jitter": _NUMBER,
    "max_retries": _INT,
    "retry_reset_after": _NUMBER,
}

_INBOX = {"max_inbox": _INT, "inbox_overflow": _STR, "inbox_timeout": _NUMBER}

SUPERVISOR: dict[str, Any] = {}
CHILD: dict[str, Any] = {}
WORKER: dict[str, Any] = {}
COMPONENTS = {"realm": _STR, "transports": _ANY, "authentication": _DICT}
MANAGEMENT = {
    "transports": _ANY,
    "realm": _STR,
    "authentication": _DICT,
    "prefix": _STR,
    "roles": _STR_LIST,
}
SUPERVISOR.update(
    name=_STR,
    strategy=_STR,
    max_restarts=_INT,
    period=_NUMBER,
    shutdown_policy=_STR,
    **_BACKOFF,
    **_INBOX,
    runtime=_STR,
    children=[CHILD],
)
CHILD.update(
    id=_STR,
    start=_STR,
    supervisor=SUPERVISOR,
    worker=WORKER,
    args=_LIST,
    kwargs=_DICT,
    restart=_STR,
    shutdown=_ANY,
    significant=_BOOL,
    ask_errors_fail=_BOOL,
    event_errors_fail=_BOOL,
    **_BACKOFF,
    **_INBOX,
    realm=_STR,
    transports=_ANY,
    extra=_ANY,
    authentication=_DICT,
)
WORKER.update(
    restart=_STR,
    shutdown=_STR,
    max_restarts=_INT,
    period=_NUMBER,
    **_BACKOFF,
    **_INBOX,
    components=[CHILD],
    config_timeout=_NUMBER,
    ready_timeout=_NUMBER,
    env=_STR_DICT,
    standby=_BOOL,
    log_level=_STR,
    framework=_STR,
    start_method=_STR,
)
TREE_FILE = {
    "pythonpath": [_STR],
    "components": COMPONENTS,
    "management": MANAGEMENT,
    "supervisor": SUPERVISOR,
}
_REQUIRED = {id(CHILD): ("id",), id(TREE_FILE): ("supervisor",)}
_NOT_NULL = {
    id(CHILD): ("id",),
    id(SUPERVISOR): ("children",),
    id(WORKER): ("components",),
    id(TREE_FILE): ("pythonpath", "supervisor"),
}
"""Keys that take no null; the others' null means "not given"."""


def _number(value: Any) -> bool:
    if type(value) is bool or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _value(kind: Any, value: Any) -> bool:  # noqa: PLR0911 - one case a kind
    if isinstance(kind, dict):
        return _conforms(kind, value)
    if isinstance(kind, list):
        return isinstance(value, list) and all(_value(kind[0], v) for v in value)
    if kind == _STR:
        return isinstance(value, str)
    if kind == _INT:
        return isinstance(value, int) and type(value) is not bool
    if kind == _NUMBER:
        return _number(value)
    if kind == _BOOL:
        return isinstance(value, bool)
    if kind in (_LIST, _STR_LIST):
        return isinstance(value, list) and (kind == _LIST or all(isinstance(v, str) for v in value))
    if kind in (_DICT, _STR_DICT):
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            return False
        return kind == _DICT or all(isinstance(v, str) for v in value.values())
    return True  # _ANY


def _conforms(table: dict[str, Any], data: Any) -> bool:
    if not isinstance(data, dict):
        return False
    if any(key not in data for key in _REQUIRED.get(id(table), ())):
        return False
    for key, value in data.items():
        kind = table.get(key) if isinstance(key, str) else None
        if kind is None:
            return False
        if value is None:
            if key in _NOT_NULL.get(id(table), ()):
                return False
        elif not _value(kind, value):
            return False
    return True


def conforming(table: dict[str, Any], data: Any) -> Checked | None:
    """`data` as a `Checked` view if the schema's `table` (`TREE_FILE` or `CHILD`)
    takes it as it is, else None (the pydantic schema then says what is wrong)."""
    return Checked(table, data) if _conforms(table, data) else None


class Checked:
    """Conforming data, read as the schema's model of its table reads."""

    __slots__ = ("_data", "_table")

    def __init__(self, table: dict[str, Any], data: dict[str, Any]) -> None:
        self._table = table
        self._data = data

    @property
    def model_fields_set(self) -> set[str]:
        return set(self._data)

    def model_copy(self, *, update: dict[str, Any]) -> Checked:
        return Checked(self._table, {**self._data, **update})

    def __getattr__(self, name: str) -> Any:
        try:
            kind = self._table[name]
        except KeyError:
            raise AttributeError(name) from None
        value = self._data.get(name)
        if value is None:
            return [] if isinstance(kind, list) else None
        if isinstance(kind, dict):
            return Checked(kind, value)
        if isinstance(kind, list) and isinstance(kind[0], dict):
            return [Checked(kind[0], item) for item in value]
        return value


def set_fields(model: Any, exclude: set[str]) -> dict[str, Any]:
    """The fields `model` (a pydantic model or a `Checked` view) was given, but null
    ones and those in `exclude`."""
    return {
        name: getattr(model, name)
        for name in model.model_fields_set
        if name not in exclude and getattr(model, name) is not None
    }


def short(value: Any) -> Any:
    """A value fit to quote in an error: big tables are summarised by their keys."""
    if isinstance(value, dict) and len(repr(value)) > 80:  # noqa: PLR2004
        return dict.fromkeys(value, ...)
    return value
