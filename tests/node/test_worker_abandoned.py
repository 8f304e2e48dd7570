"""A worker abandoned before it is ready (a cancelled start, a brutal kill, a
shutdown run out) has its process killed and reaped at once, not after its
``ready_timeout``: the stop returns in bounded time and leaves no process or thread."""

from __future__ import annotations

import os
import signal
import subprocess
import threading

import pykka
import pytest
from helpers import wait_threads_end
from node.worker_actors import SlowOnceMarked, SlowStart

import hedgerow as hr
from hedgerow import EventKind
from hedgerow.node import Worker
from hedgerow.testing import EventRecorder

TIMEOUT = 20.0
NEVER = 600.0
"""A ready_timeout the test never waits out."""


class SeenWorker(Worker):
    """A `Worker` that tells the test each process it launches."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.launched = threading.Event()
        self.pids: list[int] = []
        self.more = threading.Condition()

    def launch(self, guid: str, port: int, *, standby: bool = False) -> subprocess.Popen[bytes]:
        process = super().launch(guid, port, standby=standby)
        with self.more:
            self.pids.append(process.pid)
            self.more.notify_all()
        self.launched.set()
        return process

    def wait_launched(self, count: int) -> list[int]:
        with self.more:
            assert self.more.wait_for(lambda: len(self.pids) >= count, TIMEOUT)
            return list(self.pids)


def assert_gone(pid: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped: not even a zombie is left


@pytest.mark.timeout(60)
@pytest.mark.parametrize("shutdown", ["brutal_kill", 0.2])
def test_a_cancelled_start_kills_the_worker_not_yet_ready_at_once(shutdown):
    worker = SeenWorker(hr.SupervisorSpec([hr.ChildSpec("slow", SlowStart)]), ready_timeout=NEVER)
    spec = hr.SupervisorSpec([hr.ChildSpec("w1", worker, shutdown=shutdown)])
    events = hr.EventStream()
    rec = EventRecorder(events)
    before = set(threading.enumerate())
    cancel = threading.Event()
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["tree"] = hr.start_tree(spec, events=events, cancel=cancel)
        except BaseException as exc:
            outcome["error"] = exc

    starter = threading.Thread(target=run, name="starter")
    starter.start()
    assert worker.launched.wait(TIMEOUT)
    cancel.set()
    starter.join(TIMEOUT)
    assert not starter.is_alive(), "the start was not cancelled"
    assert isinstance(outcome.get("error"), hr.StartCancelled), outcome
    (pid,) = worker.pids
    assert_gone(pid)
    # brutal_kill: stopped, killed at once; a shutdown run out: abandoned. Not a failed start.
    kind = EventKind.STOPPED if shutdown == "brutal_kill" else EventKind.ABANDONED
    assert rec.wait_for(kind, "root/w1").reason == hr.KILLED
    assert not rec.matching("failed", "root/w1")
    assert pykka.ActorRegistry.get_all() == []
    assert wait_threads_end(before, timeout=5.0) == []
    assert worker.ports.held() == {}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("shutdown", ["brutal_kill", 0.2])
def test_a_stop_interrupting_a_restart_kills_the_worker_not_yet_ready_at_once(shutdown, tmp_path):
    mark = tmp_path / "slow"
    container = hr.SupervisorSpec([hr.ChildSpec("s", SlowOnceMarked)])
    worker = SeenWorker(container, ready_timeout=NEVER, env={"SLOW_MARK": str(mark)})
    spec = hr.SupervisorSpec([hr.ChildSpec("w1", worker, shutdown=shutdown)])
    before = set(threading.enumerate())
    tree = hr.start_tree(spec)
    (first,) = worker.pids
    mark.touch()  # the next incarnation never says ready
    os.kill(first, signal.SIGKILL)
    second = worker.wait_launched(2)[1]
    stopper = threading.Thread(target=tree.stop, args=(TIMEOUT,), name="stopper")
    stopper.start()
    stopper.join(TIMEOUT)
    assert not stopper.is_alive(), "the stop waited for the worker's ready_timeout"
    assert_gone(first)
    assert_gone(second)
    assert pykka.ActorRegistry.get_all() == []
    assert wait_threads_end(before, timeout=5.0) == []
    assert worker.ports.held() == {}
