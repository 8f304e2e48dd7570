"""Attacks on `fail_if_ended`: many threads ask an unsupervised thread actor while
it ends (stopped from outside, or by its own handler); every ask ends exactly
once, answered if and only if the actor handled it, failed with ActorDeadError
if and only if it did not, and the actor's end never hangs."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pykka
import pytest

import hedgerow as hr

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("switch_often")]

ROUNDS = 20
ASKERS = 6
WAIT = 10.0
"""Seconds (real time) an ask or an end may take: a lost one never ends."""


class Recorder(hr.Actor):
    def __init__(self, handled: list[Any]) -> None:
        super().__init__()
        self.handled = handled

    def on_receive(self, message: Any) -> Any:
        if message == "shutdown":
            raise hr.Shutdown
        self.handled.append(message)
        return message


def _race(
    ask: Callable[[pykka.ActorRef[Any], Any], pykka.Future[Any]],
    end: Callable[[pykka.ActorRef[Any]], None],
) -> None:
    handled: list[Any] = []
    ref = Recorder.start(handled)
    answered: list[Any] = []
    failed: list[Any] = []
    lost: list[Any] = []
    lock = threading.Lock()
    go = threading.Barrier(ASKERS + 1)

    def asker(who: int) -> None:
        go.wait(WAIT)
        for n in range(10_000):
            message = (who, n)
            try:
                future = ask(ref, message)
            except pykka.ActorDeadError:
                return  # refused before the put: never queued
            try:
                value = future.get(timeout=WAIT)
            except pykka.ActorDeadError:
                with lock:
                    failed.append(message)
                return
            except pykka.Timeout:
                with lock:
                    lost.append(message)
                return
            assert value == message
            with lock:
                answered.append(message)

    threads = [threading.Thread(target=asker, args=(who,)) for who in range(ASKERS)]
    for thread in threads:
        thread.start()
    go.wait(WAIT)
    end(ref)
    for thread in threads:
        thread.join(WAIT * 2)
    assert not any(thread.is_alive() for thread in threads), "an asker never ended"
    assert lost == [], f"asks neither answered nor failed: {lost}"
    assert sorted(answered) == sorted(handled), "an answer without its handling, or the reverse"
    assert not set(failed) & set(handled), "an ask both handled and failed"


def _stop(ref: pykka.ActorRef[Any]) -> None:
    ref.stop(timeout=WAIT)


def _shut_down_by_its_handler(ref: pykka.ActorRef[Any]) -> None:
    ref.tell("shutdown")
    assert ref.actor_stopped.wait(WAIT)


@pytest.mark.parametrize("end", [_stop, _shut_down_by_its_handler], ids=["stop", "shutdown"])
@pytest.mark.parametrize(
    "ask",
    [lambda ref, message: ref.ask(message, block=False), hr.ask],
    ids=["ref.ask", "hr.ask"],
)
def test_many_askers_racing_an_end_each_end_exactly_once(ask: Any, end: Any) -> None:
    for _ in range(ROUNDS):
        _race(ask, end)


def test_a_proxy_call_racing_an_end_is_answered_or_fails() -> None:
    """A proxy's method call goes through `ask` too."""

    class Counter(hr.Actor):
        def __init__(self) -> None:
            super().__init__()
            self.count = 0

        def bump(self) -> int:
            self.count += 1
            return self.count

    for _ in range(ROUNDS):
        ref = Counter.start()
        proxy = ref.proxy()
        stopper = threading.Thread(target=ref.stop, kwargs={"block": False})
        stopper.start()
        last = 0
        try:
            for _ in range(10_000):
                try:
                    value = proxy.bump().get(timeout=WAIT)
                except pykka.ActorDeadError:
                    break
                assert value == last + 1
                last = value
        finally:
            stopper.join(WAIT)
        assert not stopper.is_alive()
