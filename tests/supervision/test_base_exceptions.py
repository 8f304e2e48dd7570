"""SystemExit, KeyboardInterrupt and other BaseExceptions in a supervised child
fail that child alone; an unsupervised actor keeps pykka's rule (on each runtime)."""

from __future__ import annotations

from typing import Any

import pykka
import pytest
from helpers import Worker, start, worker

import hedgerow as hr
from hedgerow import EventKind


class Custom(BaseException):
    pass


class Raiser(hr.Actor):
    def on_receive(self, message: Any) -> Any:
        if isinstance(message, BaseException):
            raise message
        return ("ok", self.actor_incarnation, message)


@pytest.mark.parametrize("error", [SystemExit(3), KeyboardInterrupt(), Custom("custom")])
@pytest.mark.parametrize("send", ["tell", "ask"])
def test_a_base_exception_fails_the_child_alone(runtime, error, send):
    tree, rec = start(hr.SupervisorSpec([hr.ChildSpec("x", runtime.of(Raiser)), worker("sibling")]))
    other, _ = start(hr.SupervisorSpec([worker("a")]), name="other")
    loose = Worker.start("loose")
    try:
        x = tree.get_child("x")
        if send == "ask":
            with pytest.raises(hr.DeadLetterError, match=type(error).__name__):
                x.ask(error, timeout=10)
        else:
            x.tell(error)
        failed = rec.wait_for(EventKind.FAILED, "root/x")
        assert failed.reason is error
        assert type(error).__name__ in failed.traceback
        letter = rec.wait_for(EventKind.DEAD_LETTER, "root/x")
        assert letter.message is error
        rec.wait_for(EventKind.RESTARTED, "root/x")
        assert x.ask("again", timeout=10) == ("ok", 2, "again")
        assert tree.get_child("sibling").ask("hi", timeout=10) == ("sibling", 1, "hi")
        assert other.get_child("a").ask("hi", timeout=10) == ("a", 1, "hi")
        assert loose.ask("hi", timeout=10) == ("loose", 0, "hi")
    finally:
        loose.stop()
        other.stop(timeout=10)
        tree.stop(timeout=10)


def test_an_unsupervised_actor_keeps_pykkas_rule(runtime):
    victim = runtime.of(Worker).start("victim")
    raiser = runtime.of(Raiser).start()
    raiser.tell(SystemExit(1))
    victim.actor_stopped.wait(timeout=10)
    assert not victim.is_alive()
    assert pykka.ActorRegistry.get_all() == []
