"""Actors for the pipeline tree: reader -> parser -> writer, under rest_for_one.

The writer is idempotent (it keys records by line number), so the reader can
resend from the writer's committed position after a restart: at-least-once
delivery, exactly-once effect.
"""

from __future__ import annotations

import logging
from typing import Any

import hedgerow as hr

logger = logging.getLogger(__name__)


class Writer(hr.Actor):
    """Commits parsed records by line number; answers how many are committed in a row."""

    def __init__(self) -> None:
        super().__init__()
        self.records: dict[int, float] = {}

    def on_receive(self, message: Any) -> Any:
        match message:
            case ("write", int(number), float(value)):
                self.records[number] = value
            case ("committed", reply_to):
                reply_to.tell(("committed", self.committed()))
        return None

    def committed(self) -> int:
        count = 0
        while count + 1 in self.records:
            count += 1
        return count

    def on_stop(self) -> None:
        total = sum(self.records.values())
        logger.info("writer: %d records committed, total %.1f", len(self.records), total)


class Parser(hr.Actor):
    """Parses ``"n: value"`` lines for the writer; a leak crashes it every `crash_every` lines."""

    def __init__(self, writer: str, crash_every: int) -> None:
        super().__init__()
        self.writer_id = writer
        self.crash_every = crash_every
        self.handled = 0

    def on_start(self) -> None:
        self.writer = self.actor_lookup(self.writer_id)

    def on_receive(self, message: Any) -> Any:
        match message:
            case ("line", str(text)):
                self.handled += 1
                if self.handled == self.crash_every:
                    raise RuntimeError(f"parser buffer leaked after {self.handled} lines")
                number, _, value = text.partition(":")
                self.writer.tell(("write", int(number), float(value)))
            case ("flush", reply_to):
                # Behind every line sent before it, here and in the writer's
                # inbox: the writer's answer counts them all.
                self.writer.tell(("committed", reply_to))
        return None


class Reader(hr.Actor):
    """Feeds `lines` readings to the parser, resuming where the writer's records end.

    rest_for_one restarts it whenever the parser (started before it) crashes;
    it then resends from the writer's committed position.
    """

    def __init__(self, parser: str, writer: str, lines: int, interval: float) -> None:
        super().__init__()
        self.parser_id = parser
        self.writer_id = writer
        self.lines = lines
        self.interval = interval

    def on_start(self) -> None:
        self.parser = self.actor_lookup(self.parser_id)
        self.next = 0  # not known until the writer answers
        # By message, not a blocking ask: on_start must not wait on a sibling.
        self.actor_lookup(self.writer_id).tell(("committed", self.actor_child_ref))

    def on_receive(self, message: Any) -> Any:
        match message:
            case "tick" if self.next <= self.lines:
                self.parser.tell(("line", f"{self.next}: {self.next * 1.5}"))
                self.next += 1
                self.actor_send_after(self.interval, "tick")
            case "tick":
                self.parser.tell(("flush", self.actor_child_ref))
            case ("committed", int(committed)) if committed >= self.lines and self.next:
                raise hr.Shutdown(f"all {self.lines} lines committed")
            case ("committed", int(committed)):
                if committed and not self.next:
                    logger.info("reader: resuming after line %d", committed)
                self.next = committed + 1
                self.actor_send_after(self.interval, "tick")
        return None
