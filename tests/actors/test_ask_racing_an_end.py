"""An ask racing the end of an unsupervised thread actor is never lost.

pykka's ask checks that the actor is alive, then puts the message into its
inbox; the actor may stop in between and drain its inbox (failing each ask
there with `pykka.ActorDeadError`) before the message lands. Then nobody
would ever answer it: the asker waited for ever. Every ask must end answered
or with `ActorDeadError`, whichever way the race goes.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pykka
import pytest

import hedgerow as hr

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("switch_often")]

ROUNDS = 300
ANSWER_WITHIN = 10.0
"""Seconds (real time) an ask may take: an answer comes in microseconds, a lost
ask never; the bound only keeps a failure from hanging the run."""


class Echo(hr.Actor):
    def on_receive(self, message: Any) -> Any:
        return message


def _ask_through_an_end(ask: Callable[[pykka.ActorRef[Any], Any], pykka.Future[Any]]) -> int:
    """Start an actor, stop it from another thread while asking it until an ask
    fails with ActorDeadError; each ask must end. The number of asks answered."""
    ref = Echo.start()
    stopper = threading.Thread(target=ref.stop, kwargs={"block": False})
    answered = 0
    stopper.start()
    try:
        while True:
            future = ask(ref, answered)
            try:
                assert future.get(timeout=ANSWER_WITHIN) == answered
            except pykka.ActorDeadError:
                return answered
            except pykka.Timeout:
                pytest.fail(
                    f"an ask of {ref} racing its end was lost (neither answered nor failed)"
                )
            answered += 1
    finally:
        stopper.join()


def test_a_refs_ask_racing_an_end_is_answered_or_fails() -> None:
    for _ in range(ROUNDS):
        _ask_through_an_end(lambda ref, message: ref.ask(message, block=False))


def test_hedgerow_ask_racing_an_end_is_answered_or_fails() -> None:
    for _ in range(ROUNDS):
        _ask_through_an_end(hr.ask)
