"""``hedgerow router``: write a Crossbar.io node config from options and run crossbar.

A click command object; ``hedgerow/cli/__init__.py`` registers it. It needs the
``router`` extra (crossbar); without it, it exits with an install hint.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hedgerow._extras import MissingExtra
from hedgerow.transports._authorization import load_principals
from hedgerow.transports._crossbar import Crossbar
from hedgerow.transports._crossbar_config import node_config
from hedgerow.transports._node_directory import NodeDirectory, sweep
from hedgerow.transports._router_config import (
    AUTH_METHODS,
    SECRET_ENV,
    CrossbarError,
    RouterConfig,
)

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["router"]

STOP_TIMEOUT = 10.0
NODE_PREFIX = "hedgerow-router-"
MANAGEMENT_SECRET_ENV = "HEDGEROW_MANAGEMENT_SECRET"  # noqa: S105 - a variable's name


@click.command("router", epilog="Example: hedgerow router --realm realm1 --ws-port 9000")
@click.option(
    "--realm",
    "realms",
    multiple=True,
    default=("realm1",),
    show_default=True,
    help="A realm to serve (repeat for several).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--ws-port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="WebSocket port (0: a free one).",
)
@click.option("--no-websocket", is_flag=True, help="No WebSocket transport.")
@click.option(
    "--rs-port",
    type=click.IntRange(0, 65535),
    default=8081,
    show_default=True,
    help="RawSocket port (0: a free one).",
)
@click.option("--no-rawsocket", is_flag=True, help="No RawSocket transport on TCP.")
@click.option(
    "--unix", "unix_path", type=click.Path(dir_okay=False), help="Also RawSocket on this socket."
)
@click.option(
    "--auth",
    "auth",
    multiple=True,
    type=click.Choice(AUTH_METHODS),
    help="Authentication method (repeat for several). Default: ticket and wampcra.",
)
@click.option("--authid", default="hedgerow", show_default=True, help="The principal's authid.")
@click.option("--role", default="hedgerow", show_default=True, help="The principal's role.")
@click.option(
    "--secret-env",
    default=SECRET_ENV,
    show_default=True,
    help="Environment variable holding the shared secret.",
)
@click.option(
    "--secret-file",
    type=click.Path(exists=True, dir_okay=False),
    help="File holding the shared secret (when the variable is not set).",
)
@click.option(
    "--anonymous",
    is_flag=True,
    help="Also let clients in without credentials (role 'anonymous'). Never the default.",
)
@click.option(
    "--management-secret-env",
    default=MANAGEMENT_SECRET_ENV,
    show_default=True,
    help=(
        "Environment variable holding the management secret: when it is set, the principal "
        "'management' (role 'management') may use hedgerow's management API, and no one else."
    ),
)
@click.option(
    "--principals",
    "principals_file",
    type=click.Path(exists=True, dir_okay=False),
    help=(
        "TOML or JSON file of principals with secrets and URI prefixes of their own "
        "([principals.<authid>] with prefixes, secret_env or secret_file)."
    ),
)
@click.option(
    "--allow-origin",
    "allowed_origins",
    multiple=True,
    help=(
        "Let web pages from this origin (a pattern, e.g. 'https://*.example.com') open the "
        "WebSocket transport in a browser; repeat for several. Default: none."
    ),
)
@click.option(
    "--tls-key",
    type=click.Path(exists=True, dir_okay=False),
    help="Private key (PEM) for TLS on the TCP transports (with --tls-certificate).",
)
@click.option(
    "--tls-certificate",
    type=click.Path(exists=True, dir_okay=False),
    help="Server certificate (PEM) for TLS on the TCP transports (with --tls-key).",
)
@click.option(
    "--cbdir",
    type=click.Path(file_okay=False),
    help="Crossbar node directory (default: a temporary one, removed on exit).",
)
@click.option(
    "--loglevel",
    type=click.Choice(["none", "error", "warn", "info", "debug", "trace"]),
    default="info",
    show_default=True,
    help="Crossbar's log level.",
)
@click.option("--print-config", is_flag=True, help="Print the node configuration (JSON) and exit.")
@click.option(
    "--crossbar", "executable", help="The crossbar executable (default: beside Python, or PATH)."
)
def router(**options: Any) -> None:
    """Run a Crossbar.io router for hedgerow components, in the foreground.

    WebSocket on ws://HOST:8080/ws and RawSocket on rs://HOST:8081 by default,
    on 127.0.0.1. Components authenticate as AUTHID with the shared secret,
    by ticket or WAMP-CRA:

    \b
        export HEDGEROW_ROUTER_SECRET=...
        hedgerow router --realm realm1
        # components: authentication={"ticket": {"authid": "hedgerow",
        #                                        "ticket": <the secret>}}

    With --tls-key and --tls-certificate the TCP transports listen with TLS
    (wss://HOST:8080/ws and rss://HOST:8081); components trust the certificate
    with endpoint={"type": "tcp", ..., "tls": {"trust_root": "ca.pem"}}.

    With --principals FILE, each node or component can have a principal of
    its own: only it may register or publish under its URI prefixes.

    \b
        [principals.adder]
        prefixes = ["com.example.adder"]
        secret_env = "ADDER_SECRET"

    Only the management principal (with $HEDGEROW_MANAGEMENT_SECRET set) may
    use anything under hedgerow. (management calls and announcements).
    Secrets are passed to crossbar in its environment, never written to the
    config file. Ctrl-C stops the router; if this process dies, crossbar
    stops too.
    """
    config = _config(options)
    if options["print_config"]:
        click.echo(json.dumps(node_config(config), indent=2))
        return
    try:
        config.secrets()
    except CrossbarError as exc:
        raise click.UsageError(str(exc)) from None
    cbdir = options["cbdir"]
    temporary = None
    if cbdir is None:
        sweep(NODE_PREFIX)  # what routers killed with their guards left
        temporary = NodeDirectory(NODE_PREFIX)
        directory = temporary.path
    else:
        directory = Path(cbdir)
    try:
        code = _run(config, directory, options, () if temporary is None else (temporary.fd,))
    finally:
        if temporary is not None:
            temporary.remove()
    if code != 0:
        raise click.exceptions.Exit(code)


def _config(options: dict[str, Any]) -> RouterConfig:
    try:
        principals = (
            load_principals(options["principals_file"]) if options["principals_file"] else ()
        )
        config = RouterConfig(
            realms=options["realms"],
            host=options["host"],
            websocket_port=None if options["no_websocket"] else options["ws_port"],
            rawsocket_port=None if options["no_rawsocket"] else options["rs_port"],
            rawsocket_path=options["unix_path"],
            auth=options["auth"] or AUTH_METHODS,
            authid=options["authid"],
            role=options["role"],
            secret_env=options["secret_env"],
            secret_file=options["secret_file"],
            anonymous=options["anonymous"],
            tls_key=options["tls_key"],
            tls_certificate=options["tls_certificate"],
            management_secret_env=(
                options["management_secret_env"]
                if os.environ.get(options["management_secret_env"])
                else None
            ),
            principals=principals,
            allowed_origins=options["allowed_origins"],
        ).resolved()
    except (ValueError, CrossbarError) as exc:
        raise click.UsageError(str(exc)) from exc
    return config


def _run(
    config: RouterConfig, directory: Path, options: dict[str, Any], lock: tuple[int, ...]
) -> int:
    """Run crossbar under its guard, which inherits the node directory's `lock`."""
    node = Crossbar(config, cbdir=directory, executable=options["executable"])
    try:
        command = node.command(remove_cbdir=options["cbdir"] is None)
        node.write_config()
        env = node.environment()
    except CrossbarError as exc:
        if isinstance(exc, MissingExtra):  # no router extra: its install hint, exit 2
            click.echo(f"Error: {exc}", err=True)
            raise click.exceptions.Exit(2) from exc
        raise click.ClickException(str(exc)) from exc
    command[command.index("--loglevel") + 1] = options["loglevel"]
    for line in _banner(config):
        click.echo(line, err=True)
    try:
        # Crossbar runs under its guard, in a process group of their own: the
        # guard stops crossbar when our end of its stdin closes (even if we
        # are SIGKILLed). Ctrl-C and SIGTERM to us are passed on.
        process = subprocess.Popen(  # noqa: S603 - our own command line
            command, env=env, stdin=subprocess.PIPE, start_new_session=True, pass_fds=lock
        )
    except OSError as exc:
        msg = f"cannot run {command[0]}: {exc}"
        raise click.ClickException(msg) from exc
    try:
        return _supervise(process)
    finally:
        # What is left of the group (crossbar's workers, if crossbar crashed).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        assert process.stdin is not None
        process.stdin.close()


def _supervise(process: subprocess.Popen[bytes]) -> int:
    """Wait for crossbar's guard; our exit status (see `_wait`)."""
    stopping: list[bool] = []
    timers: list[threading.Timer] = []

    def stop(*_: Any) -> None:
        """SIGTERM to the guard (which passes it on), SIGCONT in case someone stopped it,
        and SIGKILL if it is still there after the guard's own stop timeout."""
        stopping.append(True)
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
            process.send_signal(signal.SIGCONT)
        if not timers:
            timer = threading.Timer(2 * STOP_TIMEOUT, _kill, (process,))
            timer.daemon = True
            timers.append(timer)
            timer.start()

    try:
        if threading.current_thread() is not threading.main_thread():
            return _wait(process, stop, stopping)
        previous = signal.signal(signal.SIGTERM, stop)
        try:
            return _wait(process, stop, stopping)
        finally:
            signal.signal(signal.SIGTERM, previous)
    finally:
        for timer in timers:
            timer.cancel()


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.kill()


def _wait(process: subprocess.Popen[bytes], stop: Callable[..., None], stopping: list[bool]) -> int:
    """0 when we stopped crossbar (Ctrl-C or SIGTERM); else 1 if crossbar or its guard
    ended with a failure (said on stderr), or 0."""
    try:
        code = process.wait()
    except KeyboardInterrupt:
        stop()
        try:
            process.wait(STOP_TIMEOUT)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            _kill(process)
            process.wait()
        return 0
    if stopping or code == 0:
        return 0
    click.echo(f"Error: {_ended(process.pid, code)}", err=True)
    return 1


def _ended(guard: int, code: int) -> str:
    """How crossbar ended, from its guard's status (128 + N: killed by signal N)."""
    if code < 0:
        name = _signal_name(-code) or f"signal {-code}"
        return f"crossbar's guard (pid {guard}) was killed by {name}; crossbar was stopped with it"
    killed = _signal_name(code - 128) if code > 128 else None  # noqa: PLR2004 - the shell's rule
    if killed is not None:
        return f"crossbar was killed by {killed} (status {code})"
    return f"crossbar exited with status {code}"


def _signal_name(number: int) -> str | None:
    try:
        return signal.Signals(number).name
    except ValueError:
        return None


def _banner(config: RouterConfig) -> list[str]:
    lines = [f"hedgerow router: realms {', '.join(config.realms)}"]
    if config.websocket_url:
        lines.append(f"  WebSocket  {config.websocket_url}")
    if config.rawsocket_url:
        lines.append(f"  RawSocket  {config.rawsocket_url}")
    if config.rawsocket_path:
        lines.append(f"  RawSocket  rs://unix:{config.rawsocket_path}")
    if config.shared:
        lines.append(
            f"  auth       {', '.join(config.auth)} as {config.authid!r} (role {config.role!r}), "
            f"secret from ${config.secret_env}"
            + (f" or {config.secret_file}" if config.secret_file else "")
        )
    lines.extend(
        f"  principal  {principal.authid!r} (role {principal.role!r}), prefixes "
        f"{', '.join(principal.prefixes)}, secret from ${principal.variable}"
        for principal in config.principals
    )
    if config.anonymous:
        lines.append(f"  anonymous  allowed (role {config.anonymous_role!r})")
    if config.management_secret_env is not None:
        lines.append(
            f"  management {config.management_authid!r} (role {config.management_role!r}), "
            f"secret from ${config.management_secret_env}"
        )
    if config.tls:
        lines.append(f"  TLS        key {config.tls_key}, certificate {config.tls_certificate}")
    elif not _loopback(config.host) and (config.websocket_url or config.rawsocket_url):
        lines.append(
            f"  warning    listening on {config.host} without TLS: tickets and every message "
            "cross the network in clear (--tls-key and --tls-certificate)"
        )
    return lines


def _loopback(host: str) -> bool:
    """Whether `host` is reachable from this machine alone."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


if __name__ == "__main__":
    router()
