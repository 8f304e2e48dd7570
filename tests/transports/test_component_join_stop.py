"""A stop that comes while a component waits to retry its first join ends that wait."""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
import time

import pytest
from helpers import start, wait_threads_end

import hedgerow as hr
from hedgerow import EventKind
from hedgerow.components._component import Component
from hedgerow.transports import ApplicationError, InProcessRouter

pytestmark = pytest.mark.timeout(60)

TIMEOUT = 10.0
RETRY_DELAY = 20.0
"""The retry delay the stop must not wait out (longer than the stop may take)."""


class DownRouter(hr.transports.Transport):
    """A router that refuses every join, with a retry policy (a router not up yet)."""

    def __init__(self) -> None:
        self.router = InProcessRouter()
        self.attempts = 0
        self.refused = threading.Event()
        self.retry = hr.transports.RetryPolicy(
            initial_retry_delay=RETRY_DELAY, max_retry_delay=RETRY_DELAY, retry_delay_jitter=0.0
        )

    def join(self, realm, peer, **options):
        self.attempts += 1
        refused: concurrent.futures.Future = concurrent.futures.Future()
        refused.set_exception(ApplicationError("hedgerow.error.not_connected", "not up yet"))
        self.refused.set()
        return refused


@pytest.mark.parametrize("shutdown", [30.0, "brutal_kill"])
@pytest.mark.parametrize("handlers", ["plain", "async"])
def test_a_stop_ends_the_wait_to_retry_a_first_join(handlers, shutdown):
    down = DownRouter()
    comp = Component(transports=down, name="svc")
    if handlers == "async":

        @comp.on_join
        async def joined(session, details):
            pass

    tree, rec = start(hr.SupervisorSpec([]))
    threads_before = set(threading.enumerate())

    def starting() -> None:
        with contextlib.suppress(BaseException):  # the tree stops under it
            tree.start_child(comp.child_spec(shutdown=shutdown))

    starter = threading.Thread(target=starting, daemon=True)
    starter.start()
    assert down.refused.wait(TIMEOUT)  # the first attempt failed: the wait to retry begins
    began = time.monotonic()
    assert tree.stop(timeout=TIMEOUT + 30.0) == hr.SHUTDOWN
    took = time.monotonic() - began
    starter.join(TIMEOUT)
    assert not starter.is_alive()
    assert took < 5.0, took  # not the retry delay (20 s), nor the child's shutdown (30 s)
    assert down.attempts == 1
    assert rec.matching(EventKind.FAILED) == []
    assert wait_threads_end(threads_before, TIMEOUT) == []
