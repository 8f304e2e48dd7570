"""Actors and a tree fixture helper shared by the tests.

The helper actors are written once, as bodies (plain mixins), and made into
an actor class of either runtime by `Runtime.of` (`on` caches each pair):
``Worker`` is the thread one; ``runtime.of(Worker)`` the one the `runtime`
fixture (tests/conftest.py) asks for. `worker` builds its spec on the current
runtime, which the fixture sets for the test.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import types
from typing import Any

import hedgerow as hr
from hedgerow.testing import EventRecorder

_made: dict[tuple[type, type], type] = {}


def on(body: type, base: type) -> type:
    """The actor class `body` + `base` (a runtime's base class), made once.

    `body` is a plain mixin (the helpers below), an actor class made by `on`,
    or a test's own direct subclass of `hr.Actor`: that one's twin on `base`
    is rebuilt from its methods (see `_rebased`)."""
    body = vars(body).get("_body", body)
    if issubclass(body, hr.Actor):
        return body if base is hr.Actor else _rebased(body, base)
    made = _made.get((body, base))
    if made is None:
        suffix = "" if base is hr.Actor else "OnLoop"
        made = type(
            body.__name__ + suffix,
            (body, base),
            {"__module__": body.__module__, "_body": body},
        )
        made.__qualname__ = body.__qualname__ + suffix
        _made[(body, base)] = made
    return made


def _rebased(cls: type, base: type) -> type:
    """`cls`, a subclass of `hr.Actor` (directly, or of classes made by `on`), with
    `base` in its place: its own methods, their zero-argument ``super()`` pointed
    at the new class."""
    made = _made.get((cls, base))
    if made is not None:
        return made
    bases = []
    for parent in cls.__bases__:
        if parent is hr.Actor:
            bases.append(base)
        elif "_body" in vars(parent) or (parent.__bases__ == (hr.Actor,)):
            bases.append(on(parent, base))
        else:
            msg = f"{cls.__qualname__}: cannot rebase its parent {parent.__qualname__}"
            raise TypeError(msg)
    namespace = {k: v for k, v in vars(cls).items() if k not in ("__dict__", "__weakref__")}
    made = type(cls.__name__ + "OnLoop", tuple(bases), namespace)
    made.__qualname__ = cls.__qualname__ + "OnLoop"
    for name, value in namespace.items():
        function = value  # (a property's getter keeps its zero-argument super())
        if (
            isinstance(function, types.FunctionType)
            and "__class__" in function.__code__.co_freevars
        ):
            cells = tuple(
                types.CellType(made) if free == "__class__" else cell
                for free, cell in zip(
                    function.__code__.co_freevars, function.__closure__ or (), strict=True
                )
            )
            rebuilt = types.FunctionType(
                function.__code__, function.__globals__, name, function.__defaults__, cells
            )
            rebuilt.__kwdefaults__ = function.__kwdefaults__
            setattr(made, name, rebuilt)
    _made[(cls, base)] = made
    return made


class Runtime:
    """Where a test's children run: ``thread``, ``loop`` (event-loop actors), or
    ``mixed`` (each class asked for alternates, so siblings differ); and its
    supervisors: ``loopsup`` (children as ``loop``) puts them all on the loop,
    ``mixedsup`` (children as ``mixed``) alternates them (tests/conftest.py)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.children = {"loopsup": "loop", "mixedsup": "mixed"}.get(name, name)
        self.supervisors = {"loopsup": "loop", "mixedsup": "mixed"}.get(name)
        """None: every supervisor is a thread one (unless its spec says otherwise)."""
        self._turn = itertools.count()

    def __repr__(self) -> str:
        return self.name

    def base(self) -> type:
        kind = self.children
        if kind == "thread" or (kind == "mixed" and next(self._turn) % 2 == 0):
            return hr.Actor
        return hr.AsyncioActor

    def of(self, body: type) -> Any:
        """`body` (a helper body, or an actor class made by `on`) on this runtime."""
        return on(body, self.base())


THREAD = Runtime("thread")
current = [THREAD]
"""The runtime `worker` builds on: the `runtime` fixture sets it for its test."""


def blocking(actor: Any, release: threading.Event, then: Any) -> Any:
    """Wait for `release`, then return ``then()``: in the actor's thread, or, on an
    event loop, in the actor's task (its loop's other actors go on)."""
    if isinstance(actor, hr.AsyncioActor):

        async def wait() -> Any:
            while not release.is_set():  # noqa: ASYNC110 - a threading.Event has no awaitable side
                await asyncio.sleep(0.0005)
            return then()

        return wait()
    release.wait()
    return then()


class Log:
    """A thread-safe list of what actors did, in the order they did it."""

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._lock = threading.Lock()

    def add(self, item: Any) -> None:
        with self._lock:
            self._items.append(item)

    @property
    def items(self) -> list[Any]:
        with self._lock:
            return list(self._items)

    def of(self, kind: str) -> list[Any]:
        return [i[1] for i in self.items if i[0] == kind]


class Worker:  # a body: `Worker` below is the thread actor, `on(Worker, base)` any
    """Echoes messages; obeys a few commands that make it crash, stop or hang."""

    actor_incarnation: int

    def __init__(self, name: str = "w", log: Log | None = None) -> None:
        super().__init__()
        self.name = name
        self.log = log

    def on_start(self) -> None:
        if self.log is not None:
            self.log.add(("start", self.name))

    def on_stop(self) -> None:
        if self.log is not None:
            self.log.add(("stop", self.name))

    def on_receive(self, message: Any) -> Any:
        if self.log is not None:
            self.log.add(("got", (self.name, message)))
        answer = (self.name, self.actor_incarnation, message)
        match message:
            case "crash":
                raise RuntimeError(f"{self.name} crashed")
            case "stop":
                self.stop()  # type: ignore[attr-defined]
            case ("shutdown", term):
                raise hr.Shutdown(term)
            case ("hang", release):
                return blocking(self, release, lambda: answer)
            case ("block", entered, release):
                entered.set()
                return blocking(self, release, lambda: answer)
            case ("block_then_crash", entered, release):
                entered.set()
                return blocking(self, release, self._crash_after_blocking)
        return answer

    def _crash_after_blocking(self) -> None:
        raise RuntimeError(f"{self.name} crashed after blocking")


Worker = on(Worker, hr.Actor)


class FailingStart:
    """Fails in on_start, always."""

    def on_start(self) -> None:
        raise ValueError("cannot start")


FailingStart = on(FailingStart, hr.Actor)


class FailNTimes:
    """Fails in on_start while the shared counter is above zero."""

    def __init__(self, remaining: list[int]) -> None:
        super().__init__()
        self.remaining = remaining

    def on_start(self) -> None:
        if self.remaining[0] > 0:
            self.remaining[0] -= 1
            raise ValueError("not yet")

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError("crashed")
        return message


FailNTimes = on(FailNTimes, hr.Actor)


class IgnoresStop:
    """Hangs in on_stop until released: a child that ignores its stop."""

    def __init__(self, release: threading.Event) -> None:
        super().__init__()
        self.release = release

    def on_stop(self) -> Any:
        return blocking(self, self.release, lambda: None)


IgnoresStop = on(IgnoresStop, hr.Actor)


def worker(child_id: str, log: Log | None = None, **options: Any) -> hr.ChildSpec:
    """A `Worker` child on the current runtime (see `Runtime`)."""
    return hr.ChildSpec(child_id, current[0].of(Worker), args=(child_id, log), **options)


def start(spec: hr.SupervisorSpec, **kwargs: Any) -> tuple[hr.Tree, EventRecorder]:
    """Start a tree with its own event stream and a recorder on it."""
    events = hr.EventStream()
    recorder = EventRecorder(events)
    return hr.start_tree(spec, events=events, **kwargs), recorder


def wait_threads_end(before: set[threading.Thread], timeout: float = 10.0) -> list[str]:
    """Join every thread started since `before` (daemon ones too); the names still alive."""
    current = threading.current_thread()
    extra = [
        t
        for t in threading.enumerate()
        if t not in before and t is not current and t.name not in PROCESS_THREADS
    ]
    for thread in extra:
        thread.join(timeout=timeout)
    return [t.name for t in extra if t.is_alive() and t.name != "hedgerow-autojump"]


PROCESS_THREADS = ("hedgerow-loop", "hedgerow-watchdog")
"""Threads started on first use that live as long as the process (event-loop actors')."""


class SlowStart:
    """From its second incarnation on, blocks in on_start until `release` is set."""

    actor_incarnation: int

    def __init__(self, entered: threading.Event, release: threading.Event) -> None:
        super().__init__()
        self.entered = entered
        self.release = release

    def on_start(self) -> Any:
        if self.actor_incarnation > 1:
            self.entered.set()
            return blocking(self, self.release, lambda: None)
        return None

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError("crashed")
        return message


SlowStart = on(SlowStart, hr.Actor)


def ran_out(actor_class: type) -> hr.EventKind:
    """The event of a child of `actor_class` whose shutdown ran out: a thread is
    abandoned; an event-loop actor's task is cancelled (stopped, reason killed)."""
    return (
        hr.EventKind.STOPPED if issubclass(actor_class, hr.AsyncioActor) else hr.EventKind.ABANDONED
    )
