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
import traceback as traceback_module
from time import monotonic
from typing import TYPE_CHECKING, Any, NoReturn

from hedgerow._exceptions import InboxFull
from hedgerow.actors._reason import describe

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from types import TracebackType

__all__ = [
    "EVENT_ATTRIBUTE",
    "Event",
    "EventKind",
    "EventStream",
    "FailureTrace",
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
    BLOCKED = "blocked"
    """An event-loop child's handler has held its loop longer than the block
    threshold (`hedgerow.set_block_threshold`): `delay` is how long so far,
    `traceback` the stack where it is stuck, `info` the threshold."""

    _hr_level: int
    """Its log level (`_LEVELS`), kept on the member: an Enum hashes in Python."""
    _hr_index: int
    """Its place in `EventKind`: an `EventStream` keeps its subscribers per kind in a list."""


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
    EventKind.BLOCKED: logging.WARNING,
}
for _kind, _level in _LEVELS.items():
    _kind._hr_level = _level
for _index, _kind in enumerate(EventKind):
    _kind._hr_index = _index
del _kind, _level, _index


class FailureTrace:
    """A failure's traceback, formatted on first use (`str`).

    Formatting a traceback costs about 100 us, paid today on every crash
    whether or not anybody reads it: a supervised child keeps one of these
    instead, and its event formats it when its text is first read (a log line
    actually emitted, the CLI's view, ``--json``, a subscriber). The text is
    then kept and the exception and traceback dropped; every reader, on any
    thread, gets the same string.

    Memory: until then it holds the exception and its traceback, hence the
    failed frames and their locals. It adds nothing to what the event already
    keeps alive: the event's `reason` is that exception, whose
    ``__traceback__`` is the same traceback.
    """

    __slots__ = ("_error", "_tb", "_text")

    def __init__(self, error: BaseException, tb: TracebackType | None) -> None:
        self._error: BaseException | None = error
        self._tb = tb
        self._text: str | None = None

    def __str__(self) -> str:
        text = self._text
        if text is None:
            error, tb = self._error, self._tb
            if error is None:  # formatted meanwhile by another thread
                return self._text  # type: ignore[return-value]
            text = "".join(traceback_module.format_exception(type(error), error, tb))
            with _trace_lock:  # the first text formatted is the one every reader gets
                if self._text is None:
                    self._text, self._error, self._tb = text, None, None
                text = self._text
        return text

    def __repr__(self) -> str:
        return repr(str(self))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FailureTrace | str):
            return str(self) == str(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(str(self))

    def __reduce__(self) -> tuple[type[str], tuple[str]]:
        return str, (str(self),)  # a copy is the text: a traceback does not pickle


_trace_lock = threading.Lock()


class Event:
    """One transition. `path` names the child in its tree, e.g. ``root/pipeline/parser``.

    `reason` is the exit reason (a string constant or the exception), `traceback`
    its formatted traceback for failures (for ``blocked``, the stack where the
    handler is stuck), `delay` the wait before a scheduled restart (for
    ``blocked``, how long the handler has held its loop), `message` the
    undelivered message of a dead letter (or the event a failed handler was
    handling), `info` what a started child says about itself
    (`Actor.actor_info`: a worker's pid; for ``blocked``, the threshold).

    Immutable. `traceback` may be given as a `FailureTrace`, formatted when the
    attribute is first read.
    """

    __slots__ = (
        "_traceback",
        "delay",
        "incarnation",
        "info",
        "kind",
        "message",
        "path",
        "reason",
        "seq",
        "time",
    )
    __match_args__ = (
        "kind",
        "path",
        "time",
        "incarnation",
        "reason",
        "traceback",
        "delay",
        "message",
        "info",
        "seq",
    )

    kind: EventKind
    path: str
    time: float
    incarnation: int
    reason: Any
    delay: float | None
    message: Any
    info: dict[str, Any] | None
    seq: int
    _traceback: str | FailureTrace | None

    def __init__(  # noqa: PLR0917 - positional, as the dataclass it was
        self,
        kind: EventKind,
        path: str,
        time: float,
        incarnation: int = 0,
        reason: Any = None,
        traceback: str | FailureTrace | None = None,
        delay: float | None = None,
        message: Any = None,
        info: dict[str, Any] | None = None,
        seq: int = 0,
    ) -> None:
        # Each field through its slot's setter (bound below): twice as fast as
        # object.__setattr__, and an event is made at every start and exit.
        _set_kind(self, kind)
        _set_path(self, path)
        _set_time(self, time)
        _set_incarnation(self, incarnation)
        _set_reason(self, reason)
        _set_traceback(self, traceback)
        _set_delay(self, delay)
        _set_message(self, message)
        _set_info(self, info)
        _set_seq(self, seq)

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        msg = f"cannot assign to field {name!r}: an Event is immutable"
        raise AttributeError(msg)

    def __delattr__(self, name: str) -> NoReturn:
        msg = f"cannot delete field {name!r}: an Event is immutable"
        raise AttributeError(msg)

    @property
    def traceback(self) -> str | None:
        """The failure's formatted traceback, if any."""
        trace = self._traceback
        return trace if trace is None or isinstance(trace, str) else str(trace)

    @property
    def _has_traceback(self) -> bool:
        """Whether `traceback` is a non-empty text, without formatting it."""
        trace = self._traceback
        return trace is not None and (not isinstance(trace, str) or bool(trace))

    def _key(self) -> tuple[Any, ...]:
        return (
            self.kind,
            self.path,
            self.time,
            self.incarnation,
            self.reason,
            self.traceback,
            self.delay,
            self.message,
            self.info,
        )

    def __eq__(self, other: object) -> bool:  # `seq` is not compared, as before
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:  # as the frozen dataclass it was (TypeError if `info` is set)
        return hash(self._key())

    def __reduce__(self) -> tuple[type[Event], tuple[Any, ...]]:  # a copy carries the text
        return Event, (*self._key(), self.seq)

    def __repr__(self) -> str:
        return (
            f"Event(kind={self.kind!r}, path={self.path!r}, time={self.time!r}, "
            f"incarnation={self.incarnation!r}, reason={self.reason!r}, "
            f"traceback={self.traceback!r}, delay={self.delay!r}, message={self.message!r}, "
            f"info={self.info!r}, seq={self.seq!r})"
        )

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
        if self.kind is EventKind.BLOCKED and self.delay is not None:
            text += f" for {self.delay:.3f}s"
        elif self.delay is not None:
            text += f" delay={self.delay:.3f}s"
        if self.kind in (EventKind.DEAD_LETTER, EventKind.HANDLER_FAILED):
            text += f" message={self.message!r}"
        return text


_set_kind = Event.__dict__["kind"].__set__
_set_path = Event.__dict__["path"].__set__
_set_time = Event.__dict__["time"].__set__
_set_incarnation = Event.__dict__["incarnation"].__set__
_set_reason = Event.__dict__["reason"].__set__
_set_traceback = Event.__dict__["_traceback"].__set__
_set_delay = Event.__dict__["delay"].__set__
_set_message = Event.__dict__["message"].__set__
_set_info = Event.__dict__["info"].__set__
_set_seq = Event.__dict__["seq"].__set__


class _LogLine:
    """An event's log message, made only if a handler formats the record."""

    __slots__ = ("event",)

    def __init__(self, event: Event) -> None:
        self.event = event

    def __str__(self) -> str:
        event = self.event
        if event._has_traceback:
            return f"{event.describe()}\n{event.traceback.rstrip()}"  # type: ignore[union-attr]
        return event.describe()


def _kinds(kinds: Any) -> frozenset[EventKind]:
    """`EventStream.subscribe`'s kinds as a set; a TypeError naming the rule if they
    are not an iterable of `EventKind` members (a single member, a string, a number)."""
    rule = "subscribe takes an iterable of EventKind members as kinds"
    if isinstance(kinds, (EventKind, str, bytes)):
        hint = f" (one kind: kinds=[{kinds}])" if isinstance(kinds, EventKind) else ""
        raise TypeError(f"{rule}, not {kinds!r}{hint}")
    try:
        taken = frozenset(kinds)
    except TypeError:
        raise TypeError(f"{rule}, not {kinds!r}") from None
    for kind in taken:
        if not isinstance(kind, EventKind):
            raise TypeError(f"subscribe takes EventKind members as kinds, not {kind!r}")
    return taken


class EventStream:
    """Publish events to subscribers, and to `logging` at a level per kind."""

    def __init__(self) -> None:
        self._subscribers: list[tuple[Callable[[Event], None], frozenset[EventKind] | None]] = []
        """Every subscriber and the kinds it takes (None: all), in subscription order."""
        self._by_kind: list[tuple[Callable[[Event], None], ...]] = [() for _ in EventKind]
        """Per kind (`EventKind._hr_index`): the subscribers that take it, in order."""
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._full: dict[str, list[float]] = {}
        """Per path: [when its last drop was logged, drops not logged since]."""

    def subscribe(
        self, callback: Callable[[Event], None], kinds: Iterable[EventKind] | None = None
    ) -> Callable[[], None]:
        """Call `callback` with every later event, or only with those of `kinds`;
        returns a function that unsubscribes.

        A subscriber that names its kinds costs nothing on the others: an event
        of a kind that no subscriber takes (and no log handler would emit) is
        not even built (see `publish_if_seen`), e.g. a child's start or stop
        when one only waits for restarts."""
        taken = None if kinds is None else _kinds(kinds)
        entry = (callback, taken)
        with self._lock:
            self._set_subscribers([*self._subscribers, entry])

        def unsubscribe() -> None:
            with self._lock:
                self._set_subscribers([e for e in self._subscribers if e is not entry])

        return unsubscribe

    def _set_subscribers(
        self, entries: list[tuple[Callable[[Event], None], frozenset[EventKind] | None]]
    ) -> None:
        """Under `_lock`: the new subscribers, and each kind's (new lists: a
        publish on another thread goes on with the ones it read)."""
        self._subscribers = entries
        self._by_kind = [
            tuple(callback for callback, kinds in entries if kinds is None or kind in kinds)
            for kind in EventKind
        ]

    def publish(self, kind: EventKind, path: str, time: float, **details: Any) -> Event:
        event = Event(kind, path, time, seq=next(self._seq), **details)
        level = kind._hr_level
        if logger.isEnabledFor(level) and _handled(level):
            extra = {EVENT_ATTRIBUTE: event}
            if isinstance(event.reason, InboxFull) and not event._has_traceback:
                self._log_drop(level, event, extra)
            else:  # formatted only if a handler emits it (a traceback costs ~100 us)
                logger.log(level, "%s", _LogLine(event), extra=extra)
        for subscriber in self._by_kind[kind._hr_index]:
            try:
                subscriber(event)
            except Exception:
                logger.exception("Event subscriber %r failed on %s", subscriber, event)
        return event

    def publish_if_seen(
        self, kind: EventKind, path: str, time: float, **details: Any
    ) -> Event | None:
        """`publish`, unless nobody would see the event: no subscriber that takes
        its kind, and no handler that would emit its log line. Then no event is built (a start or
        a stop of a child is cheaper by one object and its details), its
        sequence number is used all the same, and None is returned."""
        if not self._by_kind[kind._hr_index]:
            level = kind._hr_level
            if not (logger.isEnabledFor(level) and _handled(level)):
                next(self._seq)
                return None
        return self.publish(kind, path, time, **details)

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


def _handled(level: int) -> bool:
    """Whether a record of `level` on `logger` would reach a handler that does
    something, as `logging.Logger.callHandlers` finds them. A record costs
    10-20 us to make, twice per restart; with only hedgerow's own
    `logging.NullHandler` (logging not configured) it is not made. A filter on
    `logger` sees every record, so with one the record is always made."""
    if logger.filters:
        return True
    found = False
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            found = True
            if level >= handler.level and handler.__class__ is not logging.NullHandler:
                return True
        current = current.parent if current.propagate else None
    last_resort = logging.lastResort
    return not found and last_resort is not None and level >= last_resort.level


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
