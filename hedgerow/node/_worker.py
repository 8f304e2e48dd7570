"""Worker processes supervised as actors (turberfield's Initiator, Crossbar's workers).

A `Worker` describes a worker process: the supervision tree it hosts (its
container) and how to launch it. Like a `Component`, it is the factory of its
actors: each start builds a new `WorkerActor`, an incarnation that launches
``python -m hedgerow.worker --guid G --port P``, writes the config on the
process's stdin, and waits for it to say "ready"::

    ChildSpec("w1", Worker(container), restart="always", shutdown=5.0)

The process is the actor's life: when it exits (even killed by SIGKILL), the
actor fails with `WorkerExited`, and its supervisor restarts it by its policy,
with backoff and intensity, as any child. A worker that exits with status 0
by itself stops normally. Stopping the actor stops the process gracefully:
SIGTERM, then SIGKILL after the child's shutdown timeout (``brutal_kill``:
SIGKILL at once). Signals go to the pid the actor launched, never by name.

The hosted tree's events appear on the node tree's stream under the worker's
path: its children are ``root/w1/<child>``. The hosted root's own started,
stopped and failed events are dropped (the worker child's own say the same);
its shutdown and intensity-exceeded events appear at ``root/w1``, as a nested
supervisor's would.

A restart launches a new interpreter, which pays for its imports: pykka and
hedgerow's supervision core for plain actors (a few tens of milliseconds),
the WAMP libraries too if it hosts components. ``Worker(standby=True)``
keeps a spare process ready beside each worker instead, and a restart
takes it over.

The node keeps each worker's stdin open, and a worker leaves when it closes
(so workers never outlive their node); workers run in their own session, so
a terminal's Ctrl-C reaches only the node, which stops them in order.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import site
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pykka._envelope import Envelope

from hedgerow._clock import MAX_DELAY
from hedgerow._events import EventKind
from hedgerow._exceptions import SpecError, WorkerExited
from hedgerow.actors._actor import Actor
from hedgerow.actors._inbox import Inbox
from hedgerow.actors._messages import _Control
from hedgerow.actors._reason import NORMAL
from hedgerow.node._lines import BadLine, check_line, read_line
from hedgerow.node._ports import PortAllocator, default_allocator
from hedgerow.node._wire import (
    DEFAULT_CONFIG_TIMEOUT,
    DEFAULT_ORPHAN_TIMEOUT,
    decode_event,
    describe_status,
    dumps,
)
from hedgerow.supervision._spec import (
    BRUTAL_KILL,
    DEFAULT_WORKER_SHUTDOWN,
    INFINITY,
    ChildSpec,
    SupervisorSpec,
)
from hedgerow.supervision._treefile import tree_to_data
from hedgerow.transports._choice import FRAMEWORKS

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from pykka._actor import ActorInbox

    from hedgerow._events import EventStream

__all__ = ["Worker", "WorkerActor"]

logger = logging.getLogger("hedgerow.node")

DEFAULT_READY_TIMEOUT = 30.0
"""Seconds the node waits for a worker's "ready" before it kills it."""
KILL_MARGIN = 0.5
"""At most this many seconds (and at most a fifth) of a child's shutdown timeout
go to SIGKILL and reaping, so that the worker exits within its supervisor's wait."""

_ROOT_KINDS_DROPPED = frozenset(
    {EventKind.STARTED, EventKind.STOPPED, EventKind.FAILED, EventKind.RESTARTED}
)
"""The hosted root's events that the worker child's own events already tell."""


def _own_path() -> list[str]:
    """The node's import directories that the interpreter does not add by itself
    (the script's, PYTHONPATH's, a test runner's): a worker imports from them too."""
    system = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    with contextlib.suppress(AttributeError):
        system.update(Path(p).resolve() for p in site.getsitepackages())
    entries: list[str] = []
    for entry in sys.path:
        try:
            path = (Path(entry) if entry else Path.cwd()).resolve()
            usable = path.is_dir()
        except (OSError, ValueError):  # a name too long, a NUL byte: not a directory
            continue
        if not usable or any(path == s or s in path.parents for s in system):
            continue
        if str(path) not in entries:
            entries.append(str(path))
    return entries


def _cut(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _positive_seconds(value: Any) -> bool:
    """Whether `value` is a number of seconds > 0 that a clock can wait (not NaN, not inf)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value) and 0 < value <= MAX_DELAY
    except OverflowError:  # an int beyond any float
        return False


class Worker:
    """A worker process hosting `container` (a `SupervisorSpec`); call it to build an actor.

    `container`'s children must be importable as ``module:name`` (it travels
    to the process as tree-file data): a `SpecError` says which is not.
    `management` is any JSON data; it reaches the worker's host untouched.
    `name` names the worker's tree (default: the child's id). `python` runs
    the worker; `env` adds variables to the node's environment for it.
    `pythonpath` goes in front of the worker's ``sys.path`` (default: the
    node's own import directories); `base_dir` is where the container's
    relative ``pythonpath`` entries start. `ports` allocates the worker's port
    (default: one allocator shared by the process). `log_level` is the
    worker's logging level (default: the node's ``hedgerow`` logger's).
    `framework` is what the worker's WAMP sessions run on: ``"asyncio"`` (the
    default) or ``"twisted"`` (`hedgerow.use_framework`, chosen in the worker
    before it imports what it hosts), whatever the node itself runs on.

    With `standby`, a running worker keeps a spare process started beside it,
    already past its imports and waiting for a config: a restart takes the
    spare (and starts the next one), so it does not wait for Python and
    hedgerow to load. A spare costs an idle process per worker; it is killed
    when its worker is stopped, or if no restart claims it within
    `config_timeout` seconds of a failure.
    """

    def __init__(
        self,
        container: SupervisorSpec,
        *,
        name: str | None = None,
        config_timeout: float = DEFAULT_CONFIG_TIMEOUT,
        ready_timeout: float = DEFAULT_READY_TIMEOUT,
        python: str = sys.executable,
        env: Mapping[str, str] | None = None,
        ports: PortAllocator | None = None,
        management: Any = None,
        base_dir: str | Path | None = None,
        pythonpath: Sequence[str | Path] | None = None,
        log_level: str | int | None = None,
        standby: bool = False,
        framework: str | None = None,
    ) -> None:
        if not isinstance(container, SupervisorSpec):
            rule = "a worker hosts a SupervisorSpec (its container)"
            raise SpecError(name, "container", container, rule)
        for field, value in (("config_timeout", config_timeout), ("ready_timeout", ready_timeout)):
            if not _positive_seconds(value):
                raise SpecError(name, field, value, f"expected seconds > 0 and <= {MAX_DELAY:g}")
        if name is not None and (not isinstance(name, str) or not name or "/" in name):
            raise SpecError(name, "name", name, "expected a non-empty string without '/'")
        if framework is not None and framework not in FRAMEWORKS:
            raise SpecError(
                name, "framework", framework, f"expected one of {', '.join(FRAMEWORKS)}"
            )
        self.container = container
        self.container_data = tree_to_data(container)
        self.name = name
        self.config_timeout = float(config_timeout)
        self.ready_timeout = float(ready_timeout)
        self.python = python
        self.env = dict(env) if env is not None else None
        self.ports = ports if ports is not None else default_allocator()
        self.management = management
        self.base_dir = str(Path(base_dir).resolve()) if base_dir is not None else None
        self.pythonpath = (
            [str(Path(p).resolve()) for p in pythonpath] if pythonpath is not None else _own_path()
        )
        if isinstance(log_level, int):
            log_level = logging.getLevelName(log_level)
        self.log_level = log_level
        self.standby = standby
        self.framework = framework
        self._spares: dict[str, _Spare] = {}
        self._spares_lock = threading.Condition()  # notified when a spare is kept
        for field, data in (("container", self.container_data), ("management", management)):
            try:
                json.dumps(data)
            except (TypeError, ValueError) as exc:
                rule = f"must be plain JSON data to reach a worker process: {exc}"
                raise SpecError(name, field, "...", rule) from None

    def __repr__(self) -> str:
        children = ", ".join(child.id for child in self.container.children)
        return f"<Worker {self.name or '?'} hosting [{children}]>"

    def _key(self) -> tuple[Any, ...]:
        return (
            json.dumps(self.container_data, sort_keys=True),
            self.name,
            self.config_timeout,
            self.ready_timeout,
            self.python,
            json.dumps(self.env, sort_keys=True),
            json.dumps(self.management, sort_keys=True),
            self.log_level,
            self.standby,
            self.framework,
        )

    def __eq__(self, other: object) -> bool:
        """Workers hosting the same container with the same settings are equal (as
        specs from one file); where they import from (`base_dir`, `pythonpath`) is not
        compared, since the node's own import path grows as files are loaded."""
        if not isinstance(other, Worker):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __call__(self) -> WorkerActor:
        """Build a new, unstarted incarnation (what a `ChildSpec` calls on each start)."""
        return WorkerActor(self)

    def child_spec(self, child_id: str | None = None, **options: Any) -> ChildSpec:
        """A `ChildSpec` that starts this worker; `options` are ChildSpec's fields."""
        child_id = child_id or self.name
        if child_id is None:
            raise SpecError(None, "id", None, "name the worker or give a child id")
        return ChildSpec(child_id, self, **options)

    def launch(self, guid: str, port: int, *, standby: bool = False) -> subprocess.Popen[bytes]:
        """Start ``python -m hedgerow.worker --guid G --port P`` with pipes on
        stdin and stdout, in a session of its own; its config is still to be sent."""
        command = [
            self.python,
            "-m",
            "hedgerow.worker",
            "--guid",
            guid,
            "--port",
            str(port),
            "--config-timeout",
            f"{self.config_timeout:g}",
        ]
        if standby:
            command.append("--standby")
        env = {**os.environ, **self.env} if self.env is not None else None
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        logger.debug("launched pid %s: %s", process.pid, " ".join(command))
        return process

    def config(
        self, *, guid: str, port: int, name: str, path: str, orphan_timeout: float
    ) -> dict[str, Any]:
        """The config line for one incarnation (`hedgerow.node._wire` describes it)."""
        level = self.log_level or logging.getLevelName(
            logging.getLogger("hedgerow").getEffectiveLevel()
        )
        return {
            "guid": guid,
            "port": port,
            "name": name,
            "node": {"name": path.split("/", 1)[0], "pid": os.getpid(), "path": path},
            "container": self.container_data,
            "base_dir": self.base_dir,
            "pythonpath": self.pythonpath,
            "management": self.management,
            "log_level": level,
            "framework": self.framework,
            "orphan_timeout": orphan_timeout,
        }

    # -- standby processes (one per child path) ------------------------------------

    def spares(self) -> dict[str, int]:
        """The pids of the standby processes kept now, by child path."""
        with self._spares_lock:
            return {key: spare.process.pid for key, spare in self._spares.items()}

    def wait_for_spare(
        self, key: str, other_than: int | None = None, timeout: float | None = None
    ) -> int | None:
        """The pid of `key`'s spare once there is one (other than pid `other_than`);
        None if none comes within `timeout` seconds."""
        with self._spares_lock:
            found = self._spares_lock.wait_for(
                lambda: (
                    (spare := self._spares.get(key)) is not None and spare.process.pid != other_than
                ),
                timeout,
            )
            return self._spares[key].process.pid if found else None

    def _keep_spare(self, key: str, port: int) -> None:
        """Start the spare for `key`'s next restart (replacing an older one)."""
        guid = uuid.uuid4().hex
        spare = _Spare(guid, port, self.launch(guid, port, standby=True))
        with self._spares_lock:
            old = self._spares.pop(key, None)
            self._spares[key] = spare
            self._spares_lock.notify_all()
        if old is not None:
            old.discard()

    def _take_spare(self, key: str, port: int) -> _Spare | None:
        """`key`'s spare, if it is alive and has the port its next incarnation got."""
        with self._spares_lock:
            spare = self._spares.pop(key, None)
        if spare is None:
            return None
        if spare.timer is not None:
            spare.timer.cancel()
        if spare.port != port or spare.process.poll() is not None:
            spare.discard()
            return None
        return spare

    def _hold_spare(self, key: str) -> None:
        """`key`'s worker failed: keep its spare for `config_timeout` seconds."""
        with self._spares_lock:
            spare = self._spares.get(key)
            if spare is None or spare.timer is not None:
                return
            spare.timer = threading.Timer(self.config_timeout, self._expire_spare, (key, spare))
            spare.timer.daemon = True
            spare.timer.start()

    def _expire_spare(self, key: str, spare: _Spare) -> None:
        with self._spares_lock:
            if self._spares.get(key) is not spare:
                return
            del self._spares[key]
        logger.debug("no restart of %s claimed its spare (pid %s)", key, spare.process.pid)
        spare.discard()

    def _drop_spare(self, key: str) -> None:
        with self._spares_lock:
            spare = self._spares.pop(key, None)
        if spare is not None:
            spare.discard()


class _Spare:
    """A worker process started ahead of need: past its imports, waiting for a config."""

    __slots__ = ("guid", "port", "process", "timer")

    def __init__(self, guid: str, port: int, process: subprocess.Popen[bytes]) -> None:
        self.guid = guid
        self.port = port
        self.process = process
        self.timer: threading.Timer | None = None

    def discard(self) -> None:
        """Kill it (by the pid we launched) and reap it."""
        if self.timer is not None:
            self.timer.cancel()
        process = self.process
        process.kill()
        process.wait()
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


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

    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self.worker = worker
        self.process: subprocess.Popen[bytes] | None = None
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
        # Held events go out after our own "started" (published when on_start returns).
        self._put_front(WorkerActor._started)

    def _started(self) -> None:
        """In the actor's thread, after our "started" event: publish what was held
        and, with `standby`, start the spare for the next restart."""
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
        self._reader = threading.Thread(
            target=self._read, args=(self.process,), name=f"{self} reader", daemon=True
        )
        self._reader.start()
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
        if self._bad is not None:
            return f"it wrote a bad line: {self._bad}"
        line = self._exit_line
        if line is not None and line.get("reason"):
            return _cut(str(line["reason"]))
        if returncode > 0:
            return describe_status(returncode)
        return ""

    # -- the process's lines -------------------------------------------------------

    def _read(self, process: subprocess.Popen[bytes]) -> None:
        """In the reader thread: follow the process's lines, then reap it."""
        stdout = process.stdout
        assert stdout is not None
        while True:
            try:
                raw = read_line(stdout)
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
        returncode = process.wait()
        with self._lock:
            self.returncode = returncode
            tell = self._running and not self._stopping
        self._ready.set()
        if tell:
            self._tell_exit()

    def _bad_line(self, process: subprocess.Popen[bytes], why: str) -> None:
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

    def _kill(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL the process we launched (by its pid, if not yet reaped) and its
        process group (its session's, whose leader it is), and reap it."""
        if process.poll() is None:  # not reaped: its pid is still its own
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
