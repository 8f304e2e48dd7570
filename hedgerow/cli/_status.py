"""`hedgerow status`: ask a running node for its tree over the management API.

The node (``hedgerow run`` of a tree file with a ``[management]`` table)
serves ``hedgerow.node.<node>.get_tree``; each of its worker processes
serves its container's API under ``hedgerow.node.<node>.worker.<worker>``.
The command joins the router as a management client, calls them, and prints
the tree (or JSON with ``--json``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.text import Text
from rich.tree import Tree as RichTree

from hedgerow._exceptions import echo
from hedgerow._seconds import Seconds
from hedgerow.cli._status_answer import (
    MalformedAnswer,
    TreeAnswer,
    check_component,
    check_ids,
    check_tree,
)
from hedgerow.supervision._management import node_prefix, worker_prefix
from hedgerow.transports._base import Call, Leave, resolve_transports

__all__ = ["status"]

DEFAULT_URL = "ws://127.0.0.1:8080/ws"
SECRET_ENV = "HEDGEROW_MANAGEMENT_SECRET"  # noqa: S105 - a variable name, not a secret

EXIT_OK = 0
EXIT_UNREACHABLE = 1
EXIT_BAD_INPUT = 2


class _Peer:
    """The status client serves nothing: deliveries are ignored."""

    def deliver(self, message: Any) -> None:
        pass


def _secret(secret_env: str, secret_file: str | None) -> str | None:
    if secret_file is not None:
        try:
            return Path(secret_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            msg = f"--secret-file {secret_file}: {exc}"
            raise click.BadParameter(msg) from None
    return os.environ.get(secret_env)


@click.command(
    epilog=(
        "Example: HEDGEROW_MANAGEMENT_SECRET=s3cret hedgerow status "
        "--router ws://127.0.0.1:8080/ws --node shop"
    )
)
@click.option(
    "--router",
    "url",
    envvar="HEDGEROW_ROUTER_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="The router's URL (also $HEDGEROW_ROUTER_URL).",
)
@click.option("--realm", default="realm1", show_default=True, help="The management realm.")
@click.option("--node", default="root", show_default=True, help="The node's name (its tree's).")
@click.option("--authid", default="management", show_default=True, help="Who to join as.")
@click.option(
    "--secret-env",
    default=SECRET_ENV,
    show_default=True,
    help="The environment variable holding the management secret.",
)
@click.option("--secret-file", type=click.Path(dir_okay=False), help="Read the secret from here.")
@click.option(
    "--auth",
    "method",
    type=click.Choice(["ticket", "wampcra"]),
    default="ticket",
    show_default=True,
    help=(
        "How to prove the secret: a ticket sends it to the router, WAMP-CRA proves it "
        "without sending it (a router started with --auth wampcra takes only this)."
    ),
)
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@click.option(
    "--timeout",
    type=Seconds(),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for the router, and for each answer of the node.",
)
def status(  # noqa: PLR0917 - one option each
    url: str,
    realm: str,
    node: str,
    authid: str,
    secret_env: str,
    secret_file: str | None,
    method: str,
    as_json: bool,
    timeout: float,
) -> None:
    """Show a running node's tree: states, restarts, worker pids, hosted components.

    Exits 0 with the tree, 1 when the node cannot be reached (no router, no
    such node, or not allowed), 2 for bad options.
    """
    secret = _secret(secret_env, secret_file)
    field = "ticket" if method == "ticket" else "secret"
    authentication = {method: {"authid": authid, field: secret}} if secret else {}
    try:
        [config] = resolve_transports(url)
    except ValueError as exc:
        click.echo(f"error: --router {url}: {exc}", err=True)
        raise click.exceptions.Exit(EXIT_BAD_INPUT) from None
    try:
        link = config.transport.join(
            realm, _Peer(), serializers=config.serializers, authentication=authentication
        ).result(timeout)
    except TimeoutError:
        click.echo(f"error: cannot join {realm!r} at {url}: {_timed_out(timeout)}", err=True)
        raise click.exceptions.Exit(EXIT_UNREACHABLE) from None
    except Exception as exc:  # noqa: BLE001 - any failure to join is reported the same way
        click.echo(f"error: cannot join {realm!r} at {url}: {exc}", err=True)
        raise click.exceptions.Exit(EXIT_UNREACHABLE) from None
    try:
        tree, answer = _ask(link, node, timeout)
    except TimeoutError:
        message = f"error: node {node!r} did not answer within {timeout:g} s (--timeout)"
        click.echo(message, err=True)
        raise click.exceptions.Exit(EXIT_UNREACHABLE) from None
    except MalformedAnswer as exc:
        click.echo(f"error: node {node!r} sent a malformed tree: {exc}", err=True)
        raise click.exceptions.Exit(EXIT_UNREACHABLE) from None
    except Exception as exc:  # noqa: BLE001
        click.echo(f"error: node {node!r} did not answer: {exc}", err=True)
        raise click.exceptions.Exit(EXIT_UNREACHABLE) from None
    finally:
        if link.is_open:
            link.handle(Leave())
    if as_json:
        click.echo(json.dumps(answer, indent=2))
    else:
        Console(highlight=False).print(_render(tree, answer))


def _timed_out(timeout: float) -> str:
    return f"no answer within {timeout:g} s (--timeout)"


def _call(link: Any, uri: str, timeout: float, *args: Any) -> Any:
    result = link.handle(Call(uri, list(args), {})).result(timeout)
    return result.args[0] if result.args else None


def _ask(link: Any, node: str, timeout: float) -> tuple[TreeAnswer, dict[str, Any]]:
    """The node's tree, checked, with each worker's components filled in when it answers
    (as plain data, for --json)."""
    answer = _call(link, f"{node_prefix(node)}.get_tree", timeout)
    tree = check_tree(answer)
    for row in _rows(answer.get("children", [])):
        info = row.get("info") or {}
        if "pid" not in info or "guid" not in info:
            continue
        prefix = worker_prefix(node, row["id"])
        try:
            ids = check_ids(_call(link, f"{prefix}.get_components", timeout))
            components = [_call(link, f"{prefix}.get_component", timeout, i) for i in ids]
            for component in components:
                check_component(component)
            row["components"] = components
        except TimeoutError:
            row["components_error"] = _timed_out(timeout)
        except MalformedAnswer as exc:
            row["components_error"] = f"malformed answer: {exc}"
        except Exception as exc:  # noqa: BLE001 - a worker without management still shows
            row["components_error"] = str(exc)
    return tree, answer


def _rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for row in rows:
        found.append(row)
        found.extend(_rows(row.get("children", [])))
    return found


def _render(tree: TreeAnswer, answer: dict[str, Any]) -> RichTree:
    """The tree as rich renders it: every text from the answer is plain text."""
    title = Text.assemble((tree.name, "bold"), f" pid {tree.pid} up {tree.uptime:.0f}s")
    shown = RichTree(title)
    _add(shown, answer.get("children", []))
    return shown


def _inbox(label: Text, inbox: Any) -> None:
    """Append `` inbox=3/100 dropped=5`` (an unbounded one: ``inbox=3``; an empty
    unbounded one, or what is not an inbox's statistics: nothing)."""
    if not isinstance(inbox, dict):
        return
    depth, bound, dropped = inbox.get("depth"), inbox.get("max_inbox"), inbox.get("dropped")
    if type(depth) is not int or (not depth and not dropped and bound is None):
        return
    label.append(f" inbox={depth}" + (f"/{bound}" if type(bound) is int else ""))
    if type(dropped) is int and dropped:
        label.append(f" dropped={dropped}", style="yellow")


_STATE_STYLE = {"running": "green", "restarting": "yellow", "stopped": "dim"}


def _add(parent: RichTree, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        state = row["state"]
        label = Text.assemble(row["id"], " ", (state, _STATE_STYLE.get(state, "")))
        if row.get("restarts"):
            label.append(f" restarts={row['restarts']}")
        info = row.get("info") or {}
        for key in ("pid", "port"):
            if key in info:
                label.append(f" {key}={echo(info[key]).strip(chr(39))}")
        _inbox(label, row.get("inbox"))
        branch = parent.add(label)
        _add(branch, row.get("children", []))
        for component in row.get("components", []):
            extra = f" restarts={component['restarts']}" if component.get("restarts") else ""
            branch.add(Text(f"{component['id']} {component['state']}{extra}"))
        if "components_error" in row:
            branch.add(Text(f"components: {row['components_error']}", style="red"))
