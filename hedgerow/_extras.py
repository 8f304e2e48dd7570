"""The optional extras of the package, and the install hint when one is missing.

Every extra in ``pyproject.toml`` has an entry here (a test keeps them equal),
so that code needing one calls `require` and a user without it reads which
extra to install instead of a traceback; the CLI turns `MissingExtra` into
exit status 2.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from hedgerow._exceptions import HedgerowError


@dataclass(frozen=True)
class Extra:
    """An optional extra: what it installs, what for, and modules that show it is there."""

    name: str
    purpose: str
    modules: tuple[str, ...]


EXTRAS: dict[str, Extra] = {
    "dev": Extra(
        "The test tooling", "the test suite and its checks", ("pytest", "hypothesis", "mypy")
    ),
    "docs": Extra(
        "The documentation builder",
        "building the docs site (mkdocs build)",
        ("mkdocs", "material", "mkdocstrings_handlers.python", "mkdocs_click"),
    ),
    "router": Extra("Crossbar.io", "hedgerow router", ("crossbar",)),
    "twisted": Extra(
        "Twisted",
        "WAMP on Twisted's reactor, with TLS",
        ("twisted.internet", "OpenSSL", "service_identity"),
    ),
}
"""Each extra of the package by name."""


class MissingExtra(HedgerowError, RuntimeError):
    """An optional extra is not installed; the message says how to install it."""

    def __init__(self, extra: str, missing: str, *, alternative: str = "") -> None:
        self.extra = extra
        self.missing = missing
        super().__init__(install_hint(extra, missing, alternative=alternative))


def install_hint(extra: str, missing: str, *, alternative: str = "") -> str:
    """The words for a missing extra: what is missing, the pip command, what needs it."""
    about = EXTRAS[extra]
    return (
        f"{about.name} is not installed: pip install 'hedgerow[{extra}]' "
        f"(in a clone of hedgerow: bash scripts/test.sh){alternative}; "
        f"{about.purpose} needs hedgerow's {extra} extra (missing: {missing})"
    )


def missing_module(extra: str) -> str | None:
    """The first module of `extra` that cannot be imported here, or None."""
    for module in EXTRAS[extra].modules:
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            found = None
        if found is None:
            return module
    return None


def require(extra: str) -> None:
    """Raise `MissingExtra` unless every module of `extra` can be imported (imports none)."""
    missing = missing_module(extra)
    if missing is not None:
        raise MissingExtra(extra, missing)
