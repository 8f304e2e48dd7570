"""Actors for the nested_shutdown tree: a feeder and an audit under `ingest`,
an index and a database under `store`.

The feeder ticks on its own timer and tells the index a reading per tick; the
index numbers them (crashing on every 25th) and hands them to the database. The database takes
`flush_time` seconds to flush when it stops: longer than its shutdown, so its
supervisor abandons it (a thread cannot be killed), and the flush finishes
on its own thread.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import hedgerow as hr

logger = logging.getLogger(__name__)


class Feeder(hr.Actor):
    """Tells the child at path `to` a reading every `interval` seconds, `readings` in
    all; then it stops (it is significant: its supervisor, then the tree, end)."""

    def __init__(self, to: str, interval: float, readings: int) -> None:
        super().__init__()
        self.to = to
        self.interval = interval
        self.readings = readings
        self.sent = 0

    def on_start(self) -> None:
        self.target = self.actor_lookup(self.to)
        self.actor_send_after(self.interval, "tick")

    def on_receive(self, message: Any) -> Any:
        if message == "tick":
            self.sent += 1
            self.target.tell(("reading", self.sent))
            if self.sent < self.readings:
                self.actor_send_after(self.interval, "tick")
            else:
                self.stop()
        return None


class Audit(hr.Actor):
    """Keeps the feeder company: `ingest` restarts both when either fails."""

    def on_receive(self, message: Any) -> Any:
        return message


class Index(hr.Actor):
    """Numbers the readings it gets and hands them to its sibling database; a
    reading that is a multiple of `crash_every` is malformed and crashes it."""

    def __init__(self, db: str, crash_every: int) -> None:
        super().__init__()
        self.db_id = db
        self.crash_every = crash_every
        self.count = 0

    def on_start(self) -> None:
        self.db = self.actor_lookup(self.db_id)

    def on_receive(self, message: Any) -> Any:
        match message:
            case ("reading", int(value)):
                if value % self.crash_every == 0:
                    raise ValueError(f"malformed reading {value}")
                self.count += 1
                self.db.tell(("row", self.count, value))
        return None


class Db(hr.Actor):
    """Stores rows; flushing them on stop takes `flush_time` seconds (real time)."""

    def __init__(self, flush_time: float) -> None:
        super().__init__()
        self.flush_time = flush_time
        self.rows = 0

    def on_receive(self, message: Any) -> Any:
        match message:
            case ("row", int(_number), int(_value)):
                self.rows += 1
        return self.rows

    def on_stop(self) -> None:
        logger.info("db: flushing %d rows (%g s)", self.rows, self.flush_time)
        threading.Event().wait(self.flush_time)  # a slow disk
