"""A zygote still starting holds worker launches no longer than `START_PATIENCE`:
they spawn meanwhile, and the launches after it is ready are forked by it."""

from __future__ import annotations

import os
import time

import pytest
from helpers import start
from node.worker_actors import Echo

import hedgerow as hr
from hedgerow.node import Worker, WorkerActor, _forkserver, _forkserver_start, _start_method
from hedgerow.node._forkserver import ForkedProcess, ForkServer
from hedgerow.node._forkserver_pool import close_fork_servers, fork_servers

pytestmark = [
    pytest.mark.skipif(not _start_method.FORK_SERVER_AVAILABLE, reason="fork servers: Linux only"),
    pytest.mark.timeout(40),
]

TIMEOUT = 20.0

HUNG_ZYGOTE = "import threading\nthreading.Event().wait()\n"
"""A zygote that never says it is ready (an import that hangs, say)."""
GATED_ZYGOTE = """\
import os
with open(os.environ["ZYGOTE_GATE"], "rb") as gate:  # until the test opens it to write
    gate.read()
from hedgerow.node._zygote import main
main()
"""
"""A zygote that starts once the test lets it."""


@pytest.fixture(autouse=True)
def _own_zygotes():
    close_fork_servers()
    yield
    close_fork_servers()


@pytest.fixture
def zygote_module(tmp_path, monkeypatch):
    """Run zygotes from a module of the test's: `zygote_module(source)`."""

    def use(source: str) -> None:
        (tmp_path / "test_zygote.py").write_text(source)
        path = [str(tmp_path), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(path))
        monkeypatch.setattr(_forkserver_start, "ZYGOTE_MODULE", "test_zygote")

    return use


def echo_worker(**options) -> Worker:
    return Worker(hr.SupervisorSpec([hr.ChildSpec("a", Echo)]), **options)


def incarnation(tree: hr.Tree, path: str) -> WorkerActor:
    actor = tree.lookup(path).incarnation
    assert isinstance(actor, WorkerActor)
    return actor


def test_a_zygote_that_hangs_before_ready_holds_launches_no_longer_than_the_patience(
    zygote_module, monkeypatch
):
    zygote_module(HUNG_ZYGOTE)
    monkeypatch.setattr(_forkserver, "START_PATIENCE", 1.0)
    spec = hr.SupervisorSpec(
        [hr.ChildSpec(f"w{i}", echo_worker(ready_timeout=60.0)) for i in range(3)]
    )
    began = time.monotonic()
    tree, _recorder = start(spec)
    took = time.monotonic() - began
    with tree:
        for i in range(3):
            assert not isinstance(incarnation(tree, f"root/w{i}").process, ForkedProcess)
        [server] = fork_servers()  # still starting: its own timeout is the worker's, 60 s
        assert not server.started.is_set()
    # One patience for all three launches, not one each (nor 60 s); a spawn is quick.
    assert took < 1.0 + 8.0, took
    close_fork_servers()  # ends a zygote still starting too
    assert server.process is not None
    assert server.process.returncode is not None


def test_the_launches_after_a_slow_zygote_is_ready_are_forked_by_it(
    zygote_module, monkeypatch, tmp_path
):
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    monkeypatch.setenv("ZYGOTE_GATE", str(gate))
    zygote_module(GATED_ZYGOTE)
    monkeypatch.setattr(_forkserver, "START_PATIENCE", 0.2)
    tree, recorder = start(hr.SupervisorSpec([hr.ChildSpec("w1", echo_worker())]))
    with tree:
        first = incarnation(tree, "root/w1")
        assert not isinstance(first.process, ForkedProcess)  # spawned meanwhile
        [server] = fork_servers()
        os.close(os.open(gate, os.O_WRONLY))  # let it start
        assert server.started.wait(TIMEOUT)
        assert server.alive
        assert first.pid is not None
        os.kill(first.pid, 9)
        recorder.wait_for("started", "root/w1/a", count=2, timeout=TIMEOUT)
        second = incarnation(tree, "root/w1")
        assert isinstance(second.process, ForkedProcess)
        assert fork_servers() == [server]


def test_a_zygote_not_ready_within_its_start_timeout_is_killed_and_launches_spawn(
    zygote_module, monkeypatch, caplog
):
    zygote_module(HUNG_ZYGOTE)
    monkeypatch.setattr(_forkserver, "START_PATIENCE", 0.2)
    begun: list[ForkServer] = []
    begin = ForkServer.begin

    def recorded(server: ForkServer, timeout: float) -> None:
        begun.append(server)
        begin(server, timeout)

    monkeypatch.setattr(ForkServer, "begin", recorded)
    worker = echo_worker(ready_timeout=1.0)  # the zygote's start timeout too
    tree, _recorder = start(hr.SupervisorSpec([hr.ChildSpec("w1", worker)]))
    with tree:
        assert not isinstance(incarnation(tree, "root/w1").process, ForkedProcess)
        [server] = begun
        assert server.started.wait(TIMEOUT)
        assert server.failure == "the fork server did not start: not ready within 1 s"
        assert server.process is not None
        assert server.process.returncode is not None  # killed, and reaped
        assert fork_servers() == []
    assert "the fork server did not start: not ready within 1 s" in caplog.text
    assert "are spawned instead" in caplog.text
