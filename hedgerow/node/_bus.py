"""The process bus: one per process, a state machine and a messenger (CherryPy's wspbus).

States move ``STOPPED -> STARTING -> STARTED -> STOPPING -> STOPPED -> EXITING``;
each move publishes on its channel (``start``, ``stop``, ``exit``), and anything
in the process (a tree, a transport, a worker launcher, the live view) joins in
by subscribing. Listeners of a channel run in priority order (lower first);
every one runs even when another fails, and the failures are raised together
as `ChannelFailures`.

`Bus.listeners` is wspbus's public mapping of channel to the set of its
callbacks, so CherryPy's own plugins (``SimplePlugin`` subclasses, ``Monitor``,
``PIDFile``, ``ThreadManager``) run on a hedgerow bus unchanged.

Two differences from wspbus, both so that a failing listener cannot take
the process down behind its owner's back: `exit` records exit status 70
(EX_SOFTWARE) in `exit_status` when a stop or exit listener failed, instead
of calling ``os._exit(70)`` itself, and signal handling is a separate
`SignalHandler` that the application installs. Two smaller ones: listeners of
equal priority run in the order they subscribed, and the exit hook for a bus
still running at interpreter exit runs before Python waits for non-daemon
threads (a tree's actors), not after, so that it can stop them.
"""

from __future__ import annotations

import atexit
import contextlib
import enum
import itertools
import logging
import os
import sys
import threading
import time
import warnings
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, overload

from hedgerow._exceptions import HedgerowError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = ["Bus", "BusState", "ChannelFailures"]

logger = logging.getLogger("hedgerow.node")

CallbackT = TypeVar("CallbackT", bound="Callable[..., Any]")

CHANNELS = ("start", "stop", "exit", "graceful", "log", "main")
"""The built-in channels, in `Bus.listeners` from construction (as wspbus)."""
DEFAULT_PRIORITY = 50
_UNRANKED = (DEFAULT_PRIORITY, sys.maxsize)
"""The rank of a callback put into `Bus.listeners` directly, not by `subscribe`."""
EX_SOFTWARE = 70
"""The exit status after a stop or exit listener failed (sysexits.h, as wspbus)."""

_startup_cwd = os.getcwd()  # noqa: PTH109 - pathlib costs a worker 2 ms to import
"""Where the process started, if hedgerow was imported before it moved: `restart`
re-execs there (a relative interpreter, script or ``-m`` path depends on it)."""


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
        self.listeners: dict[str, set[Callable[..., Any]]] = {c: set() for c in CHANNELS}
        """Channel name to the set of its callbacks (wspbus's public mapping).

        `subscribe` and `unsubscribe` change it; CherryPy's plugins also add
        channels to it directly. A callback added to a set directly runs with
        the default priority, after the subscribed ones of that priority.
        """
        self._ranks: dict[tuple[str, Callable[..., Any]], tuple[int, int]] = {}
        self._order = itertools.count()
        # Reentrant: a signal handler runs between two bytecodes of the main
        # thread, maybe inside these; `publish` runs over a copy of the set.
        self._lock = threading.RLock()
        self.execv = False
        self.max_cloexec_files = _max_open_files()
        """`restart` marks descriptors up to this number close-on-exec (0: none), as wspbus."""
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

    @overload
    def subscribe(
        self, channel: str, callback: None = None, priority: int | None = None
    ) -> Callable[[CallbackT], CallbackT]: ...

    @overload
    def subscribe(
        self, channel: str, callback: CallbackT, priority: int | None = None
    ) -> CallbackT: ...

    def subscribe(
        self,
        channel: str,
        callback: Callable[..., Any] | None = None,
        priority: int | None = None,
    ) -> Any:
        """Add `callback` to `channel` (once) and return it.

        `priority` (or the callback's own ``priority`` attribute, as wspbus)
        orders listeners: lower runs first, equal ones in subscription order.
        Without a callback, returns a decorator that subscribes the function
        it decorates (``@bus.subscribe("graceful")``).
        """
        if callback is None:

            def decorate(function: CallbackT) -> CallbackT:
                return self.subscribe(channel, function, priority)

            return decorate
        if priority is None:
            priority = getattr(callback, "priority", DEFAULT_PRIORITY)
        with self._lock:
            callbacks = self.listeners.setdefault(channel, set())
            if callback in callbacks and (channel, callback) in self._ranks:
                return callback
            self._ranks[channel, callback] = (int(priority), next(self._order))
            callbacks.add(callback)
        return callback

    def unsubscribe(self, channel: str, callback: Callable[..., Any]) -> None:
        """Remove `callback` from `channel`, if it is there."""
        with self._lock:
            self.listeners.get(channel, set()).discard(callback)
            self._ranks.pop((channel, callback), None)

    def _ordered(self, channel: str) -> list[Callable[..., Any]]:
        """The callbacks of `channel`, in the order they run."""
        callbacks = list(self.listeners.get(channel, ()))  # a copy: one C call, atomic
        ranks = self._ranks
        return sorted(callbacks, key=lambda c: ranks.get((channel, c), _UNRANKED))

    def publish(self, channel: str, *args: Any, **kwargs: Any) -> list[Any]:
        """Call every listener of `channel`; their results, in order.

        Raises `ChannelFailures` after all have run if any raised.
        `KeyboardInterrupt` and `SystemExit` stop at once, as in wspbus (a
        `SystemExit` after earlier failures exits with status 1).
        """
        failures = ChannelFailures(channel)
        output = []
        for callback in self._ordered(channel):
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
        """Start every service (``start`` channel). If one fails, exit and re-raise.

        Until the bus exits, interpreter exit warns and exits it (see `_exit_hook`).
        """
        _running.add(self)
        _install_exit_hook()
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
        _running.discard(self)
        self.log("Bus EXITING", logging.DEBUG)
        try:
            self.publish("exit")
        except ChannelFailures:
            self.exit_status = EX_SOFTWARE
        self.log("Bus EXITED", logging.DEBUG)

    def _clean_exit(self) -> None:
        """At interpreter exit: a bus that has not exited warns, then exits (wspbus)."""
        if self._state is BusState.EXITING:
            return
        msg = (
            f"The main thread is exiting, but the bus is {self._state.value}; exiting it "
            "now. Call bus.block() after bus.start(), or bus.exit() before the main "
            "thread ends."
        )
        warnings.warn(msg, RuntimeWarning, stacklevel=1)
        self.exit()

    def graceful(self) -> None:
        """Advise every service to reload (``graceful`` channel)."""
        self.log("Bus graceful", logging.DEBUG)
        self.publish("graceful")

    def restart(self) -> None:
        """Exit, then have the thread in `block` re-exec the process.

        The same interpreter, options and arguments (``-m`` and ``-c`` included),
        from the start-up directory, with every descriptor but 0-2 closed (as wspbus).
        """
        self.execv = True
        self.exit()

    # -- waiting ---------------------------------------------------------------

    def wait(
        self,
        state: BusState | Iterable[BusState],
        interval: float = 0.1,
        channel: str | None = None,
    ) -> None:
        """Block until the bus is in `state` (or one of them); meanwhile publish
        on `channel`, if given, once every `interval` seconds (as wspbus)."""
        states = {state} if isinstance(state, BusState) else set(state)
        with self._changed:
            if channel is None:
                self._changed.wait_for(lambda: self._state in states)
                return
        while True:
            deadline = time.monotonic() + interval
            with self._changed:
                # Other state changes wake this wait too: they do not count as a tick.
                while self._state not in states:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._changed.wait(remaining)
                else:
                    return
            self.publish(channel)

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
        """Re-execute this process: the same interpreter and command line
        (`sys.orig_argv` keeps ``-m module`` and ``-c``), from the start-up
        directory, without the descriptors this process opened."""
        args = [sys.executable, *sys.orig_argv[1:]]
        self.log(f"Re-spawning {' '.join(args)}")
        sys.stdout.flush()
        sys.stderr.flush()
        os.chdir(_startup_cwd)
        _set_cloexec(self.max_cloexec_files)
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


# -- process-wide helpers ---------------------------------------------------------

_running: set[Bus] = set()
"""Buses started and not yet exited: the exit hook exits them."""
_hook_lock = threading.Lock()
_hook_installed = False


def _install_exit_hook() -> None:
    """Run `_exit_hook` at interpreter exit, once per process.

    Before Python joins the non-daemon threads (``threading._register_atexit``,
    as `concurrent.futures` does) where there is one, so a bus whose stop
    listeners stop a tree's actor threads does not wait on them forever.
    """
    global _hook_installed  # noqa: PLW0603
    with _hook_lock:
        if _hook_installed:
            return
        register = getattr(threading, "_register_atexit", None)
        try:
            if register is None:
                atexit.register(_exit_hook)
            else:
                register(_exit_hook)
        except RuntimeError:  # the interpreter is already shutting down
            return
        _hook_installed = True


def _exit_hook() -> None:
    """Warn about and exit every bus still running (interpreter exit, main thread)."""
    for bus in list(_running):
        try:
            bus._clean_exit()
        except Exception:
            logger.exception("Exiting %r at interpreter exit failed", bus)


def _max_open_files() -> int:
    try:
        return int(os.sysconf("SC_OPEN_MAX"))
    except (AttributeError, ValueError, OSError):
        return 1024


def _set_cloexec(limit: int) -> None:
    """Mark every open descriptor from 3 up to `limit` close-on-exec."""
    if limit <= 3:  # noqa: PLR2004 - 0, 1 and 2 stay open
        return
    try:  # the open ones only, where the system lists them
        fds = [int(name) for name in os.listdir("/proc/self/fd")]  # noqa: PTH208
    except OSError:
        fds = list(range(3, limit))
    for fd in fds:
        if 3 <= fd < limit:  # noqa: PLR2004
            with contextlib.suppress(OSError):  # closed meanwhile (the listing's own)
                os.set_inheritable(fd, False)
