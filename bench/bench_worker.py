"""Worker restart benchmark: a worker process SIGKILLed until it is ready again.

A tree supervises one `hedgerow.node.Worker` (hosting one idle actor). Each
run SIGKILLs the worker's pid and times the wait until the tree's event
stream says "restarted" for it, which it says once the new process has
written "ready" (its tree hosted and started). Every restart is immediate
(the default: no backoff; unbounded intensity).

Reference, measured in the same run and interleaved with the kills: a bare
``subprocess.run([sys.executable, "-c", "pass"])``; also, for information,
``python -c "import hedgerow"`` (what a cold worker pays before it reads its
config).

Variants: ``cold`` (the default ``Worker()``: no spare; on Linux each restart
is forked by the fork server, a zygote already past its imports), ``spawn``
(``Worker(start_method="spawn")``: each restart launches a new interpreter,
which imports hedgerow) and ``standby`` (``Worker(standby=True)``: a spare
process, already past its imports, takes over). Each kill comes `--settle`
seconds after the previous recovery, so a standby's spare has finished
importing, as it has for a crash that is not immediately followed by another.
Targets are informational: a missed target never makes the exit status non-zero.

The figures depend on whether the interpreter may cache bytecode: with
``PYTHONDONTWRITEBYTECODE=1`` and no ``__pycache__`` next to hedgerow's
sources, every spawned worker compiles hedgerow again (the zygote does once).
The bench prints whether that is so.

    .venv/bin/python bench/bench_worker.py            # about 2 minutes
    .venv/bin/python bench/bench_worker.py --quick    # about 30 s
    .venv/bin/python bench/bench_worker.py --json     # one JSON object on stdout
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from time import perf_counter
from typing import Any

import hedgerow
from hedgerow import ChildSpec, EventKind, SupervisorSpec, start_tree
from hedgerow.node import Worker, WorkerActor

TARGET = 3.0
"""Worker restart p50 at most this many times a bare spawn's p50."""
VARIANTS = ("cold", "spawn", "standby")


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile, q in [0, 100]."""
    ordered = sorted(samples)
    index = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[index]


def bytecode_cached() -> bool:
    """Whether a new interpreter finds hedgerow compiled (or may write it so)."""
    import importlib.util  # noqa: PLC0415

    writes = not sys.flags.dont_write_bytecode and not os.environ.get("PYTHONDONTWRITEBYTECODE")
    spec = importlib.util.find_spec("hedgerow._events")
    cached = spec is not None and spec.cached is not None and os.path.exists(spec.cached)  # noqa: PTH110
    return writes or cached


def spawn(code: str) -> float:
    """Seconds for ``python -c code`` to start and exit."""
    t0 = perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)  # noqa: S603 - our interpreter
    return perf_counter() - t0


class Restarts:
    """A tree with one worker; `kill()` SIGKILLs it and times its recovery."""

    def __init__(self, variant: str) -> None:
        self.events = hedgerow.EventStream()
        self._lock = threading.Lock()
        self._restarted = threading.Event()
        self._failed_at = 0.0
        self.events.subscribe(self._on_event)
        options: dict[str, Any] = {"standby": variant == "standby"}
        if variant == "spawn":
            options["start_method"] = "spawn"
        worker = Worker(SupervisorSpec([ChildSpec("idle", hedgerow.Actor)]), **options)
        self.start_method = worker.start_method
        spec = SupervisorSpec(
            [ChildSpec("w", worker, shutdown=5.0)],
            max_restarts=10**9,
            period=1.0,
        )
        self.tree = start_tree(spec, events=self.events, name="bench")

    def _on_event(self, event: hedgerow.Event) -> None:
        if event.path != "bench/w":
            return
        if event.kind is EventKind.FAILED:
            self._failed_at = perf_counter()
        elif event.kind is EventKind.RESTARTED:
            self._restarted.set()

    def kill(self) -> tuple[float, float]:
        """SIGKILL the worker; seconds until it is ready again, and until its failure was seen."""
        actor = self.tree.lookup("bench/w").incarnation
        assert isinstance(actor, WorkerActor)
        assert actor.pid is not None
        self._restarted.clear()
        t0 = perf_counter()
        os.kill(actor.pid, signal.SIGKILL)
        if not self._restarted.wait(60):
            msg = "the worker was not restarted within 60 s"
            raise RuntimeError(msg)
        return perf_counter() - t0, self._failed_at - t0

    def close(self) -> None:
        self.tree.stop()


def run(args: argparse.Namespace) -> dict[str, Any]:
    log = (lambda _text: None) if args.json else (lambda text: print(text, flush=True))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    started = perf_counter()
    baseline: list[float] = []
    imports: list[float] = []
    rows = []
    for variant in args.variants:
        restarts = Restarts(variant)
        recoveries: list[float] = []
        detections: list[float] = []
        try:
            for _ in range(args.warmup):
                time.sleep(args.settle)
                restarts.kill()
            log(f"{variant}: {args.runs} kills, each after {args.settle:g} s")
            for index in range(args.runs):
                baseline.append(spawn("pass"))
                if index % 4 == 0:
                    imports.append(spawn("import hedgerow"))
                time.sleep(args.settle)
                recovery, detection = restarts.kill()
                recoveries.append(recovery)
                detections.append(detection)
        finally:
            restarts.close()
        rows.append(
            {
                "variant": variant,
                "start_method": restarts.start_method,
                "p50_ms": percentile(recoveries, 50) * 1e3,
                "p99_ms": percentile(recoveries, 99) * 1e3,
                "failure_seen_p50_ms": percentile(detections, 50) * 1e3,
                "runs": recoveries,
            }
        )
    base50, base99 = percentile(baseline, 50), percentile(baseline, 99)
    for row in rows:
        row["ratio_p50"] = row["p50_ms"] / (base50 * 1e3)
        row["ratio_p99"] = row["p99_ms"] / (base99 * 1e3)
    return {
        "config": {
            "hedgerow": hedgerow.__version__,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "loadavg_1min_at_start": load,
            "runs": args.runs,
            "settle_s": args.settle,
            "bytecode_cached": bytecode_cached(),
        },
        "bare_spawn": {"p50_ms": base50 * 1e3, "p99_ms": base99 * 1e3, "runs": baseline},
        "import_hedgerow_spawn": {"p50_ms": percentile(imports, 50) * 1e3, "runs": imports},
        "rows": rows,
        "target_ratio": TARGET,
        "elapsed_s": perf_counter() - started,
    }


def print_table(results: dict[str, Any]) -> None:
    cfg = results["config"]
    print()
    print(
        f"hedgerow {cfg['hedgerow']}, Python {cfg['python']}, {cfg['cpus']} CPUs, "
        f"load average {cfg['loadavg_1min_at_start']:.2f} at start; "
        f"{cfg['runs']} kills per variant; hedgerow's bytecode "
        f"{'cached' if cfg['bytecode_cached'] else 'NOT cached (compiled by every spawn)'}"
    )
    bare = results["bare_spawn"]
    print(
        f"\nbare spawn (python -c pass): p50 {bare['p50_ms']:.1f} ms, p99 {bare['p99_ms']:.1f} ms;"
        f" python -c 'import hedgerow': p50 {results['import_hedgerow_spawn']['p50_ms']:.0f} ms"
    )
    print(
        f"\n{'restart after SIGKILL':<24}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'x bare p50':>12}{'x bare p99':>12}{'failure seen':>14}  target"
    )
    for row in results["rows"]:
        met = "yes" if row["ratio_p50"] <= results["target_ratio"] else "NO"
        label = f"{row['variant']} ({row['start_method']})"
        print(
            f"{label:<24}{row['p50_ms']:>9.1f}{row['p99_ms']:>9.1f}"
            f"{row['ratio_p50']:>11.2f}x{row['ratio_p99']:>11.2f}x"
            f"{row['failure_seen_p50_ms']:>11.1f} ms  {met}"
        )
    print(
        f"\n(target: p50 at most {results['target_ratio']:g}x a bare spawn's; "
        f"total {results['elapsed_s']:.1f} s; targets are informational)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer kills: about 30 s")
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    parser.add_argument("--runs", type=int, help="kills per variant")
    parser.add_argument("--warmup", type=int, default=2, help="kills before measuring")
    parser.add_argument(
        "--settle", type=float, default=0.5, help="seconds between a recovery and the next kill"
    )
    parser.add_argument(
        "--variants",
        type=lambda text: [s.strip() for s in text.split(",") if s.strip()],
        default=list(VARIANTS),
        help=f"comma-separated, of {','.join(VARIANTS)}",
    )
    args = parser.parse_args(argv)
    unknown = set(args.variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    if args.runs is None:
        args.runs = 12 if args.quick else 50
    results = run(args)
    if args.json:
        print(json.dumps(results))
    else:
        print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
