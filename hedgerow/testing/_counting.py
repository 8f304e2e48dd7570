"""Message counting: what `hedgerow.testing.Faults` counts of the user messages
sent to a tree's children, and what became of them (handled, or dead-lettered).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from pykka import messages as pykka_messages

from hedgerow.actors._inbox import Inbox
from hedgerow.actors._messages import _Internal

__all__ = ["Counter", "MessageCounts"]


class Counter(Protocol):
    """What a counting inbox tells of each message put in it (`hedgerow.testing.Faults`)."""

    def _count_sent(self, envelope: Any) -> None: ...

    def _count_withdrawn(self, envelope: Any) -> None: ...


@dataclass(frozen=True)
class MessageCounts:
    """User messages put in the children's inboxes while installed, and what
    became of those same messages: handled, dead-lettered, or withdrawn.

    A handler that raised while answering an ask counts as handled (the asker
    got the error); a told message whose handler raised, a message hit by an
    injected crash, and one left in the inbox of a child gone for good are dead
    letters; an ask taken back out of the inbox by its cancelled asker (before
    the child took it) is withdrawn. ``sent - handled - dead_lettered - withdrawn``
    are on their way (or lost, once the tree has stopped); it is never negative.
    """

    sent: int
    handled: int
    dead_lettered: int = 0
    withdrawn: int = 0


class _CountingInbox(Inbox):
    """A child's inbox while `Faults` is plugged in: counts the user messages put in it.

    `_put` runs under the queue's mutex, so a message is counted before its
    reader can take it (``put_front`` only puts back what was counted, or controls).
    """

    _hr_faults: Counter

    def _put(self, item: Any) -> None:
        super()._put(item)
        self._hr_faults._count_sent(item)

    def _dropping(self, item: Any) -> None:
        # Dropped by a full inbox before it was queued: sent, and then a dead letter.
        self._hr_faults._count_sent(item)

    def _taken_back(self, item: Any) -> None:
        # Its asker was cancelled before the child took it: never handled, no dead letter.
        self._hr_faults._count_withdrawn(item)


def _is_base_only(error: BaseException | None) -> bool:
    return error is not None and not isinstance(error, Exception)


def _is_user(message: Any) -> bool:
    return not isinstance(message, (_Internal, pykka_messages._ActorStop))
