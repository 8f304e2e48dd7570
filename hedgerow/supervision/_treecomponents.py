"""A tree file's components: what it uses of one, and the settings it wrote for each.

A child whose start is a `hedgerow.Component` takes the file's component
settings (`hedgerow.supervision._treebuild`), and is written back with them as
the file wrote them, ``${VAR}`` unread (`hedgerow.supervision._treewrite`).
"""

from __future__ import annotations

import sys
import threading
import weakref
from typing import Any, Protocol, TypeGuard

__all__ = ["Configurable", "is_component", "remember_written", "written_settings"]


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


def is_component(start: object) -> TypeGuard[Configurable]:
    """Whether `start` is a `hedgerow.Component`: none is unless the WAMP side is
    imported (a worker hosting plain actors never imports it)."""
    module = sys.modules.get("hedgerow.components._component")
    return module is not None and isinstance(start, module.Component)


def remember_written(component: Configurable, written: dict[str, Any]) -> None:
    """Keep `component`'s settings as its file wrote them, for `written_settings`."""
    with _written_lock:
        _written[component] = written


def written_settings(component: Configurable) -> dict[str, Any] | None:
    """A configured component's settings as its file wrote them (``${VAR}`` unread)."""
    with _written_lock:
        return _written.get(component)
