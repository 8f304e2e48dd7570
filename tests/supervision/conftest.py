from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from conftest import use_runtime

if TYPE_CHECKING:
    from collections.abc import Iterator

    import helpers


@pytest.fixture(params=["thread", "loop", "mixed", "loopsup", "mixedsup"])
def runtime(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[helpers.Runtime]:
    """The supervision suites run on every runtime of their children and of
    their supervisors: tests/conftest.py's ``runtime``, plus ``loopsup`` (event-loop
    children under supervisors on the loop) and ``mixedsup`` (mixed children
    under thread and loop supervisors nested in each other)."""
    yield from use_runtime(request.param, monkeypatch)
