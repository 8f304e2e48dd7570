"""A worker's standby processes: spares started ahead of need (``Worker(standby=True)``).

A spare is a worker process already past its imports, waiting for its
config; a restart takes it over instead of launching a new interpreter.
Spares are kept per child path.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hedgerow.node._worker_actor import WorkerProcess

__all__ = ["StandbySpares"]

logger = logging.getLogger("hedgerow.node")


class StandbySpares:
    """The standby half of `hedgerow.node.Worker`: its spare processes, by child path."""

    config_timeout: float
    _spares: dict[str, _Spare]
    _spares_lock: threading.Condition

    if TYPE_CHECKING:  # what `Worker` provides

        def launch(self, guid: str, port: int, *, standby: bool = False) -> Any: ...

    def spares(self) -> dict[str, int]:
        """The pids of the standby processes kept now, by child path."""
        with self._spares_lock:
            return {key: spare.process.pid for key, spare in self._spares.items()}

    def wait_for_spare(
        self, key: str, other_than: int | None = None, timeout: float | None = None
    ) -> int | None:
        """The pid of `key`'s spare once there is one (other than pid `other_than`);
        None if none comes within `timeout` seconds."""
        with self._spares_lock:
            found = self._spares_lock.wait_for(
                lambda: (
                    (spare := self._spares.get(key)) is not None and spare.process.pid != other_than
                ),
                timeout,
            )
            return self._spares[key].process.pid if found else None

    def _keep_spare(self, key: str, port: int) -> None:
        """Start the spare for `key`'s next restart (replacing an older one)."""
        guid = uuid.uuid4().hex
        spare = _Spare(guid, port, self.launch(guid, port, standby=True))
        with self._spares_lock:
            old = self._spares.pop(key, None)
            self._spares[key] = spare
            self._spares_lock.notify_all()
        if old is not None:
            old.discard()

    def _take_spare(self, key: str, port: int) -> _Spare | None:
        """`key`'s spare, if it is alive and has the port its next incarnation got."""
        with self._spares_lock:
            spare = self._spares.pop(key, None)
        if spare is None:
            return None
        if spare.timer is not None:
            spare.timer.cancel()
        if spare.port != port or spare.process.poll() is not None:
            spare.discard()
            return None
        return spare

    def _hold_spare(self, key: str) -> None:
        """`key`'s worker failed: keep its spare for `config_timeout` seconds."""
        with self._spares_lock:
            spare = self._spares.get(key)
            if spare is None or spare.timer is not None:
                return
            spare.timer = threading.Timer(self.config_timeout, self._expire_spare, (key, spare))
            spare.timer.daemon = True
            spare.timer.start()

    def _expire_spare(self, key: str, spare: _Spare) -> None:
        with self._spares_lock:
            if self._spares.get(key) is not spare:
                return
            del self._spares[key]
        logger.debug("no restart of %s claimed its spare (pid %s)", key, spare.process.pid)
        spare.discard()

    def _drop_spare(self, key: str) -> None:
        with self._spares_lock:
            spare = self._spares.pop(key, None)
        if spare is not None:
            spare.discard()


class _Spare:
    """A worker process started ahead of need: past its imports, waiting for a config."""

    __slots__ = ("guid", "port", "process", "timer")

    def __init__(self, guid: str, port: int, process: WorkerProcess) -> None:
        self.guid = guid
        self.port = port
        self.process = process
        self.timer: threading.Timer | None = None

    def discard(self) -> None:
        """Kill it (by the pid we launched) and reap it."""
        if self.timer is not None:
            self.timer.cancel()
        process = self.process
        process.kill()
        process.wait()
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
