from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pykka
import pytest
from hypothesis import HealthCheck, settings

from hedgerow.testing import VirtualClock
from hedgerow.transports import use_framework

FRAMEWORK = os.environ.get("HEDGEROW_TEST_FRAMEWORK", "asyncio")
"""The WAMP framework these tests run on: asyncio, or Twisted when `scripts/test.sh` re-runs the
transport tests in a pytest process of their own."""


settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,
    derandomize=True,  # the same examples every run: tests are deterministic
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "fuzz",
    max_examples=3000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
"""Hypothesis: "ci" (the default) keeps the fuzz tests fast and reproducible; run them
by hand with many more, random examples with ``HYPOTHESIS_PROFILE=fuzz``."""


def pytest_configure(config: pytest.Config) -> None:
    use_framework(FRAMEWORK)


@pytest.fixture(autouse=True)
def _no_leftover_actors(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test must leave no actor registered and no actor thread running."""
    before = set(threading.enumerate())
    yield
    leftover = pykka.ActorRegistry.get_all()
    pykka.ActorRegistry.stop_all(block=True, timeout=5)
    assert not leftover, f"actors left running: {leftover}"
    if "allow_abandoned" in request.keywords:
        return
    current = threading.current_thread()
    extra = [
        t
        for t in threading.enumerate()
        if t not in before and t is not current and t.is_alive() and not t.daemon
    ]
    for thread in extra:
        thread.join(timeout=5)
    alive = [t.name for t in extra if t.is_alive()]
    assert not alive, f"threads left running: {alive}"


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()
