"""Event-loop actors (`hedgerow.AsyncioActor`) against their baselines, in one process.

Figures (each baseline measured in the same process, interleaved; ratios are
event-loop actor / baseline):

1. ask between two event-loop actors on one loop: one actor awaits
   ``ref.ask(msg, block=False)`` of another, sequentially; p50 and p99 (us).
   Baselines: a ping-pong between two tasks over two `asyncio.Queue`s on the
   same loop, and a pykka ask (thread to `pykka.ThreadingActor`);
2. ask from a plain thread into an event-loop actor on hedgerow's loop thread,
   against a pykka ask from the same thread;
3. tell throughput: N tells from a thread to one actor, then an ask that
   queues behind them (messages/s): an event-loop actor against pykka's; and,
   for information, N tells from one event-loop actor to another on its loop;
4. memory per idle event-loop actor: tracemalloc delta over N actors, each
   asked once (against pykka thread actors, for reference).

Targets (informational; a missed target never makes the exit status non-zero):
ask 1 <= 1.2x the queue ping-pong and <= 0.5x a pykka ask; ask 2 <= 1.2x a
pykka ask; tells >= 2x pykka's; memory <= 3 KiB per actor.

    .venv/bin/python bench/bench_loop.py            # about 20 s
    .venv/bin/python bench/bench_loop.py --quick    # a few seconds
    .venv/bin/python bench/bench_loop.py --json     # one JSON object on stdout
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tracemalloc
from time import perf_counter
from typing import Any

import pykka

# Run as a script, this directory is on sys.path: share bench_core's helpers.
from bench_core import percentile, pin, ratio, rotated, settle

import hedgerow

GET = "get"
TICK = "tick"
SECTIONS = ("ask-loop", "ask-thread", "tell", "memory")


class _Counter:
    count = 0

    def on_receive(self, message: Any) -> Any:
        if message is TICK:
            self.count += 1
            return None
        if message == GET:
            return self.count
        return message


class LoopCounter(_Counter, hedgerow.AsyncioActor):
    pass


class PykkaCounter(_Counter, pykka.ThreadingActor):
    pass


class Driver(hedgerow.AsyncioActor):
    """Runs a benchmark from inside the loop, as an actor would."""

    async def asks(self, target: pykka.ActorRef[Any], n: int) -> list[float]:
        out: list[float] = []
        append = out.append
        ask = target.ask
        for i in range(n):
            t0 = perf_counter()
            await ask(i, block=False)
            append(perf_counter() - t0)
        return out

    async def tells(self, target: pykka.ActorRef[Any], n: int) -> float:
        tell = target.tell
        t0 = perf_counter()
        for _ in range(n):
            tell(TICK)
        await target.ask(GET, block=False)
        return perf_counter() - t0


async def queue_pingpong(n: int) -> list[float]:
    """Two tasks, two asyncio.Queues: the baseline for an ask on one loop."""
    requests: asyncio.Queue[Any] = asyncio.Queue()
    replies: asyncio.Queue[Any] = asyncio.Queue()

    async def echo() -> None:
        while True:
            message = await requests.get()
            if message is None:
                return
            replies.put_nowait(message)

    task = asyncio.ensure_future(echo())
    out: list[float] = []
    append = out.append
    for i in range(n):
        t0 = perf_counter()
        requests.put_nowait(i)
        await replies.get()
        append(perf_counter() - t0)
    requests.put_nowait(None)
    await task
    return out


def thread_asks(ref: pykka.ActorRef[Any], n: int) -> list[float]:
    out: list[float] = []
    append = out.append
    ask = ref.ask
    for i in range(n):
        t0 = perf_counter()
        ask(i)
        append(perf_counter() - t0)
    return out


def thread_tells(ref: pykka.ActorRef[Any], n: int) -> float:
    tell = ref.tell
    t0 = perf_counter()
    for _ in range(n):
        tell(TICK)
    ref.ask(GET)
    return perf_counter() - t0


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "p50": percentile(samples, 50) * 1e6,
        "p99": percentile(samples, 99) * 1e6,
        "mean": statistics.fmean(samples) * 1e6,
    }


# -- sections -----------------------------------------------------------------------


def bench_ask_on_loop(n: int, rounds: int) -> dict[str, list[float]]:
    """Actor-to-actor asks and the queue ping-pong, on one asyncio.run loop; pykka's
    thread asks interleaved with them (from a helper thread, so the loop is idle)."""
    samples: dict[str, list[float]] = {"actors": [], "queues": [], "pykka": []}
    pykka_ref = PykkaCounter.start()

    async def main() -> None:
        driver = Driver.start()
        target = LoopCounter.start()
        proxy = driver.proxy()
        try:
            await proxy.asks(target, n)  # warm-up
            await queue_pingpong(n)
            for rep in range(rounds):
                for name in rotated(list(samples), rep):
                    if name == "actors":
                        samples[name] += await proxy.asks(target, n)
                    elif name == "queues":
                        samples[name] += await queue_pingpong(n)
                    else:
                        samples[name] += await asyncio.to_thread(thread_asks, pykka_ref, n)
        finally:
            await target.stop(block=False)
            await driver.stop(block=False)

    try:
        asyncio.run(main())
    finally:
        pykka_ref.stop()
    return samples


def bench_ask_from_thread(n: int, rounds: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {"loop actor": [], "pykka": []}
    refs = {"loop actor": LoopCounter.start(), "pykka": PykkaCounter.start()}
    try:
        for ref in refs.values():
            thread_asks(ref, n)  # warm-up
        for rep in range(rounds):
            for name in rotated(list(samples), rep):
                samples[name] += thread_asks(refs[name], n)
    finally:
        for ref in refs.values():
            ref.stop()
    return samples


def bench_tells(n: int, reps: int) -> dict[str, list[float]]:
    """Messages per second, median of `reps` interleaved runs per variant."""
    rates: dict[str, list[float]] = {"loop actor": [], "pykka": [], "on the loop": []}
    refs = {"loop actor": LoopCounter.start(), "pykka": PykkaCounter.start()}
    driver = Driver.start()
    on_loop_target = LoopCounter.start()
    proxy = driver.proxy()
    try:
        for rep in range(reps):
            for name in rotated(list(rates), rep):
                if name == "on the loop":
                    elapsed = proxy.tells(on_loop_target, n).get()
                else:
                    elapsed = thread_tells(refs[name], n)
                rates[name].append(n / elapsed)
    finally:
        for ref in (*refs.values(), driver, on_loop_target):
            ref.stop()
    return rates


def measure_memory(start: Any, n: int) -> float:
    """Bytes per idle actor (tracemalloc), each asked once before measuring."""
    settle()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    refs = [start() for _ in range(n)]
    for ref in refs:
        ref.ask(GET)
    settle()
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    for ref in refs:
        ref.stop(block=False)
    for ref in refs:
        ref.actor_stopped.wait(10)
    del refs
    settle()
    return used / n


def bench_memory(n_loop: int, n_threads: int) -> dict[str, float]:
    return {
        "loop actor": measure_memory(LoopCounter.start, n_loop),
        "pykka": measure_memory(PykkaCounter.start, n_threads),
    }


# -- report ---------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    log = (lambda _text: None) if args.json else (lambda text: print(text, flush=True))
    cpus = pin(args.affinity)
    only = set(args.only.split(",")) if args.only else set(SECTIONS)
    quick = args.quick
    result: dict[str, Any] = {
        "python": platform.python_version(),
        "pykka": pykka.__version__ if hasattr(pykka, "__version__") else None,
        "cpus": cpus,
    }
    # The machine's load, before and after: other processes on the same cores
    # change the figures (the same-run ratios much less).
    result["load_before"] = os.getloadavg()
    log(f"python {result['python']}, cpus {cpus} ({args.affinity}), load {_load()}")

    if "ask-loop" in only:
        n, rounds = (500, 4) if quick else (2000, 10)
        samples = bench_ask_on_loop(n, rounds)
        figures = {name: summary(s) for name, s in samples.items()}
        vs_queue = ratio(figures["actors"]["p50"], figures["queues"]["p50"])
        vs_pykka = ratio(figures["actors"]["p50"], figures["pykka"]["p50"])
        result["ask_loop"] = {**figures, "vs_queue": vs_queue, "vs_pykka": vs_pykka}
        log("ask between two event-loop actors on one loop (us):")
        for name, fig in figures.items():
            log(f"  {name:10} p50 {fig['p50']:7.2f}  p99 {fig['p99']:7.2f}")
        log(f"  p50 vs asyncio.Queue ping-pong: {vs_queue:.2f}x (target <= 1.2x)")
        log(f"  p50 vs pykka ask:               {vs_pykka:.2f}x (target <= 0.5x)")

    if "ask-thread" in only:
        n, rounds = (500, 4) if quick else (2000, 10)
        samples = bench_ask_from_thread(n, rounds)
        figures = {name: summary(s) for name, s in samples.items()}
        vs_pykka = ratio(figures["loop actor"]["p50"], figures["pykka"]["p50"])
        result["ask_thread"] = {**figures, "vs_pykka": vs_pykka}
        log("ask from a plain thread (us):")
        for name, fig in figures.items():
            log(f"  {name:10} p50 {fig['p50']:7.2f}  p99 {fig['p99']:7.2f}")
        log(f"  p50 vs pykka ask: {vs_pykka:.2f}x (target <= 1.2x)")

    if "tell" in only:
        n, reps = (20_000, 3) if quick else (200_000, 7)
        rates = bench_tells(n, reps)
        medians = {name: statistics.median(r) for name, r in rates.items()}
        vs_pykka = ratio(medians["loop actor"], medians["pykka"])
        result["tell"] = {"rates": rates, "medians": medians, "vs_pykka": vs_pykka}
        log(f"tell throughput, {n} tells then one ask (messages/s, median of {reps}):")
        for name, rate in medians.items():
            log(f"  {name:12} {rate:12,.0f}")
        log(f"  from a thread vs pykka: {vs_pykka:.2f}x (target >= 2x)")

    if "memory" in only:
        n_loop, n_threads = (2000, 200) if quick else (10_000, 1000)
        per_actor = bench_memory(n_loop, n_threads)
        result["memory"] = per_actor
        log("memory per idle actor (tracemalloc, KiB):")
        log(f"  loop actor {per_actor['loop actor'] / 1024:6.2f}  ({n_loop} actors; target <= 3)")
        log(f"  pykka      {per_actor['pykka'] / 1024:6.2f}  ({n_threads} thread actors)")
    result["load_after"] = os.getloadavg()
    log(f"load {_load()}")
    return result


def _load() -> str:
    return " ".join(f"{figure:.2f}" for figure in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a few seconds")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--only", default="", help=f"comma-separated: {','.join(SECTIONS)}")
    parser.add_argument(
        "--affinity",
        choices=("one", "all"),
        default="one",
        help="run every thread on one CPU (default, as bench_core.py) or on all",
    )
    args = parser.parse_args()
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
