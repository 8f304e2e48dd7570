"""A tree file's components: what it uses of one, and the settings it wrote for each.

A child whose start is a `hedgerow.Component` takes the file's component
settings (`hedgerow.supervision._treebuild`), and is written back with them as
the file wrote them, ``${VAR}`` unread (`hedgerow.supervision._treewrite`).
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Protocol, TypeGuard

__all__ = [
    "Configurable",
    "is_component",
    "register_component_type",
    "remember_written",
    "written_settings",
]


class Configurable(Protocol):
    """What a tree file uses of a `hedgerow.Component`: the module that defined it,
    the settings it was configured with, and `Component.configured` itself."""

    @property
    def origin(self) -> Configurable | None: ...
    @property
    def settings(self) -> dict[str, Any]: ...
    @property
    def module(self) -> str | None: ...

    def configured(self, **settings: Any) -> Configurable: ...


_written: weakref.WeakKeyDictionary[Configurable, dict[str, Any]] = weakref.WeakKeyDictionary()
"""A configured component's settings as its file wrote them (before ``${VAR}``)."""
_written_lock = threading.Lock()


_component_types: tuple[type, ...] = ()
"""The classes whose instances are components (`register_component_type`)."""


def register_component_type(cls: type) -> None:
    """Count the instances of `cls` as components: `hedgerow.Component` registers
    itself when its module is imported (a layer above this one)."""
    global _component_types  # noqa: PLW0603 - a registry, written once per class
    with _written_lock:
        if cls not in _component_types:
            _component_types = (*_component_types, cls)


def is_component(start: object) -> TypeGuard[Configurable]:
    """Whether `start` is a `hedgerow.Component`: none is unless the WAMP side is
    imported (a worker hosting plain actors never imports it)."""
    return isinstance(start, _component_types)


def remember_written(component: Configurable, written: dict[str, Any]) -> None:
    """Keep `component`'s settings as its file wrote them, for `written_settings`."""
    with _written_lock:
        _written[component] = written


def written_settings(component: Configurable) -> dict[str, Any] | None:
    """A configured component's settings as its file wrote them (``${VAR}`` unread)."""
    with _written_lock:
        return _written.get(component)
