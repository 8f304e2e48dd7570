"""The worker's stdin and the node's pipe from its workers are untrusted input."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from helpers import start
from node.standin_worker import BAD
from node.worker_actors import Echo

import hedgerow as hr
from hedgerow._exceptions import StartError, WorkerExited
from hedgerow.node import Worker
from hedgerow.node._wire import EXIT_BAD_CONFIG
from hedgerow.node._worker_main import (
    MAX_CONFIG_BYTES,
    BadConfig,
    parse_config,
    read_config_line,
)
from hedgerow.supervision._treefile import tree_to_data

HERE = Path(__file__).parent
TIMEOUT = 20.0


def config(**changes: object) -> dict[str, object]:
    return {
        "guid": "g1",
        "port": 18999,
        "name": "w",
        "container": tree_to_data(hr.SupervisorSpec([hr.ChildSpec("a", Echo)])),
        "pythonpath": [str(HERE.parent)],
        **changes,
    }


def parse(text: bytes) -> dict[str, object]:
    return parse_config(text, guid="g1", port=18999)


# -- the config line ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (b'{"guid": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested"),
        (b'{"guid": "g1", "port": ' + b"9" * 5000 + b"}", "digits"),
        (json.dumps(config(orphan_timeout=float("nan"))).encode(), "orphan_timeout"),
        (json.dumps(config(orphan_timeout=float("inf"))).encode(), "orphan_timeout"),
        (json.dumps(config(orphan_timeout=10**400)).encode(), "orphan_timeout"),
        (json.dumps(config(orphan_timeout=-1)).encode(), "orphan_timeout"),
        (b'{"guid": "g1", "port": 1e400}', "port"),
        (json.dumps(config(log_level=[])).encode(), "log_level"),
        (json.dumps(config(pythonpath=["a\x00b"])).encode(), "pythonpath"),
        (json.dumps(config(pythonpath=["y" * 5000])).encode(), "pythonpath"),
        (json.dumps(config(base_dir="a\x00b")).encode(), "base_dir"),
        (json.dumps(config(log_level={"a": 1})).encode(), "log_level"),
    ],
)
def test_a_hostile_config_line_is_bad_config_naming_what(text, needle):
    with pytest.raises(BadConfig, match=needle):
        parse(text)


def test_a_good_config_line_passes():
    assert parse(json.dumps(config(orphan_timeout=2.5)).encode())["orphan_timeout"] == 2.5


def test_a_config_line_without_a_newline_is_read_up_to_the_cap():
    read_end, write_end = os.pipe()
    written = 0
    done = threading.Event()

    def feed() -> None:
        nonlocal written
        chunk = b"x" * 65536
        try:
            while written < 50 * 1024 * 1024:
                written += os.write(write_end, chunk)
        except BrokenPipeError:
            pass
        finally:
            os.close(write_end)
            done.set()

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        with pytest.raises(BadConfig, match="longer than"):
            read_config_line(read_end, TIMEOUT)
    finally:
        os.close(read_end)
    assert done.wait(TIMEOUT)
    assert written <= MAX_CONFIG_BYTES + 2 * 65536 + 1024 * 1024  # the pipe's buffer at most


def launch() -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "hedgerow.worker", "--guid", "g1", "--port", "18999"]
    return subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        (b'{"guid": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n", b"nested"),
        (b"x" * (MAX_CONFIG_BYTES + 10), b"longer than"),
    ],
    ids=["deep", "no-newline"],
)
def test_the_worker_exits_2_on_a_hostile_config_line(line, needle):
    process = launch()
    try:
        out, err = process.communicate(line, timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == EXIT_BAD_CONFIG, err
    assert needle in err
    assert b"Traceback" not in err
    assert json.loads(out.splitlines()[-1])["status"] == EXIT_BAD_CONFIG


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "soon"])
def test_the_worker_refuses_a_bad_config_timeout(value):
    command = [sys.executable, "-m", "hedgerow.worker", "--guid", "g", "--port", "1"]
    result = subprocess.run(
        [*command, "--config-timeout", value],
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2  # argparse's usage error
    assert b"--config-timeout" in result.stderr


# -- the node's pipe from its workers -------------------------------------------------------


@pytest.fixture
def standin(tmp_path: Path):
    """A "python" that runs the stand-in worker, whatever the arguments."""
    script = tmp_path / "python"
    script.write_text(
        f'#!/bin/sh\nexec {sys.executable} {HERE / "standin_worker.py"} "$@"\n', encoding="utf-8"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)

    def make(mode: str, when: str = "after") -> Worker:
        env = {"STANDIN_MODE": mode, "STANDIN_MARK": str(tmp_path / "mark"), "STANDIN_WHEN": when}
        container = hr.SupervisorSpec([hr.ChildSpec("a", Echo)])
        return Worker(container, python=str(script), env=env, ready_timeout=TIMEOUT)

    return make


@pytest.fixture
def thread_errors(monkeypatch):
    """Exceptions that escaped a thread of the node (there must be none)."""
    caught: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: caught.append(args.exc_value))
    return caught


@pytest.mark.parametrize("mode", [*sorted(BAD), "huge"])
def test_a_worker_writing_bad_lines_is_failed_and_restarted(standin, thread_errors, mode):
    spec = hr.SupervisorSpec([hr.ChildSpec("w", standin(mode))], max_restarts=5)
    tree, recorder = start(spec)
    with tree:
        failed = recorder.wait_for("failed", "root/w", timeout=TIMEOUT)
        recorder.wait_for("restarted", "root/w", timeout=TIMEOUT)
        assert tree.lookup("root/w").incarnation.pid is not None
    assert isinstance(failed.reason, WorkerExited)
    assert "bad line" in str(failed.reason)
    assert len(str(failed.reason)) < 1000
    assert thread_errors == []


@pytest.mark.parametrize("mode", ["garbage", "huge", "deep"])
def test_a_worker_writing_bad_lines_before_ready_fails_its_start(standin, thread_errors, mode):
    spec = hr.SupervisorSpec([hr.ChildSpec("w", standin(mode, when="before"))])
    with pytest.raises(StartError) as info:
        hr.start_tree(spec)
    cause = info.value.cause
    while isinstance(cause, StartError):
        cause = cause.cause
    assert isinstance(cause, WorkerExited)
    assert "bad line" in str(cause)
    assert thread_errors == []
