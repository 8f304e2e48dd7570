"""The API reference pages list exactly the public names: `__all__` and the docs agree."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = {
    "hedgerow": ROOT / "docs" / "reference" / "api.md",
    "hedgerow.testing": ROOT / "docs" / "reference" / "testing.md",
}
NOT_DOCUMENTED_BY_NAME = {"__version__"}  # a string; the page says what it is


@pytest.mark.parametrize("package", sorted(PAGES))
def test_the_api_reference_lists_every_public_name_once(package):
    listed = re.findall(
        rf"^::: {re.escape(package)}\.(\w+)\s*$", PAGES[package].read_text(), flags=re.MULTILINE
    )
    public = set(importlib.import_module(package).__all__) - NOT_DOCUMENTED_BY_NAME
    assert sorted(listed) == sorted(set(listed)), "a name is listed twice"
    assert set(listed) == public, (
        f"on the page, not in __all__: {sorted(set(listed) - public)}; "
        f"in __all__, not on the page: {sorted(public - set(listed))}"
    )
