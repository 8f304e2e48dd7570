"""The chaos engine's fault schedule: what to inject, where and when, from a seed.

The schedule depends only on the seed, the options and the tree file's
children (never on how the run goes), so the same seed and file give the same
schedule. A simple_one_for_one supervisor's template names no running child:
its children are started later, as ``<template id>-1``, ``-2``... So the
schedule names them by a pattern (``root/pool/conn-*``), and a fault planned
there hits one of the children the pattern matches when it is due (picked
with a generator seeded by the seed), or is skipped if there are none.
"""

from __future__ import annotations

import enum
import fnmatch
import math
import random
from dataclasses import dataclass

from hedgerow.supervision._spec import Strategy, SupervisorSpec
from hedgerow.testing._faults import FaultError

__all__ = [
    "DYNAMIC",
    "ChaosKind",
    "ChaosOptions",
    "PlannedFault",
    "child_paths",
    "plan_faults",
    "resolve_path",
]


class ChaosKind(enum.Enum):
    """The faults a chaos run draws from."""

    CRASH = "crash"
    """Crash the child now."""
    CRASH_MESSAGE = "crash_message"
    """Crash it at one of its next five messages."""
    FLAKY = "flaky"
    """Crash it with `flaky_probability` per message, for `window` seconds."""
    FAIL_START = "fail_start"
    """Make its next start fail."""
    HANG = "hang"
    """Hang it for `hang_time` seconds."""
    SLOW = "slow"
    """Delay each of its messages by `slow_delay`, for `window` seconds."""
    EXIT = "exit"
    """Stop it normally."""
    SHUTDOWN = "shutdown"
    """Stop it with a `hedgerow.Shutdown` reason."""


@dataclass(frozen=True)
class ChaosOptions:
    """How a chaos run goes; times are seconds of the tree's clock."""

    seed: int = 0
    duration: float = 30.0
    rate: float = 0.5
    """Faults per second, on average (their arrivals are a Poisson process)."""
    kinds: tuple[ChaosKind, ...] = tuple(ChaosKind)
    targets: tuple[str, ...] = ()
    """Globs of the child paths to hit (``root/pipeline/*``); empty: every child."""
    hang_time: float = 1.0
    slow_delay: float = 0.1
    window: float = 2.0
    flaky_probability: float = 0.3
    real_time: bool = False
    """Run on the real clock instead of a virtual one (the run then takes `duration`)."""

    def check(self) -> None:
        """Raise ValueError naming the first option out of range."""
        for name in ("duration", "rate"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                msg = f"{name}={value!r}: expected a number > 0"
                raise ValueError(msg)
        for name in ("hang_time", "slow_delay", "window"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                msg = f"{name}={value!r}: expected a number >= 0"
                raise ValueError(msg)
        if not 0 <= self.flaky_probability <= 1:
            msg = f"flaky_probability={self.flaky_probability!r}: expected a number within [0, 1]"
            raise ValueError(msg)
        if not self.kinds:
            msg = "kinds: expected at least one fault kind"
            raise ValueError(msg)


@dataclass(frozen=True)
class PlannedFault:
    """One fault of the schedule: when (from the start), what, where.

    `path` is a child's path, or the pattern of a simple_one_for_one
    supervisor's dynamic children (``root/pool/conn-*``; see `DYNAMIC`).
    """

    time: float
    kind: ChaosKind
    path: str
    at_message: int = 1


DYNAMIC = "-*"
"""The suffix of a path pattern that stands for a simple_one_for_one supervisor's
dynamic children: ``<supervisor path>/<template id>-*``."""


def child_paths(spec: SupervisorSpec, prefix: str) -> list[str]:
    """The paths a chaos run can hit, in start order: each static child, and for a
    simple_one_for_one supervisor the pattern of its dynamic children (never the
    template's own path, which no child has)."""
    paths: list[str] = []
    dynamic = spec.strategy is Strategy.SIMPLE_ONE_FOR_ONE
    for child in spec.children:
        path = f"{prefix}/{child.id}{DYNAMIC if dynamic else ''}"
        paths.append(path)
        if isinstance(child.start, SupervisorSpec):
            paths.extend(child_paths(child.start, path))
    return paths


def _is_pattern(path: str) -> bool:
    return f"{DYNAMIC}/" in f"{path}/"


def _same_depth(a: str, b: str) -> bool:
    return a.count("/") == b.count("/")


def _targeted(path: str, targets: tuple[str, ...]) -> bool:
    """True if a target glob matches `path`; for a pattern, also if a target names
    one of the children it stands for (``root/pool/conn-2``)."""
    for target in targets:
        if fnmatch.fnmatchcase(path, target):
            return True
        if _is_pattern(path) and _same_depth(path, target) and fnmatch.fnmatchcase(target, path):
            return True
    return False


def resolve_path(
    path: str, running: list[str], targets: tuple[str, ...], rng: random.Random
) -> str:
    """The child a planned fault hits: `path` itself, or for a pattern one of the
    `running` paths it matches (and the targets, if any), picked by `rng`.

    Raises `FaultError` if a pattern matches no child now.
    """
    if not _is_pattern(path):
        return path
    matching = [
        p
        for p in running
        if _same_depth(p, path)
        and fnmatch.fnmatchcase(p, path)
        and (not targets or any(fnmatch.fnmatchcase(p, t) for t in targets))
    ]
    if not matching:
        msg = f"{path}: no dynamic child is running to take the fault"
        raise FaultError(msg)
    return rng.choice(sorted(matching))


def plan_faults(spec: SupervisorSpec, options: ChaosOptions, name: str) -> list[PlannedFault]:
    """The fault schedule for `spec`: a function of the seed, the options and the
    spec's children only (see `child_paths`). ValueError if no child matches the
    targets."""
    options.check()
    paths = child_paths(spec, name)
    if options.targets:
        paths = [p for p in paths if _targeted(p, options.targets)]
    if not paths:
        targets = ", ".join(options.targets) or "(all)"
        msg = f"targets {targets}: no child of the tree matches"
        raise ValueError(msg)
    rng = random.Random(options.seed)  # noqa: S311 - a reproducible schedule, not a secret
    kinds = list(options.kinds)
    schedule: list[PlannedFault] = []
    when = 0.0
    while True:
        when += rng.expovariate(options.rate)
        if when >= options.duration:
            return schedule
        kind = rng.choice(kinds)
        path = rng.choice(paths)
        schedule.append(PlannedFault(round(when, 6), kind, path, rng.randint(1, 5)))
