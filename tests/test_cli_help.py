"""Every option of every `hedgerow` command says what it is for in --help."""

from __future__ import annotations

import click

from hedgerow.cli import cli


def options(command: click.Command, path: str = "hedgerow"):
    for param in command.params:
        if isinstance(param, click.Option):
            yield path, param
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from options(sub, f"{path} {name}")


def test_every_option_has_help():
    missing = [
        f"{path} {param.opts[0]}"
        for path, param in options(cli)
        if not param.help and param.opts[0] not in ("--help", "-h")
    ]
    assert not missing
