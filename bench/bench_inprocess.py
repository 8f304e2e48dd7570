"""In-process router call latency against a pykka ask, in one process.

Figures (p50 and p99 of sequential round trips, in microseconds, and the
ratio to a bare pykka ask measured in the same run, interleaved):

1. pykka ask: `ActorRef.ask` to a `pykka.ThreadingActor` that echoes (baseline);
2. call, seam to component: a plain thread calls a procedure of a supervised
   `hedgerow.Component` through a `Link` of the in-process router, payloads
   serialized with msgpack (the default), with json, and passed by reference;
3. call, component to component: a component's handler calls another
   component's procedure with ``session.call(...).get()`` (the answer comes
   back through the caller's own inbox, served by its waiting thread).
4. publish scaling: a plain thread publishes (msgpack, not acknowledged) to
   an exact topic with one subscriber, on a router whose realm also holds 1,
   or 500, exact subscriptions to unrelated topics. The router's own cost
   (the subscriber's peer drops the event); the ratio is to the case with 1.

The target (informational: a missed target never makes the exit status
non-zero) is a call at most 3x a pykka ask, and a publish with 500 unrelated
subscriptions within 1.5x of one with 1.

    .venv/bin/python bench/bench_inprocess.py            # about 10 s
    .venv/bin/python bench/bench_inprocess.py --quick    # a couple of seconds
    .venv/bin/python bench/bench_inprocess.py --json     # one JSON object on stdout
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import platform
import statistics
import sys
import threading
from time import perf_counter
from typing import TYPE_CHECKING, Any

import pykka

import hedgerow
from hedgerow import SupervisorSpec, start_tree
from hedgerow.components._component import Component
from hedgerow.transports import Call, InProcessRouter, Leave, Publish, Subscribe

if TYPE_CHECKING:
    from collections.abc import Callable

PAYLOAD = ("hello", 42, {"a": 1.5})
TARGET = 3.0
PUBLISH_TARGET = 1.5
UNRELATED = (1, 500)
"""Unrelated subscriptions in the realm, per publish variant."""


class Echo(pykka.ThreadingActor):
    def on_receive(self, message: Any) -> Any:
        return message


class _Peer:
    def deliver(self, message: Any) -> None:
        pass


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[index]


def pin(affinity: str) -> list[int]:
    """All threads on one CPU (as bench_core.py: see its `pin` for why)."""
    if not hasattr(os, "sched_setaffinity"):
        return []
    cpus = sorted(os.sched_getaffinity(0))
    if affinity == "one" and len(cpus) > 1:
        cpus = cpus[-1:]
        os.sched_setaffinity(0, cpus)
    return cpus


def echo_component(router: InProcessRouter, name: str, serializers: list[str]) -> Component:
    comp = Component(
        transports={"type": "inprocess", "router": router, "serializers": serializers}, name=name
    )
    comp.register(f"bench.{name}.echo")(lambda *args: list(args))
    return comp


def driver_component(router: InProcessRouter, target: str) -> Component:
    """Calls `target` n times from its own handler; returns the latencies."""
    comp = Component(transports=router, name="driver")
    sessions = []
    comp.on_join(lambda session, _details: sessions.append(session))

    @comp.register("bench.drive")
    def drive(n: int) -> list[float]:
        session = sessions[-1]
        samples = []
        for _ in range(n):
            t0 = perf_counter()
            session.call(target, *PAYLOAD).get(timeout=60)
            samples.append(perf_counter() - t0)
        return samples

    return comp


def publish_router(unrelated: int) -> Any:
    """A publisher's link on a router where ``bench.topic`` has one subscriber and
    `unrelated` sessions each subscribe to a topic of their own."""
    router = InProcessRouter()
    peer = _Peer()
    subscriber = router.join("realm1", peer).result(10)
    subscriber.handle(Subscribe("bench.topic")).result(10)
    for index in range(unrelated):
        other = router.join("realm1", peer).result(10)
        other.handle(Subscribe(f"bench.unrelated.{index}")).result(10)
    return router.join("realm1", peer).result(10)


class Setup:
    """Every variant, started once; `chunk(name, n)` measures n round trips."""

    def __init__(self) -> None:
        self.router = InProcessRouter()
        self.shared = InProcessRouter(serialize=False)
        self.pykka_ref = Echo.start()
        comps = [
            echo_component(self.router, "msgpack", ["msgpack"]),
            echo_component(self.router, "json", ["json"]),
            echo_component(self.shared, "shared", ["msgpack"]),
            echo_component(self.router, "peer", ["msgpack"]),
            driver_component(self.router, "bench.peer.echo"),
        ]
        self.tree = start_tree(SupervisorSpec([c.child_spec() for c in comps]), name="bench")
        peer = _Peer()
        self.links = {
            "msgpack": self.router.join("realm1", peer, serializers=["msgpack"]).result(10),
            "json": self.router.join("realm1", peer, serializers=["json"]).result(10),
            "shared": self.shared.join("realm1", peer).result(10),
        }
        for unrelated in UNRELATED:
            self.links[f"publish {unrelated}"] = publish_router(unrelated)

    def close(self) -> None:
        for link in self.links.values():
            link.handle(Leave())
        self.tree.stop()
        self.pykka_ref.stop()

    def chunk(self, name: str, n: int) -> list[float]:
        if name == "pykka ask":
            ask = self.pykka_ref.ask
            samples = []
            for _ in range(n):
                t0 = perf_counter()
                ask(PAYLOAD)
                samples.append(perf_counter() - t0)
            return samples
        if name.startswith("publish "):
            handle = self.links[name].handle
            samples = []
            for _ in range(n):
                t0 = perf_counter()
                handle(Publish("bench.topic", list(PAYLOAD))).result(60)
                samples.append(perf_counter() - t0)
            return samples
        if name == "component to component":
            link = self.links["msgpack"]
            result = link.handle(Call("bench.drive", [n])).result(120)
            return list(result.args[0])
        kind = name.removeprefix("seam ")
        link = self.links[kind]
        handle = link.handle
        procedure = f"bench.{kind}.echo"
        samples = []
        for _ in range(n):
            t0 = perf_counter()
            handle(Call(procedure, list(PAYLOAD))).result(60)
            samples.append(perf_counter() - t0)
        return samples


VARIANTS = {
    "pykka ask": "baseline",
    "seam to component, msgpack": "msgpack",
    "seam to component, json": "json",
    "seam to component, by reference": "shared",
    "component to component": "component",
    **{
        f"publish, {n} unrelated subscription{'s' if n > 1 else ''}": f"publish {n}"
        for n in UNRELATED
    },
}


def run(args: argparse.Namespace) -> dict[str, Any]:
    log: Callable[[str], None] = (
        (lambda _text: None) if args.json else (lambda text: print(text, flush=True))
    )
    cpus = pin(args.affinity)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    started = perf_counter()
    setup = Setup()
    names = list(VARIANTS)
    chunk = max(args.calls // args.chunks, 1)
    samples: dict[str, list[float]] = {name: [] for name in names}
    try:
        for name in names:  # warm up every code path
            setup.chunk(_chunk_name(name), 200)
        log(f"measuring {args.calls} round trips per variant in {args.chunks} interleaved chunks")
        for rep in range(args.chunks):
            k = rep % len(names)
            for name in names[k:] + names[:k]:
                samples[name].extend(setup.chunk(_chunk_name(name), chunk))
    finally:
        setup.close()
    rows = []
    for name in names:
        # Calls are compared with a pykka ask; publishes with the fewest subscriptions.
        base = samples[_baseline(name)]
        base50, base99 = percentile(base, 50), percentile(base, 99)
        p50, p99 = percentile(samples[name], 50), percentile(samples[name], 99)
        rows.append(
            {
                "name": name,
                "p50_us": p50 * 1e6,
                "p99_us": p99 * 1e6,
                "ratio_p50": p50 / base50,
                "ratio_p99": p99 / base99,
                "mean_us": statistics.fmean(samples[name]) * 1e6,
            }
        )
    return {
        "config": {
            "hedgerow": hedgerow.__version__,
            "pykka": importlib.metadata.version("pykka"),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "pinned_to_cpus": cpus,
            "affinity": args.affinity,
            "loadavg_1min_at_start": load,
            "calls": args.calls,
            "chunks": args.chunks,
            "payload": repr(PAYLOAD),
        },
        "rows": rows,
        "target_ratio": TARGET,
        "publish_target_ratio": PUBLISH_TARGET,
        "elapsed_s": perf_counter() - started,
    }


def _chunk_name(name: str) -> str:
    kind = VARIANTS[name]
    if kind == "baseline":
        return "pykka ask"
    if kind == "component":
        return "component to component"
    if kind.startswith("publish "):
        return kind
    return f"seam {kind}"


def _baseline(name: str) -> str:
    if VARIANTS[name].startswith("publish "):
        return next(n for n, kind in VARIANTS.items() if kind == f"publish {UNRELATED[0]}")
    return "pykka ask"


def print_table(results: dict[str, Any]) -> None:
    cfg = results["config"]
    print()
    print(
        f"hedgerow {cfg['hedgerow']} vs pykka {cfg['pykka']}, Python {cfg['python']}, "
        f"{cfg['cpus']} CPUs, load average {cfg['loadavg_1min_at_start']:.2f} at start"
    )
    where = ",".join(map(str, cfg["pinned_to_cpus"])) or "?"
    print(f"all threads on CPU(s) {where} (--affinity {cfg['affinity']})")
    print(f"calls={cfg['calls']} chunks={cfg['chunks']} payload={cfg['payload']}")
    rows = results["rows"]
    calls = [row for row in rows if not VARIANTS[row["name"]].startswith("publish ")]
    publishes = [row for row in rows if VARIANTS[row["name"]].startswith("publish ")]
    _print_rows(calls, "x ask", results["target_ratio"])
    print(
        f"\n(target: a call at most {results['target_ratio']:g}x a pykka ask at p50; "
        f"total {results['elapsed_s']:.1f} s; targets are informational)"
    )
    print()
    _print_rows(publishes, "x 1 sub", results["publish_target_ratio"])
    print(
        f"\n(target: a publish with {UNRELATED[-1]} unrelated subscriptions at most "
        f"{results['publish_target_ratio']:g}x one with {UNRELATED[0]}, at p50)"
    )


def _print_rows(rows: list[dict[str, Any]], against: str, target: float) -> None:
    width = max(len(row["name"]) for row in rows)
    header = (
        f"{'variant':<{width}}  {'p50 us':>8}  {'p99 us':>8}  "
        f"{against + ' p50':>11}  {against + ' p99':>11}  met"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        baseline = row["name"] == _baseline(row["name"])
        met = "" if baseline else ("yes" if row["ratio_p50"] <= target else "NO")
        print(
            f"{row['name']:<{width}}  {row['p50_us']:>8.1f}  {row['p99_us']:>8.1f}  "
            f"{row['ratio_p50']:>11.2f}  {row['ratio_p99']:>11.2f}  {met}".rstrip()
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a couple of seconds")
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    parser.add_argument(
        "--affinity",
        choices=("one", "all"),
        default="one",
        help="run every thread on one CPU (default) or let the scheduler decide",
    )
    parser.add_argument("--calls", type=int, help="round trips per variant")
    parser.add_argument("--chunks", type=int, help="interleaved chunks")
    args = parser.parse_args(argv)
    args.calls = args.calls or (3000 if args.quick else 30000)
    args.chunks = args.chunks or (6 if args.quick else 28)
    results = run(args)
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()
    else:
        print_table(results)
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())
