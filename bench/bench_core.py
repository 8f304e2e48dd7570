"""Core benchmarks: hedgerow's supervised actors against bare pykka, in one process.

Figures (each with a bare-pykka baseline measured in the same process, and the
ratio hedgerow/pykka where one applies):

1. tell throughput: N tells to one actor, then one ask to flush (messages/s);
2. ask latency: sequential asks, p50 and p99 (microseconds);
3. restart latency: tell a crashing message, then ask; the ask is answered by
   the next incarnation (ms). Reference: a bare pykka stop + start + ask cycle;
4. memory per idle actor, 1000 actors: tracemalloc and RSS (KiB per actor).

Baseline and hedgerow runs are interleaved and repeated; medians are reported.
Targets are informational: a missed target never makes the exit status non-zero.

    .venv/bin/python bench/bench_core.py            # about a minute or less
    .venv/bin/python bench/bench_core.py --quick    # a few seconds
    .venv/bin/python bench/bench_core.py --json     # one JSON object on stdout
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import threading
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any

import pykka

import hedgerow
from hedgerow import ChildSpec, SupervisorSpec, start_tree

GET = "get"
CRASH = "crash"
TICK = "tick"


class Crash(Exception):  # noqa: N818 - the benchmark's deliberate failure
    """Raised by a counter told CRASH."""


class _Counter:
    """The handler every variant runs: count tells, answer GET with the count."""

    count = 0

    def on_receive(self, message: Any) -> Any:
        if message == GET:
            return self.count
        if message == CRASH:
            raise Crash
        self.count += 1
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
    index = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


def join_new_threads(before: set[threading.Thread]) -> None:
    """Wait for every thread started since `before` to end (actor threads exit
    shortly after their stop is acknowledged)."""
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
        self.child_ref = self.tree.get_child("w")
        self.plain_ref = HedgerowCounter.start()
        self.refs: dict[str, pykka.ActorRef[Any]] = {
            "pykka": self.pykka_ref,
            "hedgerow": self.child_ref,
            "hedgerow_unsup": self.plain_ref,
        }

    def close(self) -> None:
        self.pykka_ref.stop()
        self.plain_ref.stop()
        self.tree.stop()
        join_new_threads(self._before)


# -- 1. tell throughput ---------------------------------------------------------


def tell_run(ref: pykka.ActorRef[Any], n: int) -> float:
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


def bench_tells(variants: Variants, n: int, reps: int) -> dict[str, list[float]]:
    names = list(variants.refs)
    for name in names:  # warm up: thread scheduling, code paths, allocator
        tell_run(variants.refs[name], max(n // 10, 1000))
    runs: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(reps):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order:
            runs[name].append(tell_run(variants.refs[name], n))
    return runs


# -- 2. ask latency -------------------------------------------------------------


def ask_run(ref: pykka.ActorRef[Any], n: int, out: list[float]) -> None:
    ask = ref.ask
    append = out.append
    for _ in range(n):
        t0 = perf_counter()
        ask(GET)
        append(perf_counter() - t0)


def bench_asks(variants: Variants, n: int, rounds: int) -> dict[str, list[float]]:
    names = list(variants.refs)
    per_round = max(n // rounds, 1)
    for name in names:
        ask_run(variants.refs[name], min(per_round, 500), [])
    samples: dict[str, list[float]] = {name: [] for name in names}
    for rnd in range(rounds):
        order = names[rnd % len(names) :] + names[: rnd % len(names)]
        for name in order:
            ask_run(variants.refs[name], per_round, samples[name])
    return samples


# -- 3. restart latency ----------------------------------------------------------


def bench_restarts(n: int) -> list[float]:
    """Tell CRASH, then ask GET: the ask waits behind the crash and is answered by
    the next incarnation. Every restart is immediate: initial_retry_delay=0 makes
    every backoff delay 0 (the first one after a reset is 0 anyway)."""
    before = set(threading.enumerate())
    tree = single_tree(initial_retry_delay=0.0)
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
            raise RuntimeError(f"expected {n} restarts, supervisor reports {info}")
    finally:
        tree.stop()
        join_new_threads(before)
    return samples


def bench_pykka_cycles(n: int) -> list[float]:
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


def start_pykka_actors(n: int) -> Any:
    refs = [PykkaCounter.start() for _ in range(n)]
    for ref in refs:
        ref.ask(GET)

    def stop() -> None:
        for future in [ref.stop(block=False) for ref in refs]:
            future.get(timeout=30)

    return refs, stop


def start_hedgerow_tree(n: int) -> Any:
    spec = SupervisorSpec(children=[ChildSpec(f"w{i}", HedgerowCounter) for i in range(n)])
    tree = start_tree(spec, name="bench")
    refs = [tree.get_child(f"w{i}") for i in range(n)]
    for ref in refs:
        ref.ask(GET)
    return (tree, refs), tree.stop


def measure(starter: Any, n: int, *, traced: bool) -> float:
    """Bytes per actor: RSS delta, or (traced) the tracemalloc delta."""
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


def bench_memory(n: int) -> dict[str, float]:
    out: dict[str, float] = {}
    # RSS first, without tracemalloc (its own bookkeeping would count in RSS).
    # Each kind runs twice, interleaved; the first pass warms the allocator and
    # glibc's stack cache for both, and the second pass is reported.
    for _ in range(2):
        out["rss_pykka"] = measure(start_pykka_actors, n, traced=False)
        out["rss_hedgerow"] = measure(start_hedgerow_tree, n, traced=False)
    out["traced_pykka"] = measure(start_pykka_actors, n, traced=True)
    out["traced_hedgerow"] = measure(start_hedgerow_tree, n, traced=True)
    return out


# -- report -----------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    log = (lambda *_: None) if args.json else (lambda text: print(text, flush=True))
    t_start = perf_counter()
    results: dict[str, Any] = {
        "config": {
            "tells": args.tells,
            "asks": args.asks,
            "restarts": args.restarts,
            "actors": args.actors,
            "reps": args.reps,
            "python": platform.python_version(),
            "pykka": importlib.metadata.version("pykka"),
            "hedgerow": hedgerow.__version__,
            "cpus": os.cpu_count(),
            "switch_interval": sys.getswitchinterval(),
            "loadavg_1min_at_start": os.getloadavg()[0],
        }
    }

    log(f"[1/4] tell throughput: {args.tells} tells x {args.reps} reps per variant")
    variants = Variants()
    try:
        tells = bench_tells(variants, args.tells, args.reps)
        log(f"[2/4] ask latency: {args.asks} sequential asks per variant")
        asks = bench_asks(variants, args.asks, rounds=4 * args.reps)
    finally:
        variants.close()
    results["tell_throughput_msgs_per_s"] = {
        name: {"median": statistics.median(v), "runs": v} for name, v in tells.items()
    }
    results["tell_paired_ratio_median"] = {
        name: statistics.median(h / p for h, p in zip(v, tells["pykka"], strict=True))
        for name, v in tells.items()
        if name != "pykka"
    }
    results["ask_latency_us"] = {
        name: {
            "p50": percentile(v, 50) * 1e6,
            "p99": percentile(v, 99) * 1e6,
            "mean": statistics.fmean(v) * 1e6,
        }
        for name, v in asks.items()
    }

    log(f"[3/4] restart latency: {args.restarts} restarts, then pykka stop+start cycles")
    restarts = bench_restarts(args.restarts)
    cycles = bench_pykka_cycles(args.restarts)
    results["restart_latency_ms"] = {
        "hedgerow": {
            "p50": percentile(restarts, 50) * 1e3,
            "p99": percentile(restarts, 99) * 1e3,
            "max": max(restarts) * 1e3,
        },
        "pykka_stop_start": {
            "p50": percentile(cycles, 50) * 1e3,
            "p99": percentile(cycles, 99) * 1e3,
            "max": max(cycles) * 1e3,
        },
    }

    log(f"[4/4] memory: {args.actors} idle actors per kind")
    memory = bench_memory(args.actors)
    results["memory_kib_per_actor"] = {key: value / 1024 for key, value in memory.items()}
    results["elapsed_s"] = perf_counter() - t_start
    results["rows"] = [row.__dict__ for row in table_rows(results)]
    return results


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def table_rows(r: dict[str, Any]) -> list[Row]:
    tp = r["tell_throughput_msgs_per_s"]
    tp_p, tp_h, tp_u = (tp[k]["median"] for k in ("pykka", "hedgerow", "hedgerow_unsup"))
    ask = r["ask_latency_us"]
    rs = r["restart_latency_ms"]
    mem = r["memory_kib_per_actor"]
    tell_ratio = _ratio(tp_h, tp_p)
    p50_ratio = _ratio(ask["hedgerow"]["p50"], ask["pykka"]["p50"])
    p99_ratio = _ratio(ask["hedgerow"]["p99"], ask["pykka"]["p99"])
    return [
        Row("tell: pykka", tp_p, "msg/s"),
        Row("tell: hedgerow supervised (ChildRef)", tp_h, "msg/s"),
        Row("tell: hedgerow unsupervised", tp_u, "msg/s"),
        Row("tell ratio supervised/pykka", tell_ratio, "x", ">= 0.85", tell_ratio >= 0.85),
        Row("tell ratio unsupervised/pykka", _ratio(tp_u, tp_p), "x"),
        Row("ask p50: pykka", ask["pykka"]["p50"], "us"),
        Row("ask p50: hedgerow supervised", ask["hedgerow"]["p50"], "us"),
        Row("ask p50: hedgerow unsupervised", ask["hedgerow_unsup"]["p50"], "us"),
        Row("ask p50 ratio supervised/pykka", p50_ratio, "x", "<= 1.15", p50_ratio <= 1.15),
        Row("ask p99: pykka", ask["pykka"]["p99"], "us"),
        Row("ask p99: hedgerow supervised", ask["hedgerow"]["p99"], "us"),
        Row("ask p99 ratio supervised/pykka", p99_ratio, "x", "<= 1.15", p99_ratio <= 1.15),
        Row("restart p50: hedgerow", rs["hedgerow"]["p50"], "ms", "<= 1", rs["hedgerow"]["p50"] <= 1),
        Row("restart p99: hedgerow", rs["hedgerow"]["p99"], "ms", "<= 10", rs["hedgerow"]["p99"] <= 10),
        Row("restart max: hedgerow", rs["hedgerow"]["max"], "ms"),
        Row("stop+start p50: pykka (reference)", rs["pykka_stop_start"]["p50"], "ms"),
        Row("stop+start p99: pykka (reference)", rs["pykka_stop_start"]["p99"], "ms"),
        Row("restart p50 ratio hedgerow/pykka cycle", _ratio(rs["hedgerow"]["p50"], rs["pykka_stop_start"]["p50"]), "x"),
        Row("memory traced: pykka", mem["traced_pykka"], "KiB/actor"),
        Row("memory traced: hedgerow supervised", mem["traced_hedgerow"], "KiB/actor"),
        Row("memory traced ratio", _ratio(mem["traced_hedgerow"], mem["traced_pykka"]), "x"),
        Row("memory RSS: pykka", mem["rss_pykka"], "KiB/actor"),
        Row("memory RSS: hedgerow supervised", mem["rss_hedgerow"], "KiB/actor"),
        Row("memory RSS ratio", _ratio(mem["rss_hedgerow"], mem["rss_pykka"]), "x"),
    ]


def print_table(results: dict[str, Any]) -> None:
    cfg = results["config"]
    print()
    print(
        f"hedgerow {cfg['hedgerow']} vs pykka {cfg['pykka']}, Python {cfg['python']}, "
        f"{cfg['cpus']} CPUs; tells={cfg['tells']} asks={cfg['asks']} "
        f"restarts={cfg['restarts']} actors={cfg['actors']} reps={cfg['reps']}; "
        f"load average at start {cfg['loadavg_1min_at_start']:.2f}"
    )
    rows = results["rows"]
    width = max(len(row["name"]) for row in rows)
    print(f"{'figure':<{width}}  {'value':>12}  {'unit':<9}  {'target':<8}  met")
    print("-" * (width + 42))
    for row in rows:
        value = row["value"]
        text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}" if value < 10 else f"{value:.1f}"
        met = "" if row["met"] is None else ("yes" if row["met"] else "NO")
        print(f"{row['name']:<{width}}  {text:>12}  {row['unit']:<9}  {row['target']:<8}  {met}")
    print(f"\n(total {results['elapsed_s']:.1f} s; targets are informational)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a few seconds")
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    parser.add_argument("--tells", type=int, help="tells per throughput run")
    parser.add_argument("--asks", type=int, help="sequential asks per variant")
    parser.add_argument("--restarts", type=int, help="restarts (and pykka cycles)")
    parser.add_argument("--actors", type=int, help="idle actors for the memory figure")
    parser.add_argument("--reps", type=int, help="repetitions (interleaved)")
    args = parser.parse_args(argv)
    defaults = (
        {"tells": 20_000, "asks": 2_000, "restarts": 100, "actors": 200, "reps": 3}
        if args.quick
        else {"tells": 200_000, "asks": 20_000, "restarts": 1000, "actors": 1000, "reps": 5}
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
