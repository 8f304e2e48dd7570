"""`SignalHandler`: what the process does on SIGTERM, SIGINT, SIGHUP and SIGUSR1.

As CherryPy's SignalHandler plugin, but with hedgerow's mapping: SIGTERM and
SIGINT exit gracefully, SIGHUP and SIGUSR1 reload (``graceful``). A second
SIGTERM or SIGINT while the bus is already stopping calls `on_repeat` (by
default nothing more happens: the graceful exit goes on). A reload signal
that arrives while a handler still runs is merged with it, and repeated exit
signals are logged once, so a storm of signals never piles handlers up.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import TYPE_CHECKING, Any

from hedgerow.node._bus import Bus, BusState

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType

__all__ = ["SignalHandler"]

logger = logging.getLogger("hedgerow.node")


class SignalHandler:
    """Maps signals to bus transitions while subscribed (main thread only).

    Handlers run in the main thread, between two of its bytecodes, as every
    Python signal handler does; `bus.exit()` then runs the stop and exit
    listeners right there.
    """

    def __init__(
        self,
        bus: Bus,
        on_repeat: Callable[[int], None] | None = None,
        on_exit: Callable[[], None] | None = None,
    ) -> None:
        self.bus = bus
        self.on_repeat = on_repeat
        self.on_exit = on_exit if on_exit is not None else bus.exit
        """What SIGTERM and SIGINT call: the bus's ``exit``, or (an application
        whose main thread takes locks that the stop needs) a callable that only
        notes the exit for the main thread to begin at its next turn."""
        self.handlers: dict[int, Callable[[], None]] = {
            signal.SIGTERM: self.on_exit,
            signal.SIGINT: self.on_exit,
            signal.SIGHUP: bus.graceful,
            signal.SIGUSR1: bus.graceful,
        }
        self._previous: dict[int, Any] = {}
        self._exiting = False  # an exit signal was taken: the next one is a repeat
        self._repeated = False  # a repeat was logged
        self._handling = False  # a handler runs: a reload signal now is merged with it

    def subscribe(self) -> None:
        """Install the handlers (and restore the previous ones at the bus's exit)."""
        if threading.current_thread() is not threading.main_thread():
            logger.debug("Not installing signal handlers: not the main thread")
            return
        for signum in self.handlers:
            self._previous[signum] = signal.signal(signum, self._handle)
        self.bus.subscribe("exit", self.unsubscribe, priority=90)

    def unsubscribe(self) -> None:
        """Put the previous handlers back."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()
        self.bus.unsubscribe("exit", self.unsubscribe)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        # Python runs a handler between two bytecodes of the main thread, also of
        # a handler still running (its log line may wait on a full stderr pipe):
        # in a storm of signals, handlers would pile up until RecursionError.
        exits = self.handlers[signum] == self.on_exit
        if self._handling and not exits:
            return  # merged with the running handler: a reload reads the file after it
        handling, self._handling = self._handling, True
        try:
            self._dispatch(signum, exits)
        finally:
            self._handling = handling

    def _dispatch(self, signum: int, exits: bool) -> None:
        name = signal.Signals(signum).name
        # The flag, not only the bus's state: a second signal can come between the
        # first one's log line and the bus reaching STOPPING.
        stopping = self._exiting or self.bus.state in (BusState.STOPPING, BusState.EXITING)
        if stopping and exits:
            if not self._repeated:  # said once: a storm of repeats is one
                self._repeated = True
                self.bus.log(f"Caught signal {name} again while stopping.")
            if self.on_repeat is not None:
                self.on_repeat(signum)
            return
        self._exiting = self._exiting or exits
        self.bus.log(f"Caught signal {name}.")
        self.handlers[signum]()
