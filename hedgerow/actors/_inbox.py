"""The inbox of a supervised child: a FIFO queue that can also jump one envelope ahead."""

from __future__ import annotations

import queue
from typing import Any

__all__ = ["Inbox"]


class Inbox(queue.Queue[Any]):
    """`queue.Queue`, as pykka uses, plus `put_front` for control envelopes.

    A supervisor's stop must not wait behind the child's backlog, and the
    backlog must stay in order for the next incarnation.
    """

    def put_front(self, item: Any) -> None:
        with self.not_empty:
            self.queue.appendleft(item)
            self.unfinished_tasks += 1
            self.not_empty.notify()
