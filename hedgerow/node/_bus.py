"""The process bus: one per process, a state machine and a messenger (CherryPy's wspbus).

States move ``STOPPED -> STARTING -> STARTED -> STOPPING -> STOPPED -> EXITING``;
each move publishes on its channel (``start``, ``stop``, ``exit``), and anything
in the process (a tree, a transport, a worker launcher, the live view) joins in
by subscribing. Listeners of a channel run in priority order (lower first);
every one runs even when another fails, and the failures are raised together
as `ChannelFailures`.

Two differences from wspbus, both so that a failing listener cannot take
the process down behind its owner's back: `exit` records exit status 70
(EX_SOFTWARE) in `exit_status` when a stop or exit listener failed, instead
of calling ``os._exit(70)`` itself, and signal handling is a separate
`SignalHandler` that the application installs.
"""

from __future__ import annotations

import enum
import itertools
import logging
import os
import sys
import threading
from typing import TYPE_CHECKING, Any, ClassVar

from hedgerow._exceptions import HedgerowError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = ["Bus", "BusState", "ChannelFailures"]

logger = logging.getLogger("hedgerow.node")

DEFAULT_PRIORITY = 50
EX_SOFTWARE = 70
"""The exit status after a stop or exit listener failed (sysexits.h, as wspbus)."""


class BusState(enum.Enum):
    """Where the process is in its life."""

    STOPPED = "stopped"
    STARTING = "starting"
    STARTED = "started"
    STOPPING = "stopping"
    EXITING = "exiting"


class ChannelFailures(HedgerowError):
    """Listeners of one channel failed; every listener ran all the same.

    `get_instances()` returns the exceptions, in the order the listeners ran.
    """

    delimiter = "\n"

    def __init__(self, channel: str = "") -> None:
        super().__init__(channel)
        self.channel = channel
        self._exceptions: list[BaseException] = []

    def handle_exception(self) -> None:
        """Add the exception being handled (call it from an ``except`` block)."""
        exc = sys.exc_info()[1]
        if exc is not None:
            self._exceptions.append(exc)

    def get_instances(self) -> list[BaseException]:
        return list(self._exceptions)

    def __str__(self) -> str:
        return self.delimiter.join(f"{type(e).__name__}: {e}" for e in self._exceptions)

    def __bool__(self) -> bool:
        return bool(self._exceptions)


class Bus:
    """The process's state machine and messenger; see the module docstring.

    Listeners run in the thread that publishes: `start`, `stop`, `exit` and
    `graceful` listeners in the caller's, ``main`` listeners in the thread
    that called `block` (the main thread), every `interval` seconds.
    """

    states: ClassVar[type[BusState]] = BusState

    def __init__(self) -> None:
        self._state = BusState.STOPPED
        self._changed = threading.Condition()
        self._listeners: dict[str, list[tuple[int, int, Callable[..., Any]]]] = {}
        self._order = itertools.count()
        # Reentrant, and lists replaced rather than changed: a signal handler
        # runs between two bytecodes of the main thread, maybe inside these.
        self._lock = threading.RLock()
        self.execv = False
        self.exit_status = 0
        """0, or `EX_SOFTWARE` once a stop or exit listener has failed."""

    # -- state ----------------------------------------------------------------

    @property
    def state(self) -> BusState:
        return self._state

    @state.setter
    def state(self, state: BusState) -> None:
        with self._changed:
            self._state = state
            self._changed.notify_all()

    # -- listeners --------------------------------------------------------------

    def subscribe(
        self,
        channel: str,
        callback: Callable[..., Any],
        priority: int | None = None,
    ) -> None:
        """Add `callback` to `channel` (once). `priority` (or the callback's own
        ``priority`` attribute, as wspbus) orders listeners: lower runs first."""
        if priority is None:
            priority = getattr(callback, "priority", DEFAULT_PRIORITY)
        with self._lock:
            listeners = self._listeners.get(channel, [])
            if any(entry[2] == callback for entry in listeners):
                return
            entry = (int(priority), next(self._order), callback)
            self._listeners[channel] = sorted([*listeners, entry], key=lambda e: (e[0], e[1]))

    def unsubscribe(self, channel: str, callback: Callable[..., Any]) -> None:
        """Remove `callback` from `channel`, if it is there."""
        with self._lock:
            listeners = self._listeners.get(channel, [])
            self._listeners[channel] = [e for e in listeners if e[2] != callback]

    def listeners(self, channel: str) -> list[Callable[..., Any]]:
        """The callbacks of `channel`, in the order they run."""
        return [entry[2] for entry in self._listeners.get(channel, [])]

    def publish(self, channel: str, *args: Any, **kwargs: Any) -> list[Any]:
        """Call every listener of `channel`; their results, in order.

        Raises `ChannelFailures` after all have run if any raised.
        `KeyboardInterrupt` and `SystemExit` stop at once, as in wspbus (a
        `SystemExit` after earlier failures exits with status 1).
        """
        failures = ChannelFailures(channel)
        output = []
        for callback in self.listeners(channel):
            try:
                output.append(callback(*args, **kwargs))
            except KeyboardInterrupt:
                raise
            except SystemExit as exc:
                if failures and exc.code == 0:
                    exc.code = 1
                raise
            except Exception:  # noqa: BLE001 - collected and raised together below
                failures.handle_exception()
                if channel != "log":
                    self.log(f"Error in {channel!r} listener {callback!r}", logging.ERROR, True)
        if failures:
            raise failures
        return output

    def log(self, msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
        """Log `msg` (with the current traceback if asked) and publish it on ``log``."""
        logger.log(level, "%s", msg, exc_info=traceback)
        if traceback:
            import traceback as tb  # noqa: PLC0415 - only on the failure path

            msg += "\n" + "".join(tb.format_exception(*sys.exc_info()))
        self.publish("log", msg, level)

    # -- transitions ------------------------------------------------------------

    def start(self) -> None:
        """Start every service (``start`` channel). If one fails, exit and re-raise."""
        self.state = BusState.STARTING
        self.log("Bus STARTING", logging.DEBUG)
        try:
            self.publish("start")
            self.state = BusState.STARTED
            self.log("Bus STARTED", logging.DEBUG)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception:
            self.log("Shutting down due to error in start listener:", logging.ERROR, True)
            self.exit()
            raise

    def stop(self) -> None:
        """Stop every service (``stop`` channel); the bus can start again."""
        self.state = BusState.STOPPING
        self.log("Bus STOPPING", logging.DEBUG)
        try:
            self.publish("stop")
        finally:
            self.state = BusState.STOPPED
            self.log("Bus STOPPED", logging.DEBUG)

    def exit(self) -> None:
        """Stop every service, then prepare the process to exit (``exit`` channel).

        A failing stop or exit listener sets `exit_status` to 70; the bus still
        reaches EXITING, so `block` returns.
        """
        if self._state is BusState.EXITING:
            return
        try:
            self.stop()
        except ChannelFailures:
            self.exit_status = EX_SOFTWARE
        self.state = BusState.EXITING
        self.log("Bus EXITING", logging.DEBUG)
        try:
            self.publish("exit")
        except ChannelFailures:
            self.exit_status = EX_SOFTWARE
        self.log("Bus EXITED", logging.DEBUG)

    def graceful(self) -> None:
        """Advise every service to reload (``graceful`` channel)."""
        self.log("Bus graceful", logging.DEBUG)
        self.publish("graceful")

    def restart(self) -> None:
        """Exit, then have the thread in `block` re-exec the process (same argv)."""
        self.execv = True
        self.exit()

    # -- waiting ---------------------------------------------------------------

    def wait(
        self,
        state: BusState | Iterable[BusState],
        interval: float = 0.1,
        channel: str | None = None,
    ) -> None:
        """Block until the bus is in `state` (or one of them); publish on
        `channel` every `interval` seconds meanwhile, if given."""
        states = {state} if isinstance(state, BusState) else set(state)
        with self._changed:
            while self._state not in states:
                if channel is None:
                    self._changed.wait()
                    continue
                self._changed.wait(interval)
                if self._state in states:
                    break
                self._changed.release()
                try:
                    self.publish(channel)
                finally:
                    self._changed.acquire()

    def block(self, interval: float = 0.1) -> None:
        """Wait for EXITING (publishing ``main`` every `interval`), then for the
        other non-daemon threads, then re-exec if `restart` was called.

        Call it from the main thread. A KeyboardInterrupt or SystemExit while
        waiting exits the bus (and a SystemExit is re-raised).
        """
        try:
            self.wait(BusState.EXITING, interval=interval, channel="main")
        except KeyboardInterrupt:
            self.log("Keyboard Interrupt: shutting down bus")
            self.exit()
        except SystemExit:
            self.log("SystemExit raised: shutting down bus")
            self.exit()
            raise
        self.log("Waiting for child threads to terminate...")
        current = threading.current_thread()
        for thread in threading.enumerate():
            if thread is not current and thread.is_alive() and not thread.daemon:
                if thread is threading.main_thread():
                    continue
                self.log(f"Waiting for thread {thread.name}.")
                thread.join()
        if self.execv:
            self._do_execv()

    def _do_execv(self) -> None:
        """Re-execute this process with the same interpreter, arguments and environment."""
        args = [sys.executable, *sys.orig_argv[1:]]
        self.log(f"Re-spawning {' '.join(args)}")
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, args)  # noqa: S606 - the same interpreter and argv

    def start_with_callback(
        self,
        func: Callable[..., Any],
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> threading.Thread:
        """Start `func(*args, **kwargs)` in a new thread once the bus is STARTED,
        then start the bus; returns the thread."""
        call_args = args or ()
        call_kwargs = kwargs or {}

        def run_when_started() -> None:
            self.wait([BusState.STARTED, BusState.EXITING])
            if self._state is BusState.STARTED:  # not if the start failed
                func(*call_args, **call_kwargs)

        thread = threading.Thread(target=run_when_started, name=f"Bus callback {func!r}")
        thread.start()
        self.start()
        return thread
