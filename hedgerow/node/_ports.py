"""`PortAllocator`: TCP ports for worker processes, as turberfield's ``next_port``.

Each worker gets a port from a range: the lowest one that no other worker of
this node holds and that is free on the host (a test bind on 127.0.0.1
succeeds). A worker keeps its port across restarts when it can: the port a key
(a child's path) held last is offered to it again first.

The default range, 8100-8999, lies below Linux's ephemeral range (32768-60999),
so the kernel does not hand those ports to outgoing connections meanwhile.
"""

from __future__ import annotations

import errno
import itertools
import socket
import threading
from typing import TYPE_CHECKING

from hedgerow._exceptions import HedgerowError

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

__all__ = ["DEFAULT_PORT_MAX", "DEFAULT_PORT_MIN", "NoFreePort", "PortAllocator"]

DEFAULT_PORT_MIN = 8100
DEFAULT_PORT_MAX = 8999
_MAX_PORT = 65535


class NoFreePort(HedgerowError):
    """Every port of the allocator's range is held by a worker or busy on the host."""


def bindable(port: int, host: str = "127.0.0.1") -> bool:
    """True if a TCP socket can bind `host`:`port` now (with SO_REUSEADDR, as servers do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


class PortAllocator:
    """Hands out ports from ``child_port_min`` to ``child_port_max`` (turberfield's names).

    Thread-safe: workers of one node start from several actor threads. Use
    one allocator per node (a `Worker` takes ``ports=``; by default all the
    workers of a process share `default_allocator()`). `is_free` decides
    whether a port is free on the host; it defaults to a test bind on `host`.
    """

    def __init__(
        self,
        child_port_min: int = DEFAULT_PORT_MIN,
        child_port_max: int = DEFAULT_PORT_MAX,
        *,
        host: str = "127.0.0.1",
        is_free: Callable[[int], bool] | None = None,
    ) -> None:
        for name, value in (("child_port_min", child_port_min), ("child_port_max", child_port_max)):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_PORT:
                msg = f"{name}={value!r}: expected a port number from 1 to {_MAX_PORT}"
                raise ValueError(msg)
        if child_port_min > child_port_max:
            msg = (
                f"child_port_min={child_port_min} > child_port_max={child_port_max}: "
                "the range is empty"
            )
            raise ValueError(msg)
        self.child_port_min = child_port_min
        self.child_port_max = child_port_max
        self.host = host
        self._is_free = is_free if is_free is not None else self._bindable
        self._lock = threading.Lock()
        self._held: dict[str, tuple[int, object]] = {}
        self._last: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"<PortAllocator {self.child_port_min}-{self.child_port_max} held={self.held()}>"

    def _bindable(self, port: int) -> bool:
        return bindable(port, self.host)

    def next_port(self, key: str, busy: Collection[int] = (), *, owner: object = None) -> int:
        """Hold a port for `key` (a worker's child path) and return it.

        The port `key` held last comes first, if it is still free; then the
        lowest port of the range that no key holds, not in `busy`, and free on
        the host, preferring ports that no other key held last (so that a
        worker being restarted finds its port still there). If `key` holds a
        port already, its new `owner` (a worker incarnation) takes that port
        over: the one it replaces is on its way out. Raises `NoFreePort` when
        none is left.
        """
        with self._lock:
            held = self._held.get(key)
            if held is not None:
                self._held[key] = (held[0], owner)
                return held[0]
            taken = {port for port, _owner in self._held.values()} | set(busy)
            last = self._last.get(key)
            others = {port for other, port in self._last.items() if other != key}
            pool = range(self.child_port_min, self.child_port_max + 1)
            candidates = itertools.chain(
                [last] if last is not None and last in pool else [],
                (port for port in pool if port not in others),
                (port for port in pool if port in others),
            )
            for port in candidates:
                if port not in taken and self._is_free(port):
                    self._held[key] = (port, owner)
                    self._last[key] = port
                    return port
        msg = (
            f"no free port for {key!r} in {self.child_port_min}-{self.child_port_max}: "
            f"{len(taken)} held by workers or known busy, the rest busy on the host"
        )
        raise NoFreePort(msg)

    def release(self, key: str, *, owner: object = None) -> None:
        """`key`'s worker has exited: its port is free for others, and kept as
        `key`'s first choice for its next start. A release by an `owner` that no
        longer holds the key (its successor took the port over) does nothing."""
        with self._lock:
            held = self._held.get(key)
            if held is not None and (owner is None or held[1] is owner):
                del self._held[key]

    def held(self) -> dict[str, int]:
        """The ports held now, by key."""
        with self._lock:
            return {key: port for key, (port, _owner) in self._held.items()}


_default: PortAllocator | None = None
_default_lock = threading.Lock()


def default_allocator() -> PortAllocator:
    """The allocator that workers built without ``ports=`` share (one per process)."""
    global _default  # noqa: PLW0603 - one lazily built allocator per process
    with _default_lock:
        if _default is None:
            _default = PortAllocator()
        return _default
