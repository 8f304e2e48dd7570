"""Core benchmarks: hedgerow's supervised actors against bare pykka, in one process.

Figures (each with a bare-pykka baseline measured in the same process, and the
ratio hedgerow/pykka where one applies):

1. tell throughput: N tells to one actor, then one ask to flush (messages/s);
   plus the per-message cost of each side measured apart (sender, then actor,
   while the other one waits), which GIL hand-offs do not blur;
2. ask latency: sequential asks, p50 and p99 (microseconds);
3. restart latency: tell a crashing message, then ask; the ask waits behind the
   crash and is answered by the next incarnation (ms). Reference: a bare pykka
   stop + start + ask cycle;
4. memory per idle actor (1000 actors): tracemalloc and RSS (KiB per actor).

Baseline and hedgerow runs are interleaved and repeated; medians are reported.
Targets are informational: a missed target never makes the exit status non-zero.

    .venv/bin/python bench/bench_core.py            # well under a minute
    .venv/bin/python bench/bench_core.py --quick    # a few seconds
    .venv/bin/python bench/bench_core.py --json     # one JSON object on stdout
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import importlib.metadata
import json
import math
import os
import platform
import statistics
import sys
import threading
import tracemalloc
from dataclasses import asdict, dataclass
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any

import pykka

import hedgerow
from hedgerow import ChildSpec, SupervisorSpec, start_tree

if TYPE_CHECKING:
    from collections.abc import Callable

GET = "get"
CRASH = "crash"
TICK = "tick"
SECTIONS = ("tell", "ask", "restart", "memory")


class Crash(Exception):
    """Raised by a counter told CRASH."""


class _Counter:
    """The handler every variant runs: count tells, answer GET with the count.

    CRASH raises (restart benchmark); a `threading.Event` holds the actor until
    it is set (to measure the sender's side alone).
    """

    count = 0

    def on_receive(self, message: Any) -> Any:
        if message is TICK:
            self.count += 1
            return None
        if message == GET:
            return self.count
        if message == CRASH:
            raise Crash
        if isinstance(message, threading.Event):
            message.wait()
        return None


class PykkaCounter(_Counter, pykka.ThreadingActor):
    pass


class HedgerowCounter(_Counter, hedgerow.Actor):
    pass


# -- helpers ------------------------------------------------------------------


@dataclass
class Row:
    name: str
    value: float
    unit: str
    target: str = ""
    met: bool | None = None


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile, q in [0, 100]."""
    ordered = sorted(samples)
    index = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[index]


def ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


def rotated(names: list[str], rep: int) -> list[str]:
    """Interleave: each repetition starts with the next variant."""
    k = rep % len(names)
    return names[k:] + names[:k]


def join_new_threads(before: set[threading.Thread]) -> None:
    """Wait until every thread started since `before` has ended (an actor's thread
    ends shortly after its stop is acknowledged)."""
    current = threading.current_thread()
    for thread in threading.enumerate():
        if thread not in before and thread is not current:
            thread.join(timeout=10)


def single_tree(**child_fields: Any) -> hedgerow.Tree:
    spec = SupervisorSpec(
        children=[ChildSpec("w", HedgerowCounter, **child_fields)],
        max_restarts=10**9,
        period=1.0,
    )
    return start_tree(spec, name="bench")


class Variants:
    """One running counter per variant: bare pykka, supervised, unsupervised hedgerow."""

    def __init__(self) -> None:
        self._before = set(threading.enumerate())
        self.pykka_ref = PykkaCounter.start()
        self.tree = single_tree()
        self.plain_ref = HedgerowCounter.start()
        self.refs: dict[str, pykka.ActorRef[Any]] = {
            "pykka": self.pykka_ref,
            "hedgerow": self.tree.get_child("w"),
            "hedgerow_unsup": self.plain_ref,
        }

    def close(self) -> None:
        self.pykka_ref.stop()
        self.plain_ref.stop()
        self.tree.stop()
        join_new_threads(self._before)


# -- 1. tell throughput ---------------------------------------------------------


def tell_run(ref: pykka.ActorRef[Any], n: int) -> float:
    """N tells, then one ask that queues behind them: messages per second."""
    tell = ref.tell
    before = ref.ask(GET)
    t0 = perf_counter()
    for _ in range(n):
        tell(TICK)
    after = ref.ask(GET)
    elapsed = perf_counter() - t0
    if after - before != n:
        raise RuntimeError(f"{ref}: counted {after - before} of {n} tells")
    return n / elapsed


def tell_split_run(ref: pykka.ActorRef[Any], n: int) -> tuple[float, float]:
    """Seconds per message on each side, measured apart: the sender tells N while
    the actor is held by a gate; then the actor drains them while the sender waits
    on the flush ask. No two threads want the GIL at the same time."""
    gate = threading.Event()
    ref.tell(gate)
    tell = ref.tell
    t0 = perf_counter()
    for _ in range(n):
        tell(TICK)
    t1 = perf_counter()
    flush = ref.ask(GET, block=False)
    t2 = perf_counter()
    gate.set()
    flush.get(timeout=60)
    t3 = perf_counter()
    return (t1 - t0) / n, (t3 - t2) / n


def bench_tells(
    variants: Variants, n: int, reps: int
) -> tuple[dict[str, list[float]], dict[str, list[tuple[float, float]]]]:
    names = list(variants.refs)
    for name in names:  # warm up: code paths, allocator, thread scheduling
        tell_run(variants.refs[name], max(n // 10, 1000))
    runs: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(reps):
        for name in rotated(names, rep):
            runs[name].append(tell_run(variants.refs[name], n))
    split: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for rep in range(reps):
        for name in rotated(names, rep):
            split[name].append(tell_split_run(variants.refs[name], n))
    return runs, split


# -- 2. ask latency -------------------------------------------------------------


def ask_run(ref: pykka.ActorRef[Any], n: int, out: list[float]) -> None:
    ask = ref.ask
    append = out.append
    for _ in range(n):
        t0 = perf_counter()
        ask(GET)
        append(perf_counter() - t0)


def bench_asks(variants: Variants, n: int, rounds: int) -> dict[str, list[float]]:
    """N asks per variant, in `rounds` interleaved chunks."""
    names = list(variants.refs)
    per_round = max(n // rounds, 1)
    for name in names:
        ask_run(variants.refs[name], min(per_round, 500), [])
    samples: dict[str, list[float]] = {name: [] for name in names}
    for rnd in range(rounds):
        for name in rotated(names, rnd):
            ask_run(variants.refs[name], per_round, samples[name])
    return samples


# -- 3. restart latency ----------------------------------------------------------


def bench_restarts(n: int) -> list[float]:
    """Tell CRASH, then ask GET: the ask waits behind the crash and is answered by
    the next incarnation. Every restart is immediate (the default: no backoff)."""
    before = set(threading.enumerate())
    tree = single_tree()
    try:
        ref = tree.get_child("w")
        ref.ask(GET)
        samples = []
        for _ in range(n):
            t0 = perf_counter()
            ref.tell(CRASH)
            ref.ask(GET, timeout=10)
            samples.append(perf_counter() - t0)
        info = tree.which_children()[0]
        if info.restarts != n or info.incarnation != n + 1:
            raise RuntimeError(f"expected {n} restarts, the supervisor reports {info}")
    finally:
        tree.stop()
        join_new_threads(before)
    return samples


def bench_pykka_cycles(n: int) -> list[float]:
    """Reference: stop an actor (block=True), start a new one, ask it once."""
    before = set(threading.enumerate())
    ref = PykkaCounter.start()
    ref.ask(GET)
    samples = []
    try:
        for _ in range(n):
            t0 = perf_counter()
            ref.stop(block=True)
            ref = PykkaCounter.start()
            ref.ask(GET)
            samples.append(perf_counter() - t0)
    finally:
        ref.stop()
        join_new_threads(before)
    return samples


# -- 4. memory per idle actor ----------------------------------------------------

_PAGE = os.sysconf("SC_PAGE_SIZE")
try:
    _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
except (OSError, AttributeError):  # not glibc
    _malloc_trim = None


def rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * _PAGE


def settle() -> None:
    """Free what can be freed, so that one phase's garbage does not pad the next."""
    gc.collect()
    if _malloc_trim is not None:
        _malloc_trim(0)


def start_pykka_actors(n: int) -> tuple[Any, Callable[[], Any]]:
    refs = [PykkaCounter.start() for _ in range(n)]
    for ref in refs:
        ref.ask(GET)  # every thread is in its loop, idle

    def stop() -> None:
        for future in [ref.stop(block=False) for ref in refs]:
            future.get(timeout=30)

    return refs, stop


def start_hedgerow_tree(n: int) -> tuple[Any, Callable[[], Any]]:
    spec = SupervisorSpec(children=[ChildSpec(f"w{i}", HedgerowCounter) for i in range(n)])
    tree = start_tree(spec, name="bench")
    # One which_children call: each Tree.get_child call would build a pykka proxy
    # of the supervisor (about 0.5 ms), whose garbage would pad the RSS figure.
    refs = [info.ref for info in tree.which_children()]
    for ref in refs:
        ref.ask(GET)
    return (tree, refs), tree.stop


def measure(
    starter: Callable[[int], tuple[Any, Callable[[], Any]]], n: int, *, traced: bool
) -> float:
    """Bytes per idle actor: the RSS delta, or (traced) the tracemalloc delta."""
    before_threads = set(threading.enumerate())
    settle()
    if traced:
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
    else:
        base = rss_bytes()
    held, stop = starter(n)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] if traced else rss_bytes()
    stop()
    del held
    join_new_threads(before_threads)
    if traced:
        tracemalloc.stop()
    settle()
    return (used - base) / n


def bench_memory(n: int, passes: int) -> dict[str, Any]:
    """RSS first, without tracemalloc (its bookkeeping would count in RSS): one
    unreported warm-up pass of each kind (allocator arenas, glibc's stack cache),
    then `passes` interleaved passes, median reported. tracemalloc is exact and
    repeatable, so one pass of each."""
    measure(start_pykka_actors, n, traced=False)
    measure(start_hedgerow_tree, n, traced=False)
    rss: dict[str, list[float]] = {"pykka": [], "hedgerow": []}
    for _ in range(passes):
        rss["pykka"].append(measure(start_pykka_actors, n, traced=False))
        rss["hedgerow"].append(measure(start_hedgerow_tree, n, traced=False))
    return {
        "rss_pykka": statistics.median(rss["pykka"]) / 1024,
        "rss_hedgerow": statistics.median(rss["hedgerow"]) / 1024,
        "rss_passes": {k: [round(x / 1024, 2) for x in v] for k, v in rss.items()},
        "traced_pykka": measure(start_pykka_actors, n, traced=True) / 1024,
        "traced_hedgerow": measure(start_hedgerow_tree, n, traced=True) / 1024,
    }


# -- run and report -----------------------------------------------------------------


def latency_summary(samples: list[float], scale: float) -> dict[str, float]:
    return {
        "p50": percentile(samples, 50) * scale,
        "p99": percentile(samples, 99) * scale,
        "max": max(samples) * scale,
        "mean": statistics.fmean(samples) * scale,
    }


def pin(affinity: str) -> list[int]:
    """Restrict the process (and so every thread it starts) to one CPU, or not.

    With the sender and the actor on different CPUs, every hand-off waits for a
    cross-CPU wake-up, and whether a given pair of threads lands on one CPU or
    two is up to the scheduler, sticky for the life of the threads, and changes
    latencies threefold (about 22 us against 60-90 us per ask here). Pinned, all
    variants run in the same regime, and the ratios compare code paths.
    """
    if not hasattr(os, "sched_setaffinity"):
        return []
    cpus = sorted(os.sched_getaffinity(0))
    if affinity == "one" and len(cpus) > 1:
        cpus = cpus[-1:]
        os.sched_setaffinity(0, cpus)
    return cpus


def run(args: argparse.Namespace) -> dict[str, Any]:
    log: Callable[[str], None] = (
        (lambda _text: None) if args.json else (lambda text: print(text, flush=True))
    )
    t_start = perf_counter()
    cpus = pin(args.affinity)
    results: dict[str, Any] = {
        "config": {
            "sections": list(args.only),
            "tells": args.tells,
            "asks": args.asks,
            "restarts": args.restarts,
            "actors": args.actors,
            "reps": args.reps,
            "python": platform.python_version(),
            "pykka": importlib.metadata.version("pykka"),
            "hedgerow": hedgerow.__version__,
            "cpus": os.cpu_count(),
            "affinity": args.affinity,
            "pinned_to_cpus": cpus,
            "switch_interval_s": sys.getswitchinterval(),
            "loadavg_1min_at_start": os.getloadavg()[0],
        }
    }

    if "tell" in args.only or "ask" in args.only:
        variants = Variants()
        try:
            if "tell" in args.only:
                log(f"tell throughput: {args.tells} tells x {args.reps} reps per variant")
                runs, split = bench_tells(variants, args.tells, args.reps)
                results["tell_throughput_msgs_per_s"] = {
                    name: {"median": statistics.median(v), "best": max(v), "runs": v}
                    for name, v in runs.items()
                }
                results["tell_paired_ratio_median"] = {
                    name: statistics.median(
                        ratio(h, p) for h, p in zip(v, runs["pykka"], strict=True)
                    )
                    for name, v in runs.items()
                    if name != "pykka"
                }
                results["tell_cost_ns_per_msg"] = {
                    name: {
                        "sender": statistics.median(s for s, _ in v) * 1e9,
                        "actor": statistics.median(a for _, a in v) * 1e9,
                    }
                    for name, v in split.items()
                }
            if "ask" in args.only:
                log(f"ask latency: {args.asks} sequential asks per variant")
                asks = bench_asks(variants, args.asks, rounds=4 * args.reps)
                results["ask_latency_us"] = {
                    name: latency_summary(v, 1e6) for name, v in asks.items()
                }
        finally:
            variants.close()

    if "restart" in args.only:
        log(f"restart latency: {args.restarts} restarts, then as many pykka stop+start cycles")
        results["restart_latency_ms"] = {
            "hedgerow": latency_summary(bench_restarts(args.restarts), 1e3),
            "pykka_stop_start": latency_summary(bench_pykka_cycles(args.restarts), 1e3),
        }

    if "memory" in args.only:
        log(f"memory: {args.actors} idle actors per kind")
        results["memory_kib_per_actor"] = bench_memory(args.actors, passes=args.memory_passes)

    results["elapsed_s"] = perf_counter() - t_start
    results["rows"] = [asdict(row) for row in table_rows(results)]
    return results


def table_rows(r: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    if "tell_throughput_msgs_per_s" in r:
        tp = {k: v["median"] for k, v in r["tell_throughput_msgs_per_s"].items()}
        best = {k: v["best"] for k, v in r["tell_throughput_msgs_per_s"].items()}
        cost = r["tell_cost_ns_per_msg"]
        sup = ratio(tp["hedgerow"], tp["pykka"])
        rows += [
            Row("tell: pykka", tp["pykka"], "msg/s"),
            Row("tell: hedgerow supervised (ChildRef)", tp["hedgerow"], "msg/s"),
            Row("tell: hedgerow unsupervised", tp["hedgerow_unsup"], "msg/s"),
            Row("tell ratio supervised/pykka", sup, "x", ">= 0.85", sup >= 0.85),
            Row(
                "tell ratio supervised/pykka, paired",
                r["tell_paired_ratio_median"]["hedgerow"],
                "x",
            ),
            Row(
                "tell ratio supervised/pykka, best of reps",
                ratio(best["hedgerow"], best["pykka"]),
                "x",
            ),
            Row("tell ratio unsupervised/pykka", ratio(tp["hedgerow_unsup"], tp["pykka"]), "x"),
            Row("tell sender cost: pykka", cost["pykka"]["sender"], "ns/msg"),
            Row("tell sender cost: hedgerow supervised", cost["hedgerow"]["sender"], "ns/msg"),
            Row("tell actor cost: pykka", cost["pykka"]["actor"], "ns/msg"),
            Row("tell actor cost: hedgerow supervised", cost["hedgerow"]["actor"], "ns/msg"),
            Row(
                "tell actor cost: hedgerow unsupervised", cost["hedgerow_unsup"]["actor"], "ns/msg"
            ),
            Row(
                "tell cost ratio (sender+actor) sup/pykka",
                ratio(sum(cost["hedgerow"].values()), sum(cost["pykka"].values())),
                "x",
            ),
        ]
    if "ask_latency_us" in r:
        ask = r["ask_latency_us"]
        p50 = ratio(ask["hedgerow"]["p50"], ask["pykka"]["p50"])
        p99 = ratio(ask["hedgerow"]["p99"], ask["pykka"]["p99"])
        rows += [
            Row("ask p50: pykka", ask["pykka"]["p50"], "us"),
            Row("ask p50: hedgerow supervised", ask["hedgerow"]["p50"], "us"),
            Row("ask p50: hedgerow unsupervised", ask["hedgerow_unsup"]["p50"], "us"),
            Row("ask p50 ratio supervised/pykka", p50, "x", "<= 1.15", p50 <= 1.15),
            Row("ask p99: pykka", ask["pykka"]["p99"], "us"),
            Row("ask p99: hedgerow supervised", ask["hedgerow"]["p99"], "us"),
            Row("ask p99 ratio supervised/pykka", p99, "x", "<= 1.15", p99 <= 1.15),
        ]
    if "restart_latency_ms" in r:
        hr = r["restart_latency_ms"]["hedgerow"]
        pk = r["restart_latency_ms"]["pykka_stop_start"]
        rows += [
            Row("restart p50: hedgerow", hr["p50"], "ms", "<= 1", hr["p50"] <= 1),
            Row("restart p99: hedgerow", hr["p99"], "ms", "<= 10", hr["p99"] <= 10),
            Row("restart max: hedgerow", hr["max"], "ms"),
            Row("stop+start p50: pykka (reference)", pk["p50"], "ms"),
            Row("stop+start p99: pykka (reference)", pk["p99"], "ms"),
            Row("restart/stop+start p50 ratio", ratio(hr["p50"], pk["p50"]), "x"),
        ]
    if "memory_kib_per_actor" in r:
        mem = r["memory_kib_per_actor"]
        rows += [
            Row("memory traced: pykka", mem["traced_pykka"], "KiB/actor"),
            Row("memory traced: hedgerow supervised", mem["traced_hedgerow"], "KiB/actor"),
            Row("memory traced ratio", ratio(mem["traced_hedgerow"], mem["traced_pykka"]), "x"),
            Row("memory RSS: pykka", mem["rss_pykka"], "KiB/actor"),
            Row("memory RSS: hedgerow supervised", mem["rss_hedgerow"], "KiB/actor"),
            Row("memory RSS ratio", ratio(mem["rss_hedgerow"], mem["rss_pykka"]), "x"),
        ]
    return rows


def fmt(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}"


def print_table(results: dict[str, Any]) -> None:
    cfg = results["config"]
    print()
    print(
        f"hedgerow {cfg['hedgerow']} vs pykka {cfg['pykka']}, Python {cfg['python']}, "
        f"{cfg['cpus']} CPUs, load average {cfg['loadavg_1min_at_start']:.2f} at start"
    )
    where = ",".join(map(str, cfg["pinned_to_cpus"])) or "?"
    print(f"all threads on CPU(s) {where} (--affinity {cfg['affinity']})")
    print(
        f"tells={cfg['tells']} asks={cfg['asks']} restarts={cfg['restarts']} "
        f"actors={cfg['actors']} reps={cfg['reps']}"
    )
    rows = results["rows"]
    width = max(len(row["name"]) for row in rows)
    header = f"{'figure':<{width}}  {'value':>10}  {'unit':<9}  {'target':<8}  met"
    print(header)
    print("-" * len(header))
    for row in rows:
        met = "" if row["met"] is None else ("yes" if row["met"] else "NO")
        cells = f"{fmt(row['value']):>10}  {row['unit']:<9}  {row['target']:<8}  {met}"
        print(f"{row['name']:<{width}}  {cells}".rstrip())
    print(f"\n(total {results['elapsed_s']:.1f} s; targets are informational)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a few seconds")
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    parser.add_argument(
        "--only",
        type=lambda text: [s.strip() for s in text.split(",") if s.strip()],
        default=list(SECTIONS),
        help=f"comma-separated sections to run, of {','.join(SECTIONS)}",
    )
    parser.add_argument(
        "--affinity",
        choices=("one", "all"),
        default="one",
        help="run every thread on one CPU (default: stable ratios) or on all of them",
    )
    parser.add_argument("--tells", type=int, help="tells per throughput run")
    parser.add_argument("--asks", type=int, help="sequential asks per variant")
    parser.add_argument("--restarts", type=int, help="restarts (and pykka stop+start cycles)")
    parser.add_argument("--actors", type=int, help="idle actors per memory measurement")
    parser.add_argument("--reps", type=int, help="interleaved repetitions")
    parser.add_argument("--memory-passes", type=int, help="RSS passes per kind")
    args = parser.parse_args(argv)
    unknown = set(args.only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    defaults = (
        {
            "tells": 20_000,
            "asks": 2_000,
            "restarts": 100,
            "actors": 200,
            "reps": 3,
            "memory_passes": 1,
        }
        if args.quick
        else {
            "tells": 200_000,
            "asks": 20_000,
            "restarts": 1000,
            "actors": 1000,
            "reps": 7,
            "memory_passes": 3,
        }
    )
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    results = run(args)
    if args.json:
        print(json.dumps(results))
    else:
        print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
