"""hedgerow's pytest plugin, registered through the ``pytest11`` entry point.

Fixtures give a test a virtual clock; the fault-injection fixtures come with
the test-harness issue.
"""

from __future__ import annotations

import pytest

from hedgerow.testing._clock import VirtualClock


@pytest.fixture
def virtual_clock() -> VirtualClock:
    """A fresh `VirtualClock` at time 0."""
    return VirtualClock()
