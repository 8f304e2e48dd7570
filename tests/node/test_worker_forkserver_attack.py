"""The fork server attacked: a hung zygote, a node with many descriptors, a zygote
short of descriptors, many restarts, the node's death. Every failure ends in a
working worker (or a spawn), and nothing is left behind."""

from __future__ import annotations

import contextlib
import gc
import json
import locale
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from helpers import start
from node.worker_actors import FACTS, Facts

import hedgerow as hr
from hedgerow._exceptions import WorkerExited
from hedgerow.node import (
    Worker,
    WorkerActor,
    _forked,
    _forkserver,
    _forkserver_pool,
    _forkserver_start,
    _start_method,
)
from hedgerow.node._forkserver import (
    STATUS_LOST,
    ForkedProcess,
    ForkServer,
)
from hedgerow.node._forkserver_pool import close_fork_servers, fork_servers
from hedgerow.node._wire import EXIT_BAD_CONFIG
from hedgerow.node._zygote import MAX_MESSAGE

pytestmark = [
    pytest.mark.skipif(not _start_method.FORK_SERVER_AVAILABLE, reason="fork servers: Linux only"),
    pytest.mark.timeout(60),
]

TIMEOUT = 20.0


@pytest.fixture(autouse=True)
def _own_zygotes():
    close_fork_servers()
    yield
    close_fork_servers()


def facts_worker(**options) -> Worker:
    return Worker(hr.SupervisorSpec([hr.ChildSpec("facts", Facts)]), **options)


def incarnation(tree: hr.Tree, path: str) -> WorkerActor:
    actor = tree.lookup(path).incarnation
    assert isinstance(actor, WorkerActor)
    return actor


def open_fds(server: ForkServer) -> int:
    return len(list(Path(f"/proc/{server.pid}/fd").iterdir()))


def zygote() -> ForkServer:
    [server] = fork_servers()
    return server


def exited(pid: int, timeout: float = TIMEOUT) -> bool:
    """Whether process `pid` (not necessarily a child of ours) ends within `timeout`."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        poller = select.poll()
        poller.register(pidfd)
        return bool(poller.poll(timeout * 1000))
    finally:
        os.close(pidfd)


@pytest.fixture
def sleeper():
    """A process that runs until its stdin closes; stopped by its pid."""
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    yield process
    if process.poll() is None:
        process.kill()
    process.wait()


def test_a_pidfd_past_fd_setsize_is_watched_all_the_same(sleeper):
    """A node with a thousand descriptors (hundreds of workers): `select.select` cannot
    take a pidfd numbered 1024 or more; the forked worker must still be seen to run."""
    high = os.dup2(os.pidfd_open(sleeper.pid), 1500, inheritable=False)
    process = ForkedProcess(sleeper.pid, high, ["hedgerow.worker"])
    process._lose()  # its zygote died: the pidfd tells its exit
    assert process.poll() is None  # it runs
    process.kill_group(signal.SIGTERM)  # its group (session) is the test's: not signalled
    assert process.poll() is None
    assert not process.status_lost
    assert sleeper.stdin is not None
    sleeper.stdin.close()
    assert process.wait(TIMEOUT) == STATUS_LOST
    assert process.status_lost


def test_a_hung_zygote_does_not_hide_the_death_of_a_worker_it_forked(monkeypatch):
    """SIGSTOP the zygote: it reaps nothing and reports nothing. A worker it forked dies:
    the node still sees it (through the pidfd), gives up on the zygote, and restarts
    the worker."""
    monkeypatch.setattr(_forked, "REPORT_TIMEOUT", 0.5)
    tree, recorder = start(hr.SupervisorSpec([hr.ChildSpec("w1", facts_worker())]))
    with tree:
        first = incarnation(tree, "root/w1")
        server = zygote()
        assert server.pid is not None
        os.kill(server.pid, signal.SIGSTOP)
        try:
            os.kill(first.pid, signal.SIGKILL)
            failed = recorder.wait_for("failed", "root/w1", timeout=TIMEOUT)
            recorder.wait_for("started", "root/w1/facts", count=2, timeout=TIMEOUT)
        finally:
            if server.process is not None and server.process.poll() is None:
                os.kill(server.pid, signal.SIGCONT)
        second = incarnation(tree, "root/w1")
        assert second.pid != first.pid
    assert isinstance(failed.reason, WorkerExited)
    assert first.returncode == STATUS_LOST
    assert server.exited.wait(TIMEOUT)  # killed: it answered nothing
    assert server.process is not None
    assert server.process.returncode == -signal.SIGKILL


def test_a_hung_zygote_fails_a_fork_in_fork_timeout_and_the_worker_is_spawned(monkeypatch, caplog):
    """SIGSTOP the zygote: a fork request waits `FORK_TIMEOUT` seconds (the module's,
    as set when the fork is asked), kills the zygote, and spawns the worker; a worker
    the zygote forked before goes on and stops normally."""
    monkeypatch.setattr(_forkserver, "FORK_TIMEOUT", 0.5)
    monkeypatch.setattr(_forkserver, "RESTART_AFTER", 1e9)  # no successor: spawns after
    tree, _recorder = start(hr.SupervisorSpec([hr.ChildSpec("w1", facts_worker())]))
    with tree:
        bystander = incarnation(tree, "root/w1")
        server = zygote()
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGSTOP)  # killed by the node (or the test)
        try:
            other, _ = start(hr.SupervisorSpec([hr.ChildSpec("w2", facts_worker())]))
        finally:
            if server.process.poll() is None:
                server.process.kill()
        with other:
            spawned = incarnation(other, "root/w2")
            assert not isinstance(spawned.process, ForkedProcess)
        assert "no answer to a fork within 0.5 s: killing it" in caplog.text
        assert server.exited.wait(TIMEOUT)
        assert server.process.returncode == -signal.SIGKILL
        assert bystander.process is not None
        assert bystander.process.poll() is None
    assert bystander.returncode == 0  # its exit line says so: the zygote could not


SO_SNDBUFFORCE = 32
"""Linux's: a send buffer past ``net.core.wmem_max`` (CAP_NET_ADMIN)."""


def enlarge(sock: socket.socket, size: int) -> None:
    """Make `sock`'s send buffer `size` bytes, as a system tuned so would; skip if not."""
    for option in (SO_SNDBUFFORCE, socket.SO_SNDBUF):
        with contextlib.suppress(PermissionError):
            sock.setsockopt(socket.SOL_SOCKET, option, size)
    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) < size:
        pytest.skip("cannot enlarge a socket's send buffer here")


def test_a_fork_request_too_long_for_the_zygote_is_spawned_and_harms_no_zygote(caplog, capfd):
    """An environment past what a zygote reads in one request (`MAX_MESSAGE`), on a
    system whose socket buffers are large enough to send it: the worker is spawned
    (with all of it), and the zygote goes on."""
    tree, _recorder = start(hr.SupervisorSpec([hr.ChildSpec("w1", facts_worker())]))
    with tree:
        server = zygote()
        assert server._sock is not None
        enlarge(server._sock, 4 * MAX_MESSAGE)
        big = {f"BIG_{i}": "x" * 100_000 for i in range(12)}
        big["FACTS_VAR"] = "big"
        other, _ = start(hr.SupervisorSpec([hr.ChildSpec("w2", facts_worker(env=big))]))
        with other:
            spawned = incarnation(other, "root/w2")
            assert not isinstance(spawned.process, ForkedProcess)
        assert fork_servers() == [server]
        assert server.alive
        assert "is longer than the fork server takes" in caplog.text


@pytest.mark.parametrize(
    "garbage", [b"not json", b"[1, 2]", b'{"op": "fork"', b'{"op": "what"}'], ids=repr
)
def test_a_garbled_request_is_dropped_and_the_zygote_goes_on(garbage):
    """Only its node can write to a zygote (a socketpair); still, a request it cannot
    read is dropped with its descriptors, and the next one is served."""
    tree, _recorder = start(hr.SupervisorSpec([hr.ChildSpec("w1", facts_worker())]))
    with tree:
        server = zygote()
        assert server._sock is not None
        read_end, write_end = os.pipe()
        socket.send_fds(server._sock, [garbage], [read_end, write_end, 2])
        os.close(read_end)
        fds_before = open_fds(server)
        other, _ = start(hr.SupervisorSpec([hr.ChildSpec("w2", facts_worker())]))
        with other:
            assert isinstance(incarnation(other, "root/w2").process, ForkedProcess)
        assert zygote() is server
        os.close(write_end)
    assert open_fds(server) <= fds_before  # it kept none


def facts_of(err: str, pid: int) -> dict:
    """The facts a `Facts` actor printed in worker `pid` (its stderr is the node's)."""
    for line in err.splitlines():
        if line.startswith(FACTS):
            facts = json.loads(line[len(FACTS) :])
            if facts["pid"] == pid:
                return facts  # type: ignore[no-any-return]
    pytest.fail(f"no facts from pid {pid} in: {err}")


def test_a_worker_forked_after_the_node_changed_its_environment_sees_the_new_one(
    tmp_path, monkeypatch, capfd
):
    """One zygote for both launches (nothing an interpreter reads at its start changed),
    yet each worker has the environment and directory of its launch; a ``PYTHON*``
    variable changed gets a zygote of its own."""
    monkeypatch.setenv("FACTS_VAR", "before")
    tree, _recorder = start(hr.SupervisorSpec([hr.ChildSpec("w1", facts_worker())]))
    with tree:
        before = incarnation(tree, "root/w1")
        server = zygote()
        monkeypatch.setenv("FACTS_VAR", "after")
        monkeypatch.chdir(tmp_path)
        other, _ = start(hr.SupervisorSpec([hr.ChildSpec("w2", facts_worker())]))
        with other:
            after = incarnation(other, "root/w2")
            assert fork_servers() == [server]
            monkeypatch.setenv("PYTHONHASHSEED", "7")  # read at start only
            third, _ = start(hr.SupervisorSpec([hr.ChildSpec("w3", facts_worker())]))
            with third:
                assert isinstance(incarnation(third, "root/w3").process, ForkedProcess)
                assert len(fork_servers()) == 2  # the first and a new one
        err = capfd.readouterr().err
    one, other_facts = facts_of(err, before.pid), facts_of(err, after.pid)
    assert (one["env"], other_facts["env"]) == ("before", "after")
    assert Path(other_facts["cwd"]) == tmp_path
    assert one["ppid"] == other_facts["ppid"] == server.pid


OUT_OF_DESCRIPTORS = """
import json, os, resource, sys
from hedgerow.node._forkserver import ForkServerError
from hedgerow.node._forkserver_pool import close_fork_servers, fork_server

server = fork_server(sys.executable, dict(os.environ), 30)
used = {int(fd) for fd in os.listdir("/proc/self/fd")}
free = [fd for fd in range(4096) if fd not in used]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (free[1] + 1, hard))  # room for one pipe
try:
    server.fork(["--guid", "g"], env=dict(os.environ), cwd=os.getcwd())
    error = None
except ForkServerError as exc:
    error = str(exc)
except OSError as exc:
    error = "not a ForkServerError: " + repr(exc)
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
leaked = sorted({int(fd) for fd in os.listdir("/proc/self/fd")} - used)
print(json.dumps({"error": error, "leaked": leaked, "pending": len(server._pending)}))
close_fork_servers()
"""


def test_a_node_out_of_descriptors_gets_a_fork_server_error_and_leaks_none():
    """RLIMIT_NOFILE lowered in a node (a subprocess): its first pipe opens, the second
    cannot. The launch is told why (and spawns, which fails as it would have), and the
    pipe that opened is closed: a node short of descriptors does not lose more."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    node = subprocess.Popen(
        [sys.executable, "-c", OUT_OF_DESCRIPTORS], stdout=subprocess.PIPE, env=env
    )
    try:
        out, _ = node.communicate(timeout=TIMEOUT)
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
    assert node.returncode == 0
    result = json.loads(out)
    assert result["error"] == "cannot open the worker's pipes: [Errno 24] Too many open files"
    assert result["leaked"] == []
    assert result["pending"] == 0


def test_closing_a_hung_zygote_kills_it_in_fork_timeout(monkeypatch):
    """A SIGSTOPped zygote does not leave on its socket's end: `close` waits
    `FORK_TIMEOUT` seconds for it, then kills it, rather than wait for ever."""
    monkeypatch.setattr(_forkserver, "FORK_TIMEOUT", 0.5)
    tree, _recorder = start(hr.SupervisorSpec([hr.ChildSpec("w1", facts_worker())]))
    with tree:
        server = zygote()
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGSTOP)
        closer = threading.Thread(target=server.close, daemon=True)
        closer.start()
        closer.join(TIMEOUT)
        try:
            assert not closer.is_alive()
        finally:
            if server.process.poll() is None:
                server.process.kill()
                closer.join(TIMEOUT)
        assert server.process.returncode == -signal.SIGKILL
        assert server.exited.is_set()


STDERR_CLOSED = """
import json, os, sys
os.close(2)  # a node started with its stderr closed (as some daemonizers leave it)
sys.path.insert(0, sys.argv[1])
import hedgerow as hr
from hedgerow.node import Worker
from hedgerow.node._forkserver_pool import fork_servers
from node.worker_actors import Echo

if sys.argv[2] == "file":
    log = open(os.devnull, "w")  # takes descriptor 2 (close-on-exec)
spec = hr.SupervisorSpec([hr.ChildSpec("w1", Worker(hr.SupervisorSpec([hr.ChildSpec("a", Echo)])))])
with hr.start_tree(spec) as tree:
    pid = tree.lookup("root/w1").incarnation.pid
    [server] = fork_servers()
    def fds(pid):
        found = {}
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                found[fd] = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                pass
        return found
    print(json.dumps({"worker": fds(pid), "zygote": fds(server.pid)}), flush=True)
"""


@pytest.mark.parametrize("on_2", ["file", "nothing"])
def test_a_node_without_stderr_gives_neither_zygote_nor_worker_a_stray_descriptor_2(on_2):
    """A node whose descriptor 2 is closed: descriptor 2 is whatever the node opens next
    (a file, or the zygote's socket), close-on-exec. The zygote must get /dev/null,
    so that its pidfd of the node does not take number 2, which a worker's stderr
    replaces (the worker then watched its stderr for its node's death); a worker
    gets /dev/null too, as a spawned one gets nothing, never the node's file or socket."""
    tests = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    node = subprocess.Popen(
        [sys.executable, "-c", STDERR_CLOSED, tests, on_2], stdout=subprocess.PIPE, env=env
    )
    try:
        out, _ = node.communicate(timeout=TIMEOUT)
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
    assert node.returncode == 0
    fds = json.loads(out)
    assert "anon_inode:[pidfd]" in fds["worker"].values(), fds
    assert fds["zygote"]["2"] == "/dev/null", fds
    assert fds["worker"]["2"] == "/dev/null", fds
    assert not [fd for fd, target in fds["worker"].items() if "socket" in target], fds


def test_forks_asked_from_many_threads_at_once_are_all_answered(monkeypatch):
    """Eight threads fork 15 workers each from one zygote, switching threads every
    microsecond: each gets its own worker and exit status, and afterwards neither the
    node nor the zygote holds a descriptor more, and no reader thread is left."""
    server = _forkserver_pool.fork_server(sys.executable, dict(os.environ), TIMEOUT)
    assert server is not None
    gc.collect()  # what earlier tests left to the collector closes its descriptors now
    node_fds = len(list(Path("/proc/self/fd").iterdir()))
    zygote_fds = open_fds(server)
    codes: list[int] = []
    errors: list[BaseException] = []
    pids: set[int] = set()

    def forks() -> None:
        for _ in range(15):
            try:
                process = server.fork(["--guid", "g"], env=dict(os.environ), cwd=str(Path.cwd()))
                pids.add(process.pid)
                assert process.stdin is not None
                assert process.stdout is not None
                process.stdin.close()  # no config: it exits at once
                codes.append(process.wait(TIMEOUT))
                process.stdout.close()
            except BaseException as exc:
                errors.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=forks) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT * 2)
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    assert len(pids) == len(codes) == 8 * 15
    assert set(codes) == {EXIT_BAD_CONFIG}
    reader = server._reader
    if reader is not None:
        reader.join(TIMEOUT)
        assert not reader.is_alive()
    gc.collect()
    assert len(list(Path("/proc/self/fd").iterdir())) == node_fds
    assert open_fds(server) == zygote_fds
    assert fork_servers() == [server]


def test_a_node_killed_takes_its_zygote_and_forked_workers_with_it():
    """SIGKILL a node (a subprocess with two forked workers): its zygote leaves, and so
    do its workers, as spawned ones would; none is left behind."""
    node_script = Path(__file__).resolve().parent / "worker_node.py"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    node = subprocess.Popen(
        [sys.executable, str(node_script)], stdout=subprocess.PIPE, text=True, env=env
    )
    pidfds: list[int] = []
    try:
        assert node.stdout is not None
        workers = [int(pid) for pid in node.stdout.readline().split()[1:]]
        assert len(workers) == 2
        zygotes = {parent_of(pid) for pid in workers}
        assert node.pid not in zygotes  # forked, not spawned
        assert {parent_of(pid) for pid in zygotes} == {node.pid}
        pidfds = [os.pidfd_open(pid) for pid in [*workers, *zygotes]]
        node.kill()
        node.wait(TIMEOUT)
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
        for pidfd in pidfds:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            os.close(pidfd)


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.mark.parametrize(
    ("env", "error"),
    [
        ({"A=B": "x"}, "illegal environment variable name"),
        ({"BAD": "a\0b"}, "embedded null byte"),
        ({"BAD\0": "x"}, "embedded null byte"),
        ({"BAD": 1}, "expected str, bytes or os.PathLike object, not int"),
    ],
    ids=["equals", "null-value", "null-name", "not-text"],
)
def test_an_environment_a_spawn_refuses_is_refused_by_a_fork_the_same_way(env, error):
    """`subprocess.Popen` refuses such an environment (`ValueError`, `TypeError`): so
    does a fork from a running zygote, rather than a worker that dies in a traceback."""
    tree, _recorder = start(hr.SupervisorSpec([hr.ChildSpec("w1", facts_worker())]))
    with tree:
        server = zygote()
        for method in ("spawn", "forkserver"):
            worker = facts_worker(env=env, start_method=method)
            spec = hr.SupervisorSpec([hr.ChildSpec("w2", worker, restart="never")])
            with pytest.raises(hr.StartError) as info:
                hr.start_tree(spec)
            cause = info.value.cause.cause
            assert isinstance(cause, ValueError | TypeError), (method, cause)
            assert str(cause) == error
        assert fork_servers() == [server]


def test_an_environment_variable_without_a_name_starts_a_forked_worker_as_a_spawned_one():
    """`subprocess.Popen` passes ``=x`` on; a forked worker drops it, rather than die."""
    env = {"": "x"}
    tree, _recorder = start(hr.SupervisorSpec([hr.ChildSpec("w1", facts_worker())]))
    with tree:
        for method in ("spawn", "forkserver"):
            worker = facts_worker(env=env, start_method=method)
            other, _ = start(hr.SupervisorSpec([hr.ChildSpec("w2", worker, restart="never")]))
            with other:
                assert incarnation(other, "root/w2").pid > 0


LOCALE = "LOCALE "


class Locale(hr.Actor):
    """Prints what its interpreter took from the locale at its start."""

    def on_start(self) -> None:
        facts = {
            "pid": os.getpid(),
            "utf8_mode": sys.flags.utf8_mode,
            "ctype": locale.setlocale(locale.LC_CTYPE),
            "encoding": locale.getpreferredencoding(False),
        }
        print(LOCALE + json.dumps(facts), file=sys.stderr, flush=True)  # noqa: T201


@pytest.mark.parametrize("variable", ["LC_ALL", "LC_CTYPE", "LANG"])
def test_a_worker_forked_under_another_locale_has_it_as_a_spawned_one_does(
    variable, monkeypatch, capfd
):
    """The locale is read once, when an interpreter starts (and decides UTF-8 mode): a
    worker whose environment names another locale than its zygote's gets a zygote
    started under it, as a spawned worker gets an interpreter started under it."""
    for name in ("LC_ALL", "LC_CTYPE", "LANG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    tree, _recorder = start(hr.SupervisorSpec([hr.ChildSpec("w1", facts_worker())]))
    with tree:
        capfd.readouterr()
        workers = [
            hr.ChildSpec(
                method,
                Worker(
                    hr.SupervisorSpec([hr.ChildSpec("locale", Locale)]),
                    env={variable: "C"},
                    start_method=method,
                ),
            )
            for method in ("spawn", "forkserver")
        ]
        other, _ = start(hr.SupervisorSpec(workers))
        with other:
            spawned = incarnation(other, "root/spawn")
            forked = incarnation(other, "root/forkserver")
            assert isinstance(forked.process, ForkedProcess)
            err = capfd.readouterr().err
    reports = {}
    for line in err.splitlines():
        if line.startswith(LOCALE):
            report = json.loads(line[len(LOCALE) :])
            reports[report.pop("pid")] = report
    assert reports[forked.pid] == reports[spawned.pid], reports


def test_a_zygote_that_a_sitecustomize_gave_a_thread_refuses_to_serve_once(
    tmp_path, monkeypatch, caplog
):
    """A ``sitecustomize`` (an agent, a profiler) that starts a thread makes a zygote
    unsafe to fork: it says so once and leaves, and the workers are spawned, rather
    than a zygote kept running that fails every launch with a warning."""
    (tmp_path / "sitecustomize.py").write_text(
        "import threading\nthreading.Thread(target=threading.Event().wait, daemon=True).start()\n"
    )
    path = os.pathsep.join([str(tmp_path), *os.environ.get("PYTHONPATH", "").split(os.pathsep)])
    monkeypatch.setenv("PYTHONPATH", path)
    spec = hr.SupervisorSpec([hr.ChildSpec(f"w{i}", facts_worker()) for i in range(3)])
    tree, _recorder = start(spec)
    with tree:
        for i in range(3):
            assert not isinstance(incarnation(tree, f"root/w{i}").process, ForkedProcess)
        assert fork_servers() == []
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1, warnings
    assert "the fork server did not start" in warnings[0]


def test_a_worker_python_that_is_a_wrapper_script_still_gets_a_zygote(tmp_path, caplog):
    """``python`` may be a shell script that runs the interpreter as its child (no
    ``exec``): the zygote's parent is then the script, not the node. It must serve
    all the same, and a zygote abandoned (killed) goes with its script."""
    wrapper = tmp_path / "python"
    wrapper.write_text(f'#!/bin/sh\n"{sys.executable}" "$@"\nexit $?\n')
    wrapper.chmod(0o755)
    tree, _recorder = start(
        hr.SupervisorSpec([hr.ChildSpec("w1", facts_worker(python=str(wrapper)))])
    )
    with tree:
        assert isinstance(incarnation(tree, "root/w1").process, ForkedProcess), caplog.text
        server = zygote()
        assert server.process is not None
        [interpreter] = [
            int(pid)
            for pid in Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
            .read_text()
            .split()
        ]
        pidfd = os.pidfd_open(interpreter)
        try:
            os.kill(interpreter, signal.SIGSTOP)  # hung: only a kill ends it
            server._abandon("the test")
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            assert poller.poll(TIMEOUT * 1000), "the zygote outlived its script"
        finally:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            os.close(pidfd)


def children_of(pid: int) -> list[tuple[int, str]]:
    """The children of `pid` and their states (``Z``: a zombie)."""
    found = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        stat = Path(f"/proc/{child}/stat").read_text()
        found.append((int(child), stat.rsplit(")", 1)[1].split()[0]))
    return found


def test_a_hundred_restarts_leak_no_descriptor_and_leave_no_zombie():
    """SIGKILL a forked worker a hundred times: afterwards the node and its zygote hold
    the descriptors they held before, and the zygote's only child is the live worker."""
    spec = hr.SupervisorSpec(
        [hr.ChildSpec("w1", facts_worker())], max_restarts=1000, period=1.0, backoff=False
    )
    tree, recorder = start(spec)
    with tree:
        server = zygote()
        gc.collect()
        node_fds, zygote_fds = len(list(Path("/proc/self/fd").iterdir())), open_fds(server)
        for count in range(2, 102):
            os.kill(incarnation(tree, "root/w1").pid, signal.SIGKILL)
            recorder.wait_for("started", "root/w1/facts", count=count, timeout=TIMEOUT)
        gc.collect()
        assert len(list(Path("/proc/self/fd").iterdir())) == node_fds
        assert open_fds(server) == zygote_fds
        [(child, state)] = children_of(server.pid)
        assert child == incarnation(tree, "root/w1").pid
        assert state != "Z"
        assert fork_servers() == [server]


def test_a_busy_node_gives_its_workers_a_pidfd_that_select_can_take(capfd):
    """A node with over a thousand descriptors passes its zygote a pidfd of itself
    numbered past FD_SETSIZE; the worker watches it with `select` (its config reader):
    the zygote moves it down first, else the worker takes its node for gone."""
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        tree, _recorder = start(hr.SupervisorSpec([hr.ChildSpec("w1", facts_worker())]))
    finally:
        for fd in held:
            os.close(fd)
    with tree:
        actor = incarnation(tree, "root/w1")
        assert isinstance(actor.process, ForkedProcess)
        facts = facts_of(capfd.readouterr().err, actor.pid)
    [pidfd] = [int(fd) for fd, target in facts["fds"].items() if "pidfd" in target]
    assert pidfd < 1024


def test_a_zygote_that_could_not_start_is_tried_again_after_retry_after(monkeypatch, caplog):
    """A zygote killed before it was ready (an OOM killer, a transient limit) does not
    make a long-lived node spawn for the rest of its life: a launch `RETRY_AFTER`
    seconds later tries again; launches sooner spawn without trying (nor warning)."""
    monkeypatch.setattr(_forkserver_start, "ZYGOTE_MODULE", "hedgerow.node._no_such_zygote")
    monkeypatch.setattr(_forkserver, "RETRY_AFTER", 1e9)
    spec = hr.SupervisorSpec([hr.ChildSpec("w1", facts_worker())])
    for _ in range(2):
        tree, _recorder = start(spec)
        with tree:
            assert not isinstance(incarnation(tree, "root/w1").process, ForkedProcess)
    assert caplog.text.count("the fork server did not start") == 1
    monkeypatch.setattr(_forkserver_start, "ZYGOTE_MODULE", "hedgerow.node._zygote")
    monkeypatch.setattr(_forkserver, "RETRY_AFTER", 0.0)  # "later" is now
    tree, _recorder = start(spec)
    with tree:
        assert isinstance(incarnation(tree, "root/w1").process, ForkedProcess)


def test_a_worker_lost_by_its_zygote_closes_its_pidfd_once_its_exit_is_known():
    """A forked worker whose zygote died: once the pidfd told its exit, it is closed,
    not left to the garbage collector (an event kept by a recorder keeps the worker's
    actor, and so its process, for ever: one descriptor per restart)."""
    server = _forkserver_pool.fork_server(sys.executable, dict(os.environ), TIMEOUT)
    assert server is not None
    assert server.process is not None
    process = server.fork(["--guid", "g"], env=dict(os.environ), cwd=str(Path.cwd()))
    server.process.kill()
    assert server.exited.wait(TIMEOUT)  # the zygote is gone: its workers know it
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.close()  # no config: it exits
    assert process.wait(TIMEOUT) == STATUS_LOST
    process.stdout.close()
    assert not process._close_pidfd.alive


def test_a_zygote_out_of_descriptors_refuses_a_fork_and_serves_the_next(caplog):
    """RLIMIT_NOFILE of the zygote lowered (prlimit) so that a request's three
    descriptors do not fit: it says so and keeps none; the launch is spawned; with the
    limit raised again, the next launch is forked by the same zygote."""
    tree, _recorder = start(hr.SupervisorSpec([hr.ChildSpec("w1", facts_worker())]))
    with tree:
        server = zygote()
        assert server.pid is not None
        used = {int(entry.name) for entry in Path(f"/proc/{server.pid}/fd").iterdir()}
        free = [fd for fd in range(4096) if fd not in used]
        limits = resource.prlimit(server.pid, resource.RLIMIT_NOFILE)
        resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (free[1] + 1, limits[1]))
        try:
            other, _ = start(hr.SupervisorSpec([hr.ChildSpec("w2", facts_worker())]))
            with other:
                assert not isinstance(incarnation(other, "root/w2").process, ForkedProcess)
        finally:
            resource.prlimit(server.pid, resource.RLIMIT_NOFILE, limits)
        assert "it got 2 of a request's 3 descriptors (out of descriptors?)" in caplog.text
        assert {int(entry.name) for entry in Path(f"/proc/{server.pid}/fd").iterdir()} == used
        third, _ = start(hr.SupervisorSpec([hr.ChildSpec("w3", facts_worker())]))
        with third:
            assert isinstance(incarnation(third, "root/w3").process, ForkedProcess)
        assert zygote() is server
