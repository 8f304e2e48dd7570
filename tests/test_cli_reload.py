"""`hedgerow run` on the process bus, as a real process: SIGHUP and SIGUSR1
reload the tree file, changing only what changed; SIGTERM while the tree
starts stops it once started."""

from __future__ import annotations

import contextlib
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

import hedgerow as hr
from hedgerow.cli import cli
from hedgerow.cli._runner import _Runner

ROOT = Path(__file__).resolve().parents[1]
"""This checkout, first on the node's import path: the hedgerow under test."""

DEADLINE = 60.0
"""Seconds any one expected line may take (a bound, not a pause)."""

ACTORS = '''\
import logging
import sys

import hedgerow as hr

logger = logging.getLogger("actors")


class Steady(hr.Actor):
    """Runs until stopped."""


class Greeter(hr.Actor):
    """Says its greeting on stderr when it starts."""

    def __init__(self, greeting="hello"):
        super().__init__()
        self.greeting = greeting

    def on_start(self):
        logger.warning("greeter: %s", self.greeting)


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
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(cwd)])},
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


def changes(record: dict[str, object]) -> list[tuple[object, ...]]:
    """A reload record's changes, as (path, change, fields...)."""
    return [
        (c["path"], c["change"], *c.get("fields", ()))  # type: ignore[index, union-attr]
        for c in record["changes"]  # type: ignore[union-attr]
    ]


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGUSR1])
def test_a_reload_signal_changes_only_what_changed(node, tmp_path, signum):
    file = tmp_path / "tree.toml"
    file.write_text(tree("first=Steady", "second=Greeter", "third=Steady"))
    running = node(str(file), "--json")
    running.wait_for_record(kind="started", path="svc")
    changed = tree("first=Steady", "second=Greeter", "fourth=Steady")
    file.write_text(changed.replace('Greeter"\n', 'Greeter"\nkwargs = { greeting = "hi" }\n'))
    running.signal(signum)
    reload = running.wait_for_record(kind="reload")
    assert changes(reload) == [
        ("svc/third", "removed"),
        ("svc/second", "changed", "kwargs"),
        ("svc/fourth", "added"),
    ]
    assert reload["tree"] == "svc"
    assert reload["file"] == str(file)
    running.signal(signal.SIGTERM)
    status, records, err = running.finish()
    assert status == 0, err
    assert f"reloaded {file} (tree 'svc'): svc/third removed, svc/second changed (kwargs)" in err
    assert "greeter: hi" in err
    assert kinds_and_paths(records) == [
        ("started", "svc/first"),
        ("started", "svc/second"),
        ("started", "svc/third"),
        ("started", "svc"),
        # the reload: the added child starts first, then the removed one stops,
        # then the changed one restarts; svc/first is not touched
        ("started", "svc/fourth"),
        ("stopped", "svc/third"),
        ("stopped", "svc/second"),
        ("restarted", "svc/second"),
        ("reload", str(file)),
        # the tree now stops in its new order
        ("stopped", "svc/fourth"),
        ("stopped", "svc/second"),
        ("stopped", "svc/first"),
        ("shutdown", "svc"),
        ("stopped", "svc"),
        ("exit", None),
    ]
    first = [r["incarnation"] for r in records if r.get("path") == "svc/first"]
    assert first == [1, 1]  # started once, stopped once: the same incarnation
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
    running.wait_for("started svc/second #1")
    line = running.wait_for("s  reloaded")
    assert line.endswith(f"s  reloaded {file} (tree 'svc'): svc/second added\n")
    running.signal(signal.SIGHUP)  # the same file again
    assert running.wait_for("s  reloaded").endswith(": nothing changed\n")
    file.write_text("not = [valid")
    running.signal(signal.SIGHUP)
    assert "s  reload failed: " in running.wait_for("reload failed")
    running.signal(signal.SIGTERM)
    status, _, err = running.finish()
    assert status == 0, err


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (BAD, "tree.toml: supervisor.children[2].restart = 'sometimes'"),
        (STEADY + 'colour = "red"\n', "tree.toml: supervisor.children[2].colour"),
        (STEADY.replace("reload_actors:Steady", "reload_actors:Nowhere"), "Nowhere"),
        ("not = [valid", "tree.toml"),
    ],
    ids=["bad value", "unknown key", "unknown class", "syntax"],
)
def test_a_reload_with_a_broken_file_keeps_the_tree_running(node, tmp_path, text, error):
    file = tmp_path / "tree.toml"
    file.write_text(STEADY)
    running = node(str(file), "--json")
    running.wait_for_record(kind="started", path="svc")
    file.write_text(text)
    running.signal(signal.SIGHUP)
    failed = running.wait_for_record(kind="reload_failed")
    assert failed["file"] == str(file)
    assert error in str(failed["error"])
    running.wait_for("reload failed", stream="stderr")
    running.signal(signal.SIGTERM)
    status, records, err = running.finish()
    assert status == 0, err
    assert error in err
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


def test_an_added_child_that_cannot_start_is_refused_with_nothing_touched(node, tmp_path):
    file = tmp_path / "tree.toml"
    file.write_text(tree("first=Steady", "second=Steady"))
    running = node(str(file), "--json")
    running.wait_for_record(kind="started", path="svc")
    file.write_text(tree("first=Steady", "web=NeverStarts"))  # second removed, web added
    running.signal(signal.SIGHUP)
    failed = running.wait_for_record(kind="reload_failed")
    assert failed["error"] == (
        "child 'svc/web' failed to start: OSError: port 80 is taken; nothing running was touched"
    )
    assert changes(failed) == [("svc/second", "removed"), ("svc/web", "added")]
    running.signal(signal.SIGTERM)
    status, records, err = running.finish()
    assert status == 0, err
    assert "reload failed: child 'svc/web' failed to start" in err
    assert kinds_and_paths(records) == [
        ("started", "svc/first"),
        ("started", "svc/second"),
        ("started", "svc"),
        ("start_failed", "svc/web"),
        ("reload_failed", str(file)),
        ("stopped", "svc/second"),
        ("stopped", "svc/first"),
        ("shutdown", "svc"),
        ("stopped", "svc"),
        ("exit", None),
    ]


def test_a_changed_child_that_cannot_start_is_undone(node, tmp_path):
    file = tmp_path / "tree.toml"
    file.write_text(tree("first=Steady", "second=Steady"))
    running = node(str(file), "--json")
    running.wait_for_record(kind="started", path="svc")
    file.write_text(tree("first=Steady", "second=NeverStarts"))
    running.signal(signal.SIGHUP)
    failed = running.wait_for_record(kind="reload_failed")
    assert failed["error"] == (
        "child 'svc/second' failed to start: OSError: port 80 is taken; what was changed was undone"
    )
    running.signal(signal.SIGTERM)
    status, records, err = running.finish()
    assert status == 0, err
    kinds = kinds_and_paths(records)
    assert kinds[3:] == [
        ("stopped", "svc/second"),
        ("start_failed", "svc/second"),
        ("restarted", "svc/second"),  # its old spec again
        ("reload_failed", str(file)),
        ("stopped", "svc/second"),
        ("stopped", "svc/first"),
        ("shutdown", "svc"),
        ("stopped", "svc"),
        ("exit", None),
    ]


def test_a_changed_root_supervisor_restarts_the_tree(node, tmp_path):
    file = tmp_path / "tree.toml"
    file.write_text(tree("first=Steady"))
    running = node(str(file), "--json")
    running.wait_for_record(kind="started", path="svc")
    file.write_text(tree("first=Steady").replace("[supervisor]\n", "[supervisor]\nperiod = 9\n"))
    running.signal(signal.SIGHUP)
    reload = running.wait_for_record(kind="reload")
    assert changes(reload) == [("svc", "changed", "period")]
    running.wait_for_record(kind="started", path="svc")
    running.signal(signal.SIGTERM)
    status, records, err = running.finish()
    assert status == 0, err
    assert kinds_and_paths(records)[2:8] == [
        ("stopped", "svc/first"),
        ("shutdown", "svc"),
        ("stopped", "svc"),
        ("reload", str(file)),
        ("started", "svc/first"),
        ("started", "svc"),
    ]


def test_a_changed_root_supervisor_that_cannot_start_gives_way_to_the_previous_one(node, tmp_path):
    file = tmp_path / "tree.toml"
    file.write_text(tree("first=Steady"))
    running = node(str(file), "--json")
    running.wait_for_record(kind="started", path="svc")
    file.write_text(tree("first=Steady", "web=NeverStarts", name="other"))
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
    assert ("start_failed", "other/web") in kinds[reloaded:gave_way]
    assert kinds[gave_way + 1 :] == [
        ("started", "svc/first"),
        ("started", "svc"),
        ("stopped", "svc/first"),
        ("shutdown", "svc"),
        ("stopped", "svc"),
        ("exit", None),
    ]


def test_a_second_sighup_during_a_reload_reloads_again_once_it_is_done(node, tmp_path):
    file = tmp_path / "tree.toml"
    file.write_text(tree("first=Steady"))
    running = node(str(file), "--json")
    running.wait_for_record(kind="started", path="svc")
    file.write_text(tree("first=Steady", "slow=SlowStart"))
    running.signal(signal.SIGHUP)
    running.wait_for("slow: starting", stream="stderr")  # the reload is under way
    file.write_text(tree("first=Steady", "slow=SlowStart", "last=Steady"))
    running.signal(signal.SIGHUP)
    running.signal(signal.SIGHUP)  # both wait for the reload under way: one more reload
    assert running.process.stdin is not None
    running.process.stdin.write("go\n")
    running.process.stdin.flush()
    first = running.wait_for_record(kind="reload")
    assert changes(first) == [("svc/slow", "added")]
    second = running.wait_for_record(kind="reload")
    assert changes(second) == [("svc/last", "added")]
    running.signal(signal.SIGTERM)
    status, records, err = running.finish()
    assert status == 0, err
    assert [r["kind"] for r in records].count("reload") == 2
    assert kinds_and_paths(records)[-6:] == [
        ("stopped", "svc/last"),
        ("stopped", "svc/slow"),
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
    running.wait_for("cancelling the start under way", stream="stderr")
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


def test_sigterm_during_a_reload_stops_the_tree_once_the_reload_is_done(node, tmp_path):
    file = tmp_path / "tree.toml"
    file.write_text(tree("first=Steady"))
    running = node(str(file), "--json")
    running.wait_for_record(kind="started", path="svc")
    file.write_text(tree("first=Steady", "slow=SlowStart"))
    running.signal(signal.SIGHUP)
    running.wait_for("slow: starting", stream="stderr")
    running.signal(signal.SIGTERM)
    running.wait_for("Caught signal SIGTERM", stream="stderr")
    assert running.process.stdin is not None
    running.process.stdin.write("go\n")
    running.process.stdin.flush()
    status, records, err = running.finish()
    assert status == 0, err
    assert kinds_and_paths(records) == [
        ("started", "svc/first"),
        ("started", "svc"),
        ("started", "svc/slow"),
        ("reload", str(file)),
        ("stopped", "svc/slow"),
        ("stopped", "svc/first"),
        ("shutdown", "svc"),
        ("stopped", "svc"),
        ("exit", None),
    ]


WORKERS = """\
[supervisor]
name = "svc"

[[supervisor.children]]
id = "w1"
[supervisor.children.worker]
[[supervisor.children.worker.components]]
id = "a"
start = "reload_actors:Steady"

[[supervisor.children]]
id = "w2"
[supervisor.children.worker]
[[supervisor.children.worker.components]]
id = "b"
start = "reload_actors:Steady"
"""


def test_a_reload_restarts_only_the_worker_process_that_changed(node, tmp_path):
    file = tmp_path / "tree.toml"
    file.write_text(WORKERS)
    running = node(str(file), "--json")
    running.wait_for_record(kind="started", path="svc")
    file.write_text(
        WORKERS.replace(
            'id = "b"\nstart = "reload_actors:Steady"', 'id = "b"\nstart = "reload_actors:Greeter"'
        )
    )
    running.signal(signal.SIGHUP)
    reload = running.wait_for_record(kind="reload")
    assert changes(reload) == [("svc/w2", "changed", "worker")]
    running.signal(signal.SIGTERM)
    status, records, err = running.finish()
    assert status == 0, err
    assert "greeter: hello" in err  # the new component, in the new worker process
    during = records[: records.index(reload)]
    started = next(i for i, r in enumerate(during) if r["kind"] == "started" and r["path"] == "svc")
    touched = {r["path"] for r in during[started + 1 :]}
    assert not any(path.startswith("svc/w1") for path in touched)
    pids = [r["info"]["pid"] for r in records if r.get("path") == "svc/w2" and r.get("info")]
    assert len(pids) == 2
    assert pids[0] != pids[1]


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_reload_of_a_file_replaced_by_a_fifo_or_a_directory_is_refused(node, tmp_path, kind):
    file = tmp_path / "tree.toml"
    file.write_text(STEADY)
    running = node(str(file), "--json")
    running.wait_for_record(kind="started", path="svc")
    file.unlink()
    if kind == "fifo":
        os.mkfifo(file)  # nobody writes: reading it would block the node for ever
    else:
        file.mkdir()
    running.signal(signal.SIGHUP)
    failed = running.wait_for_record(kind="reload_failed")
    assert "not a regular file" in str(failed["error"])
    running.signal(signal.SIGTERM)
    status, records, err = running.finish()
    assert status == 0, err
    assert "Traceback" not in err
    assert [r["kind"] for r in records].count("restarted") == 0


def test_a_reload_due_when_time_is_up_gives_way_to_the_end_of_for(monkeypatch):
    """A storm of SIGHUPs, each arriving while the last reload runs, must not
    hold off ``--for``: when both are due, time is up first."""
    spec = hr.SupervisorSpec([hr.ChildSpec("a", hr.Actor)], name="svc")
    runner = _Runner("tree.toml", spec, duration=1.0, as_json=True, view=None)
    ran: list[str] = []
    monkeypatch.setattr(runner, "_reload", lambda: ran.append("reload"))
    monkeypatch.setattr(runner.bus, "exit", lambda: ran.append("exit"))
    with hr.start_tree(spec) as tree:
        runner.tree = tree
        runner.deadline = time.monotonic() - 0.1  # time is up
        runner.reload_requested = True  # and a SIGHUP came meanwhile
        runner._on_main()
    assert ran == ["exit"]
    assert runner.stop_reason == "time is up: --for 1 s"
    runner.wakeup.close()


STORM_ACTORS = '''\
import logging
import sys

import hedgerow as hr


class SlowStop(hr.Actor):
    """Says so on stderr, then stops only once a line arrives on stdin."""

    def on_stop(self):
        logging.getLogger("actors").warning("slow: stopping")
        sys.stdin.readline()
'''


def test_a_storm_of_reload_signals_ends_with_for_and_no_traceback(node, tmp_path):
    (tmp_path / "storm_actors.py").write_text(STORM_ACTORS)
    file = tmp_path / "tree.toml"
    file.write_text(
        '[supervisor]\nname = "svc"\n'
        '[[supervisor.children]]\nid = "slow"\nstart = "storm_actors:SlowStop"\n'
    )
    running = node(str(file), "--json", "--for", "1")
    running.wait_for_record(kind="started", path="svc")
    calm = threading.Event()

    def storm() -> None:  # a SIGHUP every millisecond, for at most 30 s
        until = time.monotonic() + 30.0
        while not calm.wait(0.001) and time.monotonic() < until:
            running.signal(signal.SIGHUP)

    storming = threading.Thread(target=storm)
    storming.start()
    try:
        running.wait_for("slow: stopping", stream="stderr")  # time is up: the tree stops
        assert storming.is_alive(), "the tree stopped only once the storm was over"
    finally:
        calm.set()
        storming.join()
    assert running.process.stdin is not None
    running.process.stdin.write("go\n")  # every SIGHUP has been handled: let the stop end
    running.process.stdin.flush()
    status, records, err = running.finish()
    assert status == 0, err
    assert "time is up: --for 1 s" in err
    assert "Traceback" not in err
    assert records[-1] == {"kind": "exit", "status": 0, "message": "tree 'svc' ended: shutdown"}


WEIRD_ACTORS = '''\
import hedgerow as hr


class Steady(hr.Actor):
    """Runs until stopped."""


class Factory:
    """Makes a Steady; cannot be compared (a user's object may raise anything)."""

    def __call__(self):
        return Steady()

    def __eq__(self, other):
        raise RuntimeError("a Factory cannot be compared")

    __hash__ = object.__hash__


make = Factory()
'''


def test_a_reload_that_fails_in_an_unforeseen_way_keeps_the_tree_running(node, tmp_path):
    (tmp_path / "weird_actors.py").write_text(WEIRD_ACTORS)
    file = tmp_path / "tree.toml"
    file.write_text(
        '[supervisor]\nname = "svc"\n'
        '[[supervisor.children]]\nid = "made"\nstart = "weird_actors:make"\n'
    )
    running = node(str(file), "--json")
    running.wait_for_record(kind="started", path="svc")
    running.signal(signal.SIGHUP)
    failed = running.wait_for_record(kind="reload_failed")
    assert failed["error"] == "RuntimeError: a Factory cannot be compared"
    running.signal(signal.SIGTERM)
    status, records, err = running.finish()
    assert status == 0, err
    assert "Traceback" not in err
    assert kinds_and_paths(records) == [
        ("started", "svc/made"),
        ("started", "svc"),
        ("reload_failed", str(file)),
        ("stopped", "svc/made"),
        ("shutdown", "svc"),
        ("stopped", "svc"),
        ("exit", None),
    ]


def test_a_new_tree_whose_kwargs_do_not_bind_is_refused_before_the_old_one_stops(node, tmp_path):
    file = tmp_path / "tree.toml"
    file.write_text(tree("first=Steady"))
    running = node(str(file), "--json")
    running.wait_for_record(kind="started", path="svc")
    typo = tree("first=Greeter").replace("[supervisor]\n", "[supervisor]\nperiod = 9\n")
    file.write_text(typo + 'kwargs = { greting = "hi" }\n')  # a changed root: a new tree
    running.signal(signal.SIGHUP)
    failed = running.wait_for_record(kind="reload_failed")
    # Reading the file binds each child's kwargs (as `hedgerow check` does).
    assert "supervisor.children[0].kwargs.greting = 'hi'" in failed["error"]
    assert "takes no 'greting'" in failed["error"]
    running.signal(signal.SIGTERM)
    status, records, err = running.finish()
    assert status == 0, err
    assert kinds_and_paths(records) == [
        ("started", "svc/first"),
        ("started", "svc"),
        ("reload_failed", str(file)),
        ("stopped", "svc/first"),
        ("shutdown", "svc"),
        ("stopped", "svc"),
        ("exit", None),
    ]


def test_reload_signals_at_the_very_end_of_a_run_are_ignored_not_fatal(node, tmp_path):
    """Python restores the signal handlers once the tree has stopped, before the
    process exits: a SIGHUP there must not kill the node (status 129 for a
    service manager), nor one while the file is first read."""
    file = tmp_path / "tree.toml"
    file.write_text(STEADY)
    script = (
        "import signal, sys\n"
        "from hedgerow.cli import main\n"
        "try:\n"
        f"    main(['run', {str(file)!r}, '--for', '0.1', '--json'])\n"
        "except SystemExit as exc:\n"
        "    signals = (signal.SIGHUP, signal.SIGUSR1)\n"
        "    ignored = [signal.getsignal(s) is signal.SIG_IGN for s in signals]\n"
        "    print('after run', exc.code, ignored, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)])},
        check=False,
    )
    assert "after run 0 [True, True]" in done.stderr, done.stderr


def test_a_storm_of_reload_signals_until_the_node_has_exited_leaves_status_0(node, tmp_path):
    file = tmp_path / "tree.toml"
    file.write_text(STEADY)
    running = node(str(file), "--json", "--for", "0.5")
    running.wait_for_record(kind="started", path="svc")

    def storm() -> None:  # until the node has exited
        with contextlib.suppress(ProcessLookupError):
            while running.process.poll() is None:
                running.signal(signal.SIGHUP)
                time.sleep(0.001)

    storming = threading.Thread(target=storm)
    storming.start()
    status, records, err = running.finish()
    storming.join()
    assert status == 0, err
    assert records[-1]["status"] == 0


BLOCKING_ACTORS = """\
import logging
import sys

import hedgerow as hr

logging.getLogger("actors").warning("blocking: importing")
sys.stdin.readline()  # an import that waits (a database down, a prompt): until a line


class Late(hr.Actor):
    \"\"\"Runs until stopped.\"\"\"


class Crasher(hr.Actor):
    \"\"\"Crashes a tenth of a second after each start.\"\"\"

    def on_start(self):
        self.actor_send_after(0.1, "crash")

    def on_receive(self, message):
        raise RuntimeError(message)
"""


def test_a_reload_whose_import_waits_leaves_the_node_responsive(node, tmp_path):
    """The file is read off the main thread: while a module it names takes its
    time to import, events are shown and signals handled as ever."""
    (tmp_path / "blocking_actors.py").write_text(BLOCKING_ACTORS)
    (tmp_path / "crashing_actors.py").write_text(
        BLOCKING_ACTORS.split("class Late", maxsplit=1)[0].split("import logging", maxsplit=1)[0]
        + "import hedgerow as hr\n\n\nclass Crasher"
        + BLOCKING_ACTORS.split("class Crasher")[1]
    )
    text = '[supervisor]\nname = "svc"\nmax_restarts = 1000\nperiod = 1\n'
    text += '[[supervisor.children]]\nid = "crasher"\nstart = "crashing_actors:Crasher"\n'
    file = tmp_path / "tree.toml"
    file.write_text(text)
    running = node(str(file), "--json")
    running.wait_for_record(kind="started", path="svc")
    file.write_text(text + '[[supervisor.children]]\nid = "late"\nstart = "blocking_actors:Late"\n')
    running.signal(signal.SIGHUP)
    running.wait_for("blocking: importing", stream="stderr")
    # Shown meanwhile: half a second of crashes (the import began within a few ms).
    running.wait_for_record(kind="restarted", path="svc/crasher", incarnation=6)
    assert running.process.stdin is not None
    running.process.stdin.write("go\n")  # the import ends: the reload goes on
    running.process.stdin.flush()
    reload = running.wait_for_record(kind="reload")
    assert changes(reload) == [("svc/late", "added")]
    running.signal(signal.SIGTERM)
    status, _records, err = running.finish()
    assert status == 0, err


SIGNALLED_IN_POLL_ACTORS = '''\
import os
import signal

import hedgerow as hr
from hedgerow.actors._inbox import Inbox

_statistics = Inbox.statistics
_armed = [os.environ.get("HEDGEROW_TEST_SIGNAL_IN_POLL") == "1"]


def statistics(self):
    """The first poll of a child's inbox after the root's start: a SIGTERM
    arrives while it holds the inbox's lock (its handler runs right there)."""
    with self.mutex:
        if _armed[0]:
            _armed[0] = False
            os.kill(os.getpid(), signal.SIGTERM)
            os.getpid()  # a bytecode or two under the lock: the handler runs here
    return _statistics(self)


Inbox.statistics = statistics


class Steady(hr.Actor):
    """Runs until stopped."""
'''


def test_an_exit_signal_that_interrupts_the_poll_of_an_inbox_still_stops_the_node(tmp_path):
    """The main thread reads the children's inbox depths under each inbox's lock
    after showing the events; a SIGTERM then must not run the tree's stop inside
    that frame, whose lock the supervisor needs to stop the child (it hung)."""
    (tmp_path / "poll_actors.py").write_text(SIGNALLED_IN_POLL_ACTORS)
    file = tmp_path / "tree.toml"
    file.write_text(
        '[supervisor]\nname = "svc"\n'
        '[[supervisor.children]]\nid = "first"\nstart = "poll_actors:Steady"\n'
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "hedgerow", "run", str(file), "--json"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)]),
            "HEDGEROW_TEST_SIGNAL_IN_POLL": "1",
        },
    )
    try:
        out, err = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"the node hung after a SIGTERM during an inbox poll: {out}{err}")
    assert process.returncode == 0, err
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert records[-1]["kind"] == "exit"
    assert ("stopped", "svc/first") in kinds_and_paths(records)
