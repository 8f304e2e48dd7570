"""Crossbar.io control: write a node config, start the router, wait for it, stop it.

`RouterConfig` describes a router as hedgerow needs one: realms, a role with
every permission, a WebSocket and a RawSocket transport on 127.0.0.1 (over
TLS when given a key and certificate), and ticket or WAMP-CRA authentication
with one shared secret (anonymous access only when asked for). `node_config`
turns it into Crossbar's JSON. The secret is never written to disk: the
config names an environment variable (``${HEDGEROW_ROUTER_SECRET}``,
Crossbar's own substitution) that the crossbar process gets in its
environment.

`Crossbar` runs ``crossbar start --cbdir ...`` as a subprocess in its own
process group, reads its output until the node reports that its
configuration ran, and stops it by its process id (SIGTERM, then SIGKILL to
its group after a timeout). Nothing here finds processes by name.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from hedgerow._extras import MissingExtra

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from types import TracebackType

__all__ = [
    "AUTH_METHODS",
    "SECRET_ENV",
    "Crossbar",
    "CrossbarError",
    "RouterConfig",
    "crossbar_executable",
    "free_port",
    "node_config",
]

logger = logging.getLogger("hedgerow.transports")

SECRET_ENV = "HEDGEROW_ROUTER_SECRET"  # noqa: S105 - the variable's name, not a secret
"""The environment variable the router (and components) read the shared secret from."""

AUTH_METHODS = ("ticket", "wampcra")
"""Authentication methods with a shared secret that `RouterConfig` can enable."""

_READY_MARKERS = ("local node configuration ran successfully", "NODE_BOOT_COMPLETE")
_SERIALIZERS = ("msgpack", "cbor", "json")


class CrossbarError(RuntimeError):
    """Crossbar.io could not be found, configured, started or stopped."""


class CrossbarNotInstalled(CrossbarError, MissingExtra):
    """No crossbar executable: the router extra is missing (the message says how to add it)."""

    def __init__(self) -> None:
        MissingExtra.__init__(
            self, "router", "crossbar", alternative=", or put a crossbar executable on PATH"
        )


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def crossbar_executable() -> str:
    """The crossbar executable next to this Python, or on PATH; CrossbarError with
    an install hint if there is none."""
    beside = Path(sys.executable).parent / "crossbar"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("crossbar")
    if found is None:
        raise CrossbarNotInstalled
    return found


@dataclass(frozen=True)
class RouterConfig:
    """A Crossbar.io router for hedgerow components.

    `websocket_port` / `rawsocket_port`: a port, 0 for a free one (chosen by
    `resolved`), or None for no such transport. `rawsocket_path` adds a
    RawSocket transport on a Unix socket. `auth` lists the methods enabled
    for the principal `authid` (ticket, wampcra); the secret comes from the
    environment variable `secret_env` or the file `secret_file`. `anonymous`
    lets clients in without credentials, in role `anonymous_role`.

    `tls_key` and `tls_certificate` (PEM files, given together) put the TCP
    transports behind TLS: Crossbar's ``"tls": {"key": ..., "certificate":
    ...}`` on their endpoints, so clients use ``wss://`` and ``rss://`` URLs
    (Crossbar listens with TLS 1.3 only). The paths are made absolute
    (Crossbar reads relative ones from its node directory). The Unix socket
    transport stays plain.

    `management_secret_env` names the variable holding a second secret, for
    the principal `management_authid` in role `management_role`: the only
    role that may call or register under ``hedgerow.`` (hedgerow's management
    API); other roles may only subscribe there.
    """

    realms: Sequence[str] = ("realm1",)
    host: str = "127.0.0.1"
    websocket_port: int | None = 8080
    websocket_path: str = "ws"
    rawsocket_port: int | None = 8081
    rawsocket_path: str | None = None
    serializers: Sequence[str] = _SERIALIZERS
    auth: Sequence[str] = AUTH_METHODS
    authid: str = "hedgerow"
    role: str = "hedgerow"
    secret_env: str = SECRET_ENV
    secret_file: Path | str | None = None
    anonymous: bool = False
    anonymous_role: str = "anonymous"
    extra_env: Mapping[str, str] = field(default_factory=dict)
    tls_key: Path | str | None = None
    tls_certificate: Path | str | None = None
    management_secret_env: str | None = None
    management_authid: str = "management"
    management_role: str = "management"

    def __post_init__(self) -> None:
        if isinstance(self.realms, str) or not self.realms:
            msg = f"realms={self.realms!r}: expected a non-empty list of realm names"
            raise ValueError(msg)
        object.__setattr__(self, "realms", tuple(self.realms))
        for name, port in (
            ("websocket_port", self.websocket_port),
            ("rawsocket_port", self.rawsocket_port),
        ):
            if port is not None and (
                not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535  # noqa: PLR2004
            ):
                msg = f"{name}={port!r}: expected a port number (0: a free one) or None"
                raise ValueError(msg)
        if self.websocket_port is None and self.rawsocket_port is None and not self.rawsocket_path:
            msg = "the router needs a transport: websocket_port, rawsocket_port or rawsocket_path"
            raise ValueError(msg)
        for serializer in self.serializers:
            if serializer not in _SERIALIZERS:
                expected = ", ".join(_SERIALIZERS)
                msg = f"serializers: invalid serializer {serializer!r} (expected one of {expected})"
                raise ValueError(msg)
        object.__setattr__(self, "serializers", tuple(self.serializers))
        object.__setattr__(self, "auth", tuple(self.auth))
        for method in self.auth:
            if method not in AUTH_METHODS:
                msg = f"auth: invalid method {method!r} (expected one of {', '.join(AUTH_METHODS)})"
                raise ValueError(msg)
        if not self.auth and not self.anonymous:
            msg = "auth=[] and anonymous=False: nobody could join; enable a method or anonymous"
            raise ValueError(msg)
        self._check_tls()

    def _check_tls(self) -> None:
        if (self.tls_key is None) != (self.tls_certificate is None):
            given, missing = (
                ("tls_key", "tls_certificate")
                if self.tls_certificate is None
                else ("tls_certificate", "tls_key")
            )
            msg = f"{given} without {missing}: TLS needs both the private key and the certificate"
            raise ValueError(msg)
        if self.tls and self.websocket_port is None and self.rawsocket_port is None:
            msg = "TLS is for TCP transports: give websocket_port or rawsocket_port"
            raise ValueError(msg)
        for name in ("tls_key", "tls_certificate"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value).absolute())

    # -- derived ---------------------------------------------------------------

    def resolved(self) -> RouterConfig:
        """This config with every port 0 replaced by a free port."""
        changes: dict[str, Any] = {}
        if self.websocket_port == 0:
            changes["websocket_port"] = free_port(self.host)
        if self.rawsocket_port == 0:
            changes["rawsocket_port"] = free_port(self.host)
        return replace(self, **changes) if changes else self

    @property
    def tls(self) -> bool:
        """True when the TCP transports listen with TLS (`tls_key` and `tls_certificate`)."""
        return self.tls_key is not None

    @property
    def websocket_url(self) -> str | None:
        if self.websocket_port is None:
            return None
        scheme = "wss" if self.tls else "ws"
        return f"{scheme}://{self.host}:{self.websocket_port}/{self.websocket_path}"

    @property
    def rawsocket_url(self) -> str | None:
        if self.rawsocket_port is None:
            return None
        scheme = "rss" if self.tls else "rs"
        return f"{scheme}://{self.host}:{self.rawsocket_port}"

    def secret(self) -> str | None:
        """The shared secret: from `secret_env`, else `secret_file`; None if neither is set.

        Raises CrossbarError naming the file if it cannot be read or is empty.
        """
        value = os.environ.get(self.secret_env)
        if value:
            return value
        if self.secret_file is None:
            return None
        path = Path(self.secret_file)
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            msg = f"secret_file={str(path)!r}: cannot read the router secret: {exc}"
            raise CrossbarError(msg) from exc
        if not text:
            msg = f"secret_file={str(path)!r}: the file is empty; it must hold the router secret"
            raise CrossbarError(msg)
        return text

    def authentication(self, method: str | None = None) -> dict[str, Any]:
        """A component's ``authentication`` dict (autobahn's format) for this router."""
        if not self.auth:
            return {}
        method = method or self.auth[0]
        secret = self.secret()
        if secret is None:
            raise CrossbarError(self._no_secret())
        key = "ticket" if method == "ticket" else "secret"
        return {method: {"authid": self.authid, key: secret}}

    def _no_secret(self) -> str:
        return (
            f"the router needs a secret for {', '.join(self.auth)} authentication: set "
            f"${self.secret_env}, give a secret file, or allow anonymous access explicitly"
        )


MANAGEMENT_PREFIX = "hedgerow."
"""Where hedgerow's management procedures live (``hedgerow.node.*``, ``hedgerow.container.*``)."""


def node_config(config: RouterConfig) -> dict[str, Any]:
    """Crossbar's node configuration (version 2) for `config`; secrets stay ``${VAR}``."""
    permissions = [
        {
            "uri": "",
            "match": "prefix",
            "allow": {"call": True, "register": True, "publish": True, "subscribe": True},
            "disclose": {"caller": True, "publisher": True},
            "cache": True,
        }
    ]
    if config.management_secret_env is not None:
        # The longest matching prefix wins: hedgerow's own API is for management only.
        permissions.append(
            {
                "uri": MANAGEMENT_PREFIX,
                "match": "prefix",
                "allow": {"call": False, "register": False, "publish": False, "subscribe": True},
                "disclose": {"caller": True, "publisher": True},
                "cache": True,
            }
        )
    roles = [{"name": config.role, "permissions": permissions}]
    if config.anonymous:
        roles.append({"name": config.anonymous_role, "permissions": permissions})
    if config.management_secret_env is not None:
        roles.append({"name": config.management_role, "permissions": permissions[:1]})
    realms = [{"name": realm, "roles": roles} for realm in config.realms]
    auth = _auth_section(config)
    serializers = list(config.serializers)
    transports: list[dict[str, Any]] = []
    if config.websocket_port is not None:
        transports.append(
            {
                "type": "websocket",
                "endpoint": _tcp_endpoint(config, config.websocket_port),
                "serializers": serializers,
                "auth": auth,
            }
        )
    if config.rawsocket_port is not None:
        transports.append(
            {
                "type": "rawsocket",
                "endpoint": _tcp_endpoint(config, config.rawsocket_port),
                "serializers": serializers,
                "auth": auth,
            }
        )
    if config.rawsocket_path:
        transports.append(
            {
                "type": "rawsocket",
                "endpoint": {"type": "unix", "path": str(config.rawsocket_path)},
                "serializers": serializers,
                "auth": auth,
            }
        )
    return {
        "version": 2,
        "controller": {},
        "workers": [{"type": "router", "realms": realms, "transports": transports}],
    }


def _tcp_endpoint(config: RouterConfig, port: int) -> dict[str, Any]:
    """A listening TCP endpoint on `port`, with Crossbar's ``tls`` section when asked."""
    endpoint: dict[str, Any] = {"type": "tcp", "interface": config.host, "port": port}
    if config.tls:
        endpoint["tls"] = {"key": str(config.tls_key), "certificate": str(config.tls_certificate)}
    return endpoint


def _auth_section(config: RouterConfig) -> dict[str, Any]:
    secret = "${" + config.secret_env + "}"
    principal = {"role": config.role}
    auth: dict[str, Any] = {}
    if "ticket" in config.auth:
        auth["ticket"] = {
            "type": "static",
            "principals": {config.authid: {"ticket": secret, **principal}},
        }
    if "wampcra" in config.auth:
        auth["wampcra"] = {
            "type": "static",
            "users": {config.authid: {"secret": secret, **principal}},
        }
    if config.management_secret_env is not None:
        manager = "${" + config.management_secret_env + "}"
        role = {"role": config.management_role}
        if "ticket" in auth:
            auth["ticket"]["principals"][config.management_authid] = {"ticket": manager, **role}
        if "wampcra" in auth:
            auth["wampcra"]["users"][config.management_authid] = {"secret": manager, **role}
    if config.anonymous:
        auth["anonymous"] = {"type": "static", "role": config.anonymous_role}
    return auth


class Crossbar:
    """One Crossbar.io node running `config`, as a subprocess of this process.

    `start` writes ``config.json`` into `cbdir` (a fresh temporary directory
    by default), starts crossbar and returns once the node reports its
    configuration ran; `stop` ends it by process id. `start` may be called
    again after `stop` or `kill`: the same ports are used. Usable as a
    context manager.
    """

    def __init__(
        self,
        config: RouterConfig | None = None,
        *,
        cbdir: Path | str | None = None,
        executable: str | None = None,
        loglevel: str = "info",
    ) -> None:
        self.config = (config or RouterConfig(websocket_port=0, rawsocket_port=0)).resolved()
        self._own_dir = cbdir is None
        self.cbdir = (
            Path(cbdir) if cbdir is not None else Path(tempfile.mkdtemp(prefix="crossbar-"))
        )
        self.executable = executable
        if loglevel not in ("info", "debug", "trace"):
            # Readiness is read from crossbar's info lines.
            msg = f"loglevel={loglevel!r}: expected info, debug or trace (readiness is logged)"
            raise ValueError(msg)
        self.loglevel = loglevel
        self.process: subprocess.Popen[str] | None = None
        self._output: collections.deque[str] = collections.deque(maxlen=200)
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"<Crossbar {self.config.websocket_url or self.config.rawsocket_url} {state}>"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def output(self) -> list[str]:
        """The last lines crossbar printed (at most 200)."""
        return list(self._output)

    def write_config(self) -> Path:
        """Write ``config.json`` into the node directory; its path."""
        self.cbdir.mkdir(parents=True, exist_ok=True)
        path = self.cbdir / "config.json"
        path.write_text(json.dumps(node_config(self.config), indent=2), encoding="utf-8")
        return path

    def environment(self) -> dict[str, str]:
        """The crossbar process's environment: ours, plus the secret and `extra_env`."""
        env = dict(os.environ)
        env.update(self.config.extra_env)
        if self.config.auth:
            secret = self.config.secret()
            if secret is None:
                raise CrossbarError(self.config._no_secret())
            env[self.config.secret_env] = secret
        name = self.config.management_secret_env
        if name is not None and not env.get(name):
            msg = f"the management principal needs its secret: set ${name}"
            raise CrossbarError(msg)
        return env

    def command(self) -> list[str]:
        executable = self.executable or crossbar_executable()
        return [
            executable,
            "start",
            "--cbdir",
            str(self.cbdir),
            "--loglevel",
            self.loglevel,
            "--color",
            "false",
        ]

    def start(self, timeout: float = 60.0) -> None:
        """Start the node; return once it is ready. CrossbarError (with its last
        output) if it exits first or is not ready within `timeout` seconds."""
        if self.running:
            msg = f"{self!r} is already running"
            raise CrossbarError(msg)
        self.write_config()
        env = self.environment()
        self._ready.clear()
        self._output.clear()
        self.process = subprocess.Popen(  # noqa: S603 - our own command line, no shell
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            env=env,
            start_new_session=True,  # its own process group: stopped as one, by id
        )
        self._reader = threading.Thread(
            target=self._read,
            args=(self.process,),
            name=f"crossbar-{self.process.pid}-output",
            daemon=True,
        )
        self._reader.start()
        if not self.wait_ready(timeout):
            self.stop()
            msg = f"crossbar (pid {self.pid}) was not ready within {timeout} s:\n{self._tail()}"
            raise CrossbarError(msg)
        if not self.running:
            msg = f"crossbar exited with status {self.process.returncode}:\n{self._tail()}"
            raise CrossbarError(msg)
        logger.info("crossbar started: pid %s, %s", self.pid, self.config.websocket_url)

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until the node is ready or has exited; True if it is ready."""
        return self._ready.wait(timeout) and self.running

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self._output.append(line.rstrip("\n"))
            if not self._ready.is_set() and any(m in line for m in _READY_MARKERS):
                self._ready.set()
        process.stdout.close()
        self._ready.set()  # exited: nobody waits for a node that is gone

    def _tail(self, lines: int = 30) -> str:
        return "\n".join(list(self._output)[-lines:])

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the node, wait up to `timeout` s, then SIGKILL its process group.

        Returns its exit status (None if it never started)."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning(
                    "crossbar (pid %s) ignored SIGTERM for %s s: killing it", process.pid, timeout
                )
        self._kill_group(process)
        return process.wait()

    def kill(self) -> int:
        """SIGKILL the node's process group at once (a crash, for tests); its exit status."""
        process = self.process
        if process is None:
            msg = "crossbar was never started"
            raise CrossbarError(msg)
        self._kill_group(process)
        return process.wait()

    def _kill_group(self, process: subprocess.Popen[str]) -> None:
        # The node's workers are its children, in its process group (its id).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        if self._reader is not None:
            self._reader.join(5.0)

    def close(self) -> None:
        """Stop the node and remove the node directory if this object made it."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.cbdir, ignore_errors=True)

    def __enter__(self) -> Self:
        if not self.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
