# mypy: disable-error-code="no-untyped-call"
"""How a component's actor joins its realm, the first time and again after a lost
session (autobahn's Component rules: see `hedgerow.components._component`): the peer
the transport delivers to, the actor's own messages, the retry plan, and
`Joining`, the mixin of `ComponentActor` that runs them on the actor's thread
and clock."""

from __future__ import annotations

import logging
import threading
import weakref
from typing import TYPE_CHECKING, Any

from autobahn.wamp.exception import TransportLost
from pykka import messages as pykka_messages
from pykka._envelope import Envelope

from hedgerow.actors._messages import _Control, _Internal
from hedgerow.components._component_inline import RunnerPeer
from hedgerow.supervision._backoff import Backoff
from hedgerow.transports._base import (
    CLOSE_NORMAL,
    Closed,
    Leave,
    Link,
    Transport,
    TransportConfig,
    join_error_is_permanent,
)

if TYPE_CHECKING:
    import concurrent.futures
    from collections.abc import Callable

    from hedgerow._clock import Clock, TimerHandle
    from hedgerow.components._component_runner import HandlerRunner
    from hedgerow.components._component_seams import Handlers
    from hedgerow.transports._session import ComponentSession

__all__ = [
    "DEFAULT_JOIN_TIMEOUT",
    "JoinCancelled",
    "Joining",
    "Peer",
    "Reconnect",
    "Rejoined",
    "RunMain",
    "first_join_backoff",
    "join_timeout",
    "leave_if_joined",
    "leave_request",
    "live_links",
    "live_links_lock",
]

logger = logging.getLogger("hedgerow.components")

DEFAULT_JOIN_TIMEOUT = 10.0
"""Seconds to wait for a transport to join (autobahn's default endpoint timeout)."""


class JoinCancelled(Exception):
    """A first join given up from outside (`run` on Ctrl-C): the start fails."""


class Peer:
    """Where the transport delivers: straight into the actor's inbox (any thread)."""

    __slots__ = ("inbox",)

    def __init__(self, inbox: Any) -> None:
        self.inbox = inbox

    def deliver(self, message: Any) -> None:
        self.inbox.put(Envelope(message))


class RunMain(_Internal):
    """Run the component's ``main`` (queued by ``on_start``)."""

    __slots__ = ()


class Reconnect(_Internal):
    """Time for the next attempt to join again through transport `index`."""

    __slots__ = ("index", "token")

    def __init__(self, index: int, token: int) -> None:
        self.index = index
        self.token = token


class Rejoined(_Internal):
    """An attempt to join again finished (with a link, or an error)."""

    __slots__ = ("future", "index", "token")

    def __init__(self, index: int, token: int, future: concurrent.futures.Future[Link]) -> None:
        self.index = index
        self.token = token
        self.future = future


live_links: weakref.WeakKeyDictionary[Any, Link] = weakref.WeakKeyDictionary()
live_links_lock = threading.Lock()


def leave_if_joined(future: concurrent.futures.Future[Link]) -> None:
    """A join that finished after its incarnation gave up on it: leave at once."""
    if future.cancelled() or future.exception() is not None:
        return
    link = future.result()
    if link.is_open:
        link.handle(leave_request())


def first_join_backoff(transport: Transport) -> Backoff:
    """The attempts of a first join through `transport`: one, and as many retries as
    its retry policy allows (autobahn counts ``max_retries`` after the first attempt)."""

    policy = transport.retry
    if policy is None:
        return Backoff(max_retries=1)
    return Backoff(
        initial_retry_delay=policy.initial_retry_delay,
        max_retry_delay=policy.max_retry_delay,
        retry_delay_growth=policy.retry_delay_growth,
        retry_delay_jitter=policy.retry_delay_jitter,
        max_retries=-1 if policy.max_retries == -1 else policy.max_retries + 1,
    )


def join_timeout(config: TransportConfig) -> float:
    """How long a start waits for a transport to join (twice its own connect timeout)."""
    timeout = getattr(config.transport, "timeout", None)
    return 2 * float(timeout) + 1.0 if timeout is not None else DEFAULT_JOIN_TIMEOUT


def leave_request() -> Any:
    return Leave(CLOSE_NORMAL, "incarnation exited")


class _WakeOnPut:
    """Stands in as a thread component's inbox's reader while it waits to join
    again: the inbox calls its ``_hr_wake()`` after each put, ending the wait."""

    __slots__ = ("_hr_wake",)

    def __init__(self, wake: Callable[[], Any]) -> None:
        self._hr_wake = wake


class Joining:
    """`ComponentActor`'s joins: the first one (in ``on_start``) and reconnects."""

    component: Handlers
    session: ComponentSession | None
    actor_inbox: Any
    _runner: HandlerRunner | None
    _index: int
    _backoffs: dict[int, Backoff]
    _given_up: set[int]
    _reconnecting: bool
    _token: int
    _pending_join: concurrent.futures.Future[Link] | None
    _next: int
    _join_cancelled: bool
    _join_wake: threading.Event | None

    if TYPE_CHECKING:  # the actor's, as ComponentActor has them

        @property
        def actor_clock(self) -> Clock: ...

        def actor_send_after(self, delay: float, message: Any) -> TimerHandle: ...

        def post(self, message: Any) -> None: ...

        def _fire(self, event: str, *args: Any) -> None: ...

        def _adopt(self, link: Link, index: int) -> None: ...

    # -- the first join --------------------------------------------------------------

    def _join(self) -> tuple[Link, int]:
        """The first join, as autobahn's Component starts: through each transport in
        turn, each first attempt at once; a transport with a retry policy is tried
        again after its growing delays (on the tree's clock) until it joins,
        `is_fatal` says its error is for good, or its `max_retries` retries are
        spent; one without (the in-process router) is tried once. Raises the last
        error when no transport may try again: the start fails."""
        transports = self.component.transports
        tries: list[Backoff | None] = [first_join_backoff(c.transport) for c in transports]
        error: BaseException | None = None
        index = 0
        while True:
            chosen = next(
                (
                    i
                    for i in ((index + step) % len(tries) for step in range(len(tries)))
                    if (backoff := tries[i]) is not None and backoff.can_retry()
                ),
                None,
            )
            if chosen is None:
                assert error is not None
                raise error
            backoff = tries[chosen]
            assert backoff is not None
            config = transports[chosen]
            delay = backoff.next_delay()
            if delay > 0:
                logger.info(
                    "%s: next attempt to join through %s in %.2f s",
                    self,
                    config.transport.describe(),
                    delay,
                )
                self._wait_to_retry(delay)
            try:
                link = self._attempt_first_join(config)
            except JoinCancelled:
                raise
            except Exception as exc:  # noqa: BLE001 - tried again, or raised when none may
                self._join_failed(config, exc)
                error = exc
                if self._is_fatal(exc):
                    tries[chosen] = None
                index = chosen + 1
                continue
            return link, chosen

    def _wait_to_retry(self, delay: float) -> None:
        """Wait out a first join's retry delay on the tree's clock. A stop (or an
        exit signal) that arrives meanwhile ends the wait: the start gives up
        (`JoinCancelled`) and the stop goes on at once."""
        clock = self.actor_clock
        deadline = clock.now() + delay
        inbox = self.actor_inbox
        reader = None
        try:
            while True:
                wake = self._join_waker()
                reader = inbox.loop_reader = _WakeOnPut(wake.set)  # (a thread reader's is None)
                if self._stop_queued():
                    msg = f"{self}: stopped while it waited to join again"
                    raise JoinCancelled(msg)
                remaining = deadline - clock.now()
                if remaining <= 0:
                    return
                clock.wait(wake, remaining)
        finally:
            if inbox.loop_reader is reader:  # (a later incarnation may read the inbox by now)
                inbox.loop_reader = None

    def _stop_queued(self) -> bool:
        """A stop or an exit signal waits in the inbox."""
        with self.actor_inbox.mutex:
            return any(
                envelope.message.__class__ is _Control
                or isinstance(envelope.message, pykka_messages._ActorStop)
                for envelope in self.actor_inbox.queue
            )

    def _join_waker(self) -> threading.Event:
        """A fresh event that `_cancel_first_join` sets; raises if it already ran."""
        wake = self._join_wake = threading.Event()
        if self._join_cancelled:
            msg = f"{self}: its start was cancelled while it waited to join"
            raise JoinCancelled(msg)
        return wake

    def _attempt_first_join(self, config: TransportConfig) -> Link:
        """One join attempt, waited for up to its timeout, or until cancelled."""
        wake = self._join_waker()
        future = self._join_through(config)
        future.add_done_callback(lambda _: wake.set())
        timeout = config.settings.get("timeout", join_timeout(config))
        wake.wait(timeout)
        if self._join_cancelled:
            future.add_done_callback(leave_if_joined)
            self._join_waker()  # raises
        if not future.done():
            future.add_done_callback(leave_if_joined)
            where = config.transport.describe()
            msg = f"no answer to joining {self.component.realm!r} through {where} in {timeout} s"
            raise TimeoutError(msg)
        return future.result()

    def _cancel_first_join(self) -> None:
        """(Any thread.) End the first join: its start fails with `JoinCancelled`."""
        self._join_cancelled = True
        wake = self._join_wake
        if wake is not None:
            wake.set()

    def _is_fatal(self, error: BaseException) -> bool:
        """The component's `is_fatal`, or hedgerow's default (`join_error_is_permanent`)."""
        is_fatal = self.component.is_fatal
        return is_fatal(error) if is_fatal is not None else join_error_is_permanent(error)

    def _join_through(self, config: TransportConfig) -> concurrent.futures.Future[Link]:
        component = self.component
        runner = self._runner
        return config.transport.join(
            component.realm,
            RunnerPeer(runner) if runner is not None else Peer(self.actor_inbox),
            serializers=config.serializers,
            authentication=component.authentication,
        )

    def _join_failed(self, config: TransportConfig, exc: BaseException) -> None:
        component = self.component
        logger.info(
            "%s: joining %r through %s failed: %s",
            self,
            component.realm,
            config.transport.describe(),
            exc,
        )
        self._fire("connectfailure", component, exc)

    # -- a lost session -----------------------------------------------------------------

    def _lost(self, closed: Closed) -> None:
        """The router closed the session: reconnect, or fail with `TransportLost`."""
        session = self.session
        assert session is not None
        where = session.transport.describe() if session.transport else "the router"
        if session.transport is not None and session.transport.retry is not None:
            logger.warning(
                "%s: session %s on realm %r was lost (%s, through %s): reconnecting",
                self,
                closed.session,
                session.realm,
                closed.reason,
                where,
            )
            self._reconnecting = True
            self._schedule_attempt(first=self._index)
            return
        msg = (
            f"{self}: session {closed.session} on realm {session.realm!r} was closed "
            f"by {where}: {closed.reason}"
        )
        raise TransportLost(msg)

    # -- reconnecting (autobahn's Component rules, on this actor's clock) -------------

    def _backoff(self, index: int) -> Backoff | None:
        """The retry state of transport `index` (None: it does not reconnect)."""
        policy = self.component.transports[index].transport.retry
        if policy is None:
            return None
        found = self._backoffs.get(index)
        if found is None:
            found = self._backoffs[index] = Backoff(
                initial_retry_delay=policy.initial_retry_delay,
                max_retry_delay=policy.max_retry_delay,
                retry_delay_growth=policy.retry_delay_growth,
                retry_delay_jitter=policy.retry_delay_jitter,
                max_retries=policy.max_retries,
            )
        return found

    def _schedule_attempt(self, first: int) -> None:
        """Plan the next attempt, on the next transport (from `first`) that may retry.

        Raises `TransportLost` when none may: the component fails, and its
        supervisor decides what happens next.
        """
        transports = self.component.transports
        for step in range(len(transports)):
            index = (first + step) % len(transports)
            backoff = self._backoff(index)
            if backoff is None or index in self._given_up or not backoff.can_retry():
                continue
            delay = backoff.next_delay()
            self._token += 1
            message = Reconnect(index, self._token)
            self._next = (index + 1) % len(transports)
            if delay <= 0:
                self.post(message)
            else:
                logger.info(
                    "%s: next attempt through %s in %.2f s",
                    self,
                    transports[index].transport.describe(),
                    delay,
                )
                self.actor_send_after(delay, message)
            return
        self._reconnecting = False
        msg = (
            f"{self}: exhausted all transport connect attempts to realm "
            f"{self.component.realm!r} (max_retries, or is_fatal)"
        )
        raise TransportLost(msg)

    def _attempt(self, message: Reconnect) -> None:
        if not self._reconnecting or message.token != self._token:
            return
        config = self.component.transports[message.index]
        future = self._join_through(config)
        self._pending_join = future
        index, token = message.index, message.token
        future.add_done_callback(lambda done: self.post(Rejoined(index, token, done)))

    def _rejoined(self, message: Rejoined) -> None:
        future = message.future
        if future is not self._pending_join:
            leave_if_joined(future)
            return
        self._pending_join = None
        config = self.component.transports[message.index]
        error = future.exception()
        if error is not None:
            self._join_failed(config, error)
            if self._is_fatal(error):
                self._given_up.add(message.index)
            self._schedule_attempt(first=self._next)
            return
        backoff = self._backoff(message.index)
        if backoff is not None:
            backoff.reset()
        self._reconnecting = False
        logger.info(
            "%s: joined %r again through %s",
            self,
            self.component.realm,
            config.transport.describe(),
        )
        self._adopt(future.result(), message.index)
