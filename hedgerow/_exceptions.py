"""Exceptions raised by hedgerow.

The hierarchy::

    HedgerowError
    ├── SpecError (also ValueError)       a child or supervisor spec breaks a rule
    ├── ConfigError (also ValueError)     a tree file cannot be used; names file and keys
    ├── StartError                        a child failed to start; ``cause`` says why
    ├── StartCancelled                    a tree's start was cancelled (a stop meanwhile)
    ├── UpdateFailed                      a running tree could not take a new spec
    ├── ChildError                        a dynamic-children call cannot be done
    │   ├── ChildNotFound
    │   ├── AlreadyStarted                ``ref`` is the running child
    │   ├── AlreadyPresent                the spec exists, the child is not running
    │   ├── ChildRunning                  stop it before deleting or restarting it
    │   ├── ChildRestarting               a restart is already scheduled
    │   └── NotAllowedForSimpleOneForOne
    ├── SupervisorGaveUp                  exit reason of a supervisor that gave up
    │   ├── IntensityExceeded
    │   └── RetriesExhausted
    ├── LinkedExit                        exit reason of an actor killed by a link
    ├── WorkerExited                      a worker process exited: its status or signal
    └── RemoteError                       an exception raised in a worker process

    DeadLetterError (pykka.ActorDeadError)  an asked message was never handled
    └── InboxFull                         a bounded inbox had no room for the message
    Shutdown (BaseException-free Exception) raise it to stop with a normal reason
"""

from __future__ import annotations

import reprlib
import signal
from typing import Any, NamedTuple

import pykka

__all__ = [
    "AlreadyPresent",
    "AlreadyStarted",
    "ChildError",
    "ChildNotFound",
    "ChildRestarting",
    "ChildRunning",
    "ConfigError",
    "ConfigProblem",
    "DeadLetterError",
    "HedgerowError",
    "InboxFull",
    "IntensityExceeded",
    "LinkedExit",
    "NotAllowedForSimpleOneForOne",
    "RemoteError",
    "RetriesExhausted",
    "Shutdown",
    "SpecError",
    "StartCancelled",
    "StartError",
    "SupervisorGaveUp",
    "UpdateFailed",
    "WorkerExited",
]


class HedgerowError(Exception):
    """Base class of hedgerow's own errors."""


class SpecError(HedgerowError, ValueError):
    """A spec breaks a rule; names the child, the field and the bad value."""

    def __init__(self, child_id: str | None, field: str, value: Any, rule: str) -> None:
        self.child_id = child_id
        self.field = field
        self.value = value
        self.rule = rule
        where = f"child {child_id!r}: " if child_id is not None else ""
        super().__init__(f"{where}{field}={value!r}: {rule}")


class ConfigProblem(NamedTuple):
    """One thing wrong in a tree file: where (a key path such as
    ``supervisor.children[2].restart``, empty for the whole file), the value
    found there, and the rule it breaks."""

    key: str
    value: Any
    rule: str
    line: int | None = None

    def describe(self) -> str:
        """One line: the value quoted short (`echo`), the rule cut to a few hundred characters."""
        where = f"line {self.line}: " if self.line is not None else ""
        rule = _cut(" ".join(self.rule.split()), _MAX_RULE)
        if not self.key:
            return f"{where}{rule}"
        key = _cut(self.key if self.key.isprintable() else _escaped(self.key), _MAX_RULE)
        if self.value is _UNQUOTED:
            return f"{where}{key}: {rule}"
        return f"{where}{key} = {echo(self.value)}: {rule}"


_MAX_ECHO = 200
"""The most characters of a value an error message quotes."""
_MAX_RULE = 400

_echo = reprlib.Repr()
_echo.maxlevel = 3
_echo.maxstring = _MAX_ECHO
_echo.maxother = _MAX_ECHO
_echo.maxlong = 60
_echo.maxdict = _echo.maxlist = _echo.maxtuple = _echo.maxset = 8


def echo(value: Any) -> str:
    """`value`'s repr for an error message: on one line and at most about 200 characters,
    whatever its size, depth or length (a huge int is cut, not converted in full)."""
    try:
        text = _echo.repr(value)
    except Exception:  # noqa: BLE001 - a value whose repr fails is still reported
        text = f"<{type(value).__name__}>"
    return _cut(text, _MAX_ECHO)


def _escaped(text: str) -> str:
    """`text` with what does not print (newlines, control characters) escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Missing:
    def __repr__(self) -> str:
        return "missing"


_MISSING: Any = _Missing()
"""The value of a required key that is not in the file."""

_UNQUOTED: Any = _Missing()
"""The value of a problem that quotes none (too deep, too long to quote)."""


class ConfigError(HedgerowError, ValueError):
    """A tree file cannot be used: names the file and, per problem, the key path,
    the value and what is allowed. Nothing was started."""

    def __init__(self, file: str, problems: list[ConfigProblem]) -> None:
        self.file = file
        self.problems = problems
        if len(problems) == 1:
            text = f"{file}: {problems[0].describe()}"
        else:
            lines = "".join(f"\n  {p.describe()}" for p in problems)
            text = f"{file}: {len(problems)} problems:{lines}"
        super().__init__(text)


class StartError(HedgerowError):
    """A child failed to start; the supervisor stopped what it had started."""

    def __init__(self, child_id: str, cause: BaseException | str) -> None:
        self.child_id = child_id
        self.cause = cause
        super().__init__(f"child {child_id!r} failed to start: {cause!r}")


class StartCancelled(HedgerowError):
    """A tree's start was cancelled before it finished (``start_tree(cancel=...)``,
    or SIGTERM while ``hedgerow run`` starts the tree): the children that had
    started were stopped in reverse order, and the one still starting was
    stopped, or abandoned after its shutdown."""

    def __init__(self, tree: str) -> None:
        self.tree = tree
        super().__init__(f"the start of tree {tree!r} was cancelled")


class UpdateFailed(HedgerowError):
    """A running tree could not take a new spec (`hedgerow.update_tree`, a reload).

    ``cause`` is what failed (often a `StartError`); ``rolled_back`` is true
    when what the update had done was undone, so that the tree runs its
    previous spec again; ``problems`` says what could not be undone.
    """

    def __init__(
        self,
        message: str,
        cause: BaseException | None = None,
        *,
        rolled_back: bool = True,
        problems: tuple[str, ...] = (),
    ) -> None:
        self.cause = cause
        self.rolled_back = rolled_back
        self.problems = problems
        super().__init__(message)


class ChildError(HedgerowError):
    """A dynamic-children call could not be done (OTP's ``{error, ...}``)."""

    def __init__(self, child_id: Any, message: str) -> None:
        self.child_id = child_id
        super().__init__(f"child {child_id!r}: {message}")


class ChildNotFound(ChildError):
    """No child with that id (or ref) under this supervisor."""

    def __init__(self, child_id: Any) -> None:
        super().__init__(child_id, "not found")


class AlreadyStarted(ChildError):
    """``start_child`` with the id of a running child; ``ref`` is that child."""

    def __init__(self, child_id: Any, ref: Any) -> None:
        self.ref = ref
        super().__init__(child_id, "already started")


class AlreadyPresent(ChildError):
    """``start_child`` with the id of a stopped child whose spec is kept."""

    def __init__(self, child_id: Any) -> None:
        super().__init__(child_id, "already present (stopped); restart or delete it")


class ChildRunning(ChildError):
    """The child is running: stop it first."""

    def __init__(self, child_id: Any) -> None:
        super().__init__(child_id, "is running; stop it first")


class ChildRestarting(ChildError):
    """The child is waiting for a scheduled restart."""

    def __init__(self, child_id: Any) -> None:
        super().__init__(child_id, "is restarting")


class NotAllowedForSimpleOneForOne(ChildError):
    """The call is not allowed on a simple_one_for_one supervisor."""

    def __init__(self, child_id: Any, call: str) -> None:
        super().__init__(child_id, f"{call} is not allowed on simple_one_for_one")


class SupervisorGaveUp(HedgerowError):
    """Exit reason of a supervisor that could not keep its children running."""

    def __init__(self, supervisor: str, child_id: Any, detail: str) -> None:
        self.supervisor = supervisor
        self.child_id = child_id
        super().__init__(f"supervisor {supervisor!r} gave up: {detail}")


class IntensityExceeded(SupervisorGaveUp):
    """More than ``max_restarts`` restarts within ``period`` seconds."""

    def __init__(self, supervisor: str, child_id: Any, max_restarts: int, period: float) -> None:
        self.max_restarts = max_restarts
        self.period = period
        detail = (
            f"child {child_id!r} needed restart number {max_restarts + 1} "
            f"within {period:g} s (max_restarts={max_restarts}, period={period:g})"
        )
        super().__init__(supervisor, child_id, detail)


class RetriesExhausted(SupervisorGaveUp):
    """A child failed more than its ``max_retries`` times in a row."""

    def __init__(self, supervisor: str, child_id: Any, max_retries: int) -> None:
        self.max_retries = max_retries
        detail = f"child {child_id!r} failed after max_retries={max_retries} retries"
        super().__init__(supervisor, child_id, detail)


class LinkedExit(HedgerowError):
    """Exit reason of an actor that died because a linked actor failed."""

    def __init__(self, peer: str, reason: Any) -> None:
        self.peer = peer
        self.reason = reason
        super().__init__(f"linked actor {peer} exited: {reason!r}")


class WorkerExited(HedgerowError):
    """A worker process exited: the exit reason of its `WorkerActor`.

    `status` is its exit status, or None if a signal killed it; `signal` is
    then that signal's name (``SIGKILL``). `detail` says what the worker
    reported, or what the node did (a worker not ready in time is killed).
    """

    def __init__(self, worker: str, pid: int, returncode: int, detail: str | None = None) -> None:
        self.worker = worker
        self.pid = pid
        self.returncode = returncode
        self.detail = detail
        self.status: int | None = returncode if returncode >= 0 else None
        self.signal: str | None = None
        if returncode < 0:
            try:
                self.signal = signal.Signals(-returncode).name
            except ValueError:
                self.signal = f"signal {-returncode}"
            how = f"killed by {self.signal}"
        else:
            how = f"exited with status {returncode}"
        text = f"worker {worker} (pid {pid}) {how}"
        super().__init__(f"{text}: {detail}" if detail else text)


class RemoteError(HedgerowError):
    """An exception raised in a worker process, as the node sees it.

    Exceptions do not cross processes: the worker sends the class name
    (`remote_type`) and the message; the traceback text travels in the event.
    """

    def __init__(self, remote_type: str, message: str) -> None:
        self.remote_type = remote_type
        self.message = message
        super().__init__(f"{remote_type}: {message}" if message else remote_type)


class DeadLetterError(pykka.ActorDeadError):
    """An asked message that no incarnation will handle; ``reason`` says why."""

    uri = "hedgerow.error.actor_dead"

    def __init__(self, target: str, reason: Any) -> None:
        self.target = target
        self.reason = reason
        super().__init__(f"{target} will not handle the message: {reason}")


class InboxFull(DeadLetterError):
    """A bounded inbox (``max_inbox``) had no room: the message is a dead letter.

    The reason of its dead-letter event; an asker gets it as its answer, and
    under ``inbox_overflow="fail"`` a teller gets it raised by ``tell``.
    """

    uri = "hedgerow.error.inbox_full"

    def __init__(self, target: str, max_inbox: int, overflow: str, detail: str = "") -> None:
        self.max_inbox = max_inbox
        self.overflow = overflow
        text = f"inbox full ({max_inbox} messages, {overflow})"
        super().__init__(target, f"{text}: {detail}" if detail else text)

    def __reduce__(self) -> tuple[Any, ...]:
        detail = self.reason.partition("): ")[2]
        return (type(self), (self.target, self.max_inbox, self.overflow, detail))


class Shutdown(Exception):
    """Raise in a handler to stop the actor with a user reason that counts as normal.

    As OTP's ``{shutdown, Term}``: a ``restart="failed"`` child stopped this
    way is not restarted, and the supervisor logs no failure.
    """

    def __init__(self, term: Any = None) -> None:
        self.term = term
        super().__init__(term)
