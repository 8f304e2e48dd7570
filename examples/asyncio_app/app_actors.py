"""The actors of the asyncio application's tree: a ticker feeds quotes to a price list.

The ticker crashes once on a bad tick; its supervisor restarts it, and the new
incarnation resumes after the last quote the price list has (the price list is a sibling,
untouched by the restart). When every tick is sent the ticker stops, and as it
is significant, the tree ends.

Both are event-loop actors (`hedgerow.AsyncioActor`): the class decides the
runtime, and the tree file names them as any other. Embedded by app.py with
``use_running_loop=True``, they run on the application's own loop; under
``hedgerow run``, on hedgerow's loop thread. (Make them `hedgerow.Actor`
subclasses and they are thread actors, with nothing else changed.)
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import hedgerow as hr

logger = logging.getLogger(__name__)

SYMBOLS = ("ACME", "GLOBEX", "INITECH")


def price(tick: int) -> tuple[str, float]:
    """The quote of tick number `tick` (1, 2, ...): the same on every run."""
    symbol = SYMBOLS[tick % len(SYMBOLS)]
    return symbol, round(100 + (tick * 37 % 23) - 11 + tick / 10, 2)


class Prices(hr.AsyncioActor):
    """Keeps the latest quote of each symbol; answers ``"snapshot"`` with them all
    (and ``"thread"`` with the name of the thread it runs on)."""

    def __init__(self) -> None:
        super().__init__()
        self.latest: dict[str, float] = {}
        self.quotes = 0

    def on_receive(self, message: Any) -> Any:
        match message:
            case ("quote", int(tick), str(symbol), float(value)):
                self.latest[symbol] = value
                self.quotes = max(self.quotes, tick)
            case "snapshot":
                return {"quotes": self.quotes, **self.latest}
            case "thread":
                return threading.current_thread().name
            case ("resume", reply_to):
                reply_to.tell(("resume", self.quotes))
        return None


class Ticker(hr.AsyncioActor):
    """Sends `ticks` quotes to the price list, one every `interval` seconds.

    Tick number `bad_tick` crashes the first incarnation (a feed glitch).
    """

    def __init__(self, prices: str, ticks: int, interval: float, bad_tick: int) -> None:
        super().__init__()
        self.prices_id = prices
        self.ticks = ticks
        self.interval = interval
        self.bad_tick = bad_tick
        self.tick = 0

    def on_start(self) -> None:
        self.prices = self.actor_lookup(self.prices_id)
        # Ask the price list where to resume, by message: on_start must not wait on a sibling.
        self.prices.tell(("resume", self.actor_child_ref))

    def on_receive(self, message: Any) -> Any:
        match message:
            case ("resume", int(done)):
                if done:
                    logger.info("ticker: resuming after tick %d", done)
                self.tick = done
                self.actor_send_after(self.interval, "tick")
            case "tick" if self.tick >= self.ticks:
                raise hr.Shutdown(f"all {self.ticks} ticks sent")
            case "tick":
                self.tick += 1
                if self.tick == self.bad_tick and self.actor_incarnation == 1:
                    raise RuntimeError(f"bad tick {self.tick} from the feed")
                symbol, value = price(self.tick)
                self.prices.tell(("quote", self.tick, symbol, value))
                self.actor_send_after(self.interval, "tick")
        return None
