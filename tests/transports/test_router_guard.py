"""The guard crossbar runs under: it passes signals on, and when its starter is gone
(end of file on its stdin) it stops crossbar, removes the node directory and ends
crossbar's workers. A stand-in for crossbar makes it fast and exact."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from hedgerow.transports import _crossbar

TIMEOUT = 20.0

FAKE_CROSSBAR = """
import json, os, signal, subprocess, sys, time
cbdir, mode = sys.argv[1], sys.argv[2]
with open(os.path.join(cbdir, "node.pid"), "w") as f:
    json.dump({"pid": os.getpid()}, f)
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
def stop(signum, frame):
    print(f"stopped by signal {signum}", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop if mode == "obeys" else signal.SIG_IGN)
signal.signal(signal.SIGINT, stop)
print(f"ready {worker.pid}", flush=True)
while True:
    time.sleep(600)
"""

pytestmark = pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs Linux pidfds")


def _gone(pid, timeout=TIMEOUT):
    """True once process `pid` has ended (waiting on its pidfd)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def _guard(tmp_path, mode, *options):
    cbdir = tmp_path / "node"
    cbdir.mkdir()
    fake = tmp_path / "fake_crossbar.py"
    fake.write_text(FAKE_CROSSBAR)
    command = [sys.executable, "-I", str(_crossbar._GUARD), "--cbdir", str(cbdir), *options]
    command += ["--", sys.executable, str(fake), str(cbdir), mode]
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    line = process.stdout.readline()
    assert line.startswith("ready"), line + process.stdout.read()
    crossbar = json.loads((cbdir / "node.pid").read_text())["pid"]
    return process, cbdir, crossbar, int(line.split()[1])


def _cleanup(process, *pids):
    for pid in pids:
        if not _gone(pid, 0):
            os.kill(pid, signal.SIGKILL)
    if process.poll() is None:
        process.kill()
    process.wait()


def test_when_its_starter_is_gone_it_stops_crossbar_and_removes_what_it_left(tmp_path):
    process, cbdir, crossbar, worker = _guard(tmp_path, "obeys", "--remove-cbdir")
    try:
        process.stdin.close()  # as when the starter dies, even by SIGKILL
        assert process.wait(TIMEOUT) == -signal.SIGKILL  # it ends its group, itself included
        assert "stopped by signal 15" in process.stdout.read()
        assert _gone(crossbar)
        assert _gone(worker)  # crossbar's worker went with the group
        assert not cbdir.exists()
    finally:
        _cleanup(process, crossbar, worker)


def test_a_crossbar_that_ignores_sigterm_is_killed_after_the_stop_timeout(tmp_path):
    process, cbdir, crossbar, worker = _guard(tmp_path, "ignores", "--stop-timeout", "0.2")
    try:
        process.stdin.close()
        assert process.wait(TIMEOUT) == -signal.SIGKILL
        assert _gone(crossbar)
        assert _gone(worker)
        assert cbdir.exists()  # not its own to remove (no --remove-cbdir) ...
        assert not (cbdir / "node.pid").exists()  # ... but no stale pid file blocks a new node
    finally:
        _cleanup(process, crossbar, worker)


PID_FILE_CHECKER = """
import os, sys
print("pid file left" if os.path.exists(os.path.join(sys.argv[1], "node.pid")) else "clean")
"""


def _checked(command):
    """The checker's line, run under the guard with the starter's pipe held open."""
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline().strip()
        assert process.wait(TIMEOUT) == 0
        return line
    finally:
        process.stdin.close()
        if process.poll() is None:
            process.kill()
        process.wait()


@pytest.mark.parametrize("left_by", ["zombie", "gone"])
def test_a_pid_file_of_a_dead_group_does_not_block_a_new_crossbar(tmp_path, left_by):
    """SIGKILL of the whole group leaves node.pid naming crossbar, unreaped (a zombie)
    where nothing reaps orphans: crossbar then fails on psutil's ZombieProcess."""
    cbdir = tmp_path / "node"
    cbdir.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        if left_by == "zombie":
            os.waitid(os.P_PID, dead.pid, os.WEXITED | os.WNOWAIT)  # ended, not reaped
        else:
            dead.wait()
        (cbdir / "node.pid").write_text(json.dumps({"pid": dead.pid}))
        checker = tmp_path / "checker.py"
        checker.write_text(PID_FILE_CHECKER)
        command = [sys.executable, "-I", str(_crossbar._GUARD), "--cbdir", str(cbdir)]
        command += ["--", sys.executable, str(checker), str(cbdir)]
        assert _checked(command) == "clean"
    finally:
        dead.wait()


def test_a_pid_file_of_a_live_process_is_left_to_crossbar(tmp_path):
    cbdir = tmp_path / "node"
    cbdir.mkdir()
    (cbdir / "node.pid").write_text(json.dumps({"pid": os.getpid()}))
    checker = tmp_path / "checker.py"
    checker.write_text(PID_FILE_CHECKER)
    command = [sys.executable, "-I", str(_crossbar._GUARD), "--cbdir", str(cbdir)]
    command += ["--", sys.executable, str(checker), str(cbdir)]
    assert _checked(command) == "pid file left"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signals_are_passed_on_and_it_exits_with_crossbars_status(tmp_path, signum):
    process, cbdir, crossbar, worker = _guard(tmp_path, "obeys", "--remove-cbdir")
    try:
        process.send_signal(signum)
        assert process.wait(TIMEOUT) == 0
        # What is left of the group is its starter's to end (as Crossbar and the CLI do).
        os.killpg(process.pid, signal.SIGKILL)
        assert f"stopped by signal {signum}" in process.stdout.read()
        assert _gone(crossbar)
        assert cbdir.exists()  # a stop is not a death: its starter removes it, or reuses it
        assert not (cbdir / "node.pid").exists()
    finally:
        _cleanup(process, crossbar, worker)


def test_a_missing_crossbar_is_one_line_and_status_1(tmp_path):
    result = subprocess.run(
        [sys.executable, "-I", str(_crossbar._GUARD), "--", str(tmp_path / "nothing-here")],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.PIPE,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith(f"cannot run {tmp_path / 'nothing-here'}:")
    assert "Traceback" not in result.stderr


def test_the_guard_is_a_script_of_the_standard_library_alone():
    source = Path(_crossbar._GUARD).read_text()
    assert "import hedgerow" not in source
    assert "from hedgerow" not in source


# -- stopped and killed processes ------------------------------------------------------

STARTER = """
import subprocess, sys, time
guard = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE, start_new_session=True)
print(guard.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signals are Linux's")
def test_a_stopped_guard_wakes_when_its_starter_dies_and_stops_crossbar(tmp_path):
    """SIGSTOP of the guard, then SIGKILL of its starter: the kernel continues the guard
    (its parent-death signal is SIGCONT), which then stops crossbar as for any death."""
    cbdir = tmp_path / "node"
    cbdir.mkdir()
    fake = tmp_path / "fake_crossbar.py"
    fake.write_text(FAKE_CROSSBAR)
    (tmp_path / "starter.py").write_text(STARTER)
    command = [sys.executable, str(tmp_path / "starter.py"), sys.executable, "-I"]
    command += [str(_crossbar._GUARD), "--cbdir", str(cbdir), "--remove-cbdir", "--"]
    command += [sys.executable, str(fake), str(cbdir), "obeys"]
    starter = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=True)
    guard = int(starter.stdout.readline())
    line = starter.stdout.readline()  # the fake's, through the guard
    assert line.startswith("ready"), line
    crossbar = json.loads((cbdir / "node.pid").read_text())["pid"]
    worker = int(line.split()[1])
    try:
        os.kill(guard, signal.SIGSTOP)
        starter.kill()
        starter.wait()
        assert _gone(crossbar, 10.0), "crossbar outlived its stopped guard's starter"
        assert _gone(guard, 10.0)
        assert _gone(worker, 10.0)
        assert not cbdir.exists()
    finally:
        for pid in (guard, crossbar, worker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_a_stopped_crossbar_is_continued_to_take_the_signal_passed_on(tmp_path):
    process, _cbdir, crossbar, worker = _guard(tmp_path, "obeys")
    try:
        os.kill(crossbar, signal.SIGSTOP)
        process.send_signal(signal.SIGTERM)
        assert process.wait(10.0) == 0
        os.killpg(process.pid, signal.SIGKILL)
        assert _gone(crossbar)
    finally:
        _cleanup(process, crossbar, worker)


def test_a_crossbar_killed_by_a_signal_is_reported_by_name(tmp_path):
    process, _cbdir, crossbar, worker = _guard(tmp_path, "obeys")
    try:
        os.kill(crossbar, signal.SIGKILL)
        assert process.wait(TIMEOUT) == 128 + signal.SIGKILL
        os.killpg(process.pid, signal.SIGKILL)
        assert f"crossbar (pid {crossbar}) was killed by SIGKILL" in process.stdout.read()
    finally:
        _cleanup(process, crossbar, worker)


def test_a_sweep_removes_only_node_directories_whose_lock_nobody_holds(tmp_path):
    from hedgerow.transports._node_directory import LOCK_NAME, NodeDirectory, sweep  # noqa: PLC0415

    previous = tempfile.tempdir
    tempfile.tempdir = str(tmp_path)
    try:
        held = NodeDirectory("hr-test-")
        abandoned = NodeDirectory("hr-test-")
        os.close(abandoned.fd)  # as when its router and guard are killed
        unlocked = tmp_path / "hr-test-no-lock"  # not made by a NodeDirectory
        unlocked.mkdir()
        being_made = tmp_path / "hr-test-being-made"  # its lock file is not written yet
        being_made.mkdir()
        (being_made / LOCK_NAME).touch()
        assert sweep("hr-test-") == [abandoned.path]
        assert held.path.exists()
        assert unlocked.exists()
        assert being_made.exists()
        held.remove()
        assert not held.path.exists()
    finally:
        tempfile.tempdir = previous


def test_the_relay_keeps_a_secret_whole_across_the_cut_of_a_long_line(capfd):
    from hedgerow.transports._router_guard import _LONGEST_LINE, Relay  # noqa: PLC0415

    read, write = os.pipe()
    try:
        relay = Relay(read, ["s3cr3t", 'q"uote'])
        relay.buffer = b"x" * _LONGEST_LINE + b"s3cr"  # no end of line yet
        relay.pump()
        os.write(write, b'3t and q\\"uote\n')
        relay.pump()
        os.close(write)
        relay.finish(TIMEOUT)
    finally:
        os.close(read)
    out = capfd.readouterr().out
    assert out == "x" * _LONGEST_LINE + "<redacted> and <redacted>\n"
