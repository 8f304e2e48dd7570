"""The tree's event stream: every supervision transition, in one place.

Logging, the CLI's live view, the test harness and metrics all read this one
stream. Subscribers are called synchronously on the thread that made the event
(usually the supervisor's), so they must be quick; one that raises is logged
and the others still run.
"""

from __future__ import annotations

import contextlib
import enum
import itertools
import logging
import threading
from dataclasses import dataclass, field
from time import monotonic
from typing import TYPE_CHECKING, Any

from hedgerow._exceptions import InboxFull
from hedgerow.actors._reason import describe

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = [
    "EVENT_ATTRIBUTE",
    "Event",
    "EventKind",
    "EventStream",
    "drop_event_records",
    "event_of",
    "quiet_event_log",
]

logger = logging.getLogger("hedgerow")


class EventKind(enum.Enum):
    """What happened to a child or a supervisor."""

    STARTED = "started"
    STOPPED = "stopped"
    FAILED = "failed"
    START_FAILED = "start_failed"
    RESTART_SCHEDULED = "restart_scheduled"
    RESTARTED = "restarted"
    INTENSITY_EXCEEDED = "intensity_exceeded"
    SHUTDOWN = "shutdown"
    DEAD_LETTER = "dead_letter"
    ABANDONED = "abandoned"
    HANDLER_FAILED = "handler_failed"
    """A handler raised and its actor went on: a component's event handler, as in
    autobahn (`message` is the event it was handling)."""


EVENT_ATTRIBUTE = "hedgerow_event"
"""The attribute of an event's log record that holds the `Event` (see `event_of`)."""

_LEVELS = {
    EventKind.STARTED: logging.DEBUG,
    EventKind.STOPPED: logging.DEBUG,
    EventKind.FAILED: logging.ERROR,
    EventKind.START_FAILED: logging.ERROR,
    EventKind.RESTART_SCHEDULED: logging.INFO,
    EventKind.RESTARTED: logging.INFO,
    EventKind.INTENSITY_EXCEEDED: logging.ERROR,
    EventKind.SHUTDOWN: logging.INFO,
    EventKind.DEAD_LETTER: logging.WARNING,
    EventKind.ABANDONED: logging.WARNING,
    EventKind.HANDLER_FAILED: logging.ERROR,
}


@dataclass(frozen=True, slots=True)
class Event:
    """One transition. `path` names the child in its tree, e.g. ``root/pipeline/parser``.

    `reason` is the exit reason (a string constant or the exception), `traceback`
    its formatted traceback for failures, `delay` the wait before a scheduled
    restart, `message` the undelivered message of a dead letter (or the event a
    failed handler was handling), `info` what a
    started child says about itself (`Actor.actor_info`: a worker's pid).
    """

    kind: EventKind
    path: str
    time: float
    incarnation: int = 0
    reason: Any = None
    traceback: str | None = None
    delay: float | None = None
    message: Any = None
    info: dict[str, Any] | None = None
    seq: int = field(default=0, compare=False)

    @property
    def child_id(self) -> str:
        """The last part of `path`."""
        return self.path.rsplit("/", 1)[-1]

    def describe(self) -> str:
        """One line for a log or a terminal."""
        text = f"{self.kind.value} {self.path}"
        if self.incarnation:
            text += f" #{self.incarnation}"
        if self.reason is not None:
            text += f" reason={describe(self.reason)}"
        if self.delay is not None:
            text += f" delay={self.delay:.3f}s"
        if self.kind in (EventKind.DEAD_LETTER, EventKind.HANDLER_FAILED):
            text += f" message={self.message!r}"
        return text


class EventStream:
    """Publish events to subscribers, and to `logging` at a level per kind."""

    def __init__(self) -> None:
        self._subscribers: list[Callable[[Event], None]] = []
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._full: dict[str, list[float]] = {}
        """Per path: [when its last drop was logged, drops not logged since]."""

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call `callback` with every later event; returns a function that unsubscribes."""
        with self._lock:
            self._subscribers = [*self._subscribers, callback]

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = [s for s in self._subscribers if s is not callback]

        return unsubscribe

    def publish(self, kind: EventKind, path: str, time: float, **details: Any) -> Event:
        event = Event(kind, path, time, seq=next(self._seq), **details)
        level = _LEVELS[kind]
        if logger.isEnabledFor(level):
            extra = {EVENT_ATTRIBUTE: event}
            if event.traceback:
                logger.log(level, "%s\n%s", event.describe(), event.traceback.rstrip(), extra=extra)
            elif isinstance(event.reason, InboxFull):
                self._log_drop(level, event, extra)
            else:
                logger.log(level, "%s", event.describe(), extra=extra)
        for subscriber in self._subscribers:
            try:
                subscriber(event)
            except Exception:
                logger.exception("Event subscriber %r failed on %s", subscriber, event)
        return event

    def _log_drop(self, level: int, event: Event, extra: dict[str, Any]) -> None:
        """A full inbox's drops are logged at most once a second per child, the
        line saying how many were not (every drop is still an event)."""
        now = monotonic()
        with self._lock:
            entry = self._full.setdefault(event.path, [-DROP_LOG_INTERVAL, 0.0])
            if now - entry[0] < DROP_LOG_INTERVAL:
                entry[1] += 1
                return
            unlogged = int(entry[1])
            entry[0], entry[1] = now, 0.0
        text = event.describe()
        if unlogged:
            text += f" (and {unlogged} more dropped by its full inbox since the last line)"
        logger.log(level, "%s", text, extra=extra)


DROP_LOG_INTERVAL = 1.0
"""Seconds between two log lines of one child's inbox drops."""


def event_of(record: logging.LogRecord) -> Event | None:
    """The event a log record reports, if it is one of `EventStream`'s lines."""
    event = getattr(record, EVENT_ATTRIBUTE, None)
    return event if isinstance(event, Event) else None


def drop_event_records(record: logging.LogRecord) -> bool:
    """A logging filter that keeps every record but the event lines."""
    return event_of(record) is None


@contextlib.contextmanager
def quiet_event_log() -> Iterator[None]:
    """Keep event log lines off the log while a view shows the events itself
    (the CLI's chaos command); the other ``hedgerow`` log lines still pass."""

    def quiet(record: logging.LogRecord) -> bool:  # one per use: nested uses stay apart
        return drop_event_records(record)

    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)
