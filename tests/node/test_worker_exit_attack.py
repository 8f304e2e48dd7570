"""The worker's exit detection and the zygote's start in a thread, attacked: zygotes
that misbehave before they are ready, a node out of threads, a node that forks while
its workers run, workers that exit at the moment they write."""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import select
import signal
import subprocess
import sys
import threading
import types
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from helpers import start, wait_threads_end
from node.test_worker_grandchild import grandchild  # noqa: F401 - a fixture
from node.test_worker_grandchild import worker as forks_a_child
from node.worker_actors import Echo

import hedgerow as hr
from hedgerow._exceptions import WorkerExited
from hedgerow.node import Worker, WorkerActor, _forkserver, _forkserver_start, _start_method
from hedgerow.node._forked import ForkedProcess
from hedgerow.node._forkserver import ForkServer, ForkServerError
from hedgerow.node._forkserver_pool import close_fork_servers, fork_server, fork_servers
from hedgerow.node._line_reader import DRAIN_LIMIT

pytestmark = pytest.mark.timeout(60)

TIMEOUT = 20.0

needs_fork_servers = pytest.mark.skipif(
    not _start_method.FORK_SERVER_AVAILABLE, reason="fork servers: Linux only"
)


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


@pytest.fixture
def begun(monkeypatch):
    """The fork servers begun during the test; any zygote still running at the end is
    killed (by its pid: not reaped yet, so still its own)."""
    servers: list[ForkServer] = []
    begin = ForkServer.begin

    def recorded(server: ForkServer, timeout: float) -> None:
        servers.append(server)
        begin(server, timeout)
        one_begun.set()

    one_begun = threading.Event()
    monkeypatch.setattr(ForkServer, "one_begun", one_begun, raising=False)

    monkeypatch.setattr(ForkServer, "begin", recorded)
    yield servers
    for server in servers:
        if server.process is not None and server.process.poll() is None:
            server.process.kill()
            server.process.wait()


def echo_worker(**options) -> Worker:
    return Worker(hr.SupervisorSpec([hr.ChildSpec("a", Echo)]), **options)


def incarnation(tree: hr.Tree, path: str) -> WorkerActor:
    actor = tree.lookup(path).incarnation
    assert isinstance(actor, WorkerActor)
    return actor


# -- zygotes that misbehave before they are ready ---------------------------------------

GATED_ZYGOTE = """\
import os
with open(os.environ["ZYGOTE_GATE"], "rb") as gate:  # until the test opens it to write
    gate.read()
from hedgerow.node._zygote import main
main()
"""
"""A zygote that starts once the test lets it."""
GARBLED_READY = """\
import json, socket, sys
sock = socket.socket(fileno=int(sys.argv[sys.argv.index("--fd") + 1]))
sock.send(json.dumps({"op": "ready", "pid": 1, "max_request": "plenty"}).encode())
sock.recv(1)  # until the node's end closes
"""
"""A zygote whose ready message has a field of the wrong type (another hedgerow's, say)."""
CLOSES_AND_HANGS = """\
import os, sys, threading
os.close(int(sys.argv[sys.argv.index("--fd") + 1]))
threading.Event().wait()
"""
"""A zygote that closes its control socket before it is ready, and hangs."""


@needs_fork_servers
@pytest.mark.parametrize("source", [GARBLED_READY, CLOSES_AND_HANGS], ids=["garbled", "hangs"])
def test_a_zygote_that_misbehaves_before_ready_is_killed_and_launches_spawn(
    zygote_module, begun, monkeypatch, source, caplog
):
    zygote_module(source)
    monkeypatch.setattr(_forkserver, "START_PATIENCE", 0.2)
    monkeypatch.setattr(_forkserver_start, "FORK_TIMEOUT", 0.5)  # how long one that closed may take
    tree, _recorder = start(hr.SupervisorSpec([hr.ChildSpec("w1", echo_worker())]))
    with tree:
        assert not isinstance(incarnation(tree, "root/w1").process, ForkedProcess)
        [server] = begun
        # Its start thread ends, whatever the zygote did: it is killed and reaped.
        assert server.started.wait(TIMEOUT)
        assert server.failure is not None
        assert server.failure.startswith("the fork server did not start")
        assert server.process is not None
        assert server.process.returncode is not None
        assert fork_servers() == []
    assert "are spawned instead" in caplog.text
    close_fork_servers()  # returns: nothing waits for a start that never ends


@needs_fork_servers
def test_a_node_out_of_threads_spawns_and_leaves_no_zygote_behind(begun, monkeypatch):
    class NoThread(threading.Thread):
        def start(self) -> None:
            msg = "can't start new thread"
            raise RuntimeError(msg)

    # Only the fork server's start thread fails to start (its module's `threading`).
    only_there = types.SimpleNamespace(**vars(threading))
    only_there.Thread = NoThread
    monkeypatch.setattr(_forkserver_start, "threading", only_there)
    assert fork_server(sys.executable, dict(os.environ), TIMEOUT) is None  # the launch spawns
    [server] = begun
    assert server.process is not None
    assert server.process.returncode is not None  # killed and reaped, not left running
    assert server.failure is not None
    assert fork_servers() == []


# -- a node without pidfds that forks --------------------------------------------------


@pytest.fixture
def forked_node():
    """`forked_node()` forks the test's process: a child that holds a copy of every
    descriptor of the node (as multiprocessing's fork, or a daemon's double fork) and
    only waits until the test ends; the child is reaped at the end."""
    children: list[tuple[int, int]] = []

    def fork() -> int:
        hold_read, hold_write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: two system calls, then out
            try:
                os.close(hold_write)
                os.read(hold_read, 1)
            finally:
                os._exit(0)
        os.close(hold_read)
        children.append((pid, hold_write))
        return pid

    yield fork
    for pid, hold_write in children:
        os.close(hold_write)  # the child's read ends: it exits
        os.waitpid(pid, 0)


def test_without_pidfds_a_node_that_forked_still_sees_its_worker_exit(
    monkeypatch,
    grandchild,  # noqa: F811 - the fixture imported above
    forked_node,
):
    # The waiting thread's pipe: a copy of its write end in the forked child must not
    # hide the exit (its closing alone would: the pipe stays open in the child).
    file, grandchild_pid = grandchild
    monkeypatch.delattr(os, "pidfd_open")
    spec = hr.SupervisorSpec([hr.ChildSpec("w1", forks_a_child(file, "spawn"), restart="never")])
    tree, recorder = start(spec)
    with tree:
        actor = incarnation(tree, "root/w1")
        grandchild_pid()  # it holds the worker's pipes
        forked_node()
        os.kill(actor.pid, signal.SIGKILL)
        failed = recorder.wait_for("failed", "root/w1", timeout=10.0)
    assert isinstance(failed.reason, WorkerExited)
    assert failed.reason.signal == "SIGKILL"


# -- a zygote killed or stopped while a launch waits for it -------------------------------


@needs_fork_servers
@pytest.mark.parametrize("attack", ["sigkill", "sigstop-then-close"])
def test_a_zygote_killed_or_closed_while_a_launch_waits_for_it_lets_the_launch_spawn(
    zygote_module, begun, monkeypatch, tmp_path, attack
):
    gate = tmp_path / "gate"
    os.mkfifo(gate)  # never opened: the zygote starts for ever
    monkeypatch.setenv("ZYGOTE_GATE", str(gate))
    zygote_module(GATED_ZYGOTE)  # and launches would wait for it a minute (conftest)
    started: Future[tuple[hr.Tree, Any]] = Future()

    def start_tree() -> None:
        try:
            started.set_result(start(hr.SupervisorSpec([hr.ChildSpec("w1", echo_worker())])))
        except BaseException as exc:
            started.set_exception(exc)

    threading.Thread(target=start_tree, daemon=True).start()
    assert ForkServer.one_begun.wait(TIMEOUT)  # type: ignore[attr-defined]
    [server] = begun
    assert server.pid is not None
    if attack == "sigkill":
        os.kill(server.pid, signal.SIGKILL)  # not reaped yet: its start thread reaps it
    else:
        os.kill(server.pid, signal.SIGSTOP)
        close_fork_servers()  # returns, the stopped zygote killed
    tree, _recorder = started.result(TIMEOUT)  # the launch spawned, a minute early
    with tree:
        assert not isinstance(incarnation(tree, "root/w1").process, ForkedProcess)
    assert server.started.wait(TIMEOUT)
    assert server.failure is not None
    assert server.process is not None
    assert server.process.returncode == -signal.SIGKILL


# -- a node killed while its zygote starts --------------------------------------------

NODE = """\
import sys, threading
sys.path.insert(0, {tests!r})
from node.worker_actors import Echo
import hedgerow as hr
from hedgerow.node import Worker, _forkserver, _forkserver_start
from hedgerow.node._forkserver_pool import fork_servers
_forkserver.START_PATIENCE = 0.2
_forkserver_start.ZYGOTE_MODULE = "test_zygote"
worker = Worker(hr.SupervisorSpec([hr.ChildSpec("a", Echo)]))
tree = hr.start_tree(hr.SupervisorSpec([hr.ChildSpec("w1", worker)]))
[server] = fork_servers()
print("ready", tree.lookup("root/w1").incarnation.pid, server.pid, flush=True)
threading.Event().wait()
"""
"""A node whose zygote is still starting (gated) when it prints its worker's pid
(spawned meanwhile) and its zygote's."""


@needs_fork_servers
def test_a_node_killed_while_its_zygote_starts_takes_zygote_and_worker_with_it(tmp_path):
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    (tmp_path / "test_zygote.py").write_text(GATED_ZYGOTE)
    tests = str(Path(__file__).resolve().parent.parent)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path]),
        "ZYGOTE_GATE": str(gate),
    }
    node = subprocess.Popen(
        [sys.executable, "-c", NODE.format(tests=tests)], stdout=subprocess.PIPE, text=True, env=env
    )
    pidfds: list[int] = []
    try:
        assert node.stdout is not None
        worker_pid, zygote_pid = (int(pid) for pid in node.stdout.readline().split()[1:])
        pidfds = [os.pidfd_open(worker_pid), os.pidfd_open(zygote_pid)]
        node.kill()
        node.wait(TIMEOUT)
        os.close(os.open(gate, os.O_WRONLY))  # the zygote goes on starting, for no node
        poller = select.poll()
        for pidfd in pidfds:
            poller.register(pidfd, select.POLLIN)
        left = set(pidfds)
        while left:
            ready = poller.poll(TIMEOUT * 1000)
            assert ready, f"still running: {left}"
            for fd, _ in ready:
                poller.unregister(fd)
                left.discard(fd)
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
        with contextlib.suppress(OSError):  # a gate still closed: open it
            os.close(os.open(gate, os.O_WRONLY | os.O_NONBLOCK))
        for pidfd in pidfds:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            os.close(pidfd)


# -- workers that exit in the middle of their lines ------------------------------------

HERE = Path(__file__).resolve().parent
BURST = 50


@pytest.fixture
def hostile(tmp_path: Path):
    """`hostile(mode)`: a Worker whose "python" runs tests/node/hostile_worker.py."""
    script = tmp_path / "python"
    script.write_text(
        f'#!/bin/sh\nexec {sys.executable} {HERE / "hostile_worker.py"} "$@"\n', encoding="utf-8"
    )
    script.chmod(0o755)

    def make(mode: str, lines: int = BURST) -> Worker:
        env = {
            "HOSTILE_MODE": mode,
            "HOSTILE_N": str(lines),
            "HOSTILE_FILE": str(tmp_path / "grandchild.pid"),
        }
        return echo_worker(python=str(script), env=env, start_method="spawn", ready_timeout=TIMEOUT)

    return make


@pytest.fixture
def thread_errors(monkeypatch):
    """Exceptions that escaped a thread of the node (there must be none)."""
    caught: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: caught.append(args.exc_value))
    return caught


@pytest.fixture
def switching_often():
    """Threads switch every microsecond: races between reader and exit show."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


@pytest.mark.parametrize("watch", ["pidfd", "waiting-thread"])
def test_a_worker_that_exits_as_it_writes_has_every_line_read_in_order(
    hostile, switching_often, monkeypatch, thread_errors, watch
):
    if watch == "waiting-thread":
        monkeypatch.delattr(os, "pidfd_open")
    spec = hr.SupervisorSpec([hr.ChildSpec("w", hostile("burst-exit"), restart="never")])
    threads = set(threading.enumerate())
    for _ in range(10):
        tree, recorder = start(spec)
        with tree:
            process = incarnation(tree, "root/w").process
            assert process is not None
            assert process.stdin is not None
            process.stdin.write(b"go\n")
            process.stdin.flush()
            failed = recorder.wait_for("failed", "root/w", timeout=TIMEOUT)
        assert isinstance(failed.reason, WorkerExited)
        assert failed.reason.returncode == 3
        seen = [path for kind, path in recorder.trail() if kind == "started"]
        assert [path for path in seen if path.startswith("root/w/a")] == [
            f"root/w/a{i}" for i in range(BURST)
        ]
    assert wait_threads_end(threads) == []
    assert thread_errors == []


def test_a_worker_that_writes_megabytes_and_exits_has_every_line_read(hostile):
    # More than the reader takes once the worker has exited (DRAIN_LIMIT): all of it was
    # written before the exit, so none of it counts.
    lines = 100_000  # 5.5 MB
    assert lines * len(b'{"type": "event", "kind": "started", "path": "w/a0"}\n') > DRAIN_LIMIT
    spec = hr.SupervisorSpec([hr.ChildSpec("w", hostile("burst-exit", lines), restart="never")])
    tree, recorder = start(spec)
    with tree:
        process = incarnation(tree, "root/w").process
        assert process is not None
        assert process.stdin is not None
        process.stdin.write(b"go\n")
        process.stdin.flush()
        failed = recorder.wait_for("failed", "root/w", timeout=TIMEOUT)
    assert isinstance(failed.reason, WorkerExited)
    assert failed.reason.returncode == 3
    seen = [path for kind, path in recorder.trail() if kind == "started"]
    assert [path for path in seen if path.startswith("root/w/a")] == [
        f"root/w/a{i}" for i in range(lines)
    ]


def open_fds() -> set[str]:
    return {fd.name for fd in Path("/proc/self/fd").iterdir()}


def test_a_grandchild_writing_on_after_its_worker_died_keeps_no_reader_nor_descriptor(
    hostile, tmp_path
):
    spec = hr.SupervisorSpec([hr.ChildSpec("w", hostile("grandchild-writer"), restart="never")])
    fds, threads = open_fds(), set(threading.enumerate())
    tree, recorder = start(spec)
    grandchild_pid = None
    try:
        with tree:
            actor = incarnation(tree, "root/w")
            recorder.wait_for("started", "root/w/a0", timeout=TIMEOUT)  # the grandchild writes
            grandchild_pid = int((tmp_path / "grandchild.pid").read_text())
            assert actor.pid is not None
            os.kill(actor.pid, signal.SIGKILL)
            failed = recorder.wait_for("failed", "root/w", timeout=TIMEOUT)
        assert isinstance(failed.reason, WorkerExited)
        assert failed.reason.signal == "SIGKILL"  # not a bad line of the grandchild's
        reader = actor._reader
        assert reader is not None
        reader.join(TIMEOUT)
        assert not reader.is_alive()
    finally:
        if grandchild_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(grandchild_pid, signal.SIGKILL)
    assert wait_threads_end(threads) == []
    assert open_fds() <= fds


@pytest.mark.parametrize("watch", ["pidfd", "waiting-thread"])
def test_restarts_after_sigkill_leak_no_descriptor_nor_thread(monkeypatch, thread_errors, watch):
    if watch == "waiting-thread":
        monkeypatch.delattr(os, "pidfd_open")
    spec = hr.SupervisorSpec(
        [hr.ChildSpec("w1", echo_worker(start_method="spawn"))],
        max_restarts=1000,
        period=1.0,
        backoff=False,
    )
    gc.collect()
    fds, threads = open_fds(), set(threading.enumerate())
    tree, recorder = start(spec)
    with tree:
        for count in range(2, 22):
            pid = incarnation(tree, "root/w1").pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            recorder.wait_for("started", "root/w1/a", count=count, timeout=TIMEOUT)
    assert wait_threads_end(threads) == []
    gc.collect()
    assert open_fds() <= fds
    assert thread_errors == []


@needs_fork_servers
def test_a_sandbox_that_refuses_pidfds_spawns_and_still_sees_the_exit_at_once(
    monkeypatch,
    grandchild,  # noqa: F811 - the fixture imported above
    caplog,
):
    # pidfd_open exists and fails (seccomp: ENOSYS, or EPERM): no zygote, and a spawned
    # worker's exit is told by a waiting thread, its child holding its pipes or not.
    file, grandchild_pid = grandchild

    def refused(pid: int, flags: int = 0) -> int:
        raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))

    monkeypatch.setattr(os, "pidfd_open", refused)
    spec = hr.SupervisorSpec([hr.ChildSpec("w1", forks_a_child(file, "forkserver"))])
    tree, recorder = start(spec)
    with tree:
        actor = incarnation(tree, "root/w1")
        assert not isinstance(actor.process, ForkedProcess)
        grandchild_pid()
        assert actor.pid is not None
        os.kill(actor.pid, signal.SIGKILL)
        failed = recorder.wait_for("failed", "root/w1", timeout=10.0)
        recorder.wait_for("started", "root/w1/forks", count=2, timeout=TIMEOUT)
        grandchild_pid()  # the second incarnation's child, killed at the end too
    assert isinstance(failed.reason, WorkerExited)
    assert failed.reason.signal == "SIGKILL"
    assert "no pidfd for the node" in caplog.text


@needs_fork_servers
def test_a_node_briefly_out_of_threads_fails_one_fork_and_forks_the_next(monkeypatch):
    server = fork_server(sys.executable, dict(os.environ), TIMEOUT)
    assert server is not None
    short: list[bool] = [True]

    class OnceNoThread(threading.Thread):
        def start(self) -> None:
            if short:  # the first thread the fork server starts now: its reader's
                short.clear()
                msg = "can't start new thread"
                raise RuntimeError(msg)
            super().start()

    only_there = types.SimpleNamespace(**vars(threading))
    only_there.Thread = OnceNoThread
    monkeypatch.setattr(_forkserver, "threading", only_there)
    args = ["--guid", "g", "--port", "1", "--config-timeout", f"{TIMEOUT:g}"]
    with pytest.raises(ForkServerError, match="no thread"):  # the launch spawns
        server.fork(args, env=dict(os.environ), cwd=str(Path.cwd()))
    # Threads again: the next fork is answered (a reader reads the zygote's answers).
    process = server.fork(args, env=dict(os.environ), cwd=str(Path.cwd()), timeout=TIMEOUT)
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.close()  # no config: it exits 3
    assert process.wait(TIMEOUT) == 3
    process.stdout.close()
