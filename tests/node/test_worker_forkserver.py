"""Workers forked by a fork server (a zygote): the same process as a spawned one, a
real pid, and every failure of the zygote ending in a working worker (or a spawn)."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
from collections import Counter
from pathlib import Path

import pytest
from helpers import start
from node.worker_actors import FACTS, Echo, Facts

import hedgerow as hr
from hedgerow._exceptions import WorkerExited
from hedgerow.node import Worker, WorkerActor, _forkserver, _forkserver_start, _start_method
from hedgerow.node._forkserver import (
    STATUS_LOST,
    ForkedProcess,
    ForkServer,
)
from hedgerow.node._forkserver_pool import close_fork_servers, fork_servers
from hedgerow.node._treeload import loads_tree
from hedgerow.node._wire import EXIT_BAD_CONFIG
from hedgerow.supervision._treefile import tree_to_data

pytestmark = [
    pytest.mark.skipif(not _start_method.FORK_SERVER_AVAILABLE, reason="fork servers: Linux only"),
    pytest.mark.timeout(60),
]

TIMEOUT = 20.0


@pytest.fixture(autouse=True)
def _own_zygotes():
    """Each test starts its own zygote and ends it (workers it forked are stopped first)."""
    close_fork_servers()
    yield
    close_fork_servers()


def facts_worker(**options) -> Worker:
    return Worker(hr.SupervisorSpec([hr.ChildSpec("facts", Facts)]), **options)


def incarnation(tree: hr.Tree, path: str) -> WorkerActor:
    actor = tree.lookup(path).incarnation
    assert isinstance(actor, WorkerActor)
    return actor


def facts_of(err: str, pid: int) -> dict:
    """The facts a `Facts` actor printed in worker `pid` (its stderr is the node's)."""
    for line in err.splitlines():
        if line.startswith(FACTS):
            facts = json.loads(line[len(FACTS) :])
            if facts["pid"] == pid:
                return facts  # type: ignore[no-any-return]
    pytest.fail(f"no facts from pid {pid} in: {err}")


def zygote() -> ForkServer:
    [server] = fork_servers()
    return server


def test_a_worker_restarted_after_sigkill_is_forked_by_the_zygote_with_its_real_pid(capfd):
    tree, recorder = start(hr.SupervisorSpec([hr.ChildSpec("w1", facts_worker())]))
    with tree:
        first = incarnation(tree, "root/w1")
        server = zygote()
        os.kill(first.pid, signal.SIGKILL)
        failed = recorder.wait_for("failed", "root/w1", timeout=TIMEOUT)
        restarted = recorder.wait_for("restarted", "root/w1", timeout=TIMEOUT)
        recorder.wait_for("started", "root/w1/facts", count=2, timeout=TIMEOUT)
        second = incarnation(tree, "root/w1")
        err = capfd.readouterr().err
    assert isinstance(failed.reason, WorkerExited)
    assert str(failed.reason) == f"worker w1 (pid {first.pid}) killed by SIGKILL"
    assert first.returncode == -signal.SIGKILL
    assert restarted.info["pid"] == second.pid != first.pid
    for actor in (first, second):
        facts = facts_of(err, actor.pid)
        assert facts["ppid"] == server.pid != os.getpid()
        assert facts["sid"] == facts["pgid"] == actor.pid  # a session of its own
    assert fork_servers() == [server]  # one zygote served both


def test_a_forked_worker_is_the_process_a_spawned_one_is(capfd, tmp_path, monkeypatch):
    """Same stdio, signals, mask, environment, directory, command line and threads;
    of the zygote's descriptors it keeps only its node's pidfd."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FACTS_VAR", "from the node")
    spec = hr.SupervisorSpec(
        [
            hr.ChildSpec("forked", facts_worker(start_method="forkserver")),
            hr.ChildSpec("spawned", facts_worker(start_method="spawn")),
        ]
    )
    tree, _recorder = start(spec)
    with tree:
        forked = incarnation(tree, "root/forked")
        spawned = incarnation(tree, "root/spawned")
        err = capfd.readouterr().err
    assert isinstance(forked.process, ForkedProcess)
    assert not isinstance(spawned.process, ForkedProcess)
    one, other = facts_of(err, forked.pid), facts_of(err, spawned.pid)
    assert other["ppid"] == os.getpid()
    for key in ("signals", "blocked", "env", "cwd", "threads"):
        assert one[key] == other[key], key
    options = [[arg for arg in facts["argv"] if arg.startswith("--")] for facts in (one, other)]
    assert options[0] == options[1] == ["--guid", "--port", "--config-timeout"]
    assert one["env"] == "from the node"
    assert Path(one["cwd"]) == tmp_path
    kinds = [Counter(re.sub(r"\[\d+\]", "", t) for t in f["fds"].values()) for f in (one, other)]
    assert kinds[0] - kinds[1] == Counter({"anon_inode:[pidfd]": 1}), (one["fds"], other["fds"])
    assert kinds[1] - kinds[0] == Counter(), (one["fds"], other["fds"])
    assert not any("socket" in target for fd, target in one["fds"].items() if int(fd) > 2)


@pytest.mark.parametrize("start_method", ["forkserver", "spawn"])
def test_a_bad_worker_config_gets_the_same_clear_error_either_way(start_method):
    # The node imports node.worker_actors (tests/ is on its path); the worker may not.
    worker = Worker(
        hr.SupervisorSpec([hr.ChildSpec("a", Echo)]), pythonpath=[], start_method=start_method
    )
    spec = hr.SupervisorSpec([hr.ChildSpec("w1", worker, restart="never")])
    with pytest.raises(hr.StartError) as info:
        hr.start_tree(spec)
    cause = info.value.cause.cause
    assert isinstance(cause, WorkerExited)
    assert cause.status == EXIT_BAD_CONFIG
    assert (
        "bad config: key 'container': supervisor.children[0].start = 'node.worker_actors:Echo': "
        "cannot import module 'node.worker_actors'"
    ) in str(cause)
    assert "Traceback" not in str(cause)


def test_a_zygote_killed_between_restarts_is_started_again_and_harms_no_worker(capfd):
    tree, recorder = start(hr.SupervisorSpec([hr.ChildSpec("w1", facts_worker())]))
    with tree:
        first = incarnation(tree, "root/w1")
        server = zygote()
        os.kill(server.pid, signal.SIGKILL)
        assert server.exited.wait(TIMEOUT)
        # The worker it forked goes on: the node still signals it by its pidfd.
        assert first.process is not None
        assert first.process.poll() is None
        os.kill(first.pid, signal.SIGKILL)
        failed = recorder.wait_for("failed", "root/w1", timeout=TIMEOUT)
        recorder.wait_for("restarted", "root/w1", timeout=TIMEOUT)
        recorder.wait_for("started", "root/w1/facts", count=2, timeout=TIMEOUT)
        second = incarnation(tree, "root/w1")
        err = capfd.readouterr().err
    assert isinstance(failed.reason, WorkerExited)
    assert first.returncode == STATUS_LOST
    assert "its exit status is unknown: the fork server that forked it exited first" in str(
        failed.reason
    )
    again = zygote()
    assert again.pid != server.pid
    assert facts_of(err, second.pid)["ppid"] == again.pid


def test_a_worker_the_zygote_forked_stops_normally_after_the_zygote_died():
    """Its exit line tells the status the zygote can no longer tell."""
    tree, recorder = start(hr.SupervisorSpec([hr.ChildSpec("w1", facts_worker())]))
    first = incarnation(tree, "root/w1")
    server = zygote()
    os.kill(server.pid, signal.SIGKILL)
    assert server.exited.wait(TIMEOUT)
    tree.stop(TIMEOUT)
    assert first.process is not None
    assert first.process.status_lost  # type: ignore[union-attr]
    assert first.returncode == 0
    assert recorder.wait_for("stopped", "root/w1") is not None


def test_a_worker_killed_while_being_forked_fails_its_start_and_is_restarted(monkeypatch):
    tree, recorder = start(hr.SupervisorSpec([hr.ChildSpec("w1", facts_worker())]))
    with tree:
        first = incarnation(tree, "root/w1")
        server = zygote()
        fork = ForkServer.fork
        killed: list[int] = []

        def fork_then_kill(self, *args, **kwargs):
            process = fork(self, *args, **kwargs)
            if not killed:  # before its config is written: killed while it starts
                killed.append(process.pid)
                process.kill()
            return process

        monkeypatch.setattr(ForkServer, "fork", fork_then_kill)
        os.kill(first.pid, signal.SIGKILL)
        recorder.wait_for("restarted", "root/w1", timeout=TIMEOUT)
        recorder.wait_for("started", "root/w1/facts", count=2, timeout=TIMEOUT)
        second = incarnation(tree, "root/w1")
    assert killed
    assert second.pid not in (first.pid, killed[0])
    [start_failed] = [
        e
        for e in recorder.events
        if isinstance(e.reason, WorkerExited) and e.reason.pid == killed[0]
    ]
    assert start_failed.kind is hr.EventKind.START_FAILED
    assert start_failed.reason.signal == "SIGKILL"
    assert zygote() is server  # the zygote itself was not harmed


def test_spawn_opts_out_and_so_does_the_environment(monkeypatch, capfd):
    monkeypatch.setenv(_start_method.START_METHOD_ENV, "spawn")
    spec = hr.SupervisorSpec(
        [
            hr.ChildSpec("by_env", facts_worker()),
            hr.ChildSpec("by_option", facts_worker(start_method="spawn")),
        ]
    )
    tree, _recorder = start(spec)
    with tree:
        err = capfd.readouterr().err
        for path in ("root/by_env", "root/by_option"):
            actor = incarnation(tree, path)
            assert facts_of(err, actor.pid)["ppid"] == os.getpid()
    assert fork_servers() == []


def test_a_start_method_that_does_not_exist_is_refused_naming_it():
    with pytest.raises(hr.SpecError, match=r"start_method.*expected one of forkserver, spawn"):
        facts_worker(start_method="fork")


def test_without_fork_servers_workers_are_spawned(monkeypatch, capfd):
    monkeypatch.setattr(_start_method, "FORK_SERVER_AVAILABLE", False)
    tree, _recorder = start(hr.SupervisorSpec([hr.ChildSpec("w1", facts_worker())]))
    with tree:
        actor = incarnation(tree, "root/w1")
        assert facts_of(capfd.readouterr().err, actor.pid)["ppid"] == os.getpid()
    assert fork_servers() == []


def test_a_zygote_that_cannot_start_falls_back_to_a_spawn_and_says_why(monkeypatch, caplog):
    monkeypatch.setattr(_forkserver_start, "ZYGOTE_MODULE", "hedgerow.node._no_such_zygote")
    tree, _recorder = start(hr.SupervisorSpec([hr.ChildSpec("w1", facts_worker())]))
    with tree:
        actor = incarnation(tree, "root/w1")
        assert not isinstance(actor.process, ForkedProcess)
    assert "the fork server did not start: it exited (1)" in caplog.text
    assert "are spawned instead" in caplog.text
    assert fork_servers() == []


def test_the_zygote_leaves_when_its_node_closes_it_and_its_workers_go_on():
    tree, _recorder = start(hr.SupervisorSpec([hr.ChildSpec("w1", facts_worker())]))
    with tree:
        first = incarnation(tree, "root/w1")
        server = zygote()
        server.close()
        assert server.exited.is_set()
        assert server.process is not None
        assert server.process.returncode == 0
        assert first.process is not None
        assert first.process.poll() is None
    assert first.returncode == 0


def test_a_node_pidfd_tells_a_forked_worker_its_node_is_gone(monkeypatch):
    from hedgerow.node import _worker_config  # noqa: PLC0415

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # a stand-in node: it exits when the test closes the pipe
        os.close(write_end)
        os.read(read_end, 1)
        os._exit(0)
    os.close(read_end)
    pidfd = os.pidfd_open(pid)
    try:
        monkeypatch.setattr(_worker_config, "_node_pidfd", pidfd)
        assert not _worker_config.node_gone(parent=-1)  # the parent pid is not asked
        os.close(write_end)
        os.waitpid(pid, 0)
        assert _worker_config.node_gone(parent=os.getppid())
    finally:
        os.close(pidfd)


def test_a_zygote_that_dies_during_a_fork_request_leaves_the_launch_to_a_spawn(
    monkeypatch, caplog, capfd
):
    tree, recorder = start(hr.SupervisorSpec([hr.ChildSpec("w1", facts_worker())]))
    with tree:
        first = incarnation(tree, "root/w1")
        server = zygote()
        fork = ForkServer.fork

        def die_then_fork(self, *args, **kwargs):
            os.kill(self.pid, signal.SIGKILL)
            self.process.wait(TIMEOUT)
            return fork(self, *args, **kwargs)

        monkeypatch.setattr(ForkServer, "fork", die_then_fork)
        os.kill(first.pid, signal.SIGKILL)
        recorder.wait_for("restarted", "root/w1", timeout=TIMEOUT)
        recorder.wait_for("started", "root/w1/facts", count=2, timeout=TIMEOUT)
        second = incarnation(tree, "root/w1")
        err = capfd.readouterr().err
    assert not isinstance(second.process, ForkedProcess)
    assert facts_of(err, second.pid)["ppid"] == os.getpid()
    assert f"fork server pid {server.pid}: cannot ask the fork server" in caplog.text
    assert "spawning the worker" in caplog.text
    assert server.exited.wait(TIMEOUT)


def test_a_zygote_that_served_a_while_is_started_again_at_once_when_it_dies(monkeypatch, capfd):
    monkeypatch.setattr(_forkserver, "RESTART_AFTER", 0.0)  # "a while" is no time here
    tree, recorder = start(hr.SupervisorSpec([hr.ChildSpec("w1", facts_worker())]))
    with tree:
        first = incarnation(tree, "root/w1")
        server = zygote()
        os.kill(server.pid, signal.SIGKILL)
        assert server.replaced.wait(TIMEOUT)
        successor = server.successor
        assert successor is not None
        assert fork_servers() == [successor]
        os.kill(first.pid, signal.SIGKILL)
        recorder.wait_for("started", "root/w1/facts", count=2, timeout=TIMEOUT)
        second = incarnation(tree, "root/w1")
        err = capfd.readouterr().err
    assert facts_of(err, second.pid)["ppid"] == successor.pid != server.pid


def test_a_zygote_that_dies_young_is_left_to_the_next_launch(monkeypatch):
    monkeypatch.setattr(_forkserver, "RESTART_AFTER", 1e9)  # "young", however slow this runs
    tree, _recorder = start(hr.SupervisorSpec([hr.ChildSpec("w1", facts_worker())]))
    with tree:
        server = zygote()
        os.kill(server.pid, signal.SIGKILL)
        assert server.replaced.wait(TIMEOUT)
        assert server.successor is None
        assert fork_servers() == []


def test_no_thread_is_left_behind_once_the_workers_a_zygote_forked_are_gone():
    tree, _recorder = start(hr.SupervisorSpec([hr.ChildSpec("w1", facts_worker())]))
    with tree:
        server = zygote()
        [reader] = [
            t for t in threading.enumerate() if t.name == f"hedgerow-forkserver-{server.pid}"
        ]
    reader.join(TIMEOUT)
    assert not reader.is_alive()
    assert server.alive  # idle, without a thread; the next launch starts one again
    tree, _recorder = start(hr.SupervisorSpec([hr.ChildSpec("w1", facts_worker())]))
    with tree:
        assert isinstance(incarnation(tree, "root/w1").process, ForkedProcess)
        assert fork_servers() == [server]


def test_a_zygote_that_died_while_idle_is_replaced_by_the_next_launch(monkeypatch):
    tree, _recorder = start(hr.SupervisorSpec([hr.ChildSpec("w1", facts_worker())]))
    with tree:
        server = zygote()
    os.kill(server.pid, signal.SIGKILL)
    assert server.process is not None
    server.process.wait(TIMEOUT)
    tree, _recorder = start(hr.SupervisorSpec([hr.ChildSpec("w1", facts_worker())]))
    with tree:
        actor = incarnation(tree, "root/w1")
        assert isinstance(actor.process, ForkedProcess)
        [successor] = fork_servers()
    assert successor is not server
    assert server.exited.is_set()


def test_a_forked_node_does_not_share_its_parents_zygote():
    tree, _recorder = start(hr.SupervisorSpec([hr.ChildSpec("w1", facts_worker())]))
    with tree:
        server = zygote()
        pid = os.fork()
        if pid == 0:  # the child: its parent's zygote is not its own
            os._exit(0 if fork_servers() == [] else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert fork_servers() == [server]
        assert server.alive


def test_a_start_method_in_the_environment_that_does_not_exist_is_refused_naming_it(
    monkeypatch,
):
    monkeypatch.setenv(_start_method.START_METHOD_ENV, "fork")
    with pytest.raises(hr.SpecError) as info:
        facts_worker()
    assert str(info.value) == (
        "HEDGEROW_WORKER_START_METHOD='fork': expected one of forkserver, spawn"
    )
    assert isinstance(facts_worker(start_method="spawn"), Worker)  # an explicit choice wins


TREE_FILE = """
[[supervisor.children]]
id = "w1"
[supervisor.children.worker]
start_method = "{method}"
[[supervisor.children.worker.components]]
id = "facts"
start = "node.worker_actors:Facts"
"""


def test_a_tree_file_opts_a_worker_out_and_writes_it_back():
    spec = loads_tree(TREE_FILE.format(method="spawn"), "toml")
    worker = spec.children[0].start
    assert isinstance(worker, Worker)
    assert (worker.start_method, worker.start_method_given) == ("spawn", "spawn")
    assert tree_to_data(spec)["supervisor"]["children"][0]["worker"]["start_method"] == "spawn"
    default = loads_tree(TREE_FILE.replace('start_method = "{method}"\n', ""), "toml")
    assert "start_method" not in tree_to_data(default)["supervisor"]["children"][0]["worker"]


def test_a_tree_file_start_method_that_does_not_exist_is_refused_naming_the_key():
    with pytest.raises(hr.ConfigError) as info:
        loads_tree(TREE_FILE.format(method="fork"), "toml", source="node.toml")
    assert (
        "supervisor.children[0].worker.start_method = 'fork': expected one of forkserver, spawn"
    ) in str(info.value)
