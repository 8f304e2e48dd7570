"""Actors for the batch tree: downloaders that finish and stop, and a ledger
that remembers their progress across their crashes."""

from __future__ import annotations

import logging
import random
from typing import Any

import hedgerow as hr

logger = logging.getLogger(__name__)


class Ledger(hr.Actor):
    """How many items each downloader has finished, by its id."""

    def __init__(self) -> None:
        super().__init__()
        self.done: dict[str, int] = {}

    def on_receive(self, message: Any) -> Any:
        match message:
            case ("done", str(who), int(item)):
                self.done[who] = item
            case ("position", str(who), reply_to):
                reply_to.tell(("position", self.done.get(who, 0)))
        return None


class Downloader(hr.Actor):
    """Downloads `items` items, one per `interval`; the network drops a download
    with probability `flakiness` (seeded by path and incarnation, so every run
    is the same). It resumes from the ledger after a crash and stops when done."""

    def __init__(self, ledger: str, items: int, interval: float, flakiness: float) -> None:
        super().__init__()
        self.ledger_id = ledger
        self.items = items
        self.interval = interval
        self.flakiness = flakiness

    def on_start(self) -> None:
        ref = self.actor_child_ref
        assert ref is not None
        self.name = ref.path.rsplit("/", 1)[-1]
        self.random = random.Random(f"{ref.path}#{self.actor_incarnation}")
        self.ledger = self.actor_lookup(self.ledger_id)
        # Asked by message, not by a blocking ask: on_start must not wait on a
        # sibling (its supervisor waits on this start, and may have to restart it).
        self.ledger.tell(("position", self.name, self.actor_child_ref))

    def on_receive(self, message: Any) -> Any:
        match message:
            case ("position", int(item)):
                self.item = item
                self.actor_send_after(self.interval, "tick")
            case "tick":
                self.download()
        return None

    def download(self) -> None:
        if self.item == self.items:
            logger.info("%s: all %d items downloaded", self.name, self.items)
            raise hr.Shutdown("finished")
        if self.random.random() < self.flakiness:
            raise ConnectionResetError(f"{self.name}: connection reset on item {self.item + 1}")
        self.item += 1
        self.ledger.tell(("done", self.name, self.item))
        self.actor_send_after(self.interval, "tick")
