"""Asks awaited from an asyncio application, against pykka's blocking ask.

Figures (baselines measured in the same process, interleaved):

1. ask latency, p50 and p99 (us), sequential asks from a task of the application:
   - ``await hedgerow.ask(ref, msg)`` from a task of an ``asyncio.run`` loop,
     to a supervised `hedgerow.Actor` (its `ChildRef`, tree opened with
     ``open_tree``) and to a plain `pykka.ThreadingActor`;
   - ``await child_ref.ask(msg, block=False)`` (an `AsyncioFuture`);
   - baseline: pykka's blocking ``ref.ask(msg)`` from a plain thread, to the
     same pykka actor;
   - for information: ``await hedgerow.ask`` to a supervised event-loop child
     (`hedgerow.AsyncioActor`) of a tree opened with ``use_running_loop=True``
     (on the application's loop: no thread hop) and of one on hedgerow's loop
     thread.
   The ratio printed is awaited/blocking at p50.
2. the loop while it awaits: a heartbeat task yields (``asyncio.sleep(0)``)
   in a loop beside the asks; heartbeats per ask say whether the loop ran
   other work during each ask (pykka's awaited future lets it run once per ask,
   before it blocks), and the gaps between two heartbeats how long the loop
   was held (p50 and max; the max includes the OS's preemptions).

An awaited ask costs a thread hand-off and a ``call_soon_threadsafe`` wake-up
of the loop; a blocking ask costs a thread hand-off and a lock. No target:
this measures what not blocking the loop costs.

    .venv/bin/python bench/bench_async_ask.py            # about 10 s
    .venv/bin/python bench/bench_async_ask.py --quick    # a few seconds
    .venv/bin/python bench/bench_async_ask.py --json     # one JSON object on stdout
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
from time import perf_counter
from typing import Any

import pykka

# Run as a script, this directory is on sys.path: share bench_core's helpers.
from bench_core import percentile, pin, ratio, rotated

import hedgerow

VARIANTS = ("hr.ask child", "await child.ask", "hr.ask pykka", "pykka blocking")
LOOP_VARIANTS = ("loop child, app's loop", "loop child, hedgerow's")


class Echo(hedgerow.Actor):
    def on_receive(self, message: Any) -> Any:
        return message


class LoopEcho(hedgerow.AsyncioActor):
    def on_receive(self, message: Any) -> Any:
        return message


class PykkaEcho(pykka.ThreadingActor):
    def on_receive(self, message: Any) -> Any:
        return message


def blocking_asks(ref: pykka.ActorRef[Any], n: int) -> list[float]:
    out: list[float] = []
    append = out.append
    ask = ref.ask
    for i in range(n):
        t0 = perf_counter()
        ask(i)
        append(perf_counter() - t0)
    return out


async def awaited_asks(ref: pykka.ActorRef[Any], n: int) -> list[float]:
    out: list[float] = []
    append = out.append
    ask = hedgerow.ask
    for i in range(n):
        t0 = perf_counter()
        await ask(ref, i)
        append(perf_counter() - t0)
    return out


async def future_asks(ref: pykka.ActorRef[Any], n: int) -> list[float]:
    out: list[float] = []
    append = out.append
    ask = ref.ask
    for i in range(n):
        t0 = perf_counter()
        await ask(i, block=False)
        append(perf_counter() - t0)
    return out


async def with_heartbeat(asks: Any, n: int) -> dict[str, float]:
    """Run `asks` beside a task that yields in a loop: heartbeats per ask, and the
    gaps between two heartbeats (how long the loop was held), p50 and max."""
    gaps: list[float] = []
    running = True

    async def heartbeat() -> None:
        append = gaps.append
        last = perf_counter()
        while running:
            await asyncio.sleep(0)
            now = perf_counter()
            append(now - last)
            last = now

    task = asyncio.ensure_future(heartbeat())
    await asyncio.sleep(0)
    await asks
    running = False
    await task
    return {
        "beats_per_ask": len(gaps) / n,
        "gap_p50_us": percentile(gaps, 50) * 1e6,
        "gap_max_us": max(gaps) * 1e6,
    }


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "p50": percentile(samples, 50) * 1e6,
        "p99": percentile(samples, 99) * 1e6,
        "mean": statistics.fmean(samples) * 1e6,
    }


def bench(n: int, rounds: int) -> tuple[dict[str, list[float]], dict[str, dict[str, float]]]:
    samples: dict[str, list[float]] = {name: [] for name in (*VARIANTS, *LOOP_VARIANTS)}
    loop_figures: dict[str, dict[str, float]] = {}
    pykka_ref = PykkaEcho.start()
    spec = hedgerow.SupervisorSpec([hedgerow.ChildSpec("echo", Echo)])
    loop_spec = hedgerow.SupervisorSpec([hedgerow.ChildSpec("echo", LoopEcho)])

    async def main() -> None:
        async with (
            hedgerow.open_tree(spec) as tree,
            hedgerow.open_tree(loop_spec, name="here", use_running_loop=True) as here,
            hedgerow.open_tree(loop_spec, name="there") as there,
        ):
            child = tree.lookup("root/echo")
            targets = {
                "loop child, app's loop": here.lookup("here/echo"),
                "loop child, hedgerow's": there.lookup("there/echo"),
            }
            for ref in (child, pykka_ref, *targets.values()):
                await awaited_asks(ref, n)  # warm-up
            blocking_asks(pykka_ref, n)
            for rep in range(rounds):
                for name in rotated(list(samples), rep):
                    if name == "hr.ask child":
                        samples[name] += await awaited_asks(child, n)
                    elif name == "await child.ask":
                        samples[name] += await future_asks(child, n)
                    elif name == "hr.ask pykka":
                        samples[name] += await awaited_asks(pykka_ref, n)
                    elif name in targets:
                        samples[name] += await awaited_asks(targets[name], n)
                    else:  # from a plain thread: the loop idles meanwhile
                        samples[name] += await asyncio.to_thread(blocking_asks, pykka_ref, n)
            loop_figures["hr.ask"] = await with_heartbeat(awaited_asks(pykka_ref, n), n)
            loop_figures["pykka await"] = await with_heartbeat(future_asks(pykka_ref, n), n)

    try:
        asyncio.run(main())
    finally:
        pykka_ref.stop()
    return samples, loop_figures


def run(args: argparse.Namespace) -> dict[str, Any]:
    log = (lambda _text: None) if args.json else (lambda text: print(text, flush=True))
    cpus = pin(args.affinity)
    n, rounds = (500, 4) if args.quick else (2000, 10)
    result: dict[str, Any] = {"python": platform.python_version(), "cpus": cpus, "n": n}
    log(f"python {result['python']}, cpus {cpus} ({args.affinity}), {rounds} x {n} asks each")
    samples, loop_figures = bench(n, rounds)
    figures = {name: summary(s) for name, s in samples.items()}
    base = figures["pykka blocking"]["p50"]
    ratios = {name: ratio(fig["p50"], base) for name, fig in figures.items()}
    result["latency_us"] = figures
    result["p50_vs_pykka_blocking"] = ratios
    result["loop"] = loop_figures
    log("ask latency, sequential, from a task of the application (us):")
    for name, fig in figures.items():
        log(
            f"  {name:24} p50 {fig['p50']:7.2f}  p99 {fig['p99']:7.2f}"
            f"   p50 {ratios[name]:.2f}x pykka's blocking ask"
        )
    log("the loop while it awaits (a heartbeat task beside sequential asks):")
    for name, fig in loop_figures.items():
        log(
            f"  {name:24} {fig['beats_per_ask']:6.1f} heartbeats per ask; loop held "
            f"p50 {fig['gap_p50_us']:6.1f} us, max {fig['gap_max_us']:8.1f} us"
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a few seconds")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
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
