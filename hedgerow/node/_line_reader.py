"""A worker's lines, read until the worker exits, whoever else holds its pipe.

The node reads a worker's stdout in a reader thread. End of file alone does
not tell that the worker exited: a child the worker forked (``os.fork``,
multiprocessing's fork) keeps the pipe's write end, and end of file comes
only when that child exits too, a minute later or never. So the reader also
watches the process itself, through a pidfd: once the process has exited,
whatever it wrote is in the pipe already; the reader takes what is there
(up to `DRAIN_LIMIT` bytes: a child left behind may write on) and stops.
Without pidfds (not Linux, a sandbox that refuses them), a thread waits for
the spawned process and then writes to a pipe of its own, which the reader
watches instead.
"""

from __future__ import annotations

import os
import select
import threading
from typing import TYPE_CHECKING

from hedgerow.node._forked import ForkedProcess
from hedgerow.node._lines import MAX_LINE, BadLine

if TYPE_CHECKING:
    import subprocess

__all__ = ["DRAIN_LIMIT", "LineReader", "exit_descriptor"]

CHUNK = 65536
DRAIN_LIMIT = 4 * MAX_LINE
"""The most bytes read from a worker's pipe once the worker has exited."""


def exit_descriptor(process: subprocess.Popen[bytes] | ForkedProcess) -> int | None:
    """A descriptor of the caller's own (to close) that becomes readable once `process`
    has exited: a pidfd, or without pidfds the end of a pipe that a thread writes to once
    the process is reaped. None if there is none: the process reaped already (its pid
    may be another's), out of descriptors or threads. Call it from the thread that owns
    the process, before anyone else may reap it."""
    if isinstance(process, ForkedProcess):
        return process.exit_descriptor()
    if process.returncode is not None:
        return None
    if hasattr(os, "pidfd_open"):
        try:
            return os.pidfd_open(process.pid)
        except OSError:  # ENOSYS, EPERM: a kernel or a sandbox without pidfds
            pass
    return _waited(process)


def _waited(process: subprocess.Popen[bytes]) -> int | None:
    """The read end of a pipe that a thread writes to once `process.wait()` returns
    (while it waits, `process.poll()` says None, as it runs). Written, not only closed:
    a child the node forks meanwhile (multiprocessing's fork) holds the write end too."""
    try:
        readable, writable = os.pipe()
    except OSError:
        return None

    def wait() -> None:
        try:
            process.wait()
        finally:
            try:
                os.write(writable, b"x")
            except OSError:  # EPIPE: the reader is done (end of file came first)
                pass
            finally:
                os.close(writable)

    waiter = threading.Thread(target=wait, name=f"hedgerow-wait-{process.pid}", daemon=True)
    try:
        waiter.start()
    except RuntimeError:  # no thread to be had
        os.close(readable)
        os.close(writable)
        return None
    return readable


class LineReader:
    """The lines a worker writes on descriptor `fd`, until end of file or, once
    `exit_fd` (see `exit_descriptor`; None: end of file only) says the worker exited,
    until what it wrote is read. Used by one thread; it closes neither descriptor."""

    def __init__(self, fd: int, exit_fd: int | None) -> None:
        self._fd = fd
        self._exit_fd = exit_fd
        self._buffer = bytearray()
        self._searched = 0  # the buffer has no newline before this offset
        self._exited = False
        self._drained = 0
        self._ended = False

    def read_line(self) -> bytes:
        """The next line (b"" at the end); `BadLine` past `MAX_LINE` bytes."""
        buffer = self._buffer
        while True:
            end = buffer.find(b"\n", self._searched)
            if end >= 0 or len(buffer) > MAX_LINE or self._ended:
                size = end + 1 if end >= 0 else len(buffer)
                if size > MAX_LINE:
                    msg = f"a line longer than {MAX_LINE} bytes"
                    raise BadLine(msg)
                line = bytes(buffer[:size])
                del buffer[:size]
                self._searched = 0
                return line
            self._searched = len(buffer)
            chunk = self._next_chunk()
            if chunk:
                buffer += chunk
            else:
                self._ended = True

    def _next_chunk(self) -> bytes:
        """What the pipe has next; b"" at its end, or once the worker has exited and
        what it wrote is read."""
        try:
            if self._exit_fd is None:
                return os.read(self._fd, CHUNK)  # until end of file
            if not self._exited:
                poller = select.poll()  # not select: descriptors may be past FD_SETSIZE
                poller.register(self._fd, select.POLLIN)
                poller.register(self._exit_fd, select.POLLIN)
                ready = {fd for fd, _ in poller.poll()}
                if self._exit_fd not in ready:
                    return os.read(self._fd, CHUNK)
                self._exited = True
            if self._drained >= DRAIN_LIMIT or not _readable_now(self._fd):
                return b""  # an empty pipe: what is written now is not the worker's
            chunk = os.read(self._fd, CHUNK)
        except OSError:  # the pipe closed under us: the end
            return b""
        self._drained += len(chunk)
        return chunk


def _readable_now(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))
