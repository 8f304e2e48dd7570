"""`__all__` lists exactly the public names of each package, sorted."""

from __future__ import annotations

import importlib
import logging

import pytest

PACKAGES = [
    "hedgerow",
    "hedgerow.actors",
    "hedgerow.components",
    "hedgerow.node",
    "hedgerow.supervision",
    "hedgerow.testing",
    "hedgerow.transports",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_complete(name):
    module = importlib.import_module(name)
    public = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and getattr(value, "__module__", name).startswith("hedgerow")
        and not isinstance(value, type(importlib))
    }
    exported = set(module.__all__)
    assert public <= exported | {"logging"}, public - exported
    assert all(hasattr(module, attr) for attr in exported)
    assert list(module.__all__) == sorted(module.__all__, key=_isort_key)


def _isort_key(name: str) -> tuple[int, str]:
    """Constants, then classes, then functions: the order ruff's RUF022 keeps."""
    if name.isupper():
        return (0, name)
    return (1, name) if name[0].isupper() else (2, name)


def test_importing_hedgerow_configures_no_logging():
    root = logging.getLogger()
    handlers = list(root.handlers)
    importlib.reload(importlib.import_module("hedgerow"))
    assert root.handlers == handlers
    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("hedgerow").handlers)
