"""One incarnation of a worker process: the `WorkerActor` a `Worker` builds on each start."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import uuid
from typing import TYPE_CHECKING, Any, Protocol

from pykka._envelope import Envelope

from hedgerow._events import EventKind
from hedgerow._exceptions import WorkerExited
from hedgerow.actors._actor import Actor
from hedgerow.actors._inbox import Inbox
from hedgerow.actors._messages import _Control
from hedgerow.actors._reason import NORMAL
from hedgerow.node._forked import ForkedProcess
from hedgerow.node._line_reader import LineReader, exit_descriptor
from hedgerow.node._lines import BadLine, check_line
from hedgerow.node._wire import DEFAULT_ORPHAN_TIMEOUT, decode_event, describe_status, dumps
from hedgerow.supervision._spec import BRUTAL_KILL, DEFAULT_WORKER_SHUTDOWN, INFINITY

if TYPE_CHECKING:
    from pykka._actor import ActorInbox

    from hedgerow._events import EventStream
    from hedgerow.node._ports import PortAllocator

__all__ = [
    "DEFAULT_READY_TIMEOUT",
    "KILL_MARGIN",
    "Launcher",
    "Spare",
    "WorkerActor",
    "WorkerProcess",
]

logger = logging.getLogger("hedgerow.node")

WorkerProcess = subprocess.Popen[bytes] | ForkedProcess
"""A worker process: spawned (a `subprocess.Popen`) or forked by a zygote."""

DEFAULT_READY_TIMEOUT = 30.0
"""Seconds the node waits for a worker's "ready" before it kills it."""
KILL_MARGIN = 0.5
"""At most this many seconds (and at most a fifth) of a child's shutdown timeout
go to SIGKILL and reaping, so that the worker exits within its supervisor's wait."""

_ROOT_KINDS_DROPPED = frozenset(
    {EventKind.STARTED, EventKind.STOPPED, EventKind.FAILED, EventKind.RESTARTED}
)
"""The hosted root's events that the worker child's own events already tell."""


class Spare(Protocol):
    """A process started ahead of need that an incarnation takes over."""

    @property
    def guid(self) -> str: ...
    @property
    def process(self) -> WorkerProcess: ...


class Launcher(Protocol):
    """What a `WorkerActor` needs of its `hedgerow.node.Worker`: how to launch a
    process, the config to send it, and its standby spares (``Worker(standby=True)``)."""

    @property
    def name(self) -> str | None: ...
    @property
    def ready_timeout(self) -> float: ...
    @property
    def standby(self) -> bool: ...
    @property
    def ports(self) -> PortAllocator: ...

    def launch(self, guid: str, port: int, *, standby: bool = False) -> WorkerProcess: ...
    def config(
        self, *, guid: str, port: int, name: str, path: str, orphan_timeout: float
    ) -> dict[str, Any]: ...
    def _keep_spare(self, key: str, port: int) -> None: ...
    def _take_spare(self, key: str, port: int) -> Spare | None: ...
    def _hold_spare(self, key: str) -> None: ...
    def _drop_spare(self, key: str) -> None: ...


def _cut(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class WorkerActor(Actor):
    """One incarnation of a `Worker`: a hedgerow `Actor` that owns one worker process.

    Its hooks run in its own thread. ``on_start`` launches the process and
    waits for "ready"; a process that exits first, or is not ready within
    ``ready_timeout`` (it is then killed), fails the start with `WorkerExited`.
    A reader thread follows the process's lines; when the process exits, the
    actor fails with `WorkerExited` (status 0: a normal stop). ``on_stop``
    stops the process (SIGTERM, then SIGKILL), and raises nothing. Whatever
    ends the actor, its process does not outlive it: an exit callback kills
    (SIGKILL) and reaps a process still running.
    """

    def __init__(self, worker: Launcher) -> None:
        super().__init__()
        self.worker = worker
        self.process: WorkerProcess | None = None
        self.guid = uuid.uuid4().hex
        self.port: int | None = None
        self.path = ""
        self.name = worker.name or "worker"
        self.returncode: int | None = None
        """How the process ended (negative: the signal that killed it), once reaped."""
        self._lock = threading.Lock()
        self._running = False  # the process said ready and the actor has not begun to stop
        self._stopping = False
        self._ready = threading.Event()
        self._ready_line: dict[str, Any] | None = None
        self._exit_line: dict[str, Any] | None = None
        self._bad: str | None = None  # what was wrong with a line the process wrote
        self._reader: threading.Thread | None = None
        self._gate = threading.Lock()  # publishing order: held events, then the reader's
        self._held: list[dict[str, Any]] | None = []  # events before ours was published
        self._events: EventStream | None = None
        # A watch fires as soon as the supervisor abandons the incarnation (a
        # brutal kill, a shutdown run out, a cancelled start), even while
        # on_start waits for "ready": the process is killed then, not after
        # ready_timeout.
        self._hr_add_exit_callback(self._exited, watch=True)

    @staticmethod
    def _create_actor_inbox() -> ActorInbox:
        inbox = Actor._create_actor_inbox()
        return inbox if isinstance(inbox, Inbox) else Inbox()

    def __str__(self) -> str:
        pid = f" pid {self.process.pid}" if self.process is not None else ""
        return f"Worker {self.path or self.name}{pid}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def actor_info(self) -> dict[str, Any] | None:
        return {"pid": self.pid, "port": self.port, "guid": self.guid}

    # -- starting ----------------------------------------------------------------

    def on_start(self) -> None:
        """Launch the process, send its config, wait for "ready" (up to ``ready_timeout``)."""
        ref = self.actor_child_ref
        if ref is not None:
            self.path = ref.path
            self.name = self.worker.name or ref.path.rsplit("/", 1)[-1]
            self._events = ref.events
        else:
            self.path = self.name
        try:
            self._launch()
            if self._hr_abandoned:  # before the process was there to kill: kill it now
                self._cleanup()
                return
            self._wait_ready()
        except BaseException:
            self._cleanup()  # now: the supervisor may start the next incarnation at once
            if self._hr_abandoned:
                return  # killed by its supervisor, which reports it so: not a failed start
            raise
        with self._lock:
            self._running = True
            exited = self.returncode is not None
        if exited:
            self._tell_exit()
        # Held events go out after our own "started" (published when on_start
        # returns) and before the start is over, so ahead of the parent's later events.
        publish_started = self._hr_on_started
        if publish_started is not None:

            def started_then_held(actor: Any) -> None:
                publish_started(actor)
                self._release_held()

            self._hr_on_started = started_then_held
        self._put_front(WorkerActor._started)

    def _started(self) -> None:
        """In the actor's thread, after our "started" event: publish what was held
        (if the start callback has not) and, with `standby`, start the spare."""
        self._release_held()
        if self.worker.standby and self.port is not None:
            self.worker._keep_spare(self.path, self.port)

    def _launch(self) -> None:
        worker = self.worker
        self.port = worker.ports.next_port(self.path, owner=self)
        spare = worker._take_spare(self.path, self.port) if worker.standby else None
        if spare is not None:
            self.guid = spare.guid
            self.process = spare.process
        else:
            self.process = worker.launch(self.guid, self.port)
        # The process's own exit ends the reading, not only end of file (a child it
        # forked may hold its pipe): taken now, before anyone may reap the process.
        exit_fd = exit_descriptor(self.process)
        self._reader = threading.Thread(
            target=self._read, args=(self.process, exit_fd), name=f"{self} reader", daemon=True
        )
        try:
            self._reader.start()
        except BaseException:
            if exit_fd is not None:
                os.close(exit_fd)
            raise
        config = worker.config(
            guid=self.guid,
            port=self.port,
            name=self.name,
            path=self.path,
            orphan_timeout=self._orphan_timeout(),
        )
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(dumps(config))
            self.process.stdin.flush()
        except BrokenPipeError:
            pass  # it exited already: the reader tells how

    def _wait_ready(self) -> None:
        process = self.process
        assert process is not None
        timeout = self.worker.ready_timeout
        if not self._ready.wait(timeout):
            self._kill(process)
            detail = f"not ready within {timeout:g} s (ready_timeout)"
            raise WorkerExited(self.name, process.pid, process.wait(), detail)
        if self._ready_line is None:  # it exited before it was ready
            returncode = process.wait()
            raise WorkerExited(self.name, process.pid, returncode, self._exit_detail(returncode))

    def _exit_detail(self, returncode: int) -> str:
        if isinstance(self.process, ForkedProcess) and self.process.status_lost:
            lost = "its exit status is unknown: the fork server that forked it exited first"
            line = self._exit_line
            if line is not None and line.get("reason"):
                return f"{_cut(str(line['reason']))} ({lost})"
            return lost
        if self._bad is not None:
            return f"it wrote a bad line: {self._bad}"
        line = self._exit_line
        if line is not None and line.get("reason"):
            return _cut(str(line["reason"]))
        if returncode > 0:
            return describe_status(returncode)
        return ""

    # -- the process's lines -------------------------------------------------------

    def _read(self, process: WorkerProcess, exit_fd: int | None) -> None:
        """In the reader thread: follow the process's lines until it exits, then reap it."""
        try:
            self._read_lines(process, exit_fd)
        finally:
            if exit_fd is not None:
                os.close(exit_fd)
        self._reap(process)

    def _read_lines(self, process: WorkerProcess, exit_fd: int | None) -> None:
        stdout = process.stdout
        assert stdout is not None
        lines = LineReader(stdout.fileno(), exit_fd)
        while True:
            try:
                raw = lines.read_line()
                if not raw:
                    break
                line = check_line(raw)
            except BadLine as exc:
                self._bad_line(process, str(exc))
                break
            kind = line["type"]
            if kind == "event":
                self._republish(line)
            elif kind == "ready":
                self._ready_line = line
                self._ready.set()
            elif kind == "exit":
                self._exit_line = line

    def _reap(self, process: WorkerProcess) -> None:
        returncode = process.wait()
        if isinstance(process, ForkedProcess) and process.status_lost:
            status = (self._exit_line or {}).get("status")
            returncode = status if isinstance(status, int) else returncode
        with self._lock:
            self.returncode = returncode
            tell = self._running and not self._stopping
        self._ready.set()
        if tell:
            self._tell_exit()

    def _bad_line(self, process: WorkerProcess, why: str) -> None:
        """In the reader thread: the worker broke the protocol. Kill it (SIGKILL): its
        exit fails the actor (or its start), and its supervisor restarts it."""
        self._bad = why
        logger.error("%s wrote a bad line (%s): killing it", self, why)
        with contextlib.suppress(OSError):
            process.kill()

    def _republish(self, line: dict[str, Any]) -> None:
        with self._gate:
            if self._held is not None:
                self._held.append(line)
            else:
                self._publish(line)

    def _release_held(self) -> None:
        """Publish the events held until ours was (in the actor's thread); the
        gate keeps them ahead of the reader's later ones."""
        with self._gate:
            held, self._held = self._held, None
            for line in held or ():
                self._publish(line)

    def _publish(self, line: dict[str, Any]) -> None:
        events = self._events
        if events is None:
            return
        try:
            kind, path, details = decode_event(line)
        except (KeyError, ValueError, TypeError):
            logger.warning("%s: not an event line: %r", self, line)
            return
        root = self.name
        if path == root:
            if kind in _ROOT_KINDS_DROPPED:
                return
            path = self.path
        elif path.startswith(root + "/"):
            path = self.path + path[len(root) :]
        else:
            path = f"{self.path}/{path}"
        events.publish(kind, path, self.actor_clock.now(), **details)

    # -- exiting -------------------------------------------------------------------

    def _put_front(self, fn: Any) -> None:
        """Run ``fn(self)`` in the actor's thread, ahead of queued messages."""
        control = _Control(_Control.CALL, self._hr_incarnation, fn)
        self.actor_inbox.put_front(Envelope(control))  # type: ignore[attr-defined]

    def _tell_exit(self) -> None:
        self._put_front(WorkerActor._process_exited)

    def _process_exited(self) -> None:
        """In the actor's thread: the process exited by itself; so does the actor."""
        process = self.process
        returncode = self.returncode
        assert process is not None
        assert returncode is not None
        if returncode == 0:
            logger.info("%s exited with status 0", self)
            self._hr_set_reason(NORMAL)
            self._stop()
            return
        raise WorkerExited(self.name, process.pid, returncode, self._exit_detail(returncode))

    def on_stop(self) -> None:
        """Stop the process: SIGTERM, wait up to the child's shutdown timeout, SIGKILL."""
        with self._lock:
            self._stopping = True
        self._release_held()
        process = self.process
        if process is None or process.poll() is not None:
            return  # it exited by itself: a spare stays for the restart
        if self.worker.standby:
            self.worker._drop_spare(self.path)  # stopped by the supervisor: maybe for good
        timeout = self._graceful_timeout()
        if timeout == 0.0:
            self._kill(process)
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning(
                "%s still running %g s after SIGTERM: killing it with SIGKILL", self, timeout
            )
            self._kill(process)

    def _exited(self, _actor: Actor, _reason: Any) -> None:
        """Any exit, even a crash: the process must not outlive its actor."""
        self._release_held()
        self._cleanup()
        if self.worker.standby:
            self.worker._hold_spare(self.path)  # the next restart takes it, if it comes

    def _cleanup(self) -> None:
        process = self.process
        if process is not None:
            with self._lock:
                self._stopping = True
            if process.poll() is None:
                self._kill(process)
            if process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()
            reader = self._reader
            if reader is not None and reader is not threading.current_thread():
                reader.join(timeout=5.0)
            if process.stdout is not None and (reader is None or not reader.is_alive()):
                process.stdout.close()
        self.worker.ports.release(self.path, owner=self)

    def _kill(self, process: WorkerProcess) -> None:
        """SIGKILL the process we launched (by its pid, if not yet reaped) and its
        process group (its session's, whose leader it is), and reap it."""
        if isinstance(process, ForkedProcess):
            process.kill_group(signal.SIGKILL)
        elif process.poll() is None:  # not reaped: its pid is still its own
            with contextlib.suppress(OSError):
                os.killpg(process.pid, signal.SIGKILL)
        process.kill()
        process.wait()

    # -- timeouts from the child spec ------------------------------------------------

    def _shutdown(self) -> float | None:
        """The child's shutdown timeout: seconds, 0 for brutal_kill, None for infinity."""
        ref = self.actor_child_ref
        value = ref.shutdown if ref is not None else None
        if value is None:
            return DEFAULT_WORKER_SHUTDOWN
        if value == BRUTAL_KILL:
            return 0.0
        if value == INFINITY:
            return None
        return float(value)

    def _graceful_timeout(self) -> float | None:
        """How long SIGTERM has before SIGKILL, leaving time to kill and reap."""
        timeout = self._shutdown()
        if timeout is None or timeout == 0.0:
            return timeout
        return timeout - min(KILL_MARGIN, timeout / 5)

    def _orphan_timeout(self) -> float:
        """How long the worker may take to stop once the node is gone: as long
        as its supervisor would wait (bounded: nobody would kill it)."""
        timeout = self._shutdown()
        return DEFAULT_ORPHAN_TIMEOUT if timeout is None else timeout
