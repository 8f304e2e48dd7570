"""A worker whose code forks a child of its own: the child keeps the worker's pipes
(the node's end of its lines among them), and still the node sees the worker's exit
when the worker exits, not when the child does."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from helpers import start
from node.test_worker import process_identity
from node.worker_actors import GRANDCHILD_FILE, Echo, ForksAChild

import hedgerow as hr
from hedgerow._exceptions import WorkerExited
from hedgerow.node import Worker, WorkerActor, _start_method, _worker_actor
from hedgerow.node._forkserver_pool import close_fork_servers

pytestmark = pytest.mark.timeout(40)

PROMPT = 10.0
"""Seconds within which the node must see the worker's exit (its child sleeps 60)."""
START_METHODS = [
    pytest.param(
        "forkserver",
        marks=pytest.mark.skipif(
            not _start_method.FORK_SERVER_AVAILABLE, reason="fork servers: Linux only"
        ),
    ),
    "spawn",
]


@pytest.fixture(autouse=True)
def _own_zygotes():
    close_fork_servers()
    yield
    close_fork_servers()


@pytest.fixture
def grandchild(tmp_path):
    """The file the worker's actor writes its child's pid to; the child is killed
    (by that pid, if it is still that process) at the end."""
    file = tmp_path / "grandchild.pid"
    seen: list[tuple[int, str | None]] = []

    def pid() -> int:
        child = int(file.read_text())
        seen.append((child, process_identity(child)))
        return child

    yield file, pid
    for child, ident in seen:
        if ident is not None and process_identity(child) == ident:
            os.kill(child, signal.SIGKILL)


def worker(file: Path, start_method: str, *, quits: bool = False) -> Worker:
    if quits:  # its child stops, and so the worker's tree ends: it exits 0
        forks = hr.ChildSpec(
            "forks", ForksAChild, kwargs={"quits": True}, restart="never", significant=True
        )
        policy = "shutdown-on-last-component-stopped"
    else:
        forks, policy = hr.ChildSpec("forks", ForksAChild), "shutdown-manual"
    container = hr.SupervisorSpec([forks], shutdown_policy=policy)
    return Worker(container, env={GRANDCHILD_FILE: str(file)}, start_method=start_method)


@pytest.mark.parametrize("start_method", START_METHODS)
def test_a_sigkilled_worker_is_seen_dead_while_its_child_runs(start_method, grandchild):
    file, grandchild_pid = grandchild
    spec = hr.SupervisorSpec([hr.ChildSpec("w1", worker(file, start_method), restart="never")])
    tree, recorder = start(spec)
    with tree:
        actor = tree.lookup("root/w1").incarnation
        assert isinstance(actor, WorkerActor)
        assert grandchild_pid() != actor.pid
        killed_at = time.monotonic()
        os.kill(actor.pid, signal.SIGKILL)
        failed = recorder.wait_for("failed", "root/w1", timeout=PROMPT)
        seen_after = time.monotonic() - killed_at
    print(f"{start_method}: a SIGKILLed worker seen dead after {seen_after * 1000:.0f} ms")  # noqa: T201
    assert isinstance(failed.reason, WorkerExited)
    assert failed.reason.signal == "SIGKILL"
    assert actor.returncode == -signal.SIGKILL


@pytest.mark.parametrize("start_method", START_METHODS)
def test_a_worker_that_exits_is_seen_stopped_while_its_child_runs(start_method, grandchild):
    file, grandchild_pid = grandchild
    forks = worker(file, start_method, quits=True)
    spec = hr.SupervisorSpec([hr.ChildSpec("w1", forks, restart="never")])
    tree, recorder = start(spec)
    with tree:
        grandchild_pid()  # written before the worker was ready
        stopped = recorder.wait_for("stopped", "root/w1", timeout=PROMPT)
    # Its last lines (the hosted tree's events, its exit) were read before the end.
    assert stopped.reason == hr.NORMAL
    assert ("stopped", "root/w1/forks") in recorder.trail()


def test_without_pidfds_a_waiting_thread_tells_the_exit_while_the_child_runs(
    monkeypatch, grandchild
):
    # Off Linux: no pidfd_open (a spawned worker: a zygote needs pidfds).
    file, grandchild_pid = grandchild
    monkeypatch.delattr(os, "pidfd_open")
    spec = hr.SupervisorSpec([hr.ChildSpec("w1", worker(file, "spawn"), restart="never")])
    tree, recorder = start(spec)
    with tree:
        actor = tree.lookup("root/w1").incarnation
        assert isinstance(actor, WorkerActor)
        grandchild_pid()
        os.kill(actor.pid, signal.SIGKILL)
        failed = recorder.wait_for("failed", "root/w1", timeout=PROMPT)
    assert isinstance(failed.reason, WorkerExited)
    assert failed.reason.signal == "SIGKILL"


def test_with_nothing_to_watch_end_of_file_tells_the_exit_as_before(monkeypatch):
    # Not even a pipe for a waiting thread: the reader reads to end of file.
    monkeypatch.setattr(_worker_actor, "exit_descriptor", lambda process: None)
    echo = Worker(hr.SupervisorSpec([hr.ChildSpec("a", Echo)]), start_method="spawn")
    tree, recorder = start(hr.SupervisorSpec([hr.ChildSpec("w1", echo, restart="never")]))
    with tree:
        actor = tree.lookup("root/w1").incarnation
        assert isinstance(actor, WorkerActor)
        os.kill(actor.pid, signal.SIGKILL)
        failed = recorder.wait_for("failed", "root/w1", timeout=PROMPT)
    assert isinstance(failed.reason, WorkerExited)
    assert failed.reason.signal == "SIGKILL"
