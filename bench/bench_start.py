"""Dynamic start rate: `start_child` under a `simple_one_for_one` supervisor, against
bare pykka `Actor.start()` in the same process.

Figures, for each size (default 1,000 and 10,000 children):

1. start rate (children/s): the caller starts N children one by one and waits for
   each start to be acknowledged (`Tree.start_child` returns the child's ref once
   its `on_start` has run; pykka's `start()` returns once the actor is
   registered). The ratio is hedgerow's cost per start over pykka's
   (pykka rate / hedgerow rate): 1.0 is as fast as bare pykka;
2. stop time: the whole tree's `stop()` against stopping the N pykka actors
   (tell every stop, then wait for every thread to end).
3. CPU per start (us): the process's CPU time over the starts (all its
   threads), divided by N. Unlike the rate, it is not inflated by other
   processes' load on a shared machine (the rate is wall-clock time).

Variants: `thread` (`hedgerow.Actor` children under a thread supervisor),
`loop` (`hedgerow.AsyncioActor` children on hedgerow's loop thread, under a
thread supervisor), `loopsup` (the same children under a supervisor on their
loop, ``SupervisorSpec(runtime="loop")``, called from a plain thread) and
`loopsup-async` (the same, called from a coroutine on that loop: the tree is
opened with ``hr.open_tree(spec, use_running_loop=True)`` and each start is
``await tree.start_child()``, so a start costs no thread hop at all).
Targets are informational: a missed target never makes the exit status non-zero.

    .venv/bin/python bench/bench_start.py            # about a minute
    .venv/bin/python bench/bench_start.py --quick    # a few seconds
    .venv/bin/python bench/bench_start.py --json     # one JSON object on stdout
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
from time import perf_counter, process_time
from typing import Any

import pykka

# Run as a script, this directory is on sys.path: share bench_core's helpers.
from bench_core import pin, ratio, rotated, settle

import hedgerow as hr

THREAD_TARGET = 1.5
"""Thread children: at most 1.5x pykka's cost per start (issue 13)."""
LOOP_TARGET = 50_000.0
"""Event-loop children: at least 50,000 starts/s (issue 13)."""


class PykkaIdle(pykka.ThreadingActor):
    """A bare pykka actor that does nothing."""


class ThreadIdle(hr.Actor):
    """A supervised thread child that does nothing."""


class LoopIdle(hr.AsyncioActor):
    """A supervised event-loop child that does nothing."""


def _loop_supported() -> bool:
    """Whether a ChildSpec accepts an event-loop actor (the supervisor runs it)."""
    try:
        hr.ChildSpec("probe", LoopIdle)
    except (TypeError, ValueError, hr.ConfigError):
        return False
    return True


def _loop_supervisor_supported() -> bool:
    """Whether a supervisor can run on the loop (``SupervisorSpec(runtime="loop")``)."""
    try:
        hr.SupervisorSpec(runtime="loop")
    except (TypeError, ValueError, hr.ConfigError):
        return False
    return True


VARIANTS: dict[str, tuple[type[Any], str, bool]] = {
    # name: (child class, the supervisor's runtime, started from the loop)
    "thread": (ThreadIdle, "thread", False),
    "loop": (LoopIdle, "thread", False),
    "loopsup": (LoopIdle, "loop", False),
    "loopsup-async": (LoopIdle, "loop", True),
}


def measure_pykka(n: int) -> dict[str, float]:
    began, cpu = perf_counter(), process_time()
    refs = [PykkaIdle.start() for _ in range(n)]
    started, cpu = perf_counter() - began, process_time() - cpu
    began = perf_counter()
    for ref in refs:
        ref.stop(block=False)
    for ref in refs:
        ref.actor_stopped.wait()
    stopped = perf_counter() - began
    return {"rate": n / started, "start_s": started, "cpu_us": cpu / n * 1e6, "stop_s": stopped}


def _spec(actor_class: type[Any], runtime: str) -> hr.SupervisorSpec:
    options = {} if runtime == "thread" else {"runtime": runtime}
    return hr.SupervisorSpec(
        [hr.ChildSpec("child", actor_class, restart="temporary")],
        strategy="simple_one_for_one",
        **options,
    )


def measure_tree(n: int, actor_class: type[Any], runtime: str = "thread") -> dict[str, float]:
    tree = hr.start_tree(_spec(actor_class, runtime), name="bench")
    try:
        began, cpu = perf_counter(), process_time()
        for _ in range(n):
            tree.start_child()
        started, cpu = perf_counter() - began, process_time() - cpu
    finally:
        began = perf_counter()
        tree.stop()
        stopped = perf_counter() - began
    return {"rate": n / started, "start_s": started, "cpu_us": cpu / n * 1e6, "stop_s": stopped}


def measure_tree_from_loop(n: int, actor_class: type[Any], runtime: str) -> dict[str, float]:
    """`measure_tree`, the starts awaited on the loop the children and supervisor run on."""

    async def main() -> dict[str, float]:
        tree = await hr.open_tree(_spec(actor_class, runtime), name="bench", use_running_loop=True)
        try:
            began, cpu = perf_counter(), process_time()
            for _ in range(n):
                await tree.start_child()
            started, cpu = perf_counter() - began, process_time() - cpu
        finally:
            began = perf_counter()
            await tree.stop()
            stopped = perf_counter() - began
        return {"rate": n / started, "start_s": started, "cpu_us": cpu / n * 1e6, "stop_s": stopped}

    return asyncio.run(main())


def measure(name: str, n: int) -> dict[str, float]:
    if name == "pykka":
        return measure_pykka(n)
    actor_class, runtime, from_loop = VARIANTS[name]
    if from_loop:
        return measure_tree_from_loop(n, actor_class, runtime)
    return measure_tree(n, actor_class, runtime)


def run(args: argparse.Namespace) -> dict[str, Any]:
    cpus = pin(args.affinity)
    runtimes = ["thread"]
    if _loop_supported():
        runtimes.append("loop")
    if _loop_supervisor_supported():
        runtimes += ["loopsup", "loopsup-async"]
    results: dict[str, Any] = {
        "config": {
            "sizes": args.sizes,
            "reps": args.reps,
            "cpus": cpus,
            "affinity": args.affinity,
            "loadavg_1min_at_start": os.getloadavg()[0],
            "python": sys.version.split()[0],
            "runtimes": runtimes,
        },
        "sizes": {},
    }
    for n in args.sizes:
        names = ["pykka", *runtimes]
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
        for rep in range(args.reps):
            for name in rotated(names, rep):
                settle()
                figures = measure(name, n)
                runs[name].append(figures)
        medians = {
            name: {key: statistics.median(r[key] for r in rows) for key in rows[0]}
            for name, rows in runs.items()
        }
        for name in runtimes:
            medians[name]["cost_vs_pykka"] = ratio(medians["pykka"]["rate"], medians[name]["rate"])
        results["sizes"][str(n)] = {"medians": medians, "runs": runs}
    return results


def print_table(results: dict[str, Any]) -> None:
    cfg = results["config"]
    print(
        f"python {cfg['python']}, CPU(s) {cfg['cpus']} (--affinity {cfg['affinity']}), "
        f"load average {cfg['loadavg_1min_at_start']:.2f} at start, "
        f"median of {cfg['reps']} interleaved reps; runtimes: {', '.join(cfg['runtimes'])}"
    )
    if "loop" not in cfg["runtimes"]:
        print("(event-loop children: the supervisor does not accept them in this version)")
    header = (
        f"{'children':>9} {'variant':>13} {'starts/s':>10} {'cost/pykka':>11}"
        f" {'CPU us':>7} {'stop s':>8}"
    )
    print(f"{header}  target")
    for n, size in results["sizes"].items():
        for name, m in size["medians"].items():
            cost = m.get("cost_vs_pykka")
            if name == "thread":
                target = f"cost <= {THREAD_TARGET}: {'met' if cost <= THREAD_TARGET else 'missed'}"
            elif name != "pykka":
                met = m["rate"] >= LOOP_TARGET
                target = f">= {LOOP_TARGET:,.0f}/s: {'met' if met else 'missed'}"
            else:
                target = ""
            shown = "" if cost is None else f"{cost:.2f}x"
            print(
                f"{n:>9} {name:>13} {m['rate']:>10,.0f} {shown:>11} {m['cpu_us']:>7.1f}"
                f" {m['stop_s']:>8.2f}  {target}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a few seconds")
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(s) for s in text.split(",") if s.strip()],
        help="comma-separated numbers of children (default 1000,10000)",
    )
    parser.add_argument("--reps", type=int, help="interleaved repetitions (default 3)")
    parser.add_argument(
        "--affinity",
        choices=("one", "all"),
        default="one",
        help="run every thread on one CPU (default: stable ratios) or on all of them",
    )
    args = parser.parse_args(argv)
    if args.sizes is None:
        args.sizes = [200, 1000] if args.quick else [1000, 10_000]
    if args.reps is None:
        args.reps = 1 if args.quick else 3
    results = run(args)
    if args.json:
        print(json.dumps(results))
    else:
        print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
