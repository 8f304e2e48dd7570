"""Bounded inboxes: the cost of ``max_inbox`` on tell throughput, in one process.

Figures (each variant a supervised `hedgerow.Actor` reached through its `ChildRef`):

1. tell throughput: N tells, then one ask that queues behind them (messages/s),
   for an unbounded inbox and for bounded ones (a bound the run never reaches,
   so the figure is the bookkeeping alone; ``drop_newest`` and ``block``);
   the ratio bounded/unbounded of the time taken (target <= 1.1);
2. sender's cost alone: N tells to a child held by a gate (ns per tell);
3. a dropped tell: tells to a full ``drop_newest`` inbox, each a dead letter
   on the tree's event stream (ns per tell), for information.

Variants are interleaved and repeated; medians are reported. Pinned to one
CPU by default, as bench_core.py. Targets are informational.

    .venv/bin/python bench/bench_inbox.py            # about 20 s
    .venv/bin/python bench/bench_inbox.py --quick    # a few seconds
    .venv/bin/python bench/bench_inbox.py --json     # one JSON object on stdout
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
from time import perf_counter
from typing import Any

import hedgerow as hr

TICK = "tick"
GET = "get"


class Counter(hr.Actor):
    """Counts tells; answers GET with the count; a told Event holds it until set."""

    count = 0

    def on_receive(self, message: Any) -> Any:
        if message is TICK:
            self.count += 1
            return None
        if message == GET:
            return self.count
        if isinstance(message, threading.Event):
            message.wait()
        return None


VARIANTS: dict[str, dict[str, Any]] = {
    "unbounded": {},
    "drop_newest": {"max_inbox": 10**9},
    "block": {"max_inbox": 10**9, "inbox_overflow": "block"},
}


def tree(options: dict[str, Any]) -> hr.Tree:
    return hr.start_tree(hr.SupervisorSpec([hr.ChildSpec("c", Counter, **options)]))


def tell_run(ref: hr.ChildRef[Any], n: int) -> float:
    """Seconds for n tells and the ask behind them."""
    tell = ref.tell
    began = perf_counter()
    for _ in range(n):
        tell(TICK)
    ref.ask(GET)
    return perf_counter() - began


def sender_run(ref: hr.ChildRef[Any], n: int) -> float:
    """Seconds for n tells while the child is held (the sender's side alone)."""
    gate = threading.Event()
    ref.tell(gate)
    tell = ref.tell
    began = perf_counter()
    for _ in range(n):
        tell(TICK)
    elapsed = perf_counter() - began
    gate.set()
    ref.ask(GET)
    return elapsed


def dropped_run(n: int) -> float:
    """Seconds for n tells to a full drop_newest inbox (each a dead letter)."""
    events = hr.EventStream()
    dropped = [0]

    def count(event: hr.Event) -> None:
        if event.kind is hr.EventKind.DEAD_LETTER:
            dropped[0] += 1

    events.subscribe(count)
    with hr.start_tree(
        hr.SupervisorSpec([hr.ChildSpec("c", Counter, max_inbox=1)]), events=events
    ) as t:
        ref = t.get_child("c")
        gate = threading.Event()
        ref.tell(gate)
        ref.tell(TICK)  # the one place, taken
        tell = ref.tell
        began = perf_counter()
        for _ in range(n):
            tell(TICK)
        elapsed = perf_counter() - began
        gate.set()
    assert dropped[0] >= n, dropped
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a few seconds")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--reps", type=int, default=None, help="interleaved repetitions")
    parser.add_argument("--affinity", choices=("one", "all"), default="one")
    args = parser.parse_args()
    if args.affinity == "one" and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    n = 20_000 if args.quick else 200_000
    reps = args.reps or (3 if args.quick else 7)
    logging_off()
    trees = {name: tree(options) for name, options in VARIANTS.items()}
    try:
        refs = {name: t.get_child("c") for name, t in trees.items()}
        for ref in refs.values():  # warm up
            tell_run(ref, n // 10)
        tells: dict[str, list[float]] = {name: [] for name in VARIANTS}
        senders: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for _ in range(reps):
            for name, ref in refs.items():
                tells[name].append(tell_run(ref, n))
                senders[name].append(sender_run(ref, n))
    finally:
        for t in trees.values():
            t.stop()
    drops = [dropped_run(n // 4) / (n // 4) for _ in range(reps)]
    base = statistics.median(tells["unbounded"])
    base_sender = statistics.median(senders["unbounded"])
    result: dict[str, Any] = {"n": n, "reps": reps, "load": os.getloadavg()[0], "variants": {}}
    for name in VARIANTS:
        took = statistics.median(tells[name])
        sent = statistics.median(senders[name])
        paired = statistics.median(
            b / u for b, u in zip(tells[name], tells["unbounded"], strict=True)
        )
        result["variants"][name] = {
            "tells_per_s": n / took,
            "cost_ratio": took / base,
            "paired_cost_ratio": paired,
            "sender_ns_per_tell": sent / n * 1e9,
            "sender_cost_ratio": sent / base_sender,
        }
    result["dropped_tell_ns"] = statistics.median(drops) * 1e9
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return
    print(f"bench_inbox: {n} tells x {reps} reps, load {result['load']:.2f}")
    print(
        f"{'variant':<12} {'tells/s':>10} {'cost':>6} {'paired':>7} {'sender ns':>10} {'ratio':>6}"
    )
    for name, row in result["variants"].items():
        print(
            f"{name:<12} {row['tells_per_s']:>10.0f} {row['cost_ratio']:>6.3f}"
            f" {row['paired_cost_ratio']:>7.3f} {row['sender_ns_per_tell']:>10.0f}"
            f" {row['sender_cost_ratio']:>6.3f}"
        )
    print("target: bounded/unbounded cost <= 1.1")
    print(f"a dropped tell (dead letter on the stream): {result['dropped_tell_ns']:.0f} ns")


def logging_off() -> None:
    import logging  # noqa: PLC0415

    logging.getLogger("hedgerow").setLevel(logging.ERROR)  # dead letters are expected


if __name__ == "__main__":
    main()
