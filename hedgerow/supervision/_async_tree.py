"""`open_tree`: a supervision tree started, driven and stopped from asyncio code.

``async with hedgerow.open_tree(spec) as tree:`` starts the tree without
blocking the running loop (the synchronous start runs in a thread of its own,
and cancelling the awaiting task cancels it), and stops it on the way out.
`AsyncioTree` is `Tree` with coroutines: every call that waits (``wait``,
``stop``, ``update_tree``, the supervisors' dynamic-children API) suspends
only the awaiting task, its answer handed back with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
from functools import partial
from typing import TYPE_CHECKING, Any, Self, TypeVar, overload

from pykka.messages import ProxyCall

from hedgerow._exceptions import ChildNotFound
from hedgerow.actors._ask import ask_within
from hedgerow.actors._async_future import _VALUE, AsyncioFuture
from hedgerow.actors._ref import narrow
from hedgerow.supervision._loop_supervisor import call_at_once
from hedgerow.supervision._supervisor import Supervisor
from hedgerow.supervision._tree import DEFAULT_CALL_TIMEOUT, SupervisorHandle, Tree, check_spec
from hedgerow.supervision._update import check_update, update_tree_unless_cancelled

if TYPE_CHECKING:
    import random
    from collections.abc import Awaitable, Generator
    from types import TracebackType

    import pykka

    from hedgerow._clock import Clock
    from hedgerow._events import EventStream
    from hedgerow.actors._reason import Reason
    from hedgerow.actors._ref import ChildRef
    from hedgerow.supervision._plan import UpdatePlan
    from hedgerow.supervision._spec import ChildSpec, SupervisorSpec
    from hedgerow.supervision._supervisor import ChildCounts, ChildInfo

__all__ = ["AsyncioSupervisorHandle", "AsyncioTree", "open_tree"]

A = TypeVar("A", bound="pykka.Actor")

logger = logging.getLogger("hedgerow.supervision")


class AsyncioSupervisorHandle:
    """A supervisor's dynamic-children API, awaited from asyncio code.

    The coroutines of `SupervisorHandle`: each is an ask to the supervisor's
    actor, bounded by `timeout` (`pykka.Timeout`, also a `TimeoutError`), and
    raises what the supervisor raises (`ChildNotFound`, `AlreadyStarted`,
    ...). The running loop goes on while the supervisor answers.
    """

    def __init__(self, ref: pykka.ActorRef[Any], timeout: float = DEFAULT_CALL_TIMEOUT) -> None:
        self.ref = ref
        self.timeout = timeout

    def _call(self, name: str, *args: Any) -> Awaitable[Any]:
        # The ask's coroutine itself, awaited by the caller: one layer less per call.
        call = ProxyCall((name,), args, {})  # (attr_path, args, kwargs): positional is faster
        at_once = call_at_once(self.ref, call, self.timeout, name)  # a loop supervisor, idle
        if at_once is not None:
            return at_once
        return ask_within(self.ref, call, self.timeout, name)

    async def start_child(self, spec_or_arg: Any = None, *extra_args: Any) -> ChildRef[Any]:
        answer: Any = self._call("start_child", spec_or_arg, *extra_args)
        if answer.__class__ is AsyncioFuture and answer._hr_state == _VALUE:
            return answer._hr_value  # type: ignore[no-any-return]  # answered at once
        return await answer  # type: ignore[no-any-return]

    async def stop_child(self, child: str | ChildRef[Any]) -> None:
        await self._call("stop_child", child)

    async def restart_child(self, child_id: str) -> ChildRef[Any]:
        return await self._call("restart_child", child_id)  # type: ignore[no-any-return]

    async def delete_child(self, child_id: str) -> None:
        await self._call("delete_child", child_id)

    async def replace_child(self, spec: ChildSpec) -> ChildRef[Any]:
        return await self._call("replace_child", spec)  # type: ignore[no-any-return]

    async def adopt_spec(self, spec: SupervisorSpec) -> None:
        """Take `spec`, which differs only in the order or the nested children of its
        children (an update's last step; see `SupervisorHandle.adopt_spec`)."""
        await self._call("adopt_spec", spec)

    async def reserve_children(self, specs: list[ChildSpec]) -> None:
        """Name children before they start (an update's first step)."""
        await self._call("reserve_children", specs)

    async def release_children(self, child_ids: list[str]) -> None:
        """Forget names reserved and never claimed (an update undone)."""
        await self._call("release_children", child_ids)

    async def which_children(self) -> list[ChildInfo]:
        return await self._call("which_children")  # type: ignore[no-any-return]

    async def count_children(self) -> ChildCounts:
        return await self._call("count_children")  # type: ignore[no-any-return]

    @overload
    async def get_child(self, child_id: str) -> ChildRef[Any]: ...

    @overload
    async def get_child(self, child_id: str, actor_class: type[A]) -> ChildRef[A]: ...

    async def get_child(self, child_id: str, actor_class: type[A] | None = None) -> ChildRef[Any]:
        """The stable ref of a child, by id; typed as `actor_class`'s if given."""
        return narrow(await self._call("get_child", child_id), actor_class)

    async def describe(self) -> list[dict[str, Any]]:
        """Every child, recursively, as plain data (`SupervisorHandle.describe`)."""
        handle = SupervisorHandle(self.ref, self.timeout)
        rows: list[dict[str, Any]] = await _in_thread(handle.describe, "describe")
        return rows

    async def supervisor(self, child_id: str) -> AsyncioSupervisorHandle:
        """The handle of a nested supervisor child."""
        ref = await self.get_child(child_id)
        if not issubclass(ref.actor_class, Supervisor):
            raise ChildNotFound(f"{child_id} (not a supervisor)")
        return AsyncioSupervisorHandle(ref, self.timeout)


class AsyncioTree(AsyncioSupervisorHandle):
    """A running supervision tree, driven from asyncio code (see `open_tree`).

    What `Tree` offers, with coroutines wherever `Tree` blocks: ``await
    wait()``, ``await stop()``, ``await update_tree(spec)`` (`hedgerow.update_tree`)
    and the root supervisor's dynamic-children API. `lookup`, `request_stop`,
    `spec`, `events`, `done`, `reason` and `gave_up` do not wait and are
    plain. `sync` is the underlying `Tree`, for code in other threads.
    """

    def __init__(self, tree: Tree) -> None:
        super().__init__(tree.ref, tree.timeout)
        self.sync = tree
        """The `Tree` itself: its blocking calls are for other threads, not this loop's."""
        self.name = tree.name
        self.events = tree.events
        self.clock = tree.clock
        self.names = tree.names
        self.hooks = tree.hooks
        self._outcome: AsyncioFuture[Reason] = AsyncioFuture()
        tree._when_done(self._outcome.set)
        self._updating: AsyncioFuture[UpdatePlan | None] | None = None
        """The last update begun, until it ends (updates run one at a time)."""

    def __repr__(self) -> str:
        state = "done" if self.done else "running"
        return f"<hedgerow.AsyncioTree {self.name!r} {state}>"

    @overload
    def lookup(self, path: str) -> ChildRef[Any]: ...

    @overload
    def lookup(self, path: str, actor_class: type[A]) -> ChildRef[A]: ...

    def lookup(self, path: str, actor_class: type[A] | None = None) -> ChildRef[Any]:
        """The stable ref of the child at `path` (``root/pipeline/parser``); see `Tree.lookup`."""
        return narrow(self.sync.lookup(path), actor_class)

    @property
    def spec(self) -> SupervisorSpec:
        """The spec the tree runs: its start's, or the last update's."""
        return self.sync.spec

    @property
    def done(self) -> bool:
        return self.sync.done

    @property
    def reason(self) -> Reason | None:
        """The root's exit reason, once the tree has ended."""
        return self.sync.reason

    @property
    def gave_up(self) -> bool:
        """True if the tree ended because its root failed (e.g. intensity exceeded)."""
        return self.sync.gave_up

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop the tree's event-loop actors run on; None: hedgerow's own."""
        return self.sync.hooks.loop

    async def wait(self) -> Reason:
        """Until the tree ends: its root's exit reason (see `Tree.wait`).

        Only the awaiting task waits; bound it with ``asyncio.timeout``.
        Cancelling it leaves the tree running.
        """
        return await self._outcome

    def request_stop(self) -> None:
        """Begin shutting the tree down (children stop in reverse order); don't wait."""
        self.sync.request_stop()

    async def update_tree(self, spec: SupervisorSpec) -> UpdatePlan:
        """Give the tree the spec `spec`, changing only what changed; the plan applied.

        `hedgerow.update_tree`, awaited: the same steps, plan and refusals
        (`UpdateFailed` naming the child at fault, with nothing running
        harmed), run in a thread of its own while the loop goes on. Updates
        run one at a time, in the order awaited: one waits for the one before
        to end, and starts from its spec. One that would stop or restart the
        child whose handler awaits it, itself or through a task it waits for
        (``asyncio.wait_for``, ``gather``, a ``TaskGroup``...), is refused
        (`UpdateFailed`), since that child's stop would wait for it.

        Cancelling the awaiting task (or a timeout around it) before the
        update has begun (while it waits for another, awaited or blocking,
        from any thread) cancels it: it never runs. Once begun it cannot be
        interrupted, as the blocking one cannot: it runs to its end (and is
        undone if a step fails) while the task stops waiting; the next update
        waits for that end. What it raised then is logged (a warning of the
        ``hedgerow.supervision`` logger), as nobody awaits it.
        """
        check_update(self.sync, spec)
        caller = (threading.get_ident(), asyncio.current_task())  # a child's handler?
        done: AsyncioFuture[UpdatePlan | None] = AsyncioFuture()  # awaitable from any loop
        # In line now, before any await: the next update waits for this one.
        previous, self._updating = self._updating, done
        if previous is not None and not previous.done():
            try:
                with contextlib.suppress(Exception):  # (its own awaiter is told)
                    await previous
            except asyncio.CancelledError:  # this update never begins; the next
                previous.add_done_callback(lambda _previous: done.set(None))  # waits on
                raise
        tree = self.sync
        # Its thread may still wait on the tree's update lock (for an update of
        # another thread's): it begins only if the await was not cancelled first.
        wanted = threading.Lock()
        state = {"cancelled": False, "begun": False}

        def begin() -> bool:
            with wanted:
                state["begun"] = not state["cancelled"]
                return state["begun"]

        def update() -> None:
            try:
                plan = update_tree_unless_cancelled(tree, spec, begin, caller)
            except BaseException:  # noqa: BLE001 - handed to the awaiting task
                done.set_exception(sys.exc_info())
            else:
                done.set(plan)

        threading.Thread(target=update, name=f"hedgerow update {tree.name}", daemon=True).start()
        try:
            plan = await done
        except asyncio.CancelledError:
            with wanted:
                state["cancelled"] = True
                begun = state["begun"]
            if begun:
                done.add_done_callback(partial(_log_unawaited, tree.name))
            raise
        assert plan is not None
        return plan

    async def stop(self) -> Reason:
        """Shut the tree down (children stop in reverse order) and await its end.

        Cancelling the awaiting task does not cancel the stop: the tree goes
        on stopping.
        """
        self.request_stop()
        return await self.wait()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


class _Opening:
    """What `open_tree` returns: awaitable (the tree) and an async context manager."""

    def __init__(self, spec: SupervisorSpec, options: dict[str, Any]) -> None:
        self._spec = spec
        self._options = options
        self._tree: AsyncioTree | None = None

    def __await__(self) -> Generator[Any, None, AsyncioTree]:
        return _open(self._spec, self._options).__await__()

    async def __aenter__(self) -> AsyncioTree:
        if self._tree is not None:
            msg = "open_tree(...) is entered once; call open_tree again for another tree"
            raise RuntimeError(msg)
        self._tree = await _open(self._spec, self._options)
        return self._tree

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._tree is not None
        await self._tree.stop()


def open_tree(
    spec: SupervisorSpec,
    *,
    name: str | None = None,
    clock: Clock | None = None,
    events: EventStream | None = None,
    random: random.Random | None = None,
    use_running_loop: bool = False,
) -> _Opening:
    """Start `spec` as the root of a new tree, from asyncio code.

    ``async with open_tree(spec) as tree:`` starts the tree, gives its
    `AsyncioTree`, and stops it (awaiting its end) when the block is left;
    ``tree = await open_tree(spec)`` starts it and leaves the stop to you.
    The options are `start_tree`'s. The start runs in a thread of its own,
    so the loop goes on meanwhile; it raises `StartError` as `start_tree`
    does. Cancelling the awaiting task cancels the start (`start_tree`'s
    ``cancel``): the children already started are stopped, in reverse
    order, before the `CancelledError` goes on.

    The tree's event-loop actors run on hedgerow's own loop thread unless
    `use_running_loop` is True: then they run on the loop of the caller
    (the application's), which must go on running until the tree has
    stopped. A tree opened with ``await open_tree`` and never stopped is
    stopped when that loop's ``asyncio.run`` ends (it cancels the remaining
    tasks, and a task of the tree's stops it then).
    """
    check_spec(spec)
    loop = asyncio.get_running_loop() if use_running_loop else None
    options = {"name": name, "clock": clock, "events": events, "random": random, "loop": loop}
    return _Opening(spec, options)


async def _open(spec: SupervisorSpec, options: dict[str, Any]) -> AsyncioTree:
    loop = asyncio.get_running_loop()
    cancel = threading.Event()
    started: asyncio.Future[Tree] = loop.create_future()

    def start() -> None:
        try:
            tree = Tree(spec, cancel=cancel, **options)
        except BaseException as error:  # noqa: BLE001 - handed to the awaiting task
            _settle(loop, started, None, error)
        else:
            if not _settle(loop, started, tree, None):
                tree.stop()  # nobody will have it: the loop is closed

    name = options["name"] or spec.name or "root"
    threading.Thread(target=start, name=f"hedgerow start {name}", daemon=True).start()
    try:
        tree = await asyncio.shield(started)
    except asyncio.CancelledError:
        cancel.set()
        await _uncancellable(started)
        raise
    handle = AsyncioTree(tree)
    _guard(loop, handle)
    return handle


async def _uncancellable(started: asyncio.Future[Tree]) -> None:
    """Await the start's end through further cancellations (the start stops what it
    started, bounded by the children's shutdowns); a tree it made all the same is
    stopped."""
    while not started.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait([started])  # raises neither the start's error nor cancels it
    if not started.cancelled() and started.exception() is None:
        tree = started.result()
        handle = AsyncioTree(tree)
        handle.request_stop()
        while not handle.done:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(handle.wait())


def _guard(loop: asyncio.AbstractEventLoop, tree: AsyncioTree) -> None:
    """A task that stops `tree` when it is cancelled (``asyncio.run`` ending with
    the tree still running) and ends with the tree."""

    async def guard() -> None:
        try:
            await tree.wait()
        except asyncio.CancelledError:
            tree.request_stop()
            with contextlib.suppress(asyncio.CancelledError):
                await tree.wait()

    task = loop.create_task(guard(), name=f"hedgerow tree {tree.name}")
    _guards.add(task)
    task.add_done_callback(_guards.discard)


_guards: set[asyncio.Task[None]] = set()
"""The guard tasks (asyncio keeps only weak references to tasks)."""


def _log_unawaited(name: str, done: AsyncioFuture[Any]) -> None:
    """An update no longer awaited has ended (in its thread): log what it raised, if anything."""
    try:
        done.get(timeout=0)
    except Exception as error:  # noqa: BLE001 - logged: nobody awaits it
        logger.warning("The update of tree %r, no longer awaited, failed: %s", name, error)


def _settle(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    value: Any,
    error: BaseException | None,
) -> bool:
    """Hand a thread's outcome to `future` on its loop; False if the loop is closed."""

    def settle() -> None:
        if future.done():
            return
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)

    try:
        loop.call_soon_threadsafe(settle)
    except RuntimeError:
        return False
    return True


async def _in_thread(call: Any, what: str) -> Any:
    """``call()`` in a thread of its own, awaited: a cancelled await stops waiting,
    and the call runs to its end."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()

    def run() -> None:
        try:
            value = call()
        except BaseException as error:  # noqa: BLE001 - handed to the awaiting task
            _settle(loop, done, None, error)
        else:
            _settle(loop, done, value, None)

    threading.Thread(target=run, name=f"hedgerow {what}", daemon=True).start()
    return await asyncio.shield(done)
