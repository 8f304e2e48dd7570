"""`Faults`: inject crashes, hangs, slowness and exits into a running tree, by path.

Nothing in the user's actor classes changes: `Faults` plugs an interceptor into
the tree's `TreeHooks`, which every child's message loop consults before
``on_start`` and around each message. A fault is either immediate (it runs in
the child's thread ahead of its queued messages), triggered by the child's
messages (the Nth one, or each one with a seeded probability), or armed for the
child's next starts. `clear()` (or leaving the ``with`` block) undoes them all:
hung children are released, slowed ones woken, scheduled faults cancelled.

The same interceptor counts every user message put in a child's inbox and
what became of it (handled, or dead-lettered), which is how `hedgerow chaos`
finds lost messages. It follows each envelope, not totals: a message already on
its way when `Faults` was plugged in is not counted at all, so never more
messages are handled or dead-lettered than were sent.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import TYPE_CHECKING, Any, Self

from pykka._envelope import Envelope

from hedgerow._exceptions import ChildNotFound
from hedgerow.actors._attrs import actor_attr
from hedgerow.actors._inbox import Inbox
from hedgerow.actors._messages import _Control
from hedgerow.supervision._spec import SupervisorSpec
from hedgerow.supervision._tree import Tree
from hedgerow.testing._counting import MessageCounts, _CountingInbox, _is_user
from hedgerow.testing._fault import (
    ErrorSpec,
    Fault,
    FaultError,
    FaultKind,
    FaultRecord,
    InjectedFault,
)
from hedgerow.testing._interceptor import FaultInterceptor

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from hedgerow._clock import Clock, TimerHandle
    from hedgerow.actors._actor import Actor
    from hedgerow.actors._ref import ChildRef, TreeHooks
    from hedgerow.supervision._async_tree import AsyncioTree

__all__ = [
    "Fault",
    "FaultError",
    "FaultKind",
    "FaultRecord",
    "Faults",
    "InjectedFault",
    "MessageCounts",
    "running_tree",
]

logger = logging.getLogger("hedgerow.testing")


def running_tree(tree: Tree | AsyncioTree, who: str) -> Tree:
    """The `Tree` of `tree`: itself, or an `AsyncioTree`'s ``sync`` (`who` takes
    either; anything else is a TypeError saying so)."""
    if isinstance(tree, Tree):
        return tree
    sync = getattr(tree, "sync", None)
    if isinstance(sync, Tree):  # an AsyncioTree (not imported for it: asyncio code's)
        return sync
    msg = (
        f"{who} needs a running tree (a hedgerow.Tree from start_tree, or the "
        f"hedgerow.AsyncioTree of open_tree), not {tree!r}"
    )
    raise TypeError(msg)


class Faults:
    """Inject faults into the children of a running `Tree`, addressed by path.

    It takes the `Tree` of `start_tree` or the `AsyncioTree` of `open_tree`
    (asyncio code's; `tree` is then its ``sync`` `Tree`). Its calls never
    wait for the loop, so they may be made on it; `Fault.wait_fired` and the
    recorder's ``wait_*`` calls block (await them in a thread,
    ``asyncio.to_thread``, if the tree's event-loop actors run on that loop).

    Every method takes a path such as ``root/pipeline/parser``. Immediate
    faults (`crash`, `hang`, `exit`, `shutdown` without a trigger) need the
    child to be running and raise `FaultError` otherwise; triggered ones arm
    the child's path, so they also hit its later incarnations. Each returns a
    `Fault` handle. `at` and `after` run any of them later, on the tree's clock.

    Use it as a context manager, or call `close()`: it clears every fault and
    unplugs from the tree. One `Faults` per tree at a time.

    `on_fired(record)` and `on_handled(path, time)` are called in the child's
    thread when a fault takes effect and when a child has handled a message
    (the chaos engine measures recovery with them); keep them quick.
    """

    def __init__(
        self,
        tree: Tree | AsyncioTree,
        *,
        seed: int = 0,
        on_handled: Callable[[str, float], None] | None = None,
        on_fired: Callable[[FaultRecord], None] | None = None,
    ) -> None:
        tree = running_tree(tree, "Faults")
        self.tree: Tree = tree
        self.seed = seed
        self.clock: Clock = tree.clock
        self._on_handled = on_handled
        self._on_fired = on_fired
        self._lock = threading.Lock()
        self._message_faults: dict[str, tuple[Fault, ...]] = {}
        self._start_faults: dict[str, tuple[Fault, ...]] = {}
        self._faults: list[Fault] = []
        self._serial = 0
        self._timers: list[TimerHandle] = []
        self._log: list[FaultRecord] = []
        self._skipped: list[tuple[float, str, str]] = []
        self._hung: set[Actor] = set()
        self._n_sent = 0
        self._n_handled = 0
        self._n_withdrawn = 0
        self._n_dead = 0
        self._unresolved: dict[int, Envelope[Any]] = {}
        """Counted envelopes neither handled nor dead-lettered yet, by id (kept
        alive here, so an id cannot be reused while it is looked up)."""
        self._counting = True
        self._counted: list[Inbox] = []
        self._watched: list[ChildRef[Any]] = []
        self._paths = _spec_paths(tree.spec, tree.name)
        self._hooks: TreeHooks = tree.hooks
        if self._hooks.interceptor is not None:
            msg = f"tree {tree.name!r} already has a Faults plugged in: close that one first"
            raise FaultError(msg)
        self._hooks.interceptor = FaultInterceptor(self)
        for path in tree.names.paths():
            ref = tree.names.get(path)
            if ref is not None:
                self._count(ref)

    # -- immediate or triggered faults ----------------------------------------

    def crash(
        self,
        path: str,
        error: ErrorSpec = None,
        *,
        at_message: int | None = None,
        probability: float | None = None,
    ) -> Fault:
        """Fail the child with `error` (an exception or class; `InjectedFault` if None).

        Now (ahead of its queued messages), at its `at_message`-th message from
        now, or at each message with `probability` (seeded by `seed`). The
        message it was handling is a dead letter; an asker gets the error.
        """
        return self._add(
            FaultKind.CRASH, path, error=error, at_message=at_message, probability=probability
        )

    def fail_starts(self, path: str, count: int = 1, error: ErrorSpec = None) -> Fault:
        """Make the child's next `count` starts fail with `error`, before ``on_start``."""
        if count < 1:
            msg = f"fail_starts({path!r}, count={count}): count must be >= 1"
            raise FaultError(msg)
        self._check_path(path)
        fault = self._new(FaultKind.FAIL_START, path, error=error, times=count)
        with self._lock:
            self._start_faults[path] = (*self._start_faults.get(path, ()), fault)
        return fault

    def hang(self, path: str, *, at_message: int | None = None) -> Fault:
        """Block the child (now, or at a message) until the fault is cleared.

        It handles nothing and ignores stop requests meanwhile, so its
        supervisor abandons it after the child's shutdown timeout.
        """
        return self._add(FaultKind.HANG, path, at_message=at_message)

    def slow(self, path: str, delay: float, *, messages: int | None = None) -> Fault:
        """Make each of the child's next `messages` messages (all if None) wait
        `delay` seconds of the tree's clock first (virtual under a VirtualClock)."""
        if not delay >= 0 or (messages is not None and messages < 1):
            msg = f"slow({path!r}, delay={delay!r}, messages={messages!r}): expected delay >= 0 "
            msg += "and messages >= 1"
            raise FaultError(msg)
        self._check_path(path)
        fault = self._new(FaultKind.SLOW, path, delay=delay, times=messages)
        self._arm(fault)
        return fault

    def exit(self, path: str, *, at_message: int | None = None) -> Fault:
        """Stop the child with reason ``normal`` (now, or at a message, which then
        waits in its inbox for the next incarnation)."""
        return self._add(FaultKind.EXIT, path, at_message=at_message)

    def shutdown(self, path: str, term: Any = None, *, at_message: int | None = None) -> Fault:
        """Stop the child with reason ``hedgerow.Shutdown(term)`` (now, or at a message)."""
        return self._add(FaultKind.SHUTDOWN, path, at_message=at_message, term=term)

    # -- on the clock -----------------------------------------------------------

    def after(self, delay: float, fn: Callable[..., Any], *args: Any) -> TimerHandle:
        """Call ``fn(*args)`` (say ``faults.crash, "root/a"``) after `delay` of the tree's clock.

        A `FaultError` or `ChildNotFound` it raises then (the child was not
        running, or is gone) is recorded in `skipped`, not raised. `clear()`
        cancels what has not run yet.
        """

        def run() -> None:
            try:
                fn(*args)
            except (FaultError, ChildNotFound) as exc:
                name = getattr(fn, "__name__", repr(fn))
                path = str(args[0]) if args else ""
                with self._lock:
                    self._skipped.append((self.clock.now(), name, path))
                logger.debug("Scheduled fault skipped: %s", exc)

        handle = self.clock.call_later(delay, run)
        with self._lock:
            self._timers.append(handle)
        return handle

    def at(self, when: float, fn: Callable[..., Any], *args: Any) -> TimerHandle:
        """Call ``fn(*args)`` when the tree's clock reads `when` (at once if past)."""
        return self.after(when - self.clock.now(), fn, *args)

    # -- undoing and reading ------------------------------------------------------

    def clear(self, path: str | None = None) -> None:
        """Undo every fault (or those at `path`): release hangs, wake slow children,
        disarm triggers, cancel scheduled faults (all of them, when no path)."""
        with self._lock:
            faults = [f for f in self._faults if path is None or f.path == path]
            timers = list(self._timers) if path is None else []
            if path is None:
                self._timers.clear()
        for timer in timers:
            timer.cancel()
        # Disarm them all before waking any: a slowed child woken first must not
        # meet a fault that is still armed behind the one that slowed it.
        for fault in faults:
            fault._disarm()
        for fault in faults:
            fault._wake()
        self._join_released()

    def close(self) -> None:
        """`clear()`, then unplug from the tree (message counting stops too)."""
        self.clear()
        interceptor = self._hooks.interceptor
        if isinstance(interceptor, FaultInterceptor) and interceptor.faults is self:
            self._hooks.interceptor = None
        with self._lock:
            counted, self._counted = self._counted, []
            watched, self._watched = self._watched, []
        for inbox in counted:
            with inbox.mutex:
                if type(inbox) is _CountingInbox:
                    inbox.__class__ = Inbox  # type: ignore[assignment] # back to plain
        for ref in watched:
            vars(ref).pop("_dead_letter", None)  # the class's own again

    def stop_counting(self) -> None:
        """Count no message sent from now on; those counted are still followed
        until handled or dead-lettered (a chaos run's end: the same cut every run)."""
        with self._lock:
            self._counting = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def active(self) -> list[Fault]:
        """The faults still armed or in effect."""
        with self._lock:
            return [f for f in self._faults if f.active]

    @property
    def log(self) -> list[FaultRecord]:
        """Every firing so far, in order."""
        with self._lock:
            return list(self._log)

    @property
    def skipped(self) -> list[tuple[float, str, str]]:
        """Scheduled faults that could not be injected: (time, method, path)."""
        with self._lock:
            return list(self._skipped)

    @property
    def messages(self) -> MessageCounts:
        """User messages sent to the tree's children so far, and how many of
        those were handled or dead-lettered."""
        with self._lock:
            return MessageCounts(self._n_sent, self._n_handled, self._n_dead, self._n_withdrawn)

    # -- internals ------------------------------------------------------------------

    def _new(self, kind: FaultKind, path: str, **options: Any) -> Fault:
        with self._lock:
            self._serial += 1
            fault = Fault(self, kind, path, serial=self._serial, **options)
            self._faults.append(fault)
        return fault

    def _add(
        self,
        kind: FaultKind,
        path: str,
        *,
        error: ErrorSpec = None,
        at_message: int | None = None,
        probability: float | None = None,
        term: Any = None,
    ) -> Fault:
        if at_message is not None and probability is not None:
            msg = f"{kind.value} {path}: give at_message or probability, not both"
            raise FaultError(msg)
        if at_message is not None and at_message < 1:
            msg = f"{kind.value} {path}: at_message={at_message} must be >= 1"
            raise FaultError(msg)
        if probability is not None and not 0 <= probability <= 1:
            msg = f"{kind.value} {path}: probability={probability} must be within [0, 1]"
            raise FaultError(msg)
        if at_message is None and probability is None:
            return self._now(kind, path, error=error, term=term)
        self._check_path(path)
        fault = self._new(
            kind, path, error=error, at_message=at_message, probability=probability, term=term
        )
        self._arm(fault)
        return fault

    def _now(self, kind: FaultKind, path: str, *, error: ErrorSpec, term: Any) -> Fault:
        ref = self.tree.lookup(path)
        actor = ref.incarnation
        if actor is None or actor.actor_stopped.is_set():
            msg = f"{path} is not running (restarting or stopped): cannot {kind.value} it now"
            raise FaultError(msg)
        fault = self._new(kind, path, error=error, term=term)
        control = _Control(_Control.CALL, actor.actor_incarnation, fault._fire_now)
        ref.actor_inbox.put_front(Envelope(control))
        return fault

    def _arm(self, fault: Fault) -> None:
        with self._lock:
            path = fault.path
            self._message_faults[path] = (*self._message_faults.get(path, ()), fault)

    def _forget(self, fault: Fault) -> None:
        with self._lock:
            self._forget_later(fault)

    def _forget_later(self, fault: Fault) -> None:
        """Drop a spent fault from the tables (copy on write: readers hold no lock)."""
        for table in (self._message_faults, self._start_faults):
            faults = table.get(fault.path)
            if faults and fault in faults:
                table[fault.path] = tuple(f for f in faults if f is not fault)

    def _check_path(self, path: str) -> None:
        if path not in self._paths and self.tree.names.get(path) is None:
            known = ", ".join(sorted(self._paths | set(self.tree.names.paths())))
            raise ChildNotFound(f"{path} (the tree has {known})")

    def _record(self, fault: Fault, actor: Actor) -> None:
        record = FaultRecord(self.clock.now(), fault.kind, fault.path, actor.actor_incarnation)
        with self._lock:
            self._log.append(record)
        if self._on_fired is not None:
            self._on_fired(record)

    def _hang(self, fault: Fault, actor: Actor) -> None:
        with self._lock:
            self._hung.add(actor)
        fault._release.wait()  # a VirtualClock's autojump sees this thread as idle

    async def _hang_async(self, fault: Fault, actor: Actor) -> None:
        """An event-loop actor's hang: an await that ends when the fault is
        released (or the actor's task is cancelled, by a kill); the loop runs on."""
        with self._lock:
            self._hung.add(actor)
        await fault._released(None)

    def _join_released(self) -> None:
        """Wait for released children that were abandoned meanwhile to finish
        (their held message goes back to the inbox, or to the dead letters)."""
        with self._lock:
            hung, self._hung = self._hung, set()
        running = asyncio._get_running_loop()
        for actor in hung:
            if running is not None and running is actor_attr(actor, "_hr_loop"):
                continue  # it ends only once this caller gives its loop back
            if actor.actor_stopped.is_set():
                actor._hr_exited.wait(timeout=5)

    def _count(self, ref: ChildRef[Any]) -> None:
        """Count what `ref`'s inbox holds and will be sent; follow its dead letters."""
        inbox = ref.actor_inbox
        with inbox.mutex:
            if inbox.__class__ is not Inbox:
                return
            inbox.__class__ = _CountingInbox
            inbox._hr_faults = self  # type: ignore[attr-defined]
            for envelope in inbox.queue:
                self._count_sent(envelope)
        original = ref._dead_letter

        def dead_letter(envelope: Envelope[Any], reason: Any) -> None:
            self._resolve(envelope, handled=False)
            original(envelope, reason)

        ref._dead_letter = dead_letter  # type: ignore[method-assign]
        with self._lock:
            self._counted.append(inbox)
            self._watched.append(ref)

    def _count_sent(self, envelope: Envelope[Any]) -> None:
        """A user message put in a counted inbox (under the inbox's mutex, so
        before any reader can take it out)."""
        if not _is_user(envelope.message):
            return
        with self._lock:
            if self._counting:
                self._n_sent += 1
                self._unresolved[id(envelope)] = envelope

    def _count_withdrawn(self, envelope: Envelope[Any]) -> None:
        """A counted ask was taken back out of its inbox by its cancelled asker
        (under the inbox's mutex): it will be neither handled nor dead-lettered."""
        with self._lock:
            if self._unresolved.pop(id(envelope), None) is envelope:
                self._n_withdrawn += 1
            # (else sent before counting began, or resolved already: not counted)

    def _resolve(self, envelope: Envelope[Any], *, handled: bool) -> None:
        """A counted message was handled or dead-lettered (once: later news of it,
        or of a message sent before counting began, is ignored)."""
        with self._lock:
            if self._unresolved.get(id(envelope)) is not envelope:
                return
            del self._unresolved[id(envelope)]
            if handled:
                self._n_handled += 1
            else:
                self._n_dead += 1


def _spec_paths(spec: SupervisorSpec, prefix: str) -> set[str]:
    """The paths of the children a spec names (not simple_one_for_one's dynamic ones)."""
    return set(iter_paths(spec, prefix))


def iter_paths(spec: SupervisorSpec, prefix: str) -> Iterator[str]:
    """Each child path a spec names, in start order."""
    for child in spec.children:
        path = f"{prefix}/{child.id}"
        yield path
        if isinstance(child.start, SupervisorSpec):
            yield from iter_paths(child.start, path)
