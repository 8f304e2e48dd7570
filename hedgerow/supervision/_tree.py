"""`Tree`: start a supervision tree, talk to its supervisors, wait for its end."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar, overload

from pykka._envelope import Envelope

from hedgerow._events import EventKind, EventStream
from hedgerow._exceptions import ChildNotFound, DeadLetterError, StartCancelled, StartError
from hedgerow.actors._actor import spawn
from hedgerow.actors._messages import _Control
from hedgerow.actors._names import Names
from hedgerow.actors._reason import SHUTDOWN, Reason, is_normal
from hedgerow.actors._ref import TreeHooks, narrow
from hedgerow.supervision._spec import ChildSpec, SupervisorSpec
from hedgerow.supervision._supervisor import (
    ChildCounts,
    ChildInfo,
    ChildState,
    Supervisor,
    SupervisorBase,
    supervisor_class,
)

if TYPE_CHECKING:
    import asyncio
    import random
    from collections.abc import Callable
    from types import TracebackType

    import pykka

    from hedgerow._clock import Clock
    from hedgerow.actors._ref import ChildRef

__all__ = ["SupervisorHandle", "Tree", "start_tree"]

logger = logging.getLogger("hedgerow.supervision")

A = TypeVar("A", bound="pykka.Actor")

DEFAULT_CALL_TIMEOUT = 30.0

CANCEL_POLL = 0.02
"""How often a start that can be cancelled looks at its `cancel` event (seconds)."""


class SupervisorHandle:
    """Call a supervisor's dynamic-children API from any thread.

    Each call is an ask to the supervisor's actor, bounded by `timeout`, and
    raises what the supervisor raises (`ChildNotFound`, `AlreadyStarted`, ...).
    """

    def __init__(self, ref: pykka.ActorRef[Any], timeout: float = DEFAULT_CALL_TIMEOUT) -> None:
        self.ref = ref
        self.timeout = timeout
        self._proxy: pykka.ActorProxy[Any] | None = None

    def _call(self, name: str, *args: Any) -> Any:
        if self._proxy is None:  # building a proxy introspects the actor: do it once
            self._proxy = self.ref.proxy()
        return getattr(self._proxy, name)(*args).get(timeout=self.timeout)

    def start_child(self, spec_or_arg: Any = None, *extra_args: Any) -> ChildRef[Any]:
        return self._call("start_child", spec_or_arg, *extra_args)  # type: ignore[no-any-return]

    def stop_child(self, child: str | ChildRef[Any]) -> None:
        self._call("stop_child", child)

    def restart_child(self, child_id: str) -> ChildRef[Any]:
        return self._call("restart_child", child_id)  # type: ignore[no-any-return]

    def delete_child(self, child_id: str) -> None:
        self._call("delete_child", child_id)

    def replace_child(self, spec: ChildSpec) -> ChildRef[Any]:
        return self._call("replace_child", spec)  # type: ignore[no-any-return]

    def adopt_spec(self, spec: SupervisorSpec) -> None:
        self._call("adopt_spec", spec)

    def reserve_children(self, specs: list[ChildSpec]) -> None:
        self._call("reserve_children", specs)

    def release_children(self, child_ids: list[str]) -> None:
        self._call("release_children", child_ids)

    def which_children(self) -> list[ChildInfo]:
        return self._call("which_children")  # type: ignore[no-any-return]

    def count_children(self) -> ChildCounts:
        return self._call("count_children")  # type: ignore[no-any-return]

    @overload
    def get_child(self, child_id: str) -> ChildRef[Any]: ...

    @overload
    def get_child(self, child_id: str, actor_class: type[A]) -> ChildRef[A]: ...

    def get_child(self, child_id: str, actor_class: type[A] | None = None) -> ChildRef[Any]:
        """The stable ref of a child, by id; typed as `actor_class`'s if given."""
        return narrow(self._call("get_child", child_id), actor_class)

    def describe(self) -> list[dict[str, Any]]:
        """Every child, recursively, as plain data (what ``hedgerow status`` shows).

        Each is ``{"id", "path", "state", "supervisor", "incarnation",
        "restarts", "info"}`` (``info``: what the running incarnation reports
        of itself, e.g. a worker's pid), ``"children"`` for a supervisor, and
        ``"inbox"`` for any other child: ``{"depth", "max_inbox", "overflow",
        "dropped"}`` (`InboxStatistics.as_dict`).
        """
        rows: list[dict[str, Any]] = []
        for child in self.which_children():
            actor = child.ref.incarnation if child.state is ChildState.RUNNING else None
            row: dict[str, Any] = {
                "id": child.id,
                "path": child.ref.path,
                "state": child.state.value,
                "supervisor": child.is_supervisor,
                "incarnation": child.incarnation,
                "restarts": child.restarts,
                "info": actor.actor_info() if actor is not None else None,
            }
            if not child.is_supervisor:
                row["inbox"] = child.ref.inbox_statistics().as_dict()
            if child.is_supervisor and child.state is ChildState.RUNNING:
                try:
                    row["children"] = SupervisorHandle(child.ref, self.timeout).describe()
                except (ChildNotFound, DeadLetterError):
                    row["children"] = []  # it stopped meanwhile
            rows.append(row)
        return rows

    def supervisor(self, child_id: str) -> SupervisorHandle:
        """The handle of a nested supervisor child."""
        ref = self.get_child(child_id)
        if not issubclass(ref.actor_class, Supervisor):
            raise ChildNotFound(f"{child_id} (not a supervisor)")
        return SupervisorHandle(ref, self.timeout)


class Tree(SupervisorHandle):
    """A running supervision tree: its root supervisor, events and outcome.

    `wait()` returns the root's exit reason when the tree ends: ``shutdown``
    after `stop()`, a `hedgerow.Shutdown` after an auto shutdown, or the
    exception with which the root gave up (for example `IntensityExceeded`).
    Use it as a context manager to stop the tree on the way out.
    """

    def __init__(
        self,
        spec: SupervisorSpec,
        *,
        name: str | None = None,
        clock: Clock | None = None,
        events: EventStream | None = None,
        random: random.Random | None = None,
        cancel: threading.Event | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        check_spec(spec)
        name = name or spec.name or "root"
        _check_loop(loop)
        self.spec = spec
        self.name = name
        self.events = events if events is not None else EventStream()
        self.names = Names()
        self.hooks = TreeHooks()
        """Where `hedgerow.testing.Faults` plugs into this tree."""
        self.hooks.loop = loop
        self._done = threading.Event()
        self._when_done_lock = threading.Lock()
        self._done_callbacks: list[Callable[[Reason], None]] | None = []
        self._reason: Reason | None = None
        root = spawn(
            supervisor_class(spec),
            (spec,),
            {
                "path": name,
                "clock": clock,
                "events": self.events,
                "random": random,
                "names": self.names,
                "hooks": self.hooks,
            },
            on_exit=self._root_exited,
        )
        assert isinstance(root, SupervisorBase)
        self.clock = root.clock
        self._root = root
        if cancel is None:
            root._hr_started.wait()
        else:
            while not root._hr_started.wait(CANCEL_POLL):
                if cancel.is_set():
                    root._cancel_start()
                    self._done.wait()
                    # Reported here, once the take-over has stopped its children.
                    self._publish_end(root, SHUTDOWN)
                    raise StartCancelled(name)
        if root._hr_start_error is not None:
            self._done.wait()
            raise StartError(name, root._hr_start_error)
        self.events.publish(EventKind.STARTED, name, self.clock.now())
        super().__init__(root.actor_ref)

    def _root_exited(self, actor: Any, reason: Reason) -> None:
        self._reason = reason
        if actor._hr_start_error is None and not actor._hr_abandoned:
            # (An abandoned root's start was cancelled: `__init__` reports it.)
            self._publish_end(actor, reason)
        self._done.set()
        with self._when_done_lock:
            callbacks, self._done_callbacks = self._done_callbacks, None
        for callback in callbacks or ():
            try:
                callback(reason)
            except Exception:
                logger.exception("A callback of tree %r's end failed", self.name)

    def _publish_end(self, actor: Any, reason: Reason) -> None:
        kind = EventKind.STOPPED if is_normal(reason) else EventKind.FAILED
        self.events.publish(
            kind, self.name, actor.clock.now(), reason=reason, traceback=actor._hr_traceback
        )

    def _when_done(self, callback: Callable[[Reason], None]) -> None:
        """Call ``callback(reason)`` when the tree ends (at once if it has), in the
        thread that sees it end; it must be quick (`AsyncioTree` hands it to a loop)."""
        with self._when_done_lock:
            if self._done_callbacks is not None:
                self._done_callbacks.append(callback)
                return
        assert self._reason is not None
        callback(self._reason)

    @overload
    def lookup(self, path: str) -> ChildRef[Any]: ...

    @overload
    def lookup(self, path: str, actor_class: type[A]) -> ChildRef[A]: ...

    def lookup(self, path: str, actor_class: type[A] | None = None) -> ChildRef[Any]:
        """The stable ref of the child at `path` (``root/pipeline/parser``);
        typed as `actor_class`'s if given (TypeError if it is another class)."""
        ref = self.names.get(path)
        if ref is None:
            raise ChildNotFound(path)
        return narrow(ref, actor_class)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def reason(self) -> Reason | None:
        """The root's exit reason, once the tree has ended."""
        return self._reason

    @property
    def gave_up(self) -> bool:
        """True if the tree ended because its root failed (e.g. intensity exceeded)."""
        return self._reason is not None and not is_normal(self._reason)

    def wait(self, timeout: float | None = None) -> Reason:
        """Block until the tree ends; its root's exit reason. TimeoutError if it doesn't.

        Not on the thread of the loop the tree's event-loop actors run on
        (`start_tree`'s ``loop``): they could not stop while it blocks, so it
        raises RuntimeError there; await `AsyncioTree.wait` instead.
        """
        loop = self.hooks.loop
        if loop is not None and not self._done.is_set() and _running_loop() is loop:
            msg = (
                f"tree {self.name!r}: wait() or stop() on the thread of the loop its "
                "event-loop actors run on would block them for ever; "
                "await the AsyncioTree's wait() or stop() (hedgerow.open_tree) instead"
            )
            raise RuntimeError(msg)
        if not self._done.wait(timeout):
            msg = f"tree {self.name!r} still running after {timeout} s"
            raise TimeoutError(msg)
        assert self._reason is not None
        return self._reason

    def request_stop(self) -> None:
        """Begin shutting the tree down (children stop in reverse order); don't wait."""
        if not self._done.is_set():
            control = _Control(_Control.STOP, self._root.actor_incarnation, SHUTDOWN)
            self._root.actor_inbox.put(Envelope(control))
            self._root._interrupt_start()  # a restart waiting for an on_start

    def stop(self, timeout: float | None = None) -> Reason:
        """Shut the tree down (children stop in reverse order) and wait for it."""
        self.request_stop()
        return self.wait(timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_tree(
    spec: SupervisorSpec,
    *,
    name: str | None = None,
    clock: Clock | None = None,
    events: EventStream | None = None,
    random: random.Random | None = None,
    cancel: threading.Event | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
) -> Tree:
    """Start `spec` as the root of a new tree; returns once every child has started.

    The tree's `name` (the first part of every path) defaults to the spec's
    name, or ``root``.

    Raises `StartError` if a child fails to start; nothing is left running then.

    Setting `cancel` while the tree starts (from another thread: a stop asked
    for meanwhile) cancels the start within ``CANCEL_POLL`` seconds plus the
    children's shutdowns: the children that had started are stopped in reverse
    order, the one still in its ``on_start`` is stopped once that returns or
    abandoned after its shutdown, none after it starts, and `StartCancelled`
    is raised. Set after the start, it does nothing.

    The tree's event-loop actors (`hedgerow.AsyncioActor` children) run on
    `loop`, a running asyncio loop of the caller's (its thread must not block
    waiting for this call or for the tree's stop: use `hedgerow.open_tree`
    from that loop's own code); by default, on the loop thread hedgerow owns.
    """
    return Tree(
        spec, name=name, clock=clock, events=events, random=random, cancel=cancel, loop=loop
    )


def check_spec(
    spec: object, needs: str = "a tree starts from", with_file: str = "to start a tree file"
) -> None:
    """TypeError, saying what to give, unless `spec` is a `SupervisorSpec` (what
    ``needs`` one, and what a tree file is for, say who asks)."""
    if isinstance(spec, SupervisorSpec):
        return
    hint = ""
    if isinstance(spec, ChildSpec):
        hint = ": a tree's root is a supervisor; give SupervisorSpec([child_spec])"
    elif isinstance(spec, (str, Path)):
        hint = f": {with_file}, give hedgerow.load_tree(path)"
    msg = f"{needs} a SupervisorSpec, not {type(spec).__name__} {spec!r}{hint}"
    raise TypeError(msg)


def _running_loop() -> object:
    from asyncio.events import _get_running_loop  # noqa: PLC0415 - a tree with a loop has asyncio

    return _get_running_loop()


def _check_loop(loop: object) -> None:
    if loop is None:
        return
    import asyncio  # noqa: PLC0415 - not for the trees of a process without a loop

    if not isinstance(loop, asyncio.AbstractEventLoop):
        msg = f"loop must be an asyncio event loop or None, not {loop!r}"
        raise TypeError(msg)
    if loop.is_closed():
        msg = f"loop {loop!r} is closed: the tree's event-loop actors could never run"
        raise ValueError(msg)
