"""Actors that tests host in worker processes (imported there as ``node.worker_actors``)."""

from __future__ import annotations

import os
import threading
from typing import Any

import hedgerow as hr


class Echo(hr.Actor):
    """Answers with its pid; prints a line at start (a worker sends prints to stderr)."""

    def on_start(self) -> None:
        print(f"echo started in {os.getpid()}", flush=True)  # noqa: T201 - goes to stderr

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError("echo crashed")
        return (os.getpid(), message)


class Crasher(hr.Actor):
    """Crashes at once after starting (its hosted supervisor restarts it)."""

    def on_start(self) -> None:
        self.actor_ref.tell("crash")

    def on_receive(self, message: Any) -> Any:
        raise RuntimeError("boom")


class IgnoresStop(hr.Actor):
    """Blocks in on_stop for ever: its worker ignores SIGTERM until SIGKILL."""

    def on_stop(self) -> None:
        threading.Event().wait()


class Quits(hr.Actor):
    """Stops by itself after starting (with restart=never, its worker's tree ends)."""

    def on_start(self) -> None:
        self.actor_ref.tell("quit")

    def on_receive(self, message: Any) -> Any:
        self.stop()


class SlowStart(hr.Actor):
    """Never finishes starting: its worker is never ready."""

    def on_start(self) -> None:
        threading.Event().wait()


class SlowOnceMarked(hr.Actor):
    """Starts at once unless the file named by ``SLOW_MARK`` exists: then never finishes."""

    def on_start(self) -> None:
        mark = os.environ.get("SLOW_MARK")
        if mark and os.path.exists(mark):  # noqa: PTH110 - a plain check, as the worker sees it
            threading.Event().wait()
