"""A router outage: killed mid-test and started again on the same ports.

Components on the WAMP transport see on_leave/on_disconnect, retry with their
transport's backoff (each failed attempt is an on_connectfailure), then join
again with their registrations; calls made during the outage fail at once with
``hedgerow.error.not_connected``; the supervisor never restarts anything.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import pytest
from helpers import start
from transports.wamp_router import authentication, start_router

import hedgerow as hr
from hedgerow import EventKind
from hedgerow.components._component import Component
from hedgerow.transports import NOT_CONNECTED, ApplicationError, Call, Leave, WampTransport

TIMEOUT = 20.0


class Journal:
    """What the component's handlers saw, in order; tests wait on it (no sleeps)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, Any, float]] = []
        self.cond = threading.Condition()

    def add(self, kind: str, value: Any = None) -> None:
        with self.cond:
            self.items.append((kind, value, time.monotonic()))
            self.cond.notify_all()

    def kinds(self) -> list[str]:
        with self.cond:
            return [kind for kind, _, _ in self.items]

    def of(self, kind: str) -> list[Any]:
        with self.cond:
            return [value for k, value, _ in self.items if k == kind]

    def wait(self, kind: str, count: int = 1) -> None:
        with self.cond:
            ok = self.cond.wait_for(
                lambda: sum(1 for k, _, _ in self.items if k == kind) >= count, TIMEOUT
            )
            assert ok, f"no {count} x {kind!r} in {self.items}"


class _Quiet:
    def deliver(self, message: Any) -> None:
        pass


def _quitter(transport: dict[str, Any]) -> tuple[hr.Tree, Journal]:
    """A component on the same router, to be stopped during the outage."""
    quitter = Component(transports=transport, authentication=authentication(), name="quitter")
    journal = Journal()
    quitter.on_connectfailure(lambda component, exc: journal.add("connectfailure", exc))
    tree, _ = start(hr.SupervisorSpec([quitter.child_spec()]))
    return tree, journal


@pytest.fixture
def router(tmp_path):
    router = start_router(tmp_path)
    yield router
    router.close()


@pytest.mark.timeout(120)
def test_the_router_restarts_and_components_reconnect_with_backoff(router):
    url = router.config.websocket_url
    transport = {
        "url": url,
        "initial_retry_delay": 0.1,
        "retry_delay_growth": 2.0,
        "retry_delay_jitter": 0.0,
        "max_retry_delay": 0.8,
    }
    comp = Component(transports=transport, authentication=authentication(), name="svc")
    journal = Journal()
    comp.register("com.example.p")(lambda: "served")
    comp.on_join(lambda session, details: journal.add("join", details.session))
    comp.on_leave(lambda session, details: journal.add("leave", details.reason))
    comp.on_connectfailure(lambda component, exc: journal.add("connectfailure", exc))

    @comp.on_disconnect
    def disconnected(session, was_clean):
        journal.add("disconnect", was_clean)
        # A call while disconnected fails at once, with a clear error.
        try:
            session.call("com.example.p").get(timeout=TIMEOUT)
        except ApplicationError as exc:
            journal.add("call failed", exc)

    other_tree, quitter_journal = _quitter(transport)
    tree, rec = start(hr.SupervisorSpec([comp.child_spec()]))
    with tree:
        client = WampTransport(url).join("realm1", _Quiet(), authentication=authentication())
        link = client.result(TIMEOUT)
        assert link.handle(Call("com.example.p")).result(TIMEOUT).args == ["served"]

        router.kill()
        journal.wait("disconnect")
        journal.wait("connectfailure", 3)  # the router is down: attempts fail, backing off
        with pytest.raises(ApplicationError) as info:
            link.handle(Call("com.example.p")).result(TIMEOUT)
        assert info.value.error == NOT_CONNECTED

        # A component stopped while it waits to reconnect just stops (no join left behind).
        quitter_journal.wait("connectfailure")
        other_tree.stop()
        assert other_tree.done

        router.start()
        journal.wait("join", 2)
        again = WampTransport(url).join("realm1", _Quiet(), authentication=authentication())
        link = again.result(TIMEOUT)
        assert link.handle(Call("com.example.p")).result(TIMEOUT).args == ["served"]
        link.handle(Leave()).result(TIMEOUT)

        kinds = journal.kinds()
        assert kinds[:3] == ["join", "leave", "disconnect"]
        assert journal.of("leave") == ["wamp.close.transport_lost"]
        assert journal.of("disconnect") == [False]
        (failed_call,) = journal.of("call failed")
        assert failed_call.error == NOT_CONNECTED
        assert "com.example.p" in failed_call.args[0]
        assert all(
            isinstance(exc, ApplicationError) and exc.error == NOT_CONNECTED
            for exc in journal.of("connectfailure")
        )
        # Backoff: the gaps between failed attempts grow (0.1 s doubling, capped at 0.8 s).
        times = [t for k, _, t in journal.items if k == "connectfailure"]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert gaps[1] >= 0.15, gaps
        # The incarnation lived through the outage: no failure reached the supervisor.
        assert not rec.matching(EventKind.FAILED)
        assert not rec.matching(EventKind.RESTARTED)


@pytest.mark.timeout(120)
def test_a_tree_whose_router_starts_a_little_later_still_starts(router):
    """The first join retries as the transport says: the node may start first."""
    url = router.config.websocket_url
    router.kill()
    transport = {"url": url, "initial_retry_delay": 0.1, "retry_delay_jitter": 0.0}
    comp = Component(transports=transport, authentication=authentication(), name="early")
    comp.register("com.example.early")(lambda: "served")
    journal = Journal()
    comp.on_connectfailure(lambda component, exc: journal.add("connectfailure", exc))
    outcome: dict[str, Any] = {}

    def starting() -> None:
        try:
            outcome["tree"] = start(hr.SupervisorSpec([comp.child_spec()]))
        except BaseException as exc:
            outcome["error"] = exc

    starter = threading.Thread(target=starting)
    starter.start()
    journal.wait("connectfailure", 2)  # the router is not there yet: the start waits
    assert "error" not in outcome
    router.start()
    starter.join(TIMEOUT)
    assert not starter.is_alive()
    assert "error" not in outcome, outcome
    tree, rec = outcome["tree"]
    with tree:
        link = WampTransport(url).join("realm1", _Quiet(), authentication=authentication())
        link = link.result(TIMEOUT)
        assert link.handle(Call("com.example.early")).result(TIMEOUT).args == ["served"]
        link.handle(Leave()).result(TIMEOUT)
        assert not rec.matching(EventKind.START_FAILED)
        assert all(exc.error == NOT_CONNECTED for exc in journal.of("connectfailure"))
