"""`EventRecorder`: keep a tree's events and wait for the ones a test expects.

`capture_events` is the context-manager form (as structlog's ``capture_logs``).
"""

from __future__ import annotations

import contextlib
import fnmatch
import threading
from typing import TYPE_CHECKING, Any, Self

from hedgerow._events import Event, EventKind, EventStream
from hedgerow.actors._reason import describe

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["EventRecorder", "capture_events"]

Kind = EventKind | str
"""An event kind, or its value (``"restarted"``)."""

DEFAULT_TIMEOUT = 10.0


class EventRecorder:
    """Subscribe to an event stream and keep every event, in order.

    The ``wait_*`` methods block (on a condition, never sleeping) until what
    they wait for has been seen, and fail with an `AssertionError` that shows
    the last events if it is not seen within `timeout` real seconds. Matching
    takes a kind (`EventKind` or its value) and a path, exact or a glob
    (``root/pipeline/*``). `close` unsubscribes; so does leaving a ``with``.
    """

    def __init__(self, source: EventStream | Any) -> None:
        stream = source if isinstance(source, EventStream) else getattr(source, "events", None)
        if not isinstance(stream, EventStream):
            msg = (
                "EventRecorder needs an EventStream or a tree that has one (a "
                f"hedgerow.Tree, an AsyncioTree), not {source!r}"
            )
            raise TypeError(msg)
        self.stream: EventStream = stream
        self._events: list[Event] = []
        self._cond = threading.Condition()
        self._unsubscribe = stream.subscribe(self._record)

    def _record(self, event: Event) -> None:
        with self._cond:
            self._events.append(event)
            self._cond.notify_all()

    def close(self) -> None:
        self._unsubscribe()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def clear(self) -> None:
        """Forget the events seen so far."""
        with self._cond:
            self._events.clear()

    @property
    def events(self) -> list[Event]:
        with self._cond:
            return list(self._events)

    def matching(
        self,
        kind: Kind | None = None,
        path: str | None = None,
        where: Callable[[Event], bool] | None = None,
    ) -> list[Event]:
        """The events seen so far of this kind, at this path, passing `where`."""
        match = _matcher(kind, path, where)
        return [e for e in self.events if match(e)]

    def wait_for(
        self,
        kind: Kind | None = None,
        path: str | None = None,
        where: Callable[[Event], bool] | None = None,
        *,
        count: int = 1,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Event:
        """Block until `count` matching events were seen; the last of them."""
        return self._wait(_matcher(kind, path, where), count, timeout, (kind, path))[-1]

    def wait_for_sequence(
        self, *steps: tuple[Kind, str], timeout: float = DEFAULT_TIMEOUT
    ) -> list[Event]:
        """Block until events matching `steps` ((kind, path) each) were seen in
        that order, others in between allowed; the events that matched."""
        matchers = [_matcher(kind, path, None) for kind, path in steps]

        def found() -> list[Event] | None:
            hits: list[Event] = []
            for event in self._events:
                if len(hits) < len(matchers) and matchers[len(hits)](event):
                    hits.append(event)
            return hits if len(hits) == len(matchers) else None

        with self._cond:
            if not self._cond.wait_for(lambda: found() is not None, timeout):
                self._fail(timeout, f"the sequence {list(steps)}")
            hits = found()
        assert hits is not None
        return hits

    def wait_restarted(
        self, path: str, times: int = 1, *, timeout: float = DEFAULT_TIMEOUT
    ) -> list[Event]:
        """Block until the child at `path` was restarted `times` times; those events."""
        return self._wait(
            _matcher(EventKind.RESTARTED, path, None), times, timeout, (EventKind.RESTARTED, path)
        )

    def wait_gave_up(self, path: str | None = None, *, timeout: float = DEFAULT_TIMEOUT) -> Event:
        """Block until a supervisor (at `path`, or any) gave up; its event, whose
        `reason` says why (`IntensityExceeded`, `RetriesExhausted`).

        When it is a tree's root, this also waits for the root's own ``failed``
        event: the tree has ended then, and its `gave_up` is true.
        """
        match = _matcher(EventKind.INTENSITY_EXCEEDED, path, None)
        gave_up = self._wait(match, 1, timeout, (EventKind.INTENSITY_EXCEEDED, path))[0]
        if "/" not in gave_up.path:  # a root: a tree's name is its first path part
            ended = _matcher(EventKind.FAILED, gave_up.path, lambda e: e.seq >= gave_up.seq)
            self._wait(ended, 1, timeout, (EventKind.FAILED, gave_up.path))
        return gave_up

    def wait_dead_letters(
        self, path: str | None = None, count: int = 1, *, timeout: float = DEFAULT_TIMEOUT
    ) -> list[Any]:
        """Block until `count` dead letters (to `path`, or any) were seen; their messages."""
        match = _matcher(EventKind.DEAD_LETTER, path, None)
        events = self._wait(match, count, timeout, (EventKind.DEAD_LETTER, path))
        return [e.message for e in events]

    def restarts(self, path: str) -> int:
        """How many times the child at `path` was restarted so far."""
        return len(self.matching(EventKind.RESTARTED, path))

    def dead_letters(self, path: str | None = None) -> list[Any]:
        """The messages dead-lettered so far (to `path`, or any)."""
        return [e.message for e in self.matching(EventKind.DEAD_LETTER, path)]

    def trail(self, *, paths: bool = True) -> list[tuple[Any, ...]]:
        """The events as ``(kind value, path)`` tuples, for exact comparisons."""
        return [(e.kind.value, e.path) if paths else (e.kind.value,) for e in self.events]

    def as_data(self) -> list[dict[str, Any]]:
        """The whole sequence as plain data (JSON-ready), for exact comparison.

        Each event is ``{"kind", "path", "time", "incarnation", "reason",
        "delay", "message"}``; the reason is described as text (exceptions by
        type and message), the message by its repr, so two runs compare equal.
        """
        return [
            {
                "kind": e.kind.value,
                "path": e.path,
                "time": e.time,
                "incarnation": e.incarnation,
                "reason": None if e.reason is None else describe(e.reason),
                "delay": e.delay,
                "message": None if e.message is None else repr(e.message),
            }
            for e in self.events
        ]

    def format(self, last: int | None = None) -> str:
        """The events (the `last` ones, if given), one line each, with their clock time."""
        events = self.events
        shown = events[-last:] if last else events
        lines = [f"t={e.time:10.3f}  {e.describe()}" for e in shown]
        if len(shown) < len(events):
            lines.insert(0, f"... {len(events) - len(shown)} earlier events not shown")
        return "\n".join(lines)

    def _wait(
        self,
        match: Callable[[Event], bool],
        count: int,
        timeout: float,
        what: tuple[Any, Any],
    ) -> list[Event]:
        def enough() -> bool:
            return sum(1 for e in self._events if match(e)) >= count

        with self._cond:
            if not self._cond.wait_for(enough, timeout):
                kind, path = what
                kind_text = kind.value if isinstance(kind, EventKind) else kind
                self._fail(timeout, f"{count} event(s) kind={kind_text} path={path}")
            found = [e for e in self._events if match(e)]
        return found[:count]

    def _fail(self, timeout: float, what: str) -> None:
        seen = "\n  ".join(e.describe() for e in self._events[-20:]) or "(none)"
        msg = f"waited {timeout} s for {what}; last events:\n  {seen}"
        raise AssertionError(msg)


def _matcher(
    kind: Kind | None, path: str | None, where: Callable[[Event], bool] | None
) -> Callable[[Event], bool]:
    wanted = EventKind(kind) if isinstance(kind, str) else kind
    glob = path is not None and any(c in path for c in "*?[")

    def match(event: Event) -> bool:
        if wanted is not None and event.kind is not wanted:
            return False
        if path is not None and (
            not fnmatch.fnmatchcase(event.path, path) if glob else event.path != path
        ):
            return False
        return where is None or where(event)

    return match


@contextlib.contextmanager
def capture_events(source: EventStream | Any) -> Iterator[EventRecorder]:
    """Record the events of a tree (or an `EventStream`) inside a ``with`` block.

    ``with capture_events(tree) as events: ...`` then assert on ``events.trail()``;
    as structlog's ``capture_logs``, recording stops on the way out.
    """
    recorder = EventRecorder(source)
    try:
        yield recorder
    finally:
        recorder.close()
