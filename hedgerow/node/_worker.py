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

A restart forks a new worker from a zygote that has imported pykka and
hedgerow's supervision core already (``start_method="forkserver"``, the
default on Linux: `hedgerow.node._forkserver`); with ``"spawn"`` it launches a
new interpreter, which pays for those imports (a few tens of milliseconds).
Either way, a worker hosting components imports the WAMP libraries after its
config. ``Worker(standby=True)`` keeps a spare process ready beside each
worker, waiting for its config, and a restart takes it over.

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
import site
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hedgerow._clock import MAX_DELAY
from hedgerow._exceptions import SpecError
from hedgerow.node._forkserver import ForkedProcess, ForkServerError
from hedgerow.node._forkserver_pool import fork_server
from hedgerow.node._ports import PortAllocator, default_allocator
from hedgerow.node._standby import StandbySpares
from hedgerow.node._start_method import (
    FORK_SERVER_AVAILABLE,
    START_METHOD_ENV,
    START_METHODS,
    default_start_method,
)
from hedgerow.node._wire import DEFAULT_CONFIG_TIMEOUT
from hedgerow.node._worker_actor import DEFAULT_READY_TIMEOUT, WorkerActor, WorkerProcess
from hedgerow.supervision._spec import ChildSpec, SupervisorSpec
from hedgerow.supervision._treewrite import tree_to_data
from hedgerow.transports._choice import FRAMEWORKS

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from hedgerow.node._standby import _Spare

__all__ = ["Worker", "WorkerActor"]

logger = logging.getLogger("hedgerow.node")


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


def _check_options(
    container: Any,
    *,
    name: str | None,
    config_timeout: Any,
    ready_timeout: Any,
    framework: str | None,
    start_method: str | None,
) -> None:
    """`SpecError` for a `Worker` argument that cannot be (JSON data is checked later)."""
    if not isinstance(container, SupervisorSpec):
        rule = "a worker hosts a SupervisorSpec (its container)"
        raise SpecError(name, "container", container, rule)
    for field, value in (("config_timeout", config_timeout), ("ready_timeout", ready_timeout)):
        if not _positive_seconds(value):
            raise SpecError(name, field, value, f"expected seconds > 0 and <= {MAX_DELAY:g}")
    if name is not None and (not isinstance(name, str) or not name or "/" in name):
        raise SpecError(name, "name", name, "expected a non-empty string without '/'")
    if framework is not None and framework not in FRAMEWORKS:
        raise SpecError(name, "framework", framework, f"expected one of {', '.join(FRAMEWORKS)}")
    if start_method is not None and start_method not in START_METHODS:
        rule = f"expected one of {', '.join(START_METHODS)}"
        raise SpecError(name, "start_method", start_method, rule)


class Worker(StandbySpares):
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
    spare (and starts the next one), so it does not wait for a fork (or, with
    ``"spawn"``, for Python and hedgerow to load). A spare costs an idle
    process per worker; it is killed when its worker is stopped, or if no
    restart claims it within `config_timeout` seconds of a failure.

    `start_method` is how a worker process starts: ``"forkserver"`` (the
    default where it works: Linux) forks it from a zygote, a process that has
    imported what a worker imports, so that a restart costs a fork, not a new
    interpreter; ``"spawn"`` runs a new ``python -m hedgerow.worker``
    (elsewhere, if a zygote cannot start, and for every worker when
    ``HEDGEROW_WORKER_START_METHOD=spawn``). Either way the worker is the same
    program with the same pipes, session and pid semantics
    (`hedgerow.node._forkserver` tells the details).
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
        start_method: str | None = None,
    ) -> None:
        _check_options(
            container,
            name=name,
            config_timeout=config_timeout,
            ready_timeout=ready_timeout,
            framework=framework,
            start_method=start_method,
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
        self.start_method_given = start_method
        """`start_method` as given (None: the default); `start_method` is what it came to."""
        try:
            self.start_method = start_method or default_start_method()
        except ValueError:
            chosen = os.environ.get(START_METHOD_ENV)
            rule = f"expected one of {', '.join(START_METHODS)}"
            raise SpecError(name, START_METHOD_ENV, chosen, rule) from None
        if self.start_method == "forkserver" and not FORK_SERVER_AVAILABLE:
            self.start_method = "spawn"
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
            self.start_method,
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

    def launch(self, guid: str, port: int, *, standby: bool = False) -> WorkerProcess:
        """Start ``python -m hedgerow.worker --guid G --port P`` with pipes on
        stdin and stdout, in a session of its own; its config is still to be sent.
        With the ``forkserver`` start method, a zygote forks it (a spawn if that fails)."""
        args = [
            "--guid",
            guid,
            "--port",
            str(port),
            "--config-timeout",
            f"{self.config_timeout:g}",
        ]
        if standby:
            args.append("--standby")
        env = {**os.environ, **self.env} if self.env is not None else None
        if self.start_method == "forkserver":
            forked = self._fork(args, env if env is not None else dict(os.environ))
            if forked is not None:
                return forked
        command = [self.python, "-m", "hedgerow.worker", *args]
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        logger.debug("launched pid %s: %s", process.pid, " ".join(command))
        return process

    def _fork(self, args: list[str], env: dict[str, str]) -> ForkedProcess | None:
        """The worker, forked by this interpreter's zygote; None if there is none."""
        try:
            cwd = str(Path.cwd())
        except OSError:  # the node's directory was removed: a spawn inherits it as it is
            return None
        server = fork_server(self.python, env, self.ready_timeout)
        if server is None:
            return None
        try:
            process = server.fork(args, env=env, cwd=cwd)
        except ForkServerError as exc:
            logger.warning("fork server pid %s: %s; spawning the worker", server.pid, exc)
            return None
        logger.debug("forked pid %s by fork server pid %s", process.pid, server.pid)
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
