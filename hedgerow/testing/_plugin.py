"""hedgerow's pytest plugin, registered through the ``pytest11`` entry point.

Fixtures (each fresh per test):

- ``hedgerow_clock``: a `VirtualClock` with autojump (threshold 0), driving
  hedgerow's event loop (`VirtualClock.drive`), closed after the test;
  ``virtual_clock``: one without autojump, moved by hand (drive a loop with it
  by calling ``drive()``);
- ``hedgerow_recorder``: an `EventRecorder` on the test's event stream;
- ``hedgerow_tree_factory``: a `TreeFactory` on that clock and stream: call it
  with a spec or a tree file path; every tree is stopped after the test, its
  faults cleared first;
- ``hedgerow_tree`` and ``hedgerow_faults``: the tree of the ``hedgerow_spec``
  fixture (define it: a `SupervisorSpec` or a tree file path) and its `Faults`.

When a test that used them fails, the report shows the tree's last events
(the ``hedgerow_events_shown`` ini option says how many; 50 by default).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from hedgerow._events import EventStream
from hedgerow.testing._clock import VirtualClock
from hedgerow.testing._factory import TreeFactory
from hedgerow.testing._recorder import EventRecorder

if TYPE_CHECKING:
    from collections.abc import Generator, Iterator
    from pathlib import Path

    from hedgerow.supervision._spec import SupervisorSpec
    from hedgerow.supervision._tree import Tree
    from hedgerow.testing._faults import Faults

_RECORDER = pytest.StashKey[EventRecorder]()
_SHOWN = "hedgerow_events_shown"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(_SHOWN, "how many of a tree's last events a failed test shows", default="50")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Add the tree's last events to the report of a failed test."""
    report = yield
    recorder = item.stash.get(_RECORDER, None)
    if report.failed and recorder is not None and call.when in ("call", "teardown"):
        shown = int(item.config.getini(_SHOWN))
        text = recorder.format(last=shown) or "(no events)"
        report.sections.append(("hedgerow: last events", text))
    return report


@pytest.fixture
def virtual_clock() -> VirtualClock:
    """A fresh `VirtualClock` at time 0, moved only by `advance()`."""
    return VirtualClock()


@pytest.fixture
def hedgerow_clock() -> Iterator[VirtualClock]:
    """The clock of the test's trees: virtual, jumping whenever the actors are idle.

    It drives hedgerow's own event loop too, so ``asyncio.sleep`` and the other
    timers of event-loop actors are virtual (given back to real time after the test).
    """
    with VirtualClock(autojump_threshold=0) as clock:
        clock.drive()
        yield clock


@pytest.fixture
def hedgerow_recorder(request: pytest.FixtureRequest) -> Iterator[EventRecorder]:
    """Records every event of the test's trees; shown when the test fails."""
    with EventRecorder(EventStream()) as recorder:
        request.node.stash[_RECORDER] = recorder
        yield recorder


@pytest.fixture
def hedgerow_tree_factory(
    hedgerow_clock: VirtualClock, hedgerow_recorder: EventRecorder
) -> Iterator[TreeFactory]:
    """Starts trees (from specs or tree files) on the test's clock; stops them after."""
    factory = TreeFactory(hedgerow_clock, hedgerow_recorder.stream)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def hedgerow_spec() -> SupervisorSpec | str | Path:
    """The tree `hedgerow_tree` starts: override this fixture in your tests."""
    msg = (
        "hedgerow_tree needs a hedgerow_spec fixture: define one that returns a "
        "SupervisorSpec or the path of a tree file"
    )
    raise pytest.UsageError(msg)


@pytest.fixture
def hedgerow_tree(
    hedgerow_tree_factory: TreeFactory, hedgerow_spec: SupervisorSpec | str | Path
) -> Tree:
    """The running tree of `hedgerow_spec`, on the virtual clock."""
    return hedgerow_tree_factory(hedgerow_spec)


@pytest.fixture
def hedgerow_faults(hedgerow_tree_factory: TreeFactory, hedgerow_tree: Tree) -> Faults:
    """Fault injection into `hedgerow_tree`; every fault is undone after the test."""
    return hedgerow_tree_factory.faults(hedgerow_tree)
