"""The `hedgerow` command: check, run and chaos-test trees from tree files; run the router.

Exit status, for every subcommand: 0 when all went well (the tree stopped
normally), 1 when the tree failed (its root gave up, or a child would not
start), 2 for bad input (a bad file or option). Library code never configures
logging; the commands here do (and `hedgerow.run`, as autobahn's `run` does).
"""

from __future__ import annotations

import logging
from typing import Any

import click

from hedgerow._extras import MissingExtra
from hedgerow._version import __version__

logger = logging.getLogger("hedgerow.cli")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
"""A second Ctrl-C cut the graceful shutdown short (128 + SIGINT, the shell's convention)."""

LOG_LEVELS = ["debug", "info", "warning", "error", "critical"]
TICK = 0.25
"""Seconds between refreshes of the live view, and between checks of --for."""


class _CutShort(BaseException):
    """The second Ctrl-C: unwind (restoring the terminal), then leave at once.

    Not an `Exception`, so that it passes through the bus's ``publish`` (which
    gathers the Exceptions of its listeners) as KeyboardInterrupt does."""


class _Exit(click.exceptions.Exit):
    """Leave the command with a status, after a message on stderr."""


def _fail(message: str, status: int) -> _Exit:
    click.echo(message, err=True)
    return _Exit(status)


class _Group(click.Group):
    """The command group: a missing optional extra is an install hint and exit 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MissingExtra as exc:
            raise _fail(f"error: {exc}", EXIT_BAD_INPUT) from None


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Example: hedgerow run examples/flaky_worker/tree.toml",
)
@click.version_option(__version__, "--version", prog_name="hedgerow")
def cli() -> None:
    """Run Erlang-style supervision trees of Python actors, described in tree files.

    A tree file (TOML, YAML or JSON) names supervisors, their strategies and
    children; `hedgerow check` validates one, `hedgerow run` runs one.
    """


_as_program = False
"""True in `main`: the process is the `hedgerow` command, not a program that calls it."""


def main(argv: list[str] | None = None) -> None:
    """The console-script entry point (also ``python -m hedgerow``)."""
    global _as_program  # noqa: PLW0603 - set once, by the entry point
    _as_program = True
    cli.main(args=argv, prog_name="hedgerow")
