from __future__ import annotations

import itertools
import os
import sys
import threading
from collections.abc import Iterator

import helpers
import pykka
import pytest
from hypothesis import HealthCheck, settings

import hedgerow as hr
from hedgerow.actors._actor import ACTOR_THREAD_PREFIX
from hedgerow.testing import VirtualClock
from hedgerow.transports import use_framework

FRAMEWORK = os.environ.get("HEDGEROW_TEST_FRAMEWORK", "asyncio")
"""The WAMP framework these tests run on: asyncio, or Twisted when `scripts/test.sh` re-runs the
transport tests in a pytest process of their own."""


settings.register_profile("races", max_examples=150, deadline=None)
"""``pytest --hypothesis-profile=races``: the supervision storm property test with many
more examples, at ``sys.setswitchinterval(1e-6)`` (see tests/supervision/test_properties.py)."""
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
    # Supervised children run on daemon threads (an abandoned one must not keep
    # the process up): theirs are named for the child and watched here too.
    extra = [
        t
        for t in threading.enumerate()
        if t not in before
        and t is not current
        and t.is_alive()
        and (not t.daemon or t.name.startswith(ACTOR_THREAD_PREFIX))
    ]
    for thread in extra:
        thread.join(timeout=5)
    alive = [t.name for t in extra if t.is_alive()]
    assert not alive, f"threads left running: {alive}"


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def switch_often() -> Iterator[None]:
    """Threads switch every microsecond (`sys.setswitchinterval`), so races land
    between the steps they race with as often as they can."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


@pytest.fixture
def no_block_reports() -> Iterator[None]:
    """The blocked-loop watchdog off for the test (`hedgerow.set_block_threshold(None)`).

    For tests that compare events, counts or timings that a ``blocked`` report
    would change: on a slow or busy machine (CI's two shared cores) any loop
    may be held past the threshold by the machine, not by the code under test."""
    previous = hr.set_block_threshold(None)
    try:
        yield
    finally:
        hr.set_block_threshold(previous)


@pytest.fixture(params=["thread", "loop", "mixed"])
def runtime(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[helpers.Runtime]:
    """The runtime the test's children run on (pykka's pattern: one test, every
    runtime): ``thread`` (`hedgerow.Actor`), ``loop`` (`hedgerow.AsyncioActor`), or
    ``mixed`` (siblings alternate). `helpers.worker` builds on it; a test makes
    its own actor bodies into classes with ``runtime.of(Body)``.

    tests/supervision/conftest.py adds ``loopsup`` and ``mixedsup`` (supervisors
    on the loop too: see `use_runtime`)."""
    yield from use_runtime(request.param, monkeypatch)


def use_runtime(name: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[helpers.Runtime]:
    """Run the test on the runtime `name` (see `helpers.Runtime`).

    ``loopsup`` is ``loop`` with every supervisor on the loop too (each
    `SupervisorSpec` the test makes gets ``runtime="loop"``), and ``mixedsup``
    ``mixed`` with supervisors alternating between a thread and the loop (in
    the order the test makes their specs; a named spec made again keeps the
    runtime its name had, so an update's root is the running root's), so
    thread and loop supervisors nest in each other."""
    chosen = helpers.Runtime(name)
    helpers.current[0] = chosen
    if chosen.supervisors is not None:
        turn = itertools.count()
        checked = hr.SupervisorSpec.__post_init__
        named: dict[str, bool] = {}  # a spec made again (an update's) keeps its runtime

        def post_init(spec: hr.SupervisorSpec) -> None:
            loop = chosen.supervisors == "loop"
            if not loop and spec.name is not None:
                loop = named.setdefault(spec.name, next(turn) % 2 == 0)
            elif not loop:
                loop = next(turn) % 2 == 0
            if spec.runtime == "thread" and loop:
                object.__setattr__(spec, "runtime", "loop")
            checked(spec)

        monkeypatch.setattr(hr.SupervisorSpec, "__post_init__", post_init)
    try:
        yield chosen
    finally:
        helpers.current[0] = helpers.THREAD
