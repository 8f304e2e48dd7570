"""`EventRecorder`: keep a tree's events and wait for the ones a test expects."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from hedgerow._events import Event, EventKind, EventStream

__all__ = ["EventRecorder"]


class EventRecorder:
    """Subscribe to an event stream and keep every event, in order.

    `wait_for` blocks until a matching event has been seen (waiting on a
    condition, never sleeping) and returns it; `close` unsubscribes.
    """

    def __init__(self, stream: EventStream) -> None:
        self._events: list[Event] = []
        self._cond = threading.Condition()
        self._unsubscribe = stream.subscribe(self._record)

    def _record(self, event: Event) -> None:
        with self._cond:
            self._events.append(event)
            self._cond.notify_all()

    def close(self) -> None:
        self._unsubscribe()

    @property
    def events(self) -> list[Event]:
        with self._cond:
            return list(self._events)

    def matching(
        self,
        kind: EventKind | None = None,
        path: str | None = None,
        where: Callable[[Event], bool] | None = None,
    ) -> list[Event]:
        """The events seen so far of this kind, at this path, passing `where`."""
        return [e for e in self.events if _matches(e, kind, path, where)]

    def wait_for(
        self,
        kind: EventKind | None = None,
        path: str | None = None,
        where: Callable[[Event], bool] | None = None,
        *,
        count: int = 1,
        timeout: float = 10.0,
    ) -> Event:
        """Block until `count` matching events were seen; the last of them."""

        def enough() -> bool:
            return sum(1 for e in self._events if _matches(e, kind, path, where)) >= count

        with self._cond:
            if not self._cond.wait_for(enough, timeout):
                seen = "\n  ".join(e.describe() for e in self._events[-20:])
                msg = (
                    f"waited {timeout} s for {count} event(s) kind={kind} path={path}; "
                    f"last events:\n  {seen}"
                )
                raise AssertionError(msg)
            found = [e for e in self._events if _matches(e, kind, path, where)]
        return found[count - 1]

    def trail(self, *, paths: bool = True) -> list[tuple[Any, ...]]:
        """The events as ``(kind value, path)`` tuples, for exact comparisons."""
        return [(e.kind.value, e.path) if paths else (e.kind.value,) for e in self.events]


def _matches(
    event: Event,
    kind: EventKind | None,
    path: str | None,
    where: Callable[[Event], bool] | None,
) -> bool:
    return (
        (kind is None or event.kind is kind)
        and (path is None or event.path == path)
        and (where is None or where(event))
    )
