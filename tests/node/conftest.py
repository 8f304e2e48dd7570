"""Fixtures for the node's tests."""

from __future__ import annotations

import pytest

from hedgerow.node import _forkserver


@pytest.fixture(autouse=True)
def _patient_launches(monkeypatch):
    """Launches wait for a starting zygote as long as a loaded test machine may need
    (many tests check that a worker was forked); the tests of `START_PATIENCE` itself
    set their own."""
    monkeypatch.setattr(_forkserver, "START_PATIENCE", 60.0)
