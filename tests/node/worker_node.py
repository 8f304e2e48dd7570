"""A node in its own process: a tree with two worker processes, on the process bus.

It prints ``ready <pid> <pid>`` (the workers' pids) once both are up, and
stops the tree on SIGTERM or SIGINT (the bus's `SignalHandler`).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node.worker_actors import Echo

import hedgerow as hr
from hedgerow.node import Bus, BusState, SignalHandler, Worker


def main() -> None:
    hosted = hr.SupervisorSpec([hr.ChildSpec("echo", Echo)])
    spec = hr.SupervisorSpec(
        [
            hr.ChildSpec("w1", Worker(hosted), shutdown=5.0),
            hr.ChildSpec("w2", Worker(hosted), shutdown=5.0),
        ]
    )
    bus = Bus()
    trees: list[hr.Tree] = []
    bus.subscribe("start", lambda: trees.append(hr.start_tree(spec)))
    bus.subscribe("stop", lambda: [tree.stop() for tree in trees])
    SignalHandler(bus).subscribe()
    bus.start()
    pids = [trees[0].lookup(f"root/{w}").incarnation.pid for w in ("w1", "w2")]
    print("ready", *pids, flush=True)  # noqa: T201
    # Not bus.block(): it publishes "main" every interval, and a SIGTERM landing
    # while the main thread holds the bus's listener lock would deadlock in the
    # handler (SignalHandler runs bus.exit() right there).
    bus.wait(BusState.EXITING)
    print("stopped", flush=True)  # noqa: T201


if __name__ == "__main__":
    main()
