"""Taking an ask's message back out of a plain `queue.Queue` inbox (pykka's thread
actors'), before its actor took it. Its own module: the thread runtime uses it
without importing asyncio."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import queue

__all__ = ["take_back_queued"]


def take_back_queued(inbox: queue.Queue[Any], reply_to: object) -> bool:
    """Remove from a plain `queue.Queue` inbox (pykka's thread actors') the envelope
    that `reply_to` answers; False if it is not there (its actor has it)."""
    with inbox.mutex:
        items = inbox.queue
        for index, item in enumerate(items):
            if getattr(item, "reply_to", None) is reply_to:
                del items[index]
                inbox.not_full.notify()
                return True
    return False
