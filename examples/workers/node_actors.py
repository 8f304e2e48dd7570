"""The actors and the component of examples/workers (imported by the node and its workers)."""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

import hedgerow as hr

logger = logging.getLogger(__name__)


class Heartbeat(hr.Actor):
    """Logs a beat every half second, with the pid of the worker process it lives in."""

    def on_start(self) -> None:
        self.beats = 0
        self.actor_send_after(0.5, "beat")

    def on_receive(self, message: Any) -> None:
        if message == "beat":
            self.beats += 1
            logger.info("heartbeat %d from pid %d", self.beats, os.getpid())
            self.actor_send_after(0.5, "beat")


crasher = hr.Component(name="crasher")
"""Serves ``example.pid`` on the worker's own in-process router, then crashes the
whole worker process, as a segfault in a C extension would."""


@crasher.register("example.pid")
def pid() -> int:
    return os.getpid()


@crasher.on_ready
def crash_soon(_session: Any) -> None:
    logger.info("crasher ready in pid %d; this process dies in 1 s", os.getpid())
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGKILL))
    timer.daemon = True
    timer.start()


class Timer(hr.Actor):
    """Stops normally after `seconds`: a significant child, so the node then shuts down."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def on_start(self) -> None:
        self.actor_send_after(self.seconds, "done")

    def on_receive(self, message: Any) -> None:
        if message == "done":
            logger.info("time is up: the node shuts down")
            self.stop()
