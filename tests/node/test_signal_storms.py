"""`SignalHandler` under a storm: signals arrive while a handler still runs
(Python runs the next handler between two bytecodes of the last one, for
instance while its log line waits on a full stderr pipe). Handlers must not
pile up on the stack, and no exit signal may be lost."""

from __future__ import annotations

import signal

from hedgerow.node import Bus, BusState, SignalHandler

STORM = 5000
"""More nested signals than Python's recursion limit allows frames."""


def test_reload_signals_that_arrive_during_a_reload_signals_handler_are_one_reload():
    bus = Bus()
    bus.start()
    handler = SignalHandler(bus)
    reloads: list[str] = []
    sent = [0]

    def storm(msg: str, _level: int) -> None:
        # Each handler's log line is interrupted by the next signal.
        if msg == "Caught signal SIGHUP." and sent[0] < STORM:
            sent[0] += 1
            handler._handle(signal.SIGHUP, None)

    bus.subscribe("log", storm)
    bus.subscribe("graceful", lambda: reloads.append("reload"))
    handler._handle(signal.SIGHUP, None)
    assert reloads == ["reload"]  # the storm's signals came before it was done: one reload
    handler._handle(signal.SIGUSR1, None)  # once it is done, the next one reloads again
    assert reloads == ["reload", "reload"]
    bus.exit()


def test_an_exit_signal_during_a_reload_signals_handler_still_exits():
    bus = Bus()
    bus.start()
    handler = SignalHandler(bus)

    def sigterm_meanwhile(msg: str, _level: int) -> None:
        if msg == "Caught signal SIGHUP.":
            handler._handle(signal.SIGTERM, None)

    bus.subscribe("log", sigterm_meanwhile)
    handler._handle(signal.SIGHUP, None)
    assert bus.state is BusState.EXITING


def test_repeated_exit_signals_while_stopping_do_not_pile_up():
    bus = Bus()
    bus.start()
    repeats: list[int] = []
    handler = SignalHandler(bus, on_repeat=repeats.append)
    sent = [0]

    def storm(msg: str, _level: int) -> None:
        if msg.startswith("Caught signal SIGTERM") and sent[0] < STORM:
            sent[0] += 1
            handler._handle(signal.SIGTERM, None)

    bus.subscribe("log", storm)
    handler._handle(signal.SIGTERM, None)
    assert repeats  # the stop was told to cut short
    assert bus.state is BusState.EXITING
