"""Starting a zygote: `ZygoteStart`, the part of `ForkServer` that launches its
process and waits, in a thread of its own, for its ready message; and what
the node's side of a zygote's socket shares (its error, its answers).

A zygote not ready within its start timeout, that says something else, or
whose socket ends is killed and reaped, and `started` is set all the same,
with `failure` saying why, so that launches waiting for it spawn instead.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import threading
from time import monotonic
from typing import TYPE_CHECKING, Any

from hedgerow.node._fork_parity import has_stderr, past_stdio

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["FORK_TIMEOUT", "MAX_ANSWER", "ForkServerError", "ZygoteStart", "answer"]

logger = logging.getLogger("hedgerow.node")

FORK_TIMEOUT = 10.0
"""Seconds a node waits for its zygote to answer a fork request, before it gives up on it."""

MAX_ANSWER = 1 << 16
"""The longest answer of a zygote (they are short: `hedgerow.node._zygote` lists them)."""

FIRST_MAX_REQUEST = 1 << 20
"""The longest fork request of a zygote whose ready message does not say (the first ones:
another interpreter's hedgerow may be older)."""

ZYGOTE_MODULE = "hedgerow.node._zygote"
"""What a zygote runs (``python -m``)."""


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _short(data: bytes) -> str:
    text = repr(data)
    return text if len(text) <= 80 else text[:77] + "..."  # noqa: PLR2004


class ForkServerError(Exception):
    """A fork server could not start, or could not fork (the launch then spawns)."""


def answer(data: bytes) -> dict[str, Any]:
    """A zygote's message; ``{}`` for one that is not a JSON object."""
    try:
        message = json.loads(data)
    except ValueError:
        return {}
    return message if isinstance(message, dict) else {}


class ZygoteStart:
    """`ForkServer`'s start (see the module docstring); it uses the server's state."""

    if TYPE_CHECKING:  # the server's, which this part reads and sets
        python: str
        env: dict[str, str]
        process: subprocess.Popen[bytes] | None
        _sock: socket.socket | None
        _lock: threading.Lock
        _dead: bool
        _closing: bool
        begun_at: float
        started_at: float
        started: threading.Event
        failure: str | None
        max_request: int
        exited: threading.Event
        replaced: threading.Event
        _on_failure: Callable[[Any], None] | None

        @property
        def pid(self) -> int | None: ...
        def _kill(self) -> None: ...

    def wait_ready(self, patience: float) -> bool:
        """Wait until it is ready, at most until `patience` seconds after it began to
        start (launches share that wait: none waits once it is over); whether it is."""
        remaining = self.begun_at + patience - monotonic()
        return self.started.wait(max(remaining, 0.0)) and self.failure is None

    def begin(self, timeout: float) -> None:
        """Start the zygote; a thread of its own waits (up to `timeout` seconds) until it
        has imported, and then sets `started` (with `failure` set if it did not start:
        the zygote is then killed and reaped, and `_on_failure` called).
        `ForkServerError` if it cannot even be launched."""
        try:
            self._launch()
        except (ForkServerError, OSError) as exc:
            self._failed(str(exc), tell=False)  # the caller tells
            raise
        self.begun_at = monotonic()
        starter = threading.Thread(
            target=self._await_ready,
            args=(timeout,),
            name=f"hedgerow-forkserver-start-{self.pid}",
            daemon=True,
        )
        try:
            starter.start()
        except RuntimeError as exc:  # no thread to be had: no zygote either
            self._give_up()
            why = f"the fork server did not start: no thread to wait for it ({exc})"
            self._failed(why, tell=False)  # the caller tells
            raise ForkServerError(why) from None

    def _launch(self) -> None:
        try:
            node_pidfd = past_stdio(os.pidfd_open(os.getpid()))
        except OSError as exc:  # a sandbox that refuses pidfds
            msg = f"no pidfd for the node: {exc}"
            raise ForkServerError(msg) from None
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        theirs = socket.socket(fileno=past_stdio(theirs.detach()))
        command = [
            self.python,
            "-m",
            ZYGOTE_MODULE,
            "--fd",
            str(theirs.fileno()),
            "--node-pidfd",
            str(node_pidfd),
        ]
        try:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=None if has_stderr() else subprocess.DEVNULL,
                env=self.env,
                pass_fds=(theirs.fileno(), node_pidfd),
                start_new_session=True,
            )
        except OSError as exc:
            ours.close()
            msg = f"cannot start {self.python}: {exc}"
            raise ForkServerError(msg) from None
        finally:
            theirs.close()
            os.close(node_pidfd)
        self._sock = ours

    def _await_ready(self, timeout: float) -> None:
        """In its start thread: its ready message, or its end (`close` shuts its socket).
        Whatever happens, `started` is set at the end (with `failure` if it did not start)."""
        why: str | None = "its start thread failed"
        try:
            why = self._ready_or_why(timeout)
        finally:
            if why is not None:
                with self._lock:
                    closing = self._closing
                    self._dead = True
                self._give_up()
                self._failed(f"the fork server did not start: {why}", tell=not closing)

    def _ready_or_why(self, timeout: float) -> str | None:
        """Wait for its ready message: None once it is ready, else why it is not."""
        sock = self._sock
        process = self.process
        assert sock is not None
        assert process is not None
        sock.settimeout(timeout)
        try:
            data = sock.recv(MAX_ANSWER)
        except TimeoutError:
            data = None
        except OSError:
            data = b""
        sock.settimeout(None)
        ready = answer(data) if data else {}
        max_request = ready.get("max_request", FIRST_MAX_REQUEST)
        with self._lock:
            if self._closing:
                return "closed while it started"
            if ready.get("op") == "ready" and _is_count(max_request):
                self.max_request = max_request
                self.started_at = monotonic()
                self.started.set()
                logger.debug("fork server pid %s started", process.pid)
                return None
        if data is None:
            return f"not ready within {timeout:g} s"
        if data:
            return f"it said {_short(data)} instead of ready"
        try:  # its socket ended: it is exiting, unless it hangs
            status = process.wait(FORK_TIMEOUT)
        except subprocess.TimeoutExpired:
            return f"it closed its socket and still ran {FORK_TIMEOUT:g} s later"
        return f"it exited ({status})"

    def _give_up(self) -> None:
        """A zygote that did not start: kill it (whatever it does: it may hang), reap
        it, close its socket."""
        self._kill()
        assert self.process is not None
        self.process.wait()
        if self._sock is not None:
            self._sock.close()

    def _failed(self, why: str, *, tell: bool = True) -> None:
        """It did not start: say so (`_on_failure`), then let waiters know."""
        self.failure = why
        with self._lock:
            self._dead = True
        self.exited.set()
        self.replaced.set()
        if tell and self._on_failure is not None:
            self._on_failure(self)
        self.started.set()
