"""Worker processes supervised as actors: launch, events, failures, stops, no orphans, ports."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import start
from node.worker_actors import Crasher, Echo, IgnoresStop, Quits, SlowStart

import hedgerow as hr
from hedgerow._exceptions import RemoteError, WorkerExited
from hedgerow.node import PortAllocator, Worker, WorkerActor
from hedgerow.node._ports import NoFreePort
from hedgerow.node._wire import EXIT_BAD_CONFIG, EXIT_NO_CONFIG, EXIT_OK
from hedgerow.supervision._treefile import tree_to_data
from hedgerow.testing import EventRecorder

HERE = Path(__file__).parent
TIMEOUT = 20.0
ORPHAN_BOUND = 10.0
"""Seconds within which the workers of a SIGKILLed node must have exited."""


def hosted(*children: hr.ChildSpec, **options) -> hr.SupervisorSpec:
    return hr.SupervisorSpec(list(children), **options)


def echo_worker(**options) -> Worker:
    return Worker(hosted(hr.ChildSpec("a", Echo), hr.ChildSpec("b", Echo)), **options)


def incarnation(tree: hr.Tree, path: str) -> WorkerActor:
    actor = tree.lookup(path).incarnation
    assert isinstance(actor, WorkerActor)
    return actor


# -- other processes' pids ------------------------------------------------------------


def process_identity(pid: int) -> str | None:
    """The start time of a live process (None if gone or a zombie), so that a
    reused pid is never taken for the process we saw."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat.rpartition(")")[2].split()
    if fields[0] in ("Z", "X"):
        return None  # exited; an orphan's zombie waits for a reaper that may never come
    return fields[19]


def wait_gone(seen: dict[int, str | None], timeout: float) -> float:
    """Wait until none of the processes seen (pid: identity) is alive; the time taken."""
    started = time.monotonic()
    deadline = started + timeout
    watched: dict[int, int] = {}
    try:
        for pid, ident in seen.items():
            try:
                fd = os.pidfd_open(pid)  # readable once that process has exited
            except ProcessLookupError:
                continue
            if ident and process_identity(pid) == ident:  # not a reused pid
                watched[pid] = fd
            else:
                os.close(fd)
        while watched:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select(list(watched.values()), [], [], max(remaining, 0))
            if not ready:
                pytest.fail(f"processes {sorted(watched)} still alive after {timeout} s")
            for pid, fd in list(watched.items()):
                if fd in ready:
                    os.close(watched.pop(pid))
        return time.monotonic() - started
    finally:
        for fd in watched.values():
            os.close(fd)


def kill_left(seen: dict[int, str | None]) -> None:
    for pid, ident in seen.items():
        if ident and process_identity(pid) == ident:
            os.kill(pid, signal.SIGKILL)


# -- a worker in a tree ----------------------------------------------------------------


def test_a_worker_hosts_its_tree_and_its_events_appear_under_its_path():
    tree, recorder = start(hosted(hr.ChildSpec("w1", echo_worker())))
    try:
        actor = incarnation(tree, "root/w1")
        started = recorder.wait_for("started", "root/w1")
        assert started.info == {"pid": actor.pid, "port": actor.port, "guid": actor.guid}
        recorder.wait_for("started", "root/w1/b")
        assert recorder.trail()[:3] == [
            ("started", "root/w1"),
            ("started", "root/w1/a"),
            ("started", "root/w1/b"),
        ]
    finally:
        tree.stop(TIMEOUT)
    # SIGTERM: the hosted tree stops in reverse order, then the worker exits 0.
    assert recorder.trail()[3:] == [
        ("started", "root"),
        ("stopped", "root/w1/b"),
        ("stopped", "root/w1/a"),
        ("shutdown", "root/w1"),
        ("stopped", "root/w1"),
        ("shutdown", "root"),
        ("stopped", "root"),
    ]
    assert actor.returncode == 0
    assert process_identity(actor.pid) is None


def test_a_worker_counts_as_started_once_its_trees_start_events_are_published(monkeypatch):
    # The worker actor's first message runs only once the root has started (a
    # slow thread, as on a loaded CI machine): its tree's events must not wait for it.
    root_started = threading.Event()
    first_message = WorkerActor._started

    def late(self: WorkerActor) -> None:
        root_started.wait(TIMEOUT)
        first_message(self)

    monkeypatch.setattr(WorkerActor, "_started", late)
    events = hr.EventStream()
    root = (hr.EventKind.STARTED, "root")
    events.subscribe(lambda e: (e.kind, e.path) == root and root_started.set())
    recorder = EventRecorder(events)
    tree = hr.start_tree(hosted(hr.ChildSpec("w1", echo_worker())), events=events)
    try:
        recorder.wait_for("started", "root")
        assert recorder.trail()[:4] == [
            ("started", "root/w1"),
            ("started", "root/w1/a"),
            ("started", "root/w1/b"),
            ("started", "root"),
        ]
    finally:
        tree.stop(TIMEOUT)


def test_a_failure_in_the_worker_is_reported_with_its_type_and_traceback():
    container = hosted(hr.ChildSpec("c", Crasher, restart="never"))
    tree, recorder = start(hosted(hr.ChildSpec("w1", Worker(container))))
    with tree:
        failed = recorder.wait_for("failed", "root/w1/c")
    assert isinstance(failed.reason, RemoteError)
    assert (failed.reason.remote_type, failed.reason.message) == ("RuntimeError", "boom")
    assert "raise RuntimeError" in failed.traceback


def test_a_worker_whose_tree_gives_up_exits_with_status_1_and_fails():
    container = hosted(hr.ChildSpec("c", Crasher))
    tree, recorder = start(hosted(hr.ChildSpec("w1", Worker(container), restart="never")))
    with tree:
        failed = recorder.wait_for("failed", "root/w1", timeout=TIMEOUT)
    assert recorder.matching("intensity_exceeded", "root/w1")  # as a nested supervisor's
    assert isinstance(failed.reason, WorkerExited)
    assert failed.reason.status == 1
    assert "the tree failed: IntensityExceeded: supervisor 'w1' gave up" in str(failed.reason)


def test_sigkill_fails_the_worker_and_it_is_restarted_with_a_new_pid(record_property):
    tree, recorder = start(hosted(hr.ChildSpec("w1", echo_worker())))
    with tree:
        first = incarnation(tree, "root/w1")
        killed_at = time.monotonic()
        os.kill(first.pid, signal.SIGKILL)
        failed = recorder.wait_for("failed", "root/w1", timeout=TIMEOUT)
        restarted = recorder.wait_for("restarted", "root/w1", timeout=TIMEOUT)
        recovery = time.monotonic() - killed_at
        second = incarnation(tree, "root/w1")
        recorder.wait_for("started", "root/w1/b", count=2)
    record_property("worker_recovery_s", round(recovery, 3))
    print(f"worker recovery after SIGKILL: {recovery * 1000:.0f} ms")  # noqa: T201
    assert isinstance(failed.reason, WorkerExited)
    assert failed.reason.signal == "SIGKILL"
    assert str(failed.reason) == f"worker w1 (pid {first.pid}) killed by SIGKILL"
    assert first.returncode == -signal.SIGKILL
    assert restarted.info["pid"] == second.pid != first.pid
    assert restarted.info["port"] == first.port  # a restart gets its port back
    assert restarted.info["guid"] != first.guid


def test_a_worker_that_ignores_sigterm_is_killed_after_its_shutdown_timeout(caplog):
    container = hosted(hr.ChildSpec("stuck", IgnoresStop, shutdown="infinity"))
    tree, recorder = start(hosted(hr.ChildSpec("w1", Worker(container), shutdown=1.0)))
    began = time.monotonic()
    try:
        actor = incarnation(tree, "root/w1")
        began = time.monotonic()
    finally:
        tree.stop(TIMEOUT)
    took = time.monotonic() - began
    assert actor.returncode == -signal.SIGKILL
    assert 0.7 <= took < 5.0
    assert ("stopped", "root/w1") in recorder.trail()
    assert not recorder.matching("abandoned")
    assert "killing it with SIGKILL" in caplog.text


def test_brutal_kill_kills_the_worker_at_once():
    tree, recorder = start(hosted(hr.ChildSpec("w1", echo_worker(), shutdown="brutal_kill")))
    try:
        actor = incarnation(tree, "root/w1")
    finally:
        tree.stop(TIMEOUT)
    stopped = recorder.wait_for("stopped", "root/w1")
    assert stopped.reason == hr.KILLED  # the supervisor did not wait: nor did the worker
    assert actor.process is not None
    assert actor.process.wait(TIMEOUT) == -signal.SIGKILL


def test_a_worker_whose_tree_ends_normally_stops_normally():
    container = hosted(
        hr.ChildSpec("q", Quits, restart="never", significant=True),
        shutdown_policy="shutdown-on-last-component-stopped",
    )
    spec = hosted(hr.ChildSpec("w1", Worker(container), restart="failed"))
    tree, recorder = start(spec)
    with tree:
        stopped = recorder.wait_for("stopped", "root/w1", timeout=TIMEOUT)
        assert stopped.reason == hr.NORMAL
        assert not recorder.matching("restarted", "root/w1")


def test_a_worker_that_exits_before_ready_fails_the_start_with_its_reason():
    # The node imports node.worker_actors (tests/ is on its path); the worker may not.
    spec = hosted(hr.ChildSpec("w1", echo_worker(pythonpath=[]), restart="never"))
    with pytest.raises(hr.StartError) as info:
        hr.start_tree(spec)
    cause = info.value.cause.cause  # the tree's StartError, then the root's
    assert isinstance(cause, WorkerExited)
    assert cause.status == EXIT_BAD_CONFIG
    assert "bad config: key 'container'" in str(cause)
    assert (
        "supervisor.children[0].start = 'node.worker_actors:Echo': "
        "cannot import module 'node.worker_actors'"
    ) in str(cause)


def test_a_worker_not_ready_in_time_is_killed_and_fails_the_start():
    worker = Worker(hosted(hr.ChildSpec("slow", SlowStart)), ready_timeout=0.5)
    with pytest.raises(hr.StartError) as info:
        hr.start_tree(hosted(hr.ChildSpec("w1", worker, restart="never")))
    cause = info.value.cause.cause
    assert isinstance(cause, WorkerExited)
    assert cause.signal == "SIGKILL"
    assert "not ready within 0.5 s (ready_timeout)" in str(cause)


def wait_for_spare(worker: Worker, path: str, other_than: int | None = None) -> int:
    pid = worker.wait_for_spare(path, other_than, timeout=TIMEOUT)
    assert pid is not None, f"no spare for {path} within {TIMEOUT} s"
    return pid


def test_a_standby_worker_restarts_in_its_spare_and_leaves_none_behind(record_property):
    worker = echo_worker(standby=True)
    tree, recorder = start(hosted(hr.ChildSpec("w1", worker)))
    seen: dict[int, str | None] = {}
    try:
        first = incarnation(tree, "root/w1")
        spare = wait_for_spare(worker, "root/w1")
        seen[spare] = process_identity(spare)
        killed_at = time.monotonic()
        os.kill(first.pid, signal.SIGKILL)
        restarted = recorder.wait_for("restarted", "root/w1", timeout=TIMEOUT)
        record_property("standby_recovery_s", round(time.monotonic() - killed_at, 3))
        assert restarted.info["pid"] == spare  # the spare took over
        next_spare = wait_for_spare(worker, "root/w1", other_than=spare)
        seen[next_spare] = process_identity(next_spare)
    finally:
        tree.stop(TIMEOUT)
        kill_left(seen)
    assert worker.spares() == {}
    wait_gone(seen, 0.5)  # killed and reaped by the node as the worker stopped


def test_an_unclaimed_spare_is_killed_after_the_config_timeout():
    worker = echo_worker(standby=True, config_timeout=0.5)
    tree, recorder = start(hosted(hr.ChildSpec("w1", worker, restart="never")))
    seen: dict[int, str | None] = {}
    try:
        spare = wait_for_spare(worker, "root/w1")
        seen[spare] = process_identity(spare)
        os.kill(incarnation(tree, "root/w1").pid, signal.SIGKILL)
        recorder.wait_for("failed", "root/w1", timeout=TIMEOUT)
        wait_gone(seen, TIMEOUT)  # no restart came to claim it
        assert worker.spares() == {}
    finally:
        tree.stop(TIMEOUT)
        kill_left(seen)


def test_two_workers_never_share_a_port():
    ports = PortAllocator(18100, 18199)
    spec = hosted(
        hr.ChildSpec("w1", echo_worker(ports=ports)),
        hr.ChildSpec("w2", echo_worker(ports=ports)),
    )
    tree, _recorder = start(spec)
    with tree:
        one, two = incarnation(tree, "root/w1"), incarnation(tree, "root/w2")
        assert one.port != two.port
        assert ports.held() == {"root/w1": one.port, "root/w2": two.port}
    assert ports.held() == {}


def test_a_worker_spec_must_travel_as_json():
    class Local(hr.Actor):
        pass

    with pytest.raises(hr.SpecError, match="start"):
        Worker(hosted(hr.ChildSpec("x", Local)))
    with pytest.raises(hr.SpecError, match="management"):
        Worker(hosted(hr.ChildSpec("x", Echo)), management={"key": object()})
    with pytest.raises(hr.SpecError, match="container"):
        Worker(hr.ChildSpec("x", Echo))  # type: ignore[arg-type]


# -- the worker process on its own --------------------------------------------------------


def launch(*, config_timeout: float = 10.0, guid: str = "g1", port: int = 18999):
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hedgerow.worker",
            "--guid",
            guid,
            "--port",
            str(port),
            "--config-timeout",
            str(config_timeout),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def config_line(**changes) -> bytes:
    config = {
        "guid": "g1",
        "port": 18999,
        "name": "w",
        "container": tree_to_data(hosted(hr.ChildSpec("a", Echo))),
        "pythonpath": [str(HERE.parent)],
        "orphan_timeout": 5.0,
        **changes,
    }
    return json.dumps(config).encode() + b"\n"


def lines_of(out: bytes) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def read_until_ready(process: subprocess.Popen[bytes]) -> dict:
    assert process.stdout is not None
    for raw in process.stdout:
        line = json.loads(raw)
        if line["type"] == "ready":
            return line
    pytest.fail("the worker ended before it was ready")


@pytest.fixture
def worker_process():
    """Start `python -m hedgerow.worker` processes; each is killed (by pid) at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def make(**options) -> subprocess.Popen[bytes]:
        process = launch(**options)
        started.append(process)
        return process

    yield make
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()
        for pipe in (process.stdin, process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()


def test_no_config_in_time_exits_with_status_3_and_says_so(worker_process):
    process = worker_process(config_timeout=0.3)
    assert process.wait(TIMEOUT) == EXIT_NO_CONFIG  # stdin stays open: no config, no EOF
    out, err = process.communicate()
    assert b"no config on stdin within 0.3 s (--config-timeout)" in err
    assert lines_of(out)[-1]["status"] == EXIT_NO_CONFIG


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"{not json\n", "bad config: the config line is not JSON"),
        (b"[1, 2]\n", "the config line is [1, 2]: expected a JSON object"),
        (config_line(container=None).replace(b'"container":null,', b""), "key 'container'"),
        (config_line(port=1), "key 'port' = 1: expected 18999 (--port)"),
        (
            config_line(
                container={"supervisor": {"children": [{"id": "x", "start": "no_such_mod:Thing"}]}}
            ),
            (
                "key 'container': supervisor.children[0].start = 'no_such_mod:Thing': "
                "cannot import module 'no_such_mod'"
            ),
        ),
        (config_line(framework="tornado"), "key 'framework' = 'tornado': expected one of"),
    ],
    ids=["not-json", "not-an-object", "missing-key", "wrong-port", "missing-module", "framework"],
)
def test_bad_config_exits_with_status_2_and_names_the_key(worker_process, line, message):
    process = worker_process()
    out, err = process.communicate(line, timeout=TIMEOUT)
    assert process.returncode == EXIT_BAD_CONFIG, err
    assert message in err.decode()
    exit_line = lines_of(out)[-1]
    assert exit_line["type"] == "exit"
    assert exit_line["status"] == EXIT_BAD_CONFIG
    assert message in exit_line["reason"]


def test_a_worker_stops_gracefully_on_sigterm_and_says_so(worker_process):
    process = worker_process()
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write(config_line())
    process.stdin.flush()
    ready = read_until_ready(process)
    assert ready == {"type": "ready", "guid": "g1", "pid": process.pid, "port": 18999, "name": "w"}
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == EXIT_OK, err
    assert b"echo started" in err  # user prints go to stderr, not into the JSON lines
    lines = lines_of(out)
    assert [(x.get("kind"), x.get("path")) for x in lines[:-1]][-3:] == [
        ("stopped", "w/a"),
        ("shutdown", "w"),
        ("stopped", "w"),
    ]
    assert lines[-1] == {"type": "exit", "status": EXIT_OK, "reason": "shutdown"}


def test_a_worker_leaves_when_its_node_closes_stdin(worker_process):
    process = worker_process()
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write(config_line())
    process.stdin.flush()
    read_until_ready(process)
    process.stdin.close()  # what the node's death looks like from here
    assert process.wait(ORPHAN_BOUND) == EXIT_OK


# -- a node in its own process -----------------------------------------------------------


@pytest.fixture
def node_process():
    """A node with two workers in a subprocess; yields it and its workers' pids.
    Every process it started is killed by pid at the end if still alive."""
    process = subprocess.Popen(
        [sys.executable, str(HERE / "worker_node.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: dict[int, str | None] = {}
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("ready "), line + (process.stderr.read() if process.stderr else "")
        pids = [int(pid) for pid in line.split()[1:]]
        seen.update((pid, process_identity(pid)) for pid in pids)
        assert all(seen.values())
        yield process, seen
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
        kill_left(seen)


def test_sigterm_to_the_node_leaves_no_worker_alive(node_process):
    process, workers = node_process
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0, err
    assert out.strip() == "stopped"
    wait_gone(workers, 0.5)  # the node reaped them before it exited


def test_the_workers_of_a_sigkilled_node_exit_by_themselves(node_process, record_property):
    process, workers = node_process
    process.kill()
    process.wait()
    took = wait_gone(workers, ORPHAN_BOUND)
    record_property("orphan_exit_s", round(took, 3))
    print(f"the workers of a SIGKILLed node exited within {took * 1000:.0f} ms")  # noqa: T201


# -- ports -----------------------------------------------------------------------------


def test_ports_are_handed_out_lowest_first_and_never_twice():
    ports = PortAllocator(18200, 18209, is_free=lambda port: True)
    assert [ports.next_port(f"w{i}") for i in range(3)] == [18200, 18201, 18202]
    assert ports.next_port("w1") == 18201  # a key holds one port
    assert ports.next_port("w9", busy={18203}) == 18204


def test_a_port_busy_on_the_host_is_skipped():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        ports = PortAllocator(busy, busy)  # the real test: a bind on 127.0.0.1
        with pytest.raises(NoFreePort, match=f"no free port for 'w1' in {busy}-{busy}"):
            ports.next_port("w1")


def test_a_restarted_worker_gets_its_port_back_unless_taken():
    ports = PortAllocator(18300, 18309, is_free=lambda port: True)
    first, second = object(), object()
    assert ports.next_port("w1", owner=first) == 18300
    assert ports.next_port("w2") == 18301
    ports.release("w1", owner=first)
    assert ports.next_port("w3") == 18302  # w1's last port is kept for it
    assert ports.next_port("w1", owner=second) == 18300
    ports.release("w1", owner=first)  # a late release by the old incarnation
    assert ports.held()["w1"] == 18300
    ports.release("w1", owner=second)
    assert ports.next_port("w1", busy={18300}) == 18303


def test_no_free_port_says_so():
    ports = PortAllocator(18400, 18401, is_free=lambda port: port != 18401)
    ports.next_port("w1")
    with pytest.raises(NoFreePort, match="no free port for 'w2' in 18400-18401"):
        ports.next_port("w2")
    with pytest.raises(ValueError, match="child_port_min=9 > child_port_max=8"):
        PortAllocator(9, 8)
