"""Import-time benchmark: ``python -c "import hedgerow"`` against ``import pykka``.

Each figure is the median of N fresh interpreters (20 by default), the
commands interleaved so that load on the machine falls on all of them alike.
Reference, in the same run: ``import pykka`` (what hedgerow builds on; the
ratio hedgerow/pykka is printed) and a bare ``python -c pass``. For
information: what the command line (``import hedgerow.cli``), a tree file
(``hedgerow.load_tree``) and a worker process (``hedgerow.node._worker_main``)
import on top. Target: ``import hedgerow`` at most 0.1 s (informational: a
missed target never makes the exit status non-zero).

    .venv/bin/python bench/bench_import.py           # about 10 s
    .venv/bin/python bench/bench_import.py --runs 50
    .venv/bin/python bench/bench_import.py --json    # one JSON object on stdout
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from time import perf_counter
from typing import Any

TARGET_S = 0.1
"""``python -c "import hedgerow"`` at most this many seconds (median)."""

COMMANDS = {
    "import hedgerow": "import hedgerow",
    "import pykka": "import pykka",
    "python -c pass": "pass",
    "import hedgerow.cli": "import hedgerow.cli",
    "hedgerow.load_tree": "import hedgerow; hedgerow.load_tree",
    "worker process imports": "import hedgerow.node._worker_main",
}


def spawn(code: str) -> float:
    """Seconds for a fresh ``python -c code`` to start, run and exit."""
    t0 = perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)  # noqa: S603 - our interpreter
    return perf_counter() - t0


def run(runs: int) -> dict[str, Any]:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for code in COMMANDS.values():  # warm the OS's file cache first
        spawn(code)
    for _ in range(runs):
        for name, code in COMMANDS.items():
            samples[name].append(spawn(code))
    medians = {name: statistics.median(times) for name, times in samples.items()}
    return {
        "config": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "loadavg_1min_at_start": load,
            "runs": runs,
        },
        "median_s": medians,
        "ratio_hedgerow_pykka": medians["import hedgerow"] / medians["import pykka"],
        "target_s": TARGET_S,
        "runs_s": samples,
    }


def print_table(results: dict[str, Any]) -> None:
    cfg = results["config"]
    print(
        f"Python {cfg['python']}, {cfg['cpus']} CPUs, load average "
        f"{cfg['loadavg_1min_at_start']:.2f} at start; median of {cfg['runs']} fresh processes\n"
    )
    medians = results["median_s"]
    bare = medians["python -c pass"]
    print(f"{'python -c ...':<26}{'median ms':>10}{'minus bare':>12}")
    for name, value in medians.items():
        print(f"{name:<26}{value * 1e3:>10.1f}{(value - bare) * 1e3:>12.1f}")
    met = "yes" if medians["import hedgerow"] <= results["target_s"] else "NO"
    print(
        f"\nimport hedgerow / import pykka: {results['ratio_hedgerow_pykka']:.2f}x; "
        f"target import hedgerow <= {results['target_s'] * 1e3:.0f} ms: {met} "
        "(informational)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="fresh processes per command")
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    args = parser.parse_args(argv)
    results = run(args.runs)
    if args.json:
        print(json.dumps(results))
    else:
        print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
