"""`hedgerow run` on the process bus, as a real process: SIGHUP and SIGUSR1
reload the tree file; SIGTERM while the tree starts stops it once started."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from hedgerow.cli import cli

DEADLINE = 60.0
"""Seconds any one expected line may take (a bound, not a pause)."""

ACTORS = '''\
import logging
import sys

import hedgerow as hr

logger = logging.getLogger("actors")


class Steady(hr.Actor):
    """Runs until stopped."""


class NeverStarts(hr.Actor):
    def on_start(self):
        raise OSError("port 80 is taken")


class SlowStart(hr.Actor):
    """Says so on stderr, then starts only once a line arrives on stdin."""

    def on_start(self):
        logger.warning("slow: starting")
        sys.stdin.readline()
'''


def tree(*children: str, name: str = "svc") -> str:
    """A tree file: `children` are ``id=Class`` (a class of ACTORS)."""
    text = f'[supervisor]\nname = "{name}"\n'
    for child in children:
        child_id, _, cls = child.partition("=")
        text += f'[[supervisor.children]]\nid = "{child_id}"\nstart = "reload_actors:{cls}"\n'
    return text


STEADY = tree("first=Steady", "second=Steady", "third=Steady")
BAD = STEADY + 'restart = "sometimes"\n'


class Node:
    """A `hedgerow run` process, its stdout and stderr read as lines by two
    threads so that every wait has a deadline."""

    def __init__(self, *args: str, cwd: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hedgerow", "run", *args],
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(cwd)},
        )
        self.lines: dict[str, queue.SimpleQueue[str | None]] = {}
        self.seen: dict[str, list[str]] = {"stdout": [], "stderr": []}
        for name in ("stdout", "stderr"):
            self.lines[name] = queue.SimpleQueue()
            threading.Thread(target=self._read, args=(name,), daemon=True).start()

    def _read(self, name: str) -> None:
        for line in getattr(self.process, name):
            self.lines[name].put(line)
        self.lines[name].put(None)

    def wait_for(self, needle: str, stream: str = "stdout") -> str:
        """The first line (from now) on `stream` that contains `needle`."""
        deadline = time.monotonic() + DEADLINE
        while True:
            try:
                line = self.lines[stream].get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                break
            if line is None:
                break
            self.seen[stream].append(line)
            if needle in line:
                return line
        pytest.fail(f"{needle!r} never came on {stream}: {''.join(self.seen[stream])}")

    def wait_for_record(self, **fields: object) -> dict[str, object]:
        """The first JSON record (from now) with these fields."""
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            record = json.loads(self.wait_for("{"))
            if all(record.get(k) == v for k, v in fields.items()):
                return record
        pytest.fail(f"no record with {fields}: {''.join(self.seen['stdout'])}")

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def finish(self) -> tuple[int, list[dict[str, object]], str]:
        """Wait for the exit: status, every JSON record, all of stderr."""
        status = self.process.wait(timeout=DEADLINE)
        for name in ("stdout", "stderr"):
            while (line := self.lines[name].get(timeout=DEADLINE)) is not None:
                self.seen[name].append(line)
        records = [json.loads(line) for line in self.seen["stdout"] if line.startswith("{")]
        return status, records, "".join(self.seen["stderr"])

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=DEADLINE)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[object]:
    """Start nodes in `tmp_path` (beside `reload_actors.py`); every one is killed at the end."""
    (tmp_path / "reload_actors.py").write_text(ACTORS)
    nodes: list[Node] = []

    def start(*args: str) -> Node:
        nodes.append(Node(*args, cwd=tmp_path))
        return nodes[-1]

    try:
        yield start
    finally:
        for started in nodes:
            started.kill()
            for stream in (started.process.stdin, started.process.stdout, started.process.stderr):
                if stream is not None:
                    stream.close()


def kinds_and_paths(records: list[dict[str, object]]) -> list[tuple[object, object]]:
    return [(r["kind"], r.get("path", r.get("file"))) for r in records]


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGUSR1])
def test_a_reload_signal_restarts_the_tree_from_the_changed_file(node, tmp_path, signum):
    file = tmp_path / "tree.toml"
    file.write_text(STEADY)
    running = node(str(file), "--json")
    running.wait_for_record(kind="started", path="svc")
    file.write_text(tree("first=Steady", "second=Steady", "third=Steady", "fourth=Steady"))
    running.signal(signum)
    running.wait_for_record(kind="started", path="svc/fourth")
    running.wait_for_record(kind="started", path="svc")
    running.signal(signal.SIGTERM)
    status, records, err = running.finish()
    assert status == 0, err
    reload = next(r for r in records if r["kind"] == "reload")
    assert reload == {
        "kind": "reload",
        "elapsed": reload["elapsed"],
        "file": str(file),
        "tree": "svc",
    }
    assert f"reloaded {file}" in err
    assert kinds_and_paths(records) == [
        ("started", "svc/first"),
        ("started", "svc/second"),
        ("started", "svc/third"),
        ("started", "svc"),
        # the old tree stops gracefully, in reverse order ...
        ("stopped", "svc/third"),
        ("stopped", "svc/second"),
        ("stopped", "svc/first"),
        ("shutdown", "svc"),
        ("stopped", "svc"),
        # ... then the new one starts
        ("reload", str(file)),
        ("started", "svc/first"),
        ("started", "svc/second"),
        ("started", "svc/third"),
        ("started", "svc/fourth"),
        ("started", "svc"),
        ("stopped", "svc/fourth"),
        ("stopped", "svc/third"),
        ("stopped", "svc/second"),
        ("stopped", "svc/first"),
        ("shutdown", "svc"),
        ("stopped", "svc"),
        ("exit", None),
    ]
    seqs = [r["seq"] for r in records if "seq" in r]
    assert seqs == sorted(seqs)  # one event stream across reloads
    assert records[-1] == {"kind": "exit", "status": 0, "message": "tree 'svc' ended: shutdown"}


def test_a_reload_is_a_line_among_the_event_lines(node, tmp_path):
    file = tmp_path / "tree.toml"
    file.write_text(tree("first=Steady"))
    running = node(str(file))
    running.wait_for("started svc")
    file.write_text(tree("first=Steady", "second=Steady"))
    running.signal(signal.SIGHUP)
    assert running.wait_for("s  reloaded").endswith(f"s  reloaded {file} (tree 'svc')\n")
    running.wait_for("started svc/second #1")
    file.write_text("not = [valid")
    running.signal(signal.SIGHUP)
    assert "s  reload failed: " in running.wait_for("reload failed")
    running.signal(signal.SIGTERM)
    status, _, err = running.finish()
    assert status == 0, err


def test_a_reload_with_a_broken_file_keeps_the_tree_running(node, tmp_path):
    file = tmp_path / "tree.toml"
    file.write_text(STEADY)
    running = node(str(file), "--json")
    running.wait_for_record(kind="started", path="svc")
    file.write_text(BAD)
    running.signal(signal.SIGHUP)
    failed = running.wait_for_record(kind="reload_failed")
    assert failed["file"] == str(file)
    assert "supervisor.children[2].restart = 'sometimes'" in str(failed["error"])
    running.wait_for("reload failed", stream="stderr")
    running.signal(signal.SIGTERM)
    status, records, err = running.finish()
    assert status == 0, err
    assert "tree.toml: supervisor.children[2].restart = 'sometimes'" in err
    assert "reloaded" not in err
    # Untouched: started once, stopped once (by the SIGTERM), never restarted.
    assert kinds_and_paths(records) == [
        ("started", "svc/first"),
        ("started", "svc/second"),
        ("started", "svc/third"),
        ("started", "svc"),
        ("reload_failed", str(file)),
        ("stopped", "svc/third"),
        ("stopped", "svc/second"),
        ("stopped", "svc/first"),
        ("shutdown", "svc"),
        ("stopped", "svc"),
        ("exit", None),
    ]
    assert records[-1]["status"] == 0


def test_a_reloaded_tree_that_cannot_start_gives_way_to_the_previous_one(node, tmp_path):
    file = tmp_path / "tree.toml"
    file.write_text(tree("first=Steady"))
    running = node(str(file), "--json")
    running.wait_for_record(kind="started", path="svc")
    file.write_text(tree("first=Steady", "web=NeverStarts"))
    running.signal(signal.SIGHUP)
    failed = running.wait_for_record(kind="reload_failed")
    assert failed["error"] == (
        "the tree did not start: child 'web' failed to start: OSError: port 80 is taken;"
        " starting the previous tree again"
    )
    running.wait_for_record(kind="started", path="svc")
    running.signal(signal.SIGTERM)
    status, records, err = running.finish()
    assert status == 0, err
    kinds = kinds_and_paths(records)
    reloaded = kinds.index(("reload", str(file)))
    gave_way = kinds.index(("reload_failed", str(file)))
    assert ("start_failed", "svc/web") in kinds[reloaded:gave_way]
    assert kinds[gave_way + 1 :] == [
        ("started", "svc/first"),
        ("started", "svc"),
        ("stopped", "svc/first"),
        ("shutdown", "svc"),
        ("stopped", "svc"),
        ("exit", None),
    ]


def test_sigterm_while_the_tree_starts_stops_it_once_started(node, tmp_path):
    file = tmp_path / "tree.toml"
    file.write_text(tree("first=Steady", "slow=SlowStart"))
    running = node(str(file), "--json")
    running.wait_for("slow: starting", stream="stderr")
    running.signal(signal.SIGTERM)
    running.wait_for("Caught signal SIGTERM", stream="stderr")
    assert running.process.stdin is not None
    running.process.stdin.write("go\n")  # now let the slow child finish its start
    running.process.stdin.flush()
    status, records, err = running.finish()
    assert status == 0, err
    assert kinds_and_paths(records) == [
        ("started", "svc/first"),
        ("started", "svc/slow"),
        ("started", "svc"),
        ("stopped", "svc/slow"),
        ("stopped", "svc/first"),
        ("shutdown", "svc"),
        ("stopped", "svc"),
        ("exit", None),
    ]


def test_a_second_sigterm_while_the_tree_starts_leaves_at_once(node, tmp_path):
    file = tmp_path / "tree.toml"
    file.write_text(tree("slow=SlowStart"))
    running = node(str(file), "--json")
    running.wait_for("slow: starting", stream="stderr")
    running.signal(signal.SIGTERM)
    running.wait_for("Caught signal SIGTERM", stream="stderr")
    running.signal(signal.SIGTERM)
    status, records, err = running.finish()
    assert status == 130, err
    assert "Caught signal SIGTERM again while stopping" in err
    assert records[-1] == {
        "kind": "exit",
        "status": 130,
        "message": "tree 'svc' stopped at once (second signal)",
    }


# -- in this process, through click's runner ----------------------------------------

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1)


def run_in_process(file: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["run", str(file), "--for", "0.05", "--json"])
    return result.exit_code, result.stdout


def test_run_on_the_main_thread_restores_the_signal_handlers(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "reload_actors.py").write_text(ACTORS)
    (tmp_path / "tree.toml").write_text(STEADY)
    before = [signal.getsignal(s) for s in HANDLED]
    status, out = run_in_process(tmp_path / "tree.toml")
    assert status == 0
    assert json.loads(out.splitlines()[-1])["status"] == 0
    assert [signal.getsignal(s) for s in HANDLED] == before


def test_run_off_the_main_thread_installs_no_signal_handlers(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "reload_actors.py").write_text(ACTORS)
    (tmp_path / "tree.toml").write_text(STEADY)
    before = [signal.getsignal(s) for s in HANDLED]
    seen: list[object] = []
    done: list[tuple[int, str]] = []

    def spy(signum: int, handler: object) -> object:
        seen.append(signum)
        return before[0]

    monkeypatch.setattr(signal, "signal", spy)
    thread = threading.Thread(target=lambda: done.append(run_in_process(tmp_path / "tree.toml")))
    thread.start()
    thread.join(timeout=DEADLINE)
    assert done, "the run did not end"
    status, out = done[0]
    assert status == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["path"] for r in records if r["kind"] == "stopped"][-1] == "svc"
    assert records[-1] == {"kind": "exit", "status": 0, "message": "tree 'svc' ended: shutdown"}
    assert seen == []
