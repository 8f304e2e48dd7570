"""Lazy re-exports for the package ``__init__`` files (PEP 562's module ``__getattr__``).

``import hedgerow`` imports no submodule: each public name is imported from
its home on first use, so the command line, a worker process and a user who
needs only actors do not pay for autobahn, pydantic, click or rich. The
``__init__`` files also import every name under ``TYPE_CHECKING``, for type
checkers and editors.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, str | tuple[str, str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of `package`, which re-exports `exports`.

    `exports` maps each public name to the module it lives in, or to
    ``(module, name there)`` when it is re-exported under another name. A
    name is imported once, then cached in the package's namespace.
    """

    def __getattr__(name: str) -> Any:  # noqa: N807 - PEP 562's hook
        home = exports.get(name)
        if home is None:
            msg = f"module {package!r} has no attribute {name!r}"
            raise AttributeError(msg)
        module, attribute = (home, name) if isinstance(home, str) else home
        value = getattr(importlib.import_module(module), attribute)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:  # noqa: N807 - PEP 562's hook
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
