"""Actors for the flaky_worker tree: a job source and a worker that crashes on some jobs."""

from __future__ import annotations

import logging
from typing import Any

import hedgerow as hr

logger = logging.getLogger(__name__)


class FlakyWorker(hr.Actor):
    """Doubles numbers, except that the jobs in `crash_on` hit a bug and crash it."""

    def __init__(self, crash_on: list[int]) -> None:
        super().__init__()
        self.crash_on = set(crash_on)

    def on_receive(self, message: Any) -> Any:
        match message:
            case ("last", reply_to):
                reply_to.tell("done")
            case int(job) if job in self.crash_on:
                raise RuntimeError(f"job {job} hit a bug")
            case int(job):
                logger.info("job %2d -> %2d (incarnation %d)", job, job * 2, self.actor_incarnation)
                return job * 2
        return None


class JobSource(hr.Actor):
    """Sends `jobs` numbered jobs to its sibling `worker`, one per `interval` seconds.

    When all are sent it sends a last message that the worker answers with
    "done": it arrives once every job queued before it was handled (or
    dead-lettered), across the worker's restarts. Then it stops, and with it
    the tree. It never blocks on the worker, so it can always be stopped.
    """

    def __init__(self, worker: str, jobs: int, interval: float) -> None:
        super().__init__()
        self.worker_id = worker
        self.jobs = jobs
        self.interval = interval
        self.sent = 0

    def on_start(self) -> None:
        self.worker = self.actor_lookup(self.worker_id)
        self.actor_send_after(self.interval, "tick")

    def on_receive(self, message: Any) -> Any:
        if message == "tick" and self.sent < self.jobs:
            self.sent += 1
            self.worker.tell(self.sent)
            self.actor_send_after(self.interval, "tick")
        elif message == "tick":
            self.worker.tell(("last", self.actor_child_ref))
        elif message == "done":
            logger.info("the worker has seen all %d jobs", self.jobs)
            raise hr.Shutdown("all jobs done")
