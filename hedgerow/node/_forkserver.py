"""The node's side of the fork server: workers forked from a pre-imported process.

A worker restarted after a SIGKILL pays for a new interpreter and its imports
before it serves again: about five times a bare ``python -c pass``. With the
``"forkserver"`` start method (the default where it works), a node starts one
small process per interpreter and Python environment, the zygote
(`hedgerow.node._zygote`), which imports what a worker imports and then forks
a fresh worker on request, so a restart costs a fork. Like multiprocessing's
start method of the same name; ``"spawn"`` launches
``python -m hedgerow.worker`` as before (``Worker(start_method="spawn")``, or
``HEDGEROW_WORKER_START_METHOD=spawn`` for every worker).

The worker a zygote forks is the same program, with the same command line,
stdin and stdout pipes, stderr, environment and working directory as a spawned
one, in a session of its own; the node gets its real pid (a `ForkedProcess`,
which has the subset of `subprocess.Popen` a `WorkerActor` uses), signals it
through a pidfd (never a reused pid), and gets its exit status from the
zygote, which reaps it.

Failures fall back, never fail a start: where fork servers do not work (not
Linux, no pidfd), or when one cannot be started, workers are spawned (a warning
says why; a launch `RETRY_AFTER` seconds later tries again). A zygote starts in
a thread of its own, and launches wait for it `START_PATIENCE` seconds at most,
all told: past them they spawn until it is ready (a zygote hung before it is
ready holds them no longer), and it is killed if not ready within its start
timeout. A zygote that dies (even by SIGKILL) is started again at once if it
had served for `RESTART_AFTER` seconds, else by the next launch that needs it
(no restart loop), and the workers it forked go on: they watch the node, not
their parent. Their exit
status is then lost (the zygote would have reaped them): a `ForkedProcess` says
``status_lost``, and its worker's exit line, if it wrote one, tells the status.
A zygote that hangs (SIGSTOP) is killed, and so taken for dead, once it leaves a
fork unanswered for `FORK_TIMEOUT` seconds, or the exit of a worker it forked
unreported for `hedgerow.node._forked.REPORT_TIMEOUT` seconds after the worker's
pidfd told it. A request too long for the zygote (a large environment), or a
node out of descriptors, makes the launch a spawn. Once its zygote is gone, a
worker's parent is the nearest subreaper or ``init``: if that process reaps no
orphans (some container entry points do not), such a worker stays a zombie once
it exits.

What a zygote imported stays what it was when it started (hedgerow, pykka
and the standard library, not the code a worker hosts): a node that upgrades
hedgerow in place should restart, or use ``"spawn"``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import signal
import socket
import subprocess
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any

from hedgerow.node import _forked
from hedgerow.node._fork_parity import check_env, has_stderr
from hedgerow.node._forked import STATUS_LOST, ForkedProcess
from hedgerow.node._forkserver_start import (
    FORK_TIMEOUT,
    MAX_ANSWER,
    ForkServerError,
    ZygoteStart,
    answer,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

__all__ = [
    "STATUS_LOST",
    "ForkServer",
    "ForkServerError",
    "ForkedProcess",
]

logger = logging.getLogger("hedgerow.node")

RESTART_AFTER = 1.0
"""A zygote that dies after this many seconds of service is started again at once; one
that dies sooner, by the next launch that needs it (so that none restarts in a loop)."""
RETRY_AFTER = 60.0
"""Seconds after a zygote could not start before a launch tries again (they spawn meanwhile):
one killed before it was ready does not make a node spawn for the rest of its life."""
START_TIMEOUT = 30.0
"""Seconds a zygote started again after a death has to import."""
START_PATIENCE = 2.0
"""Seconds launches wait, all told, for a zygote still starting (it takes about a spawn's
time, 0.1 s): past them they spawn until it is ready, while it goes on starting (until its
start timeout, when it is killed). So a zygote that hangs before it is ready holds launches
for this long, not for its start timeout."""
ENV_AT_START = ("LD_PRELOAD", "LD_LIBRARY_PATH", "LC_ALL", "LC_CTYPE", "LANG")
"""Besides the ``PYTHON*`` variables, what an interpreter reads only when it starts: the
dynamic loader's, and the locale (which also decides UTF-8 mode, PEP 538 and 540)."""


class ForkServer(ZygoteStart):
    """One zygote: `begin` starts it, `fork` forks workers once `started`, `close` ends it."""

    def __init__(self, python: str, env: Mapping[str, str]) -> None:
        self.python = python
        self.env = dict(env)
        self.process: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, Future[ForkedProcess]] = {}
        self._processes: dict[int, ForkedProcess] = {}
        self._dead = False
        self._closing = False
        self._reader: threading.Thread | None = None
        self.begun_at = 0.0
        self.started_at = 0.0
        self.started = threading.Event()
        """Set once the zygote is ready to fork, or could not start (`failure` says why)."""
        self.failure: str | None = None
        self.max_request = 0
        """The longest fork request the zygote reads (its ready message says)."""
        self.exited = threading.Event()
        """Set once the zygote is gone (and reaped) and its workers know it."""
        self.replaced = threading.Event()
        """Set, after `exited`, once a dead zygote's successor is running (`successor`),
        or is left to the next launch (None): a zygote that ran for `RESTART_AFTER`
        seconds is started again at once."""
        self.successor: ForkServer | None = None
        self._on_death: Callable[[ForkServer], None] | None = None
        self._on_failure: Callable[[ForkServer], None] | None = None
        self._outwaited = False  # a launch stopped waiting for it to start

    def __repr__(self) -> str:
        pid = self.process.pid if self.process is not None else None
        return f"<ForkServer pid {pid} for {self.python}>"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def alive(self) -> bool:
        """Whether it runs (a zygote that died while idle is found so here)."""
        with self._lock:
            if self.process is None or self._dead:
                return False
        return self.process.poll() is None

    def fork(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: str,
        timeout: float | None = None,
    ) -> ForkedProcess:
        """A new worker running ``python -m hedgerow.worker <argv>``, with pipes on
        its stdin and stdout (as `subprocess.PIPE` gives) and the node's stderr; the
        zygote must answer within `timeout` seconds (None: `FORK_TIMEOUT`)."""
        if timeout is None:
            timeout = FORK_TIMEOUT
        check_env(env)
        future: Future[ForkedProcess] = Future()
        ident = self._register(future)
        message = {"op": "fork", "id": ident, "argv": list(argv), "env": dict(env), "cwd": cwd}
        data = json.dumps(message).encode()
        if len(data) > self.max_request:
            self._withdraw(ident)
            msg = (
                f"the request ({len(data)} bytes: its environment and command line) is "
                f"longer than the fork server takes ({self.max_request} bytes)"
            )
            raise ForkServerError(msg)
        stdin_r, stdin_w, stdout_r, stdout_w, stderr = self._descriptors(ident)
        try:
            try:
                with self._send_lock:
                    assert self._sock is not None
                    socket.send_fds(self._sock, [data], [stdin_r, stdout_w, stderr])
            except OSError as exc:
                self._withdraw(ident)
                assert self.process is not None
                if self.process.poll() is not None:
                    self._finish()  # it died while idle: nobody else is reading
                msg = f"cannot ask the fork server: {exc}"
                raise ForkServerError(msg) from None
            try:
                process = future.result(timeout)
            except FutureTimeout:
                self._abandon(f"no answer to a fork within {timeout:g} s")
                msg = f"the fork server did not answer within {timeout:g} s"
                raise ForkServerError(msg) from None
        except BaseException:
            os.close(stdin_w)
            os.close(stdout_r)
            raise
        finally:
            os.close(stdin_r)
            os.close(stdout_w)
            if stderr != 2:  # noqa: PLR2004 - the node's own
                os.close(stderr)
        process.stdin = os.fdopen(stdin_w, "wb")
        process.stdout = os.fdopen(stdout_r, "rb")
        return process

    def _register(self, future: Future[ForkedProcess]) -> int:
        """A request id for `future`, the reader's to answer; `ForkServerError` if gone."""
        with self._lock:
            if self._dead or self._sock is None:
                msg = "the fork server is gone"
                raise ForkServerError(msg)
            ident = next(self._ids)
            if self._reader is None:
                reader = threading.Thread(
                    target=self._read, name=f"hedgerow-forkserver-{self.pid}", daemon=True
                )
                try:
                    reader.start()  # it reads once we let go of the lock
                except RuntimeError as exc:  # no thread now: the next fork tries again
                    msg = f"no thread to read the fork server's answers ({exc})"
                    raise ForkServerError(msg) from None
                self._reader = reader
            self._pending[ident] = future
            return ident

    def _descriptors(self, ident: int) -> tuple[int, int, int, int, int]:
        """A worker's stdin and stdout pipes and its stderr (the node's, or /dev/null:
        see `has_stderr`), for request `ident`; out of descriptors, `ForkServerError`
        (a spawn fails as well, and says so) and none left open."""
        opened: list[int] = []
        try:
            opened.extend(os.pipe())
            opened.extend(os.pipe())
            opened.append(2 if has_stderr() else os.open(os.devnull, os.O_WRONLY))
        except OSError as exc:
            for fd in opened:
                os.close(fd)
            self._withdraw(ident)
            msg = f"cannot open the worker's pipes: {exc}"
            raise ForkServerError(msg) from None
        stdin_r, stdin_w, stdout_r, stdout_w, stderr = opened
        return stdin_r, stdin_w, stdout_r, stdout_w, stderr

    def _withdraw(self, ident: int) -> None:
        """Request `ident` will not be sent: nobody waits for its answer."""
        with self._lock:
            self._pending.pop(ident, None)

    def close(self) -> None:
        """End the zygote (it leaves when its socket closes; one still starting is
        killed); its workers go on."""
        with self._lock:
            self._closing = True
            sock = self._sock
            reader = self._reader
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self.process is not None:
            self.started.wait()  # a zygote still starting: its start thread ends it
        if self.failure is not None:
            return
        if reader is not None:
            reader.join(FORK_TIMEOUT)
        self._finish()
        self.exited.wait()  # the reader's `_finish`, if it is the one reaping it

    def _forget(self) -> None:
        """In a forked node's child: drop this zygote (its parent's) without a word."""
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._dead = True
        self._pending.clear()
        self._processes.clear()
        self._reader = None
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()

    def _abandon(self, why: str) -> None:
        logger.warning("fork server pid %s: %s: killing it", self.pid, why)
        self._kill()

    def _kill(self) -> None:
        """SIGKILL the zygote and its process group (its session's: a wrapper script of
        the interpreter and the interpreter), while it is not reaped (its pid, so its
        group's id, is its own till then). The workers it forked have sessions of their own."""
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(process.pid, signal.SIGKILL)

    def _unreported(self) -> None:
        """A worker it forked exited, and it did not say so in time: it hangs."""
        self._abandon(f"no report of a worker's exit within {_forked.REPORT_TIMEOUT:g} s")

    def _read(self) -> None:
        """In the reader thread: the zygote's answers and exits, while a request or a
        worker it forked is outstanding (no thread is left behind when none is)."""
        sock = self._sock
        assert sock is not None
        while True:
            with self._lock:
                if not self._pending and not self._processes and not self._closing:
                    self._reader = None
                    return
            try:
                data, fds, _flags, _addr = socket.recv_fds(sock, MAX_ANSWER, 1)
            except OSError:
                data, fds = b"", []
            if not data:
                for fd in fds:
                    os.close(fd)
                break
            self._handle(answer(data), fds)
        self._finish()

    def _finish(self, *, replace: bool = True) -> None:
        """The zygote is gone (or going): fail what waits for it, tell its workers,
        reap it, and (`replace`) let the registry start its successor."""
        with self._lock:
            if self._dead:
                return
            self._dead = True
            pending = list(self._pending.values())
            self._pending.clear()
            processes = list(self._processes.values())
            self._processes.clear()
            closing = self._closing
            sock = self._sock
        for future in pending:
            future.set_exception(ForkServerError("the fork server exited"))
        for process in processes:
            process._lose()
        assert self.process is not None
        try:  # it leaves on its socket's end; one that hangs (SIGSTOP) does not
            status = self.process.wait(FORK_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._abandon(f"still running {FORK_TIMEOUT:g} s after its end")
            status = self.process.wait()
        if sock is not None:
            sock.close()
        if not closing:
            logger.warning(
                "fork server pid %s exited (%s); %d worker(s) it forked go on",
                self.process.pid,
                status,
                len(processes),
            )
        self.exited.set()
        if replace and not closing and self._on_death is not None:
            self._on_death(self)
        self.replaced.set()

    def _handle(self, message: dict[str, Any], fds: list[int]) -> None:
        op = message.get("op")
        if op == "forked" and len(fds) == 1:
            process = ForkedProcess(
                message["pid"], fds[0], ["hedgerow.worker"], on_unreported=self._unreported
            )
            with self._lock:
                self._processes[process.pid] = process
                future = self._pending.pop(message["id"], None)
            if future is not None:
                future.set_result(process)
            return
        for fd in fds:
            os.close(fd)
        if op == "failed":
            with self._lock:
                future = self._pending.pop(message["id"], None)
            if future is not None:
                future.set_exception(ForkServerError(str(message.get("error"))))
        elif op == "exited":
            with self._lock:
                found = self._processes.pop(message["pid"], None)
            if found is not None:
                found._exited(int(message["returncode"]))
