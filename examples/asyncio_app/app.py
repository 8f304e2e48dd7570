"""An asyncio application that embeds a supervised tree (tree.toml).

The application's own coroutines (here a dashboard that prints the price list
every few ticks) run on its loop beside the tree: the tree is opened with
``async with hedgerow.open_tree(...)``, the price list is asked with ``await
hedgerow.ask(...)``, and nothing blocks the loop. The ticker crashes once and
is restarted while the dashboard goes on. When the ticker is done, the tree
ends and so does the application (exit status 0). Ctrl-C (or SIGTERM) stops
the tree early, children in reverse order.

    python examples/asyncio_app/app.py
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import Any

import hedgerow as hr

HERE = Path(__file__).resolve().parent
EVERY = 0.35
"""Seconds between two dashboard lines."""


def show(event: hr.Event) -> None:
    """The tree's failures and restarts, and the ticker's end, as they happen (this
    runs in the tree's threads: it must be quick)."""
    ticker_done = event.kind is hr.EventKind.STOPPED and event.path == "root/ticker"
    if ticker_done or event.kind in (hr.EventKind.FAILED, hr.EventKind.RESTARTED):
        reason = f": {event.reason}" if event.reason is not None else ""
        print(f"tree: {event.path} {event.kind.value}{reason}", flush=True)


async def dashboard(prices: hr.ChildRef[Any], seen: list[dict[str, Any]]) -> None:
    """The application's own work: print the prices now and then, until cancelled."""
    while True:
        snapshot = await hr.ask(prices, "snapshot")  # the loop runs on while the price list answers
        seen.append(snapshot)
        latest = ", ".join(f"{k} {v:.2f}" for k, v in sorted(snapshot.items()) if k != "quotes")
        print(f"dashboard: {snapshot['quotes']:2d} quotes | {latest}", flush=True)
        await asyncio.sleep(EVERY)


async def main() -> int:
    spec = hr.load_tree(HERE / "tree.toml")
    seen: list[dict[str, Any]] = []
    async with hr.open_tree(spec, use_running_loop=True) as tree:
        tree.events.subscribe(show)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, tree.request_stop)
        prices = tree.lookup("root/prices")
        where = await hr.ask(prices, "thread")
        print(f"app: the price list runs on {where}, as this application does", flush=True)
        watching = asyncio.create_task(dashboard(prices, seen))
        reason = await tree.wait()
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching  # a dashboard that failed says so here
    last = seen[-1] if seen else {"quotes": 0}
    print(f"app: tree ended ({reason}); the dashboard saw {last['quotes']} quotes last", flush=True)
    return 0 if not tree.gave_up else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
