"""Actors and a tree fixture helper shared by the tests."""

from __future__ import annotations

import threading
from typing import Any

import hedgerow as hr
from hedgerow.testing import EventRecorder


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


class Worker(hr.Actor):
    """Echoes messages; obeys a few commands that make it crash, stop or hang."""

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
        match message:
            case "crash":
                raise RuntimeError(f"{self.name} crashed")
            case "stop":
                self.stop()
            case ("shutdown", term):
                raise hr.Shutdown(term)
            case ("hang", release):
                release.wait()
            case ("block", entered, release):
                entered.set()
                release.wait()
            case ("block_then_crash", entered, release):
                entered.set()
                release.wait()
                raise RuntimeError(f"{self.name} crashed after blocking")
        return (self.name, self.actor_incarnation, message)


class FailingStart(hr.Actor):
    """Fails in on_start, always."""

    def on_start(self) -> None:
        raise ValueError("cannot start")


class FailNTimes(hr.Actor):
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


class IgnoresStop(hr.Actor):
    """Hangs in on_stop until released: a child that ignores its stop."""

    def __init__(self, release: threading.Event) -> None:
        super().__init__()
        self.release = release

    def on_stop(self) -> None:
        self.release.wait()


def worker(child_id: str, log: Log | None = None, **options: Any) -> hr.ChildSpec:
    return hr.ChildSpec(child_id, Worker, args=(child_id, log), **options)


def start(spec: hr.SupervisorSpec, **kwargs: Any) -> tuple[hr.Tree, EventRecorder]:
    """Start a tree with its own event stream and a recorder on it."""
    events = hr.EventStream()
    recorder = EventRecorder(events)
    return hr.start_tree(spec, events=events, **kwargs), recorder


def wait_threads_end(before: set[threading.Thread], timeout: float = 10.0) -> list[str]:
    """Join every thread started since `before` (daemon ones too); the names still alive."""
    current = threading.current_thread()
    extra = [t for t in threading.enumerate() if t not in before and t is not current]
    for thread in extra:
        thread.join(timeout=timeout)
    return [t.name for t in extra if t.is_alive() and t.name != "hedgerow-autojump"]


class SlowStart(hr.Actor):
    """From its second incarnation on, blocks in on_start until `release` is set."""

    def __init__(self, entered: threading.Event, release: threading.Event) -> None:
        super().__init__()
        self.entered = entered
        self.release = release

    def on_start(self) -> None:
        if self.actor_incarnation > 1:
            self.entered.set()
            self.release.wait()

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError("crashed")
        return message
