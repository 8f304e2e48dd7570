"""A flaky worker under a one_for_one supervisor: it crashes, is restarted with
backoff, and the jobs queued behind each crash reach the next incarnation.

Run it with ``bash scripts/demo.sh`` (or ``python examples/flaky_worker/main.py``).
"""

from __future__ import annotations

import sys
from typing import Any

import hedgerow as hr

CRASH_ON = {4, 8, 9}
JOBS = 12


class FlakyWorker(hr.Actor):
    """Doubles numbers, except that some jobs make it crash."""

    def __init__(self, crash_on: set[int]) -> None:
        super().__init__()
        self.crash_on = crash_on

    def on_receive(self, message: Any) -> Any:
        if message in self.crash_on:
            self.crash_on.discard(message)
            raise RuntimeError(f"job {message} hit a bug")
        print(f"  job {message:>2} -> {message * 2:>2}  (incarnation {self.actor_incarnation})")
        return message * 2


class Clerk(hr.Actor):
    """A steady sibling: one_for_one leaves it alone when the worker crashes."""

    def on_receive(self, message: Any) -> Any:  # noqa: ARG002 - answers anything the same
        return f"clerk ok (incarnation {self.actor_incarnation})"


def main() -> int:
    spec = hr.SupervisorSpec(
        children=[
            hr.ChildSpec("clerk", Clerk),
            hr.ChildSpec(
                "worker",
                FlakyWorker,
                args=(set(CRASH_ON),),
                initial_retry_delay=0.2,
                retry_delay_jitter=0.0,
            ),
        ],
        strategy="one_for_one",
        max_restarts=5,
        period=10,
    )
    events = hr.EventStream()
    dead_letters: list[Any] = []

    def show(event: hr.Event) -> None:
        if event.kind is hr.EventKind.DEAD_LETTER:
            dead_letters.append(event.message)
        if event.kind is not hr.EventKind.STARTED:
            print(f"event: {event.describe()}")

    events.subscribe(show)
    print(f"Starting a tree; the worker will crash on jobs {sorted(CRASH_ON)}.")
    with hr.start_tree(spec, events=events) as tree:
        worker = tree.get_child("worker")
        for job in range(1, JOBS + 1):
            worker.tell(job)
        # One more job, asked: queued behind every crash, answered by the
        # latest incarnation once all the others are done.
        last = worker.ask(JOBS + 1, timeout=30)
        clerk = tree.get_child("clerk").ask("status", timeout=30)
        restarts = {c.id: c.restarts for c in tree.which_children()}
    print(f"Last answer: {last}; {clerk}; restarts: {restarts}.")
    print(f"Dead letters (the jobs that crashed the worker): {sorted(dead_letters)}.")
    recovered = restarts["worker"] == len(CRASH_ON) and sorted(dead_letters) == sorted(CRASH_ON)
    print("Recovered from every crash." if recovered else "Did not recover as expected!")
    return 0 if recovered else 1


if __name__ == "__main__":
    sys.exit(main())
