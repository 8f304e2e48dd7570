"""The inbox of a supervised child: a FIFO queue that outlives each incarnation.

Three things beyond `queue.Queue`, as pykka uses it:

- `put_front`, so a supervisor's stop does not wait behind the backlog (and
  the backlog stays in order for the next incarnation);
- `take(stopped)`, the reader's get: it never hands anything to an
  incarnation that has been stopped or abandoned, and `wake_all` wakes such a
  reader so that it can leave;
- `close(reason)`: the child is gone for good. What is queued is handed back
  once, and whatever is put later is refused: each envelope goes to the
  dead letters exactly once, and never after `reopen()` (a restart) returns.
"""

from __future__ import annotations

import queue
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable

__all__ = ["Inbox"]


class Inbox(queue.Queue[Any]):
    """`queue.Queue` (unbounded) with `put_front`, `take`, `wake_all` and `close`."""

    def __init__(self) -> None:
        super().__init__()
        self._refused: tuple[Any, Callable[[Any, Any], None]] | None = None
        """While closed: (the reason, what to do with an envelope put meanwhile)."""

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:  # noqa: ARG002 - Queue's signature
        with self.mutex:
            refused = self._refused
            if refused is None:
                self._put(item)
                self.unfinished_tasks += 1
                self.not_empty.notify()
                return
            self._refusing(item)
        refused[1](item, refused[0])

    def put_front(self, item: Any) -> None:
        with self.mutex:
            refused = self._refused
            if refused is None:
                self.queue.appendleft(item)
                self.unfinished_tasks += 1
                self.not_empty.notify()
                return
        refused[1](item, refused[0])

    def take(self, stopped: threading.Event) -> Any | None:
        """The next envelope, waiting for one; None once `stopped` is set."""
        with self.not_empty:
            while True:
                if stopped.is_set():
                    return None
                if self.queue:
                    return self.queue.popleft()
                self.not_empty.wait()

    def wake_all(self) -> None:
        """Wake every reader blocked in `take` (one whose `stopped` is now set leaves)."""
        with self.not_empty:
            self.not_empty.notify_all()

    def close(self, reason: Any, refuse: Callable[[Any, Any], None]) -> list[Any]:
        """Refuse from now on (``refuse(envelope, reason)``, in the sender's thread);
        what was queued, for the caller to dead-letter (each envelope once)."""
        with self.mutex:
            self._refused = (reason, refuse)
            items = list(self.queue)
            self.queue.clear()
            return items

    def reopen(self) -> None:
        """Queue again (the child is restarted): nothing is refused once this returns."""
        with self.mutex:
            self._refused = None

    @property
    def closed(self) -> bool:
        return self._refused is not None

    def _refusing(self, item: Any) -> None:
        """An envelope is refused (under the mutex): a hook for `hedgerow.testing`."""
