"""The fork server (a "zygote"): ``python -m hedgerow.node._zygote --fd N --node-pidfd P``.

A node starts it once (`hedgerow.node._forkserver` is its other end), and it
imports what a worker process imports before its config (``hedgerow.worker``
imports `hedgerow.node._worker_main`; so does this module), then waits. Each request on its control
socket (an ``AF_UNIX`` ``SOCK_SEQPACKET`` pair, fd `N`; fd `P` is a pidfd of its
node, which the node opened: its parent may be a wrapper script) carries a worker's
command line, environment and working directory, and three descriptors: the
worker's stdin and stdout pipes and the stderr to give it. The zygote forks;
the child becomes the worker, exactly as ``python -m hedgerow.worker`` would
run with that command line, without paying for an interpreter and its imports.

Messages are one JSON object each (descriptors ride along as ``SCM_RIGHTS``):

- zygote to node: ``{"op": "ready", "pid": Z, "max_request": N}`` once imported
  (`N`: the longest request it reads, `MAX_MESSAGE`);
  ``{"op": "forked", "id": I, "pid": P}`` with a pidfd of the new worker;
  ``{"op": "failed", "id": I, "error": TEXT}``;
  ``{"op": "exited", "pid": P, "returncode": R}`` (Popen's: negative for a
  signal) once it has reaped the worker, so that an exit the node has seen is
  one the system has forgotten, as after `subprocess.Popen.wait`;
- node to zygote: ``{"op": "fork", "id": I, "argv": [...], "env": {...}, "cwd": D}``
  with three descriptors.

**The pid stays the worker's.** The node signals a worker through the pidfd
the zygote opened before it could reap it, so a signal never reaches another
process that got the pid again.

**Safe to fork.** The zygote is single-threaded (it checks at its start, and
leaves if a ``sitecustomize`` started a thread; and before each fork), has
started nothing (no logging handlers, no threads, no event loop), and holds
no descriptors but its control socket, its node's pidfd, and its
children's pidfds. The child closes every one of those but the node's pidfd,
starts a session of its own (as ``start_new_session`` does for a spawned
worker), restores the signal dispositions and mask a new interpreter has,
takes its stdio from the request, its environment and working directory too,
and runs the worker's ``main``; it never returns into the zygote's loop.

**No orphans.** The zygote leaves when its control socket ends (the node is
gone, even by SIGKILL). The workers it forked watch the node's pidfd, not their
parent, so a zygote that dies harms none of them.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import select
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from hedgerow.node import _worker_main
from hedgerow.node._worker_config import watch_node_pidfd

__all__ = ["MAX_MESSAGE", "main"]

MAX_MESSAGE = 1 << 20
"""The longest fork request (a worker's environment rides in it); a longer one fails."""

WORKER_ENTRY = str(Path(__file__).parent.parent / "worker.py")
"""``hedgerow/worker.py``: a spawned worker's ``sys.argv[0]`` (``python -m hedgerow.worker``)."""


def _close(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


class _Job:
    """A fork request, as the child that serves it sees it."""

    __slots__ = ("argv", "cwd", "env", "fds")

    def __init__(self, argv: list[str], env: dict[str, str], cwd: str, fds: list[int]) -> None:
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.fds = fds


class _Zygote:
    """The zygote's loop: fork on request, reap and report exits."""

    def __init__(self, control: socket.socket, node_pidfd: int) -> None:
        self.control = control
        self.node_pidfd = node_pidfd
        self.children: dict[int, int] = {}  # pidfd -> pid, not yet reaped
        self.poller = select.poll()

    def send(self, message: dict[str, Any], fds: list[int] | None = None) -> None:
        """Tell the node; a node gone is not an error (the loop sees the socket end)."""
        data = json.dumps(message).encode()
        with contextlib.suppress(OSError):
            if fds:
                socket.send_fds(self.control, [data], fds)
            else:
                self.control.send(data)

    def serve(self) -> _Job | None:
        """Serve until the node is gone (None); in a forked child, its job."""
        self.send({"op": "ready", "pid": os.getpid(), "max_request": MAX_MESSAGE})
        poller = self.poller
        control = self.control.fileno()
        poller.register(control, select.POLLIN)
        while True:
            events = dict(poller.poll())
            for fd in list(self.children):
                if fd in events:
                    poller.unregister(fd)
                    self._report_exit(fd)
            if control not in events:
                continue
            try:
                data, fds, flags, _addr = socket.recv_fds(self.control, MAX_MESSAGE, 3)
            except OSError:
                return None
            if not data:
                _close(fds)
                return None  # the node is gone
            job = self._on_message(data, flags, fds)
            if job is not None:
                return job

    def _on_message(self, data: bytes, flags: int, fds: list[int]) -> _Job | None:
        """A request; one cut short (the node checks `max_request` first) or not JSON
        has no id to answer to, and is dropped."""
        message: Any = None
        if not flags & socket.MSG_TRUNC:
            with contextlib.suppress(ValueError):
                message = json.loads(data)
        if isinstance(message, dict) and message.get("op") == "fork":
            return self._fork(message, fds)
        _close(fds)
        return None

    def _fork(self, message: dict[str, Any], fds: list[int]) -> _Job | None:
        """Fork a worker; in the child, return its job; in the zygote, None."""
        if len(fds) != 3:  # noqa: PLR2004 - stdin, stdout, stderr
            for fd in fds:
                os.close(fd)
            error = f"it got {len(fds)} of a request's 3 descriptors (out of descriptors?)"
            self.send({"op": "failed", "id": message["id"], "error": error})
            return None
        if threading.active_count() != 1:
            for fd in fds:
                os.close(fd)
            error = f"the fork server has {threading.active_count()} threads: it must have one"
            self.send({"op": "failed", "id": message["id"], "error": error})
            return None
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            self.send({"op": "failed", "id": message["id"], "error": f"fork failed: {exc}"})
            return None
        if pid == 0:
            return self._child(message, fds)
        for fd in fds:
            os.close(fd)
        # The child cannot be reaped before its pidfd is open: only this thread reaps.
        pidfd = os.pidfd_open(pid)
        self.children[pidfd] = pid
        self.poller.register(pidfd, select.POLLIN)
        self.send({"op": "forked", "id": message["id"], "pid": pid}, [pidfd])
        return None

    def _child(self, message: dict[str, Any], fds: list[int]) -> _Job:
        """In the child: shed the zygote's descriptors; the rest is `_become_worker`'s."""
        for pidfd in self.children:
            os.close(pidfd)
        self.children.clear()
        self.control.close()
        return _Job(list(message["argv"]), dict(message["env"]), str(message["cwd"]), fds)

    def _report_exit(self, pidfd: int) -> None:
        pid = self.children.pop(pidfd)
        try:
            result = os.waitid(os.P_PIDFD, pidfd, os.WEXITED)
        except ChildProcessError:
            result = None
        finally:
            os.close(pidfd)
        returncode = 0
        if result is not None:
            exited = result.si_code == os.CLD_EXITED
            returncode = result.si_status if exited else -result.si_status
        self.send({"op": "exited", "pid": pid, "returncode": returncode})


_IGNORED = frozenset(
    getattr(signal, name) for name in ("SIGPIPE", "SIGXFSZ") if hasattr(signal, name)
)
"""What a new interpreter ignores at start; every other signal is at its default
(SIGINT: `KeyboardInterrupt`)."""


def _reset_signals() -> None:
    """The dispositions and mask a new ``python`` process starts with."""
    signal.set_wakeup_fd(-1)
    for signum in signal.valid_signals():
        if signum in (signal.SIGKILL, signal.SIGSTOP):
            continue
        if signum == signal.SIGINT:
            handler: Any = signal.default_int_handler
        elif signum in _IGNORED:
            handler = signal.SIG_IGN
        else:
            handler = signal.SIG_DFL
        with contextlib.suppress(OSError, ValueError):
            signal.signal(signum, handler)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _become_worker(job: _Job, node_pidfd: int, start_dir: str) -> None:
    """In the forked child: become ``python -m hedgerow.worker <argv>``, then exit."""
    os.setsid()
    _reset_signals()
    for target, fd in enumerate(job.fds):
        os.dup2(fd, target)
    for fd in job.fds:
        if fd > 2:  # noqa: PLR2004 - past stdio
            os.close(fd)
    os.environ.clear()
    os.environ.update((name, value) for name, value in job.env.items() if name)
    time.tzset()  # as a new interpreter reads TZ
    try:
        os.chdir(job.cwd)
    except OSError as exc:
        sys.stderr.write(f"hedgerow worker: cannot enter {job.cwd!r}: {exc}\n")
        os._exit(1)
    if sys.path and sys.path[0] == start_dir:  # ``-m`` put the zygote's directory first
        sys.path[0] = job.cwd
    watch_node_pidfd(node_pidfd)
    sys.argv = [WORKER_ENTRY, *job.argv]
    _worker_main.main(job.argv)  # exits (SystemExit): the interpreter ends as a worker's


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    values = dict(zip(args[::2], args[1::2], strict=False))
    control = socket.socket(fileno=int(values["--fd"]))
    passed = int(values["--node-pidfd"])  # the node's own: never another's pid
    # Its number was the node's (a busy node's may be past FD_SETSIZE, and the workers
    # watch it with select): the lowest free one (past stdio, which the node opened).
    node_pidfd = os.dup(passed)
    os.close(passed)
    watch = select.poll()
    watch.register(node_pidfd, select.POLLIN)
    if watch.poll(0):
        return  # the node is gone already
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # only its node stops it (by closing the socket)
    gc.collect()
    gc.freeze()  # what the zygote imported stays out of the children's collections
    if threading.active_count() != 1:  # a sitecustomize or a .pth started one: an agent
        sys.stderr.write(
            f"hedgerow fork server: {threading.active_count()} threads at its start, "
            "so forking it is not safe (a sitecustomize or a .pth file started them): "
            "workers are spawned\n"
        )
        sys.exit(1)
    start_dir = str(Path.cwd())
    job = _Zygote(control, node_pidfd).serve()
    if job is None:
        return
    _become_worker(job, node_pidfd, start_dir)


if __name__ == "__main__":
    main()
