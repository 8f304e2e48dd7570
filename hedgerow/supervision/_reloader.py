"""`ModuleReloader`: re-import the user's modules that changed on disk (Crossbar's
TrackingModuleReloader, for ``reload_modules=True``).

Only modules imported after the reloader was made are candidates, so the
standard library, hedgerow and whatever the process had loaded before stay
as they are. A module is reloaded when its source's content changed since it
was first seen, not merely its mtime: an edit within the same second, or one
that keeps the size, is still seen. Its cached bytecode is dropped first,
because Python trusts a ``.pyc`` whose recorded mtime and size still match.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path
    from types import ModuleType

__all__ = ["ModuleReloader"]

logger = logging.getLogger("hedgerow.supervision")


def _source(module: ModuleType) -> Path | None:
    file = getattr(module, "__file__", None)
    if not file or not file.endswith(".py"):
        return None
    from pathlib import Path  # noqa: PLC0415 - a worker imports it only for what it reloads

    return Path(file)


def _digest(path: Path) -> bytes | None:
    import hashlib  # noqa: PLC0415 - about 3 ms (OpenSSL): only once a module is tracked

    try:
        return hashlib.blake2b(path.read_bytes(), digest_size=16).digest()
    except OSError:
        return None


class ModuleReloader:
    """Remembers which modules were loaded at its making; reloads later ones that changed."""

    def __init__(self) -> None:
        self._before = frozenset(sys.modules)
        self._seen: dict[str, bytes | None] = {}
        self._lock = threading.Lock()

    def track(self) -> None:
        """Note the source of every module imported since; call it after each import."""
        with self._lock:
            for name, module in list(sys.modules.items()):
                if name in self._before or name in self._seen or module is None:
                    continue
                path = _source(module)
                self._seen[name] = _digest(path) if path is not None else None

    def reload(self) -> list[str]:
        """Reload the tracked modules whose source changed, in import order; their names."""
        self.track()
        reloaded: list[str] = []
        with self._lock:
            importlib.invalidate_caches()
            for name in list(self._seen):
                module = sys.modules.get(name)
                path = _source(module) if module is not None else None
                if module is None or path is None:
                    continue
                digest = _digest(path)
                if digest == self._seen[name]:
                    continue
                cached = getattr(module, "__cached__", None)
                if cached:
                    type(path)(cached).unlink(missing_ok=True)  # a Path, pathlib imported late
                logger.info("Reloading module %s (%s changed)", name, path)
                importlib.reload(module)
                self._seen[name] = digest
                reloaded.append(name)
        return reloaded
