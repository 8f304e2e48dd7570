"""Supervised event-loop actors: restart latency, memory per idle child, many actors.

Figures (baselines measured in the same process; ratios are event-loop / thread):

1. restart latency, crash to next message handled: the child records the time
   as it raises on CRASH and as its next incarnation handles NEXT (told right
   behind it); p50 and p99 of the difference (us). Also the round trip seen by
   the sender (tell CRASH, tell NEXT, ask SYNC from a plain thread). Every
   restart is immediate (no backoff, ``max_restarts=10**9``). Baseline: the
   same child as a thread (`hedgerow.Actor`); and the event-loop child under
   a supervisor on its loop (``runtime="loop"``: no thread hop);
2. memory per idle supervised child: tracemalloc delta over N children of a
   ``simple_one_for_one`` supervisor (each started by ``start_child`` and asked
   once), everything the tree keeps per child included (ref, inbox, record,
   name). Baselines: thread children, and unsupervised event-loop actors;
3. many actors (``--count``, default 10,000; ``--count 1000000`` for the
   issue's figure): a root over ``--fanout``-sized ``simple_one_for_one``
   supervisors; then ``--crash`` of them (10% by default) crashed at once, each
   told a numbered message behind its crash: all must come back and every
   message be handled (recovery time reported); then the tree's stop. Start
   rate (and the process's CPU time for the starts, which other processes'
   load does not inflate), recovery time, stop time, RSS per child, and the
   share of the stop spent in pykka's ActorRegistry. The bench subscribes to
   the tree's ``restarted`` events only (``EventStream.subscribe(kinds=...)``),
   which its recovery phase counts; logging is not configured. Run once per
   ``--supervisors`` runtime:
   ``thread`` (the supervisors are threads; children started by
   ``start_child`` from one thread per supervisor) and ``loop``
   (``SupervisorSpec(runtime="loop")``: the supervisors run on the children's
   loop, and the children are started by one coroutine per supervisor on that
   loop, ``await handle.start_child()``, so no start costs a thread hop).

Targets (informational; a missed target never makes the exit status non-zero):
restart p50 <= 0.1 ms; memory <= 3 KiB per idle supervised event-loop child;
1,000,000 children started in under 60 s.

    .venv/bin/python bench/bench_loop_tree.py                  # about 20 s
    .venv/bin/python bench/bench_loop_tree.py --quick          # a few seconds
    .venv/bin/python bench/bench_loop_tree.py --only many --count 1000000
    .venv/bin/python bench/bench_loop_tree.py --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import threading
import tracemalloc
from time import perf_counter, process_time
from typing import Any, Self

# Run as a script, this directory is on sys.path: share bench_core's helpers.
from bench_core import percentile, pin, ratio, rss_bytes, settle

import hedgerow as hr
from hedgerow.actors import _registry as registry_module
from hedgerow.actors._loop import hedgerow_loop

CRASH = "crash"
NEXT = "next"
SYNC = "sync"
SECTIONS = ("restart", "memory", "many")


class _Marks:
    """Records the time of a crash and of the next message handled."""

    def __init__(self, marks: list[float] | None = None) -> None:
        super().__init__()
        self.marks = marks

    def on_receive(self, message: Any) -> Any:
        if message is CRASH:
            if self.marks is not None:
                self.marks.append(perf_counter())
            raise RuntimeError("crash")
        if message is NEXT and self.marks is not None:
            self.marks.append(perf_counter())
        return message


class LoopMarks(_Marks, hr.AsyncioActor):
    pass


class ThreadMarks(_Marks, hr.Actor):
    pass


def bench_restarts(actor_class: type, n: int, runtime: str = "thread") -> dict[str, list[float]]:
    marks: list[float] = []
    template = hr.ChildSpec("w", actor_class, args=(marks,))
    tree = hr.start_tree(hr.SupervisorSpec([template], max_restarts=10**9, runtime=runtime))
    try:
        ref = tree.get_child("w")
        ref.ask(SYNC)
        round_trips = []
        for _ in range(n):
            t0 = perf_counter()
            ref.tell(CRASH)
            ref.tell(NEXT)
            ref.ask(SYNC, timeout=10)
            round_trips.append(perf_counter() - t0)
        info = tree.which_children()[0]
        if info.restarts != n:
            msg = f"expected {n} restarts, the supervisor reports {info}"
            raise RuntimeError(msg)
    finally:
        tree.stop()
    inside = [marks[i + 1] - marks[i] for i in range(0, len(marks), 2)]
    return {"crash_to_next": inside, "round_trip": round_trips}


# -- memory --------------------------------------------------------------------------


class Idle(hr.AsyncioActor):
    def on_receive(self, message: Any) -> Any:
        return message


class IdleThread(hr.Actor):
    def on_receive(self, message: Any) -> Any:
        return message


def per_child_bytes(actor_class: type, n: int) -> float:
    """tracemalloc delta per idle child of a simple_one_for_one supervisor."""
    spec = hr.SupervisorSpec([hr.ChildSpec("c", actor_class)], strategy="simple_one_for_one")
    tree = hr.start_tree(spec)
    try:
        for _ in range(3):  # warm: first-use allocations are not a child's
            tree.start_child().ask(1)
        settle()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        refs = [tree.start_child() for _ in range(n)]
        for ref in refs:
            ref.ask(1)
        settle()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
    finally:
        tree.stop()
    return (after - before) / n


def per_unsupervised_bytes(n: int) -> float:
    for _ in range(3):
        Idle.start().stop()
    settle()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    refs = [Idle.start() for _ in range(n)]
    for ref in refs:
        ref.ask(1)
    settle()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    for ref in refs:
        ref.stop()
    return (after - before) / n


# -- many actors ---------------------------------------------------------------------


class Counted(hr.AsyncioActor):
    """Counts the numbered messages it handles (into a shared counter)."""

    def __init__(self, counter: list[int]) -> None:
        super().__init__()
        self.counter = counter

    def on_receive(self, message: Any) -> Any:
        if message is CRASH:
            raise RuntimeError("crash")
        if message.__class__ is int:
            self.counter[0] += 1  # one loop thread: no lock needed
        return message


class _Registry:
    """Time spent unregistering actors from pykka's ActorRegistry (hedgerow's
    `unregister`, which every hedgerow actor's end calls, wrapped while the stop runs)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self._original: Any = None

    def __enter__(self) -> Self:
        original = registry_module.unregister
        self._original = original
        lock = threading.Lock()

        def timed(ref: Any) -> None:
            t0 = perf_counter()
            original(ref)
            spent = perf_counter() - t0
            with lock:
                self.seconds += spent
                self.calls += 1

        registry_module.unregister = timed
        return self

    def __exit__(self, *_exc: object) -> None:
        registry_module.unregister = self._original


def fill_from_threads(tree: hr.Tree, sizes: list[int], refs: list[list[Any]]) -> None:
    """Start the children from one thread per supervisor (`SupervisorHandle.start_child`)."""

    def fill(index: int, size: int) -> None:
        handle = tree.supervisor(f"s{index}")
        refs[index].extend(handle.start_child() for _ in range(size))

    threads = [threading.Thread(target=fill, args=(i, size)) for i, size in enumerate(sizes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def fill_from_loop(tree: hr.Tree, sizes: list[int], refs: list[list[Any]]) -> None:
    """Start the children from one coroutine per supervisor on their loop (hedgerow's)."""
    handles = [
        hr.AsyncioSupervisorHandle(tree.supervisor(f"s{i}").ref, timeout=600)
        for i in range(len(sizes))
    ]

    async def fill(index: int) -> None:
        handle = handles[index]
        group = refs[index]
        for _ in range(sizes[index]):
            group.append(await handle.start_child())

    async def fill_all() -> None:
        await asyncio.gather(*(fill(i) for i in range(len(sizes))))

    asyncio.run_coroutine_threadsafe(fill_all(), hedgerow_loop()).result()


def bench_many(
    count: int, fanout: int, crash: float, log: Any, supervisors: str = "thread"
) -> dict[str, Any]:
    groups = max(1, math.ceil(count / fanout))
    counter = [0]
    template = hr.ChildSpec("c", Counted, args=(counter,))
    nested = hr.SupervisorSpec(
        [template],
        strategy="simple_one_for_one",
        max_restarts=10**9,
        period=1,
        runtime=supervisors,
    )
    spec = hr.SupervisorSpec(
        [hr.ChildSpec(f"s{i}", nested) for i in range(groups)], runtime=supervisors
    )
    settle()
    rss0 = rss_bytes()
    events = hr.EventStream()
    restarted = [0]
    cond = threading.Condition()

    def on_event(event: hr.Event) -> None:
        if event.kind is hr.EventKind.RESTARTED:
            with cond:
                restarted[0] += 1
                cond.notify_all()

    # The recovery phase waits for restarts: the bench subscribes to those only,
    # as a user who watches restarts would. Starts and stops are still events a
    # subscriber may take (each is numbered), but none is built for nobody.
    events.subscribe(on_event, kinds=[hr.EventKind.RESTARTED])
    tree = hr.start_tree(spec, events=events)
    refs: list[list[Any]] = [[] for _ in range(groups)]
    sizes = [min(fanout, count - i * fanout) for i in range(groups)]
    t0, cpu0 = perf_counter(), process_time()
    if supervisors == "loop":
        fill_from_loop(tree, sizes, refs)
    else:
        fill_from_threads(tree, sizes, refs)
    started, start_cpu = perf_counter() - t0, process_time() - cpu0
    log(
        f"  {supervisors} supervisors: started {count:,} in {started:.1f} s"
        f" ({start_cpu:.1f} s of CPU)"
    )
    flat = [ref for group in refs for ref in group]
    flat[-1].ask(SYNC, timeout=60)
    settle()
    rss1 = rss_bytes()
    crashed = flat[:: max(1, round(1 / crash))] if crash > 0 else []
    t1 = perf_counter()
    for number, ref in enumerate(crashed):
        ref.tell(CRASH)
        ref.tell(number)
    with cond:
        cond.wait_for(lambda: restarted[0] >= len(crashed), timeout=600)
    for ref in crashed[-100:]:
        ref.ask(SYNC, timeout=60)  # behind its numbered message
    deadline = perf_counter() + 600
    while counter[0] < len(crashed) and perf_counter() < deadline:
        crashed[counter[0] % len(crashed)].ask(SYNC, timeout=60)
    recovered = perf_counter() - t1
    lost = len(crashed) - counter[0]
    log(f"  {len(crashed):,} crashed and recovered in {recovered:.2f} s")
    t2 = perf_counter()
    with _Registry() as registry:
        tree.stop(timeout=600)
    stopped = perf_counter() - t2
    return {
        "count": count,
        "supervisor_runtime": supervisors,
        "supervisors": groups,
        "start_s": started,
        "start_rate": count / started,
        "start_cpu_s": start_cpu,
        "rss_per_child": (rss1 - rss0) / count,
        "crashed": len(crashed),
        "restarted": restarted[0],
        "lost": lost,
        "recovery_s": recovered,
        "stop_s": stopped,
        "registry_s": registry.seconds,
        "registry_calls": registry.calls,
    }


# -- the run ---------------------------------------------------------------------------


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "p50_us": percentile(samples, 50) * 1e6,
        "p99_us": percentile(samples, 99) * 1e6,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    log = (lambda _t: None) if args.json else (lambda t: print(t, flush=True))
    cpus = pin(args.affinity)
    results: dict[str, Any] = {
        "python": platform.python_version(),
        "cpus": cpus,
        "load": os.getloadavg()[0],
    }
    log(f"python {results['python']}, cpus {cpus}, load {results['load']:.2f}")
    if "restart" in args.only:
        loop = bench_restarts(LoopMarks, args.restarts)
        thread = bench_restarts(ThreadMarks, args.restarts)
        loopsup = bench_restarts(LoopMarks, args.restarts, runtime="loop")
        results["restart"] = {
            "loop": {k: summary(v) for k, v in loop.items()},
            "thread": {k: summary(v) for k, v in thread.items()},
            "loopsup": {k: summary(v) for k, v in loopsup.items()},
        }
        for key in ("crash_to_next", "round_trip"):
            lp, tp, sp = summary(loop[key]), summary(thread[key]), summary(loopsup[key])
            log(
                f"restart {key:>13}: loop p50 {lp['p50_us']:7.1f} us p99 {lp['p99_us']:7.1f} us"
                f" | thread p50 {tp['p50_us']:7.1f} us p99 {tp['p99_us']:7.1f} us"
                f" | ratio p50 {ratio(lp['p50_us'], tp['p50_us']):.2f}"
                f" | loop child, loop supervisor p50 {sp['p50_us']:7.1f} us"
                f" p99 {sp['p99_us']:7.1f} us"
            )
        log("  target: crash_to_next p50 <= 100 us (event-loop child)")
    if "memory" in args.only:
        loop_b = per_child_bytes(Idle, args.memory)
        thread_b = per_child_bytes(IdleThread, max(50, args.memory // 10))
        bare_b = per_unsupervised_bytes(args.memory)
        results["memory"] = {"loop_child": loop_b, "thread_child": thread_b, "loop_bare": bare_b}
        log(
            f"memory per idle actor: supervised event-loop child {loop_b / 1024:.2f} KiB"
            f" | supervised thread child {thread_b / 1024:.2f} KiB"
            f" (ratio {ratio(loop_b, thread_b):.2f})"
            f" | unsupervised event-loop actor {bare_b / 1024:.2f} KiB"
        )
        log("  target: <= 3 KiB per idle supervised event-loop child")
    for runtime in args.supervisors if "many" in args.only else ():
        settle()
        many = bench_many(args.count, args.fanout, args.crash, log, runtime)
        results.setdefault("many", {})[runtime] = many
        log(
            f"many: {many['count']:,} children under {many['supervisors']} {runtime}"
            " supervisors:"
            f" start {many['start_s']:.1f} s ({many['start_rate']:,.0f}/s,"
            f" {many['start_cpu_s']:.1f} s of CPU),"
            f" RSS {many['rss_per_child'] / 1024:.2f} KiB/child;"
            f" {many['crashed']:,} crashed at once: {many['restarted']:,} restarted,"
            f" {many['lost']} messages lost, recovered in {many['recovery_s']:.2f} s;"
            f" stop {many['stop_s']:.1f} s, of which pykka's registry"
            f" {many['registry_s']:.1f} s ({many['registry_calls']:,} unregisters)"
        )
    if "many" in args.only:
        log("  target: 1,000,000 started in under 60 s (run with --count 1000000)")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a few seconds")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--only", default="", help=f"comma-separated: {','.join(SECTIONS)}")
    parser.add_argument("--restarts", type=int, default=2000)
    parser.add_argument("--memory", type=int, default=2000, help="children measured")
    parser.add_argument("--count", type=int, default=10_000, help="children of the many run")
    parser.add_argument("--fanout", type=int, default=10_000, help="children per supervisor")
    parser.add_argument("--crash", type=float, default=0.1, help="share crashed at once")
    parser.add_argument(
        "--supervisors",
        default="thread,loop",
        help="comma-separated runtimes of the many run's supervisors: thread, loop",
    )
    parser.add_argument("--affinity", choices=["one", "all"], default="one")
    args = parser.parse_args()
    args.only = [s for s in args.only.split(",") if s] or list(SECTIONS)
    args.supervisors = [s for s in args.supervisors.split(",") if s]
    if set(args.supervisors) - {"thread", "loop"}:
        parser.error(f"--supervisors: expected thread and/or loop, not {args.supervisors}")
    unknown = sorted(set(args.only) - set(SECTIONS))
    if unknown:
        parser.error(f"--only: unknown section(s) {', '.join(unknown)}; known: {SECTIONS}")
    if args.quick:
        args.restarts, args.memory, args.count = 200, 300, 2000
    results = run(args)
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
