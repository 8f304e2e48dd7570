"""Keeps Crossbar.io from outliving the process that started it (run as a script, stdlib only).

``python -I _router_guard.py --cbdir DIR [--remove-cbdir] [--redact-env NAME] -- crossbar ...``

`hedgerow router` and `Crossbar` start crossbar through this guard, in a
process group of its own, with a pipe on its stdin whose writing end only the
starter holds (as a node does for its workers). The guard runs crossbar in
its own group and:

- passes SIGTERM and SIGINT on to crossbar (which stops its workers), with
  SIGCONT in case crossbar was stopped, and exits with crossbar's status
  when crossbar exits (128 + N if a signal N killed it, which it reports on
  stderr, as any failing status it was not asked for);
- when its stdin reaches end of file or its parent pid changes (the starter is
  gone, even by SIGKILL), stops crossbar (SIGTERM, then SIGKILL after
  ``--stop-timeout`` seconds), removes the node directory with
  ``--remove-cbdir`` (it holds the node's key), and kills what is left of its
  process group (crossbar's workers, and itself);
- on Linux, crossbar gets SIGKILL if the guard itself dies
  (``PR_SET_PDEATHSIG``: the guard is single-threaded, so the thread that
  started crossbar lives as long as the guard does), and crossbar's workers
  leave when their controller is gone; and the guard gets SIGCONT when its
  starter dies, so that a guard someone stopped (SIGSTOP) wakes to stop
  crossbar (a process group that is a session of its own gets no SIGCONT
  from the kernel when it is orphaned).

Crossbar's output (stdout and stderr) goes through the guard to its stdout,
with the value of each ``--redact-env`` variable replaced by ``<redacted>``:
at ``--loglevel debug`` crossbar logs every secret it reads from its
environment, and the ticket it expected from any client that offered a wrong
one.

Either way it removes a ``node.pid`` crossbar left naming its dead pid, and
before it starts crossbar it removes one naming a process that is gone or a
zombie (a guard killed with its whole group cannot clean up), so a new router
on the same node directory is not refused. The guard runs as a
script with ``-I`` so that starting it imports nothing but the standard
library.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["main"]

PARENT_POLL = 0.5
"""Seconds between two looks at the parent pid (the backstop to stdin's end of file)."""

_PR_SET_PDEATHSIG = 1


def _prctl() -> Any:
    """The C library's prctl on Linux, else None."""
    if not sys.platform.startswith("linux"):
        return None
    return getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)


def _die_with(guard: int) -> Any:
    """A preexec function: SIGKILL this child when the guard dies (Linux), or now if it has."""
    prctl = _prctl()
    if prctl is None:
        return None

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != guard:
            os._exit(1)

    return preexec


def _woken_when_the_starter_dies() -> None:
    """Have the kernel send this guard SIGCONT when its starter dies (Linux): a guard
    someone stopped (SIGSTOP) then wakes and stops crossbar. A spurious one (the
    starter's thread ended) only makes it look again."""
    prctl = _prctl()
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGCONT)


def _describe(code: int) -> str:
    """A Popen return code in words: ``exited with status 3``, ``was killed by SIGKILL``."""
    if code >= 0:
        return f"exited with status {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return f"was killed by {name}"


REDACTED = b"<redacted>"
_LONGEST_LINE = 1 << 20
"""Bytes of one line the relay holds before it passes part of it on."""


def _say(line: str) -> None:
    """A line on stderr; nothing if nobody reads it any more (the starter is gone)."""
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


class Relay:
    """Passes crossbar's output on to this guard's stdout, each secret replaced by
    ``<redacted>`` (as written, JSON-escaped or as a Python repr escapes it)."""

    def __init__(self, fd: int, secrets: list[str]) -> None:
        self.fd = fd
        os.set_blocking(fd, False)
        forms = {
            form.encode("utf-8", "surrogateescape")
            for secret in secrets
            if secret
            for form in (secret, json.dumps(secret)[1:-1], repr(secret)[1:-1])
        }
        ordered = sorted(forms, key=len, reverse=True)
        self.pattern = re.compile(b"|".join(re.escape(f) for f in ordered)) if ordered else None
        self.longest = max((len(f) for f in ordered), default=1)
        self.buffer = b""
        self.open = True
        self.broken = False

    def pump(self) -> None:
        """Pass on what crossbar wrote so far (whole lines; part of a very long one)."""
        while self.open:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            if not data:
                self.open = False
                break
            self.buffer += data
        end = self.buffer.rfind(b"\n") + 1
        if not end and len(self.buffer) > _LONGEST_LINE:
            end = self._safe_end()
        if not self.open:
            end = len(self.buffer)
        if end:
            self._write(self._redacted(self.buffer[:end]))
            self.buffer = self.buffer[end:]

    def finish(self, timeout: float) -> None:
        """Pass on the rest, until crossbar's end of output or `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while self.open and (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(OSError):
                select.select([self.fd], [], [], left)
            self.pump()
        self.pump()  # what is in the pipe now (its time may be up: finish(0))
        self.open = False
        self.pump()

    def _safe_end(self) -> int:
        """Where to cut a long line so that no secret is split (nor a start of one kept)."""
        end = len(self.buffer) - (self.longest - 1)
        if self.pattern is not None:
            for match in self.pattern.finditer(self.buffer):
                if match.start() < end < match.end():
                    return match.start()
        return end

    def _redacted(self, data: bytes) -> bytes:
        return self.pattern.sub(REDACTED, data) if self.pattern is not None else data

    def _write(self, data: bytes) -> None:
        while data and not self.broken:
            try:
                data = data[os.write(1, data) :]
            except BlockingIOError:
                select.select([], [1], [], PARENT_POLL)
            except OSError:
                self.broken = True  # our starter is gone: keep draining crossbar


class Guard:
    """One crossbar process under this guard (see the module docstring)."""

    def __init__(
        self,
        command: list[str],
        cbdir: Path | None,
        *,
        remove_cbdir: bool,
        stop_timeout: float,
        secrets: list[str] | None = None,
    ) -> None:
        self.command = command
        self.secrets = secrets or []
        self.relay: Relay | None = None
        self.cbdir = cbdir
        self.remove_cbdir = remove_cbdir
        self.stop_timeout = stop_timeout
        self.parent = os.getppid()
        self.wake_read, wake_write = os.pipe()
        os.set_blocking(wake_write, False)
        os.set_blocking(self.wake_read, False)
        signal.set_wakeup_fd(wake_write)
        # Each wakes select: crossbar exited; the starter died (SIGCONT, see
        # _woken_when_the_starter_dies; SIGHUP, if its process group was orphaned).
        for name in ("SIGCHLD", "SIGCONT", "SIGHUP"):
            signal.signal(getattr(signal, name), lambda *_: None)
        self.process: subprocess.Popen[bytes] | None = None
        self.forwarded = False

    def run(self) -> int:
        """Run crossbar until it exits (its status) or the starter is gone."""
        self._forget_stale_pid_file()
        try:
            self.process = subprocess.Popen(  # noqa: S603 - the starter's own command line
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with(os.getpid()),  # noqa: PLW1509 - one thread here
            )
        except OSError as exc:
            _say(f"cannot run {self.command[0]}: {exc}")
            return 1
        assert self.process.stdout is not None
        self.relay = Relay(self.process.stdout.fileno(), self.secrets)
        for name in ("SIGTERM", "SIGINT"):
            signal.signal(getattr(signal, name), self._forward)
        stdin_open = True
        while (code := self.process.poll()) is None:
            watched = [self.wake_read, *([0] if stdin_open else []), *self._output()]
            try:
                ready, _, _ = select.select(watched, [], [], PARENT_POLL)
            except OSError:
                ready = []
            if self.wake_read in ready:
                with contextlib.suppress(OSError):
                    os.read(self.wake_read, 4096)
            if 0 in ready and not self._read_stdin():
                stdin_open = False
            self.relay.pump()
            if not stdin_open or os.getppid() != self.parent:
                self._orphaned()
        self.relay.finish(PARENT_POLL)
        self._forget_pid_file()
        if code < 0 or (code != 0 and not self.forwarded):
            _say(f"crossbar (pid {self.process.pid}) {_describe(code)}")
        return code if code >= 0 else 128 - code

    def _output(self) -> list[int]:
        """Crossbar's output, while it is open: to watch with select."""
        return [self.relay.fd] if self.relay is not None and self.relay.open else []

    def _read_stdin(self) -> bool:
        """False once stdin is at its end (or broken): the starter is gone."""
        try:
            return os.read(0, 4096) != b""
        except OSError:
            return False

    def _forward(self, signum: int, _frame: Any) -> None:
        """Pass the signal on, and continue crossbar in case it was stopped."""
        self.forwarded = True
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signum)
                self.process.send_signal(signal.SIGCONT)

    def _orphaned(self) -> None:
        """The starter is gone: stop crossbar, remove what it leaves, end the group."""
        assert self.process is not None
        _say("hedgerow router: its starter is gone; stopping crossbar")
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
            self.process.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + self.stop_timeout
        while self.process.poll() is None and (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(OSError):
                watched = [self.wake_read, *self._output()]
                select.select(watched, [], [], min(left, PARENT_POLL))
                os.read(self.wake_read, 4096)
            if self.relay is not None:
                self.relay.pump()  # crossbar must not block on a full pipe while it stops
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._forget_pid_file()
        if self.cbdir is not None and self.remove_cbdir:
            shutil.rmtree(self.cbdir, ignore_errors=True)
        if self.relay is not None:
            self.relay.finish(0)
        os.killpg(os.getpgrp(), signal.SIGKILL)  # crossbar's workers, and this guard

    def _forget_stale_pid_file(self) -> None:
        """Remove a ``node.pid`` naming a process that is gone or a zombie.

        A guard killed with its whole group leaves crossbar's pid file behind;
        crossbar refuses to start over a live pid and fails outright on a
        zombie's (psutil cannot read a zombie's command line)."""
        if self.cbdir is None:
            return
        path = self.cbdir / "node.pid"
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
            pid = int(json.loads(path.read_text(encoding="utf-8"))["pid"])
            if not _alive(pid):
                path.unlink()

    def _forget_pid_file(self) -> None:
        """Remove ``node.pid`` if it names our crossbar, now dead."""
        if self.cbdir is None or self.process is None:
            return
        path = self.cbdir / "node.pid"
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
            if json.loads(path.read_text(encoding="utf-8"))["pid"] == self.process.pid:
                path.unlink()


def _alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie does not: it has ended, unreaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return True  # no /proc: trust the signal
    return stat.rpartition(")")[2].split()[:1] not in (["Z"], ["X"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="_router_guard", description=__doc__.split("\n")[0])
    parser.add_argument("--cbdir", type=Path, help="Crossbar's node directory.")
    parser.add_argument(
        "--remove-cbdir", action="store_true", help="Remove it if the starter goes."
    )
    parser.add_argument("--stop-timeout", type=float, default=10.0)
    parser.add_argument(
        "--redact-env",
        action="append",
        default=[],
        metavar="NAME",
        help="A variable whose value (a secret) never appears in crossbar's output.",
    )
    parser.add_argument("command", nargs="+", help="Crossbar's command line (after --).")
    args = parser.parse_args(argv)
    if os.getpgrp() != os.getpid():
        os.setpgid(0, 0)  # the group it ends is its own, never its starter's
    _woken_when_the_starter_dies()
    guard = Guard(
        args.command,
        args.cbdir,
        remove_cbdir=args.remove_cbdir,
        stop_timeout=args.stop_timeout,
        secrets=[os.environ.get(name, "") for name in args.redact_env],
    )
    return guard.run()


if __name__ == "__main__":
    sys.exit(main())
