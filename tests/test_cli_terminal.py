"""`hedgerow run`'s live view in a real terminal: a pseudo-terminal whose output
goes through pyte's screen and its scrollback, as a user sees it.

Each test waits for the command to exit (end of file on the terminal), then
reads the whole screen: every log line once, none overwritten or glued to
another, no stale frame of the tree left in the scrollback.
"""

from __future__ import annotations

import errno
import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pyte

import hedgerow

ROOT = Path(hedgerow.__file__).resolve().parents[1]
FLAKY = ROOT / "examples" / "flaky_worker" / "tree.toml"
COLUMNS, ROWS = 120, 24
HINT = "Ctrl-C: stop gracefully; twice: at once. SIGHUP: reload the file"
LEVEL = re.compile(r"\b(DEBUG|INFO|WARNING|ERROR|CRITICAL)\b")


def run_in_terminal(*args: str) -> tuple[int, list[str]]:
    """Run ``hedgerow ARGS`` in a pseudo-terminal until it exits; its status,
    and the terminal's lines (scrollback, then screen), trailing blanks cut."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    env = {
        **os.environ,
        "TERM": "xterm-256color",
        "COLUMNS": str(COLUMNS),
        "LINES": str(ROWS),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        env.pop(name, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "hedgerow", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    screen = pyte.HistoryScreen(COLUMNS, ROWS, history=100_000, ratio=1)
    screen.set_mode(pyte.modes.LNM)
    stream = pyte.ByteStream(screen)
    try:
        while True:  # until every holder of the terminal has closed it
            try:
                data = os.read(master, 65536)
            except OSError as exc:
                if exc.errno != errno.EIO:
                    raise
                break
            if not data:
                break
            stream.feed(data)
        status = process.wait(timeout=30)
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
            process.wait()
    history = [
        "".join(line[x].data for x in range(COLUMNS)).rstrip() for line in screen.history.top
    ]
    lines = history + [line.rstrip() for line in screen.display]
    while lines and not lines[-1]:
        lines.pop()
    return status, lines


def count(lines: list[str], text: str) -> int:
    return sum(text in line for line in lines)


def assert_no_line_is_glued(lines: list[str]) -> None:
    for line in lines:
        assert len(LEVEL.findall(line)) <= 1, f"two log lines in one: {line!r}"
        if HINT in line:
            assert line.strip() == HINT, f"the hint is glued to a line: {line!r}"


def assert_one_final_frame(lines: list[str], root: str = "root") -> list[str]:
    """The tree is shown once, at the end: no earlier frame stays in the scrollback."""
    frames = [at for at, line in enumerate(lines) if re.match(rf"{root}  \w", line)]
    assert len(frames) == 1, "\n".join(lines)
    frame = lines[frames[0] :]
    assert not any(HINT in line for line in lines), "a frame with the hint stayed behind"
    return frame


def test_the_live_view_keeps_every_log_line(tmp_path):
    status, lines = run_in_terminal("run", str(FLAKY), "--live")
    text = "\n".join(lines)
    assert status == 0, text
    # FlakyWorker logs every job but the three it crashes on, once each.
    for job in (1, 2, 3, 5, 6, 7, 10, 11, 12):
        assert count(lines, f"flaky: job {job:2d} -> {job * 2:2d}") == 1, text
    assert count(lines, "the worker has seen all 12 jobs") == 1, text
    assert count(lines, "tree 'root' ended") == 1, text
    # A crash is one line, its traceback folded.
    assert count(lines, "failed root/worker #1 reason=RuntimeError: job 4 hit a bug") == 1, text
    assert "Traceback" not in text
    assert_no_line_is_glued(lines)
    frame = assert_one_final_frame(lines)
    assert "restarting" not in "\n".join(frame)
    assert re.search(r"worker  stopped  restarts 3", text), text


def test_the_live_view_logs_at_the_chosen_level(tmp_path):
    status, lines = run_in_terminal("run", str(FLAKY), "--live", "--log-level", "warning")
    text = "\n".join(lines)
    assert status == 0, text
    assert "flaky: job" not in text  # INFO
    assert "restarted root/worker" not in text  # an INFO event
    assert count(lines, "failed root/worker #1") == 1, text  # an ERROR event
    assert count(lines, "dead_letter root/worker") == 3, text  # WARNING events
    assert_no_line_is_glued(lines)
    assert_one_final_frame(lines)


WORKER_TREE = """\
[supervisor]
shutdown_policy = "shutdown-on-any-component-stopped"

[[supervisor.children]]
id = "w1"
shutdown = 5
[supervisor.children.worker]
[[supervisor.children.worker.components]]
id = "talker"
start = "talker:Talker"

[[supervisor.children]]
id = "timer"
start = "talker:Timer"
significant = true
restart = "failed"
"""

TALKER = """\
import logging, sys
import hedgerow as hr

class Talker(hr.Actor):
    def on_start(self):
        logging.getLogger("talker").warning("hello from the worker")
        print("a print on the worker's stderr", file=sys.stderr, flush=True)
        try:
            raise ValueError("bad value")
        except ValueError:
            logging.getLogger("talker").exception("it broke")

class Timer(hr.Actor):
    def on_start(self):
        logging.getLogger("talker").warning("hello from the node")
        print("a print in the node")
        self.actor_send_after(0.3, "stop")

    def on_receive(self, message):
        raise hr.Shutdown("time")
"""


def test_a_worker_process_logs_through_the_live_view(tmp_path):
    (tmp_path / "tree.toml").write_text(WORKER_TREE)
    (tmp_path / "talker.py").write_text(TALKER)
    status, lines = run_in_terminal("run", str(tmp_path / "tree.toml"), "--live")
    text = "\n".join(lines)
    assert status == 0, text
    assert count(lines, "hello from the node") == 1, text
    assert count(lines, "hello from the worker") == 1, text
    worker_line = next(line for line in lines if "hello from the worker" in line)
    assert re.search(r"worker w1\[\d+\] talker: hello from the worker", worker_line)
    assert count(lines, "a print on the worker's stderr") == 1, text
    assert count(lines, "a print in the node") == 1, text
    # Its traceback folded: the record's line, then (the node's lines may come
    # between) the exception's.
    broke = next(at for at, line in enumerate(lines) if "talker: it broke" in line)
    assert re.search(r"ERROR +worker w1\[\d+\] talker: it broke$", lines[broke])
    folded = "ValueError: bad value (traceback folded)"
    assert count(lines, folded) == 1, text
    assert lines.index(folded) > broke
    assert "Traceback" not in text
    assert_no_line_is_glued(lines)
    assert_one_final_frame(lines)


EDITOR_TREE = """\
[supervisor]

[[supervisor.children]]
id = "editor"
start = "editor:Editor"

[[supervisor.children]]
id = "old"
start = "editor:Idle"
"""

EDITOR = '''\
import os, pathlib, signal
import hedgerow as hr

HERE = pathlib.Path(__file__).parent

class Idle(hr.Actor):
    pass

class Editor(hr.Actor):
    """Rewrites the tree file (old out, new in), asks for a reload, and ends the tree later."""

    def on_start(self):
        text = (HERE / "tree.toml").read_text()
        (HERE / "tree.toml").write_text(text.replace('"old"', '"new"'))
        os.kill(os.getpid(), signal.SIGHUP)
'''


def test_a_reload_keeps_the_live_view_of_what_it_kept(tmp_path):
    (tmp_path / "tree.toml").write_text(EDITOR_TREE)
    (tmp_path / "editor.py").write_text(EDITOR)
    status, lines = run_in_terminal("run", str(tmp_path / "tree.toml"), "--live", "--for", "1")
    text = "\n".join(lines)
    assert status == 0, text
    squashed = " ".join(text.split())  # long log lines wrap
    assert squashed.count("(tree 'root'): root/old removed, root/new added") == 1, text
    assert_no_line_is_glued(lines)
    frame = assert_one_final_frame(lines)
    names = [line.strip(" │├└─").split("  ")[0] for line in frame]
    assert names[:3] == ["root", "editor", "new"], text  # old is gone, new in its place
    assert re.search(r"editor  stopped", "\n".join(frame)), text  # no restart shown
