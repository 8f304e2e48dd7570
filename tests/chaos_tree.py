"""The ticking tree the chaos tests run (tests/testing/test_chaos*.py): a ticker
that feeds a sink, on the runtime a test asks for."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

ACTORS = '''
"""A ticker that feeds a sink, for the chaos tests."""

import asyncio

import hedgerow as hr


class Sink(hr.SinkBase):
    def on_receive(self, message):
        return message


class Ticker(hr.TickerBase):
    def __init__(self, sink, interval):
        super().__init__()
        self.sink_id = sink
        self.interval = interval

    def on_start(self):
        self.sink = self.actor_lookup(self.sink_id)
        self.actor_send_after(self.interval, "tick")

    def on_receive(self, message):
        self.sink.tell(("item", message))
        self.actor_send_after(self.interval, "tick")


class SleepyTicker(hr.AsyncioActor):
    """Ticks with asyncio.sleep on its loop, instead of the tree's timers."""

    def __init__(self, sink, interval):
        super().__init__()
        self.sink_id = sink
        self.interval = interval

    def on_start(self):
        self.sink = self.actor_lookup(self.sink_id)
        self.actor_ref.tell("tick")

    async def on_receive(self, message):
        await asyncio.sleep(self.interval)
        self.sink.tell(("item", message))
        self.actor_ref.tell("tick")
'''

TREE = """
[supervisor]
name = "root"
max_restarts = {max_restarts}
period = 5

[[supervisor.children]]
id = "sink"
start = "{module}:Sink"
initial_retry_delay = 0.2
retry_delay_jitter = 0.1

[[supervisor.children]]
id = "feed"
[supervisor.children.supervisor]
max_restarts = 50
period = 5

[[supervisor.children.supervisor.children]]
id = "ticker"
start = "{module}:{ticker}"
kwargs = {{ sink = "root/sink", interval = 0.25 }}
"""

BASES = {
    "thread": ("Actor", "Actor"),
    "loop": ("AsyncioActor", "AsyncioActor"),
    "mixed": ("Actor", "AsyncioActor"),
}
"""The sink's and the ticker's classes, for each value of the `runtime` fixture."""


def tree_file(
    tmp_path: Path, max_restarts: int = 50, runtime: str = "thread", ticker: str = "Ticker"
) -> Path:
    """Write the actors' module and the tree file into `tmp_path`; the tree file's path.

    `ticker` is ``Ticker`` (ticks on the tree's timers) or ``SleepyTicker`` (an
    event-loop actor that ticks with ``asyncio.sleep``)."""
    module = f"chaos_sample_actors_{runtime}"  # a module name per runtime: imports are cached
    sink_base, ticker_base = BASES[runtime]
    actors = ACTORS.replace("hr.SinkBase", f"hr.{sink_base}")
    actors = actors.replace("hr.TickerBase", f"hr.{ticker_base}")
    (tmp_path / f"{module}.py").write_text(actors)
    path = tmp_path / "tree.toml"
    path.write_text(TREE.format(max_restarts=max_restarts, module=module, ticker=ticker))
    return path
