"""`hedgerow check`: validate tree files (and principals files)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from hedgerow._exceptions import ConfigError
from hedgerow.cli._main import EXIT_BAD_INPUT, _Exit, cli
from hedgerow.cli._view import spec_tree
from hedgerow.node._treeload import load_tree
from hedgerow.transports._authorization import Policy, load_principals


@cli.command(epilog="Example: hedgerow check examples/*/tree.*")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--quiet", "-q", is_flag=True, help="Print only errors.")
def check(files: tuple[str, ...], quiet: bool) -> None:
    """Validate tree FILES and import every class they name, starting nothing.

    A router's principals file (``[principals.<authid>]`` tables) is checked
    as `hedgerow router --principals` reads it.

    Prints each tree and exits 0 if all are good; otherwise prints every
    problem (file, key path, value and what is allowed) and exits 2.
    """
    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    bad = 0
    for file in files:
        if _is_principals_file(file):
            bad += not _check_principals(file, out, err, quiet)
            continue
        try:
            spec = load_tree(file)
        except ConfigError as exc:
            bad += 1
            err.print(Text.assemble(("error", "red"), f" {exc}"), soft_wrap=True)
            continue
        if not quiet:
            out.print(Text.assemble(("ok", "green"), f" {file}"))
            out.print(spec_tree(spec))
    if bad:
        raise _Exit(EXIT_BAD_INPUT)


def _is_principals_file(file: str) -> bool:
    """Whether FILE is a router's principals file (``[principals.<authid>]``, no supervisor)."""
    path = Path(file)
    if path.suffix.lower() not in (".toml", ".json"):
        return False
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return False  # load_tree says what is wrong with it
    return isinstance(data, dict) and "principals" in data and "supervisor" not in data


def _check_principals(file: str, out: Console, err: Console, quiet: bool) -> bool:
    """Validate a principals file as `hedgerow router --principals` would; True if good."""
    try:
        principals = load_principals(file)
        Policy.of(principals)
    except ValueError as exc:
        message = str(exc) if str(exc).startswith(file) else f"{file}: {exc}"
        err.print(f"[red]error[/red] {escape(message)}", markup=True, soft_wrap=True)
        return False
    if not quiet:
        names = ", ".join(p.authid for p in principals)
        out.print(f"[green]ok[/green] {escape(file)} (principals: {escape(names)})", markup=True)
    return True
