"""The worker process: ``python -m hedgerow.worker --guid G --port P`` (turberfield's job).

A node starts it (`hedgerow.node.Worker`), writes one config line on its
stdin (`hedgerow.node._wire` describes it), and keeps stdin open. The worker
hosts the supervision tree the config names, says "ready", streams the tree's
events as JSON lines, and ends with an exit line. Its exit status says how
it ended (the ``EXIT_*`` constants of `hedgerow.node._wire`):

- 3: no config line within ``--config-timeout`` seconds (or stdin closed first);
- 2: bad config (not JSON, a missing or mistyped key, a tree that does not
  validate); the message on stderr names the key;
- 1: the hosted tree failed to start, or its root gave up;
- 0: the tree stopped: on SIGTERM or SIGINT (gracefully, children in reverse
  order), by itself, or because the node went away;
- 4: the node went away and the tree did not stop within ``orphan_timeout``.

**No orphans.** After its config, the worker keeps reading stdin: end of file
means the node is gone (even if it was killed by SIGKILL), and so does a new
parent pid. The worker then stops its tree within ``orphan_timeout`` seconds,
or leaves at once (``os._exit``). PR_SET_PDEATHSIG is not used: it fires when
the spawning *thread* exits, and a node's actor threads come and go.

A standby worker (``--standby``) is one a node starts ahead of need: it waits
for its config for as long as the node keeps its stdin open, and leaves
quietly (status 0) when the node closes it unused.

User code's prints go to stderr: the JSON lines use a private copy of the
original stdout.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from hedgerow._events import EventStream, drop_event_records
from hedgerow._exceptions import ConfigError, ConfigProblem, SpecError, StartError
from hedgerow._logs import formatter
from hedgerow.actors._reason import describe, is_normal
from hedgerow.components._container import Container
from hedgerow.node._bus import Bus, BusState
from hedgerow.node._signals import SignalHandler
from hedgerow.node._treeload import tree_from_data
from hedgerow.node._wire import (
    DEFAULT_CONFIG_TIMEOUT,
    DEFAULT_ORPHAN_TIMEOUT,
    EXIT_BAD_CONFIG,
    EXIT_FAILED,
    EXIT_NO_CONFIG,
    EXIT_OK,
    EXIT_STOP_TIMEOUT,
    dumps,
    encode_event,
)
from hedgerow.node._worker_config import (
    MAX_CONFIG_BYTES,
    PARENT_POLL,
    BadConfig,
    NoConfig,
    config_timeout,
    node_gone,
    node_pidfd,
    parse_config,
    read_config_line,
    timeout_seconds,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from hedgerow._events import Event

__all__ = [
    "MAX_CONFIG_BYTES",
    "BadConfig",
    "NoConfig",
    "main",
    "parse_config",
    "read_config_line",
]

logger = logging.getLogger("hedgerow.node")

LINGER = 1.0
"""Seconds to wait for the tree's threads at exit; abandoned ones are left behind."""


# -- what the worker hosts -------------------------------------------------------


def _host(config: dict[str, Any], events: EventStream) -> Container:
    """Build and start what this worker hosts: a `Container` of ``config["container"]``.

    ``config["management"]`` (when a tree file declared the worker) is
    ``{"restart": <the container's restart mode>, "management": <Management
    settings or None>}``: with settings, the container serves its management
    API under the worker's prefix. Raises `ConfigError` for a tree that does not
    validate (nothing started) and `StartError` for one that fails to start.
    """
    sys.path[:0] = [entry for entry in config.get("pythonpath", []) if entry not in sys.path]
    spec = tree_from_data(
        config["container"], source="key 'container'", base_dir=config.get("base_dir")
    )
    host = config.get("management")
    host = host if isinstance(host, dict) else {}
    try:
        container = Container(
            spec.children,
            name=config["name"],
            restart=host.get("restart", "restart-never"),
            shutdown=spec.shutdown_policy,
            max_restarts=spec.max_restarts,
            period=spec.period,
            backoff=spec.backoff_defaults,
            management=host.get("management"),
            events=events,
        )
    except (SpecError, ValueError) as exc:
        problem = ConfigProblem("management", host, str(exc))
        msg = "key 'management'"
        raise ConfigError(msg, [problem]) from None
    return container.start()


# -- the lines to the node -------------------------------------------------------


class _Lines:
    """Writes JSON lines to the node, from any thread; a node gone is not an error."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lock = threading.Lock()
        self._broken = False

    def write(self, obj: dict[str, Any]) -> None:
        data = memoryview(dumps(obj))
        with self._lock:
            if self._broken:
                return
            try:
                while data:
                    data = data[os.write(self._fd, data) :]
            except OSError:
                self._broken = True  # the node is gone: the stdin watch will notice

    def close(self) -> None:
        with self._lock:
            if not self._broken:
                self._broken = True
                with contextlib.suppress(OSError):
                    os.close(self._fd)


def _watch_node(fd: int, on_gone: Callable[[str], None]) -> None:
    """Read stdin until it ends (the node is gone) or the parent pid changes (in a
    worker forked by a fork server: until the node's pidfd says it exited)."""
    parent = os.getppid()
    while True:
        try:
            ready, _, _ = select.select([fd], [], [], PARENT_POLL)
            chunk = os.read(fd, 65536) if ready else None
        except (OSError, ValueError) as exc:
            on_gone(f"stdin failed: {exc}")
            return
        if chunk == b"":
            on_gone("stdin closed")
            return
        if chunk is None and node_gone(parent):
            on_gone(f"parent pid {parent} went away" if node_pidfd() is None else "the node exited")
            return


# -- the worker's life ---------------------------------------------------------------


class _Hosting:
    """One worker's life on its bus: host the tree, watch the node, say how it ended."""

    def __init__(self, config: dict[str, Any], lines: _Lines) -> None:
        self.config = config
        self.lines = lines
        self.bus = Bus()
        self.tree: Container | None = None
        self.ended_by_itself = False
        self.node_gone = False
        self._lock = threading.RLock()
        self._wake = -1

    def run(self) -> int:
        """Host the tree until the bus exits; the exit status."""
        self.bus.subscribe("stop", self._stop_tree)
        self.bus.start()  # before hosting: a signal meanwhile finds the bus started
        # SIGTERM and SIGINT exit the bus from a thread of its own: inside the
        # handler, the stop could wait for a lock the interrupted main thread
        # holds. The handler only writes a byte to a pipe, which takes no lock.
        wake_read, self._wake = os.pipe()
        threading.Thread(
            target=self._exit_when_woken, args=(wake_read,), name="signal-exit", daemon=True
        ).start()
        signals = SignalHandler(self.bus)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signals.handlers[signum] = self._exit_soon
        signals.subscribe()
        watch = threading.Thread(
            target=_watch_node, args=(0, self._node_gone), name="node-watch", daemon=True
        )
        watch.start()
        events = EventStream()
        events.subscribe(self._forward)
        try:
            tree = _host(self.config, events)
        except ConfigError as exc:
            return self._end(EXIT_BAD_CONFIG, f"bad config: {exc}")
        except StartError as exc:
            return self._end(EXIT_FAILED, f"the tree failed to start: {describe(exc.cause)}")
        except Exception as exc:
            logger.exception("hosting failed")
            return self._end(EXIT_FAILED, f"hosting failed: {describe(exc)}")
        with self._lock:  # against _stop_tree: one of the two sees the other's work
            self.tree = tree
            stopping = self.bus.state is not BusState.STARTED
        if stopping:
            tree.stop()  # a signal or the node's end came while the tree started
        else:
            self.lines.write(
                {
                    "type": "ready",
                    "guid": self.config["guid"],
                    "pid": os.getpid(),
                    "port": self.config["port"],
                    "name": self.config["name"],
                }
            )
            threading.Thread(target=self._watch_tree, name="tree-watch", daemon=True).start()
        self.bus.wait(BusState.EXITING)  # no "main" channel: the handlers take no lock of ours
        reason = tree.reason
        if self.ended_by_itself and reason is not None and not is_normal(reason):
            return self._end(EXIT_FAILED, f"the tree failed: {describe(reason)}")
        return self._end(EXIT_OK, describe(reason) if reason is not None else "stopped")

    def _exit_soon(self) -> None:
        """In the signal handler: wake the exit thread."""
        os.write(self._wake, b"x")

    def _exit_when_woken(self, fd: int) -> None:
        os.read(fd, 1)
        self.bus.exit()

    def _forward(self, event: Event) -> None:
        self.lines.write(encode_event(event))

    def _stop_tree(self) -> None:
        with self._lock:
            tree = self.tree
        if tree is not None:
            tree.stop()

    def _watch_tree(self) -> None:
        assert self.tree is not None
        reason = self.tree.wait()
        if self.bus.state in (BusState.STOPPING, BusState.EXITING):
            return
        self.ended_by_itself = True
        logger.info("the tree ended by itself: %s", describe(reason))
        self.bus.exit()

    def _node_gone(self, why: str) -> None:
        self.node_gone = True
        timeout = self.config.get("orphan_timeout")
        if timeout is None:
            timeout = DEFAULT_ORPHAN_TIMEOUT
        logger.warning("the node is gone (%s): stopping within %g s", why, timeout)
        timer = threading.Timer(timeout, self._stop_timed_out, args=(timeout,))
        timer.daemon = True
        timer.start()
        if self.bus.state not in (BusState.STOPPING, BusState.EXITING):
            self.bus.exit()

    def _stop_timed_out(self, timeout: float) -> None:
        logger.error("the tree did not stop within %g s of the node's end: leaving now", timeout)
        self._end(EXIT_STOP_TIMEOUT, f"the tree did not stop within {timeout:g} s")
        _flush()
        os._exit(EXIT_STOP_TIMEOUT)

    def _end(self, status: int, reason: str) -> int:
        if status != EXIT_OK:
            _say(f"hedgerow worker {self.config['name']}: {reason}")
        self.lines.write({"type": "exit", "status": status, "reason": reason})
        self.lines.close()
        return status


# -- the program ---------------------------------------------------------------------


class _Args:
    """The worker's command line."""

    __slots__ = ("config_timeout", "guid", "port", "standby")

    def __init__(self, guid: str, port: int, config_timeout: float, standby: bool) -> None:
        self.guid = guid
        self.port = port
        self.config_timeout = config_timeout
        self.standby = standby


def _parse_args(argv: Sequence[str] | None) -> _Args:
    """The command line as the node writes it is read by hand (argparse costs a worker
    about 5 ms of CPU to import and set up); any other, ``--help`` and mistakes by argparse."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    return _node_args(arguments) or _argparse_args(arguments)


def _node_args(argv: list[str]) -> _Args | None:
    """``--guid G --port P [--config-timeout S] [--standby]`` exactly; None for anything else."""
    values: dict[str, str] = {}
    standby = False
    rest = iter(argv)
    for option in rest:
        if option == "--standby":
            standby = True
        elif option in ("--guid", "--port", "--config-timeout"):
            value = next(rest, None)
            if value is None or value.startswith("-"):
                return None
            values[option] = value
        else:
            return None
    if "--guid" not in values or "--port" not in values:
        return None
    try:
        port = int(values["--port"])
    except ValueError:
        return None
    timeout = timeout_seconds(values.get("--config-timeout", str(DEFAULT_CONFIG_TIMEOUT)))
    if timeout is None:
        return None
    return _Args(values["--guid"], port, timeout, standby)


def _argparse_args(argv: list[str]) -> _Args:
    import argparse  # noqa: PLC0415 - for --help and mistakes only

    parser = argparse.ArgumentParser(
        prog="python -m hedgerow.worker",
        description="A hedgerow worker process: reads its config as one JSON line on stdin.",
    )
    parser.add_argument("--guid", required=True, help="this worker's unique id")
    parser.add_argument("--port", required=True, type=int, help="the TCP port allocated to it")
    parser.add_argument(
        "--config-timeout",
        type=config_timeout,
        default=DEFAULT_CONFIG_TIMEOUT,
        help=f"seconds to wait for the config line (default {DEFAULT_CONFIG_TIMEOUT:g})",
    )
    parser.add_argument(
        "--standby",
        action="store_true",
        help="wait for the config while stdin is open (a spare started ahead of need)",
    )
    args = parser.parse_args(argv)
    return _Args(args.guid, args.port, args.config_timeout, args.standby)


def _use_framework(framework: str | None) -> None:
    """Choose the WAMP framework before anything the worker hosts is imported."""
    if framework is None:
        return
    from hedgerow.transports._framework import use_framework  # noqa: PLC0415 - asyncio, ssl

    try:
        use_framework(framework)
    except RuntimeError as exc:
        msg = f"key 'framework' = {framework!r}: {exc}"
        raise BadConfig(msg) from None


def _configure_logging(label: str, level: int | str = logging.WARNING) -> None:
    """The worker is a program: it logs to stderr, which the node's terminal
    shows, in the node's format (`LOG_FORMAT_ENV` says which), naming itself."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(origin=f"worker {label}"))
    # The node republishes the tree's events and logs them: not twice.
    handler.addFilter(drop_event_records)
    logging.basicConfig(level=level, handlers=[handler], force=True)


def _say(text: str) -> None:
    """A message for the node's terminal (the worker's stderr)."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def run(argv: Sequence[str] | None = None) -> int:
    """Be a worker: read the config, host its tree, and return the exit status."""
    args = _parse_args(argv)
    _configure_logging(args.guid)
    try:
        line = read_config_line(0, None if args.standby else args.config_timeout)
    except NoConfig as exc:
        if args.standby:
            return EXIT_OK  # a spare the node released unused
        _say(f"hedgerow worker {args.guid}: {exc}")
        _Lines(1).write({"type": "exit", "status": EXIT_NO_CONFIG, "reason": str(exc)})
        return EXIT_NO_CONFIG
    except BadConfig as exc:
        message = f"bad config: {exc}"
        _say(f"hedgerow worker {args.guid}: {message}")
        _Lines(1).write({"type": "exit", "status": EXIT_BAD_CONFIG, "reason": message})
        return EXIT_BAD_CONFIG
    # The JSON lines keep the original stdout; everything else printed goes to stderr.
    lines = _Lines(os.dup(1))
    _flush()
    os.dup2(2, 1)
    sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: PTH123, SIM115 - the node's pipe is ours
    try:
        config = parse_config(line, guid=args.guid, port=args.port)
        _use_framework(config.get("framework"))
    except BadConfig as exc:
        message = f"bad config: {exc}"
        _say(f"hedgerow worker {args.guid}: {message}")
        lines.write({"type": "exit", "status": EXIT_BAD_CONFIG, "reason": message})
        return EXIT_BAD_CONFIG
    _configure_logging(config["name"], config.get("log_level") or logging.WARNING)
    return _Hosting(config, lines).run()


def main(argv: Sequence[str] | None = None) -> None:
    """The entry point: run, then leave without waiting for abandoned threads."""
    status = run(argv)
    _flush()
    deadline = time.monotonic() + LINGER
    current = threading.current_thread()
    for thread in threading.enumerate():
        if thread is not current and not thread.daemon:
            thread.join(max(deadline - time.monotonic(), 0.0))
    lingering = [t.name for t in threading.enumerate() if t.is_alive() and not t.daemon]
    lingering = [name for name in lingering if name != current.name]
    if lingering:
        # A thread child that ignored its stop (abandoned) must not keep the process.
        logger.warning("leaving %d abandoned thread(s) behind: %s", len(lingering), lingering)
        logging.shutdown()
        _flush()
        os._exit(status)
    sys.exit(status)
