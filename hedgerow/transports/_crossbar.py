"""Crossbar.io control: write a node config, start the router, wait for it, stop it.

`RouterConfig` describes a router as hedgerow needs one: realms, a WebSocket
and a RawSocket transport on 127.0.0.1 (over TLS when given a key and
certificate), ticket or WAMP-CRA authentication with one shared secret
(anonymous access only when asked for), a management principal, and
principals with secrets and URI prefixes of their own. Every role is
authorized by hedgerow's `Policy` (``hedgerow/transports/_authorization.py``)
through a dynamic authorizer the router runs. `node_config` turns it into
Crossbar's JSON. Secrets are never written to disk: the config names
environment variables (``${HEDGEROW_ROUTER_SECRET}``, Crossbar's own
substitution) that the crossbar process gets in its environment.

`Crossbar` runs ``crossbar start --cbdir ...`` as a subprocess, through a
guard (``_router_guard.py``) in a process group of its own that stops it if
this process dies, reads its output until the node reports that its
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

from hedgerow.transports._authorization import (
    AUTHORIZER_URI,
    ROUTER_ROLE,
    Policy,
    Principal,
)

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

logger = logging.getLogger(__name__)

SECRET_ENV = "HEDGEROW_ROUTER_SECRET"  # noqa: S105 - the variable's name, not a secret
"""The environment variable the router (and components) read the shared secret from."""

AUTH_METHODS = ("ticket", "wampcra")
"""Authentication methods with a shared secret that `RouterConfig` can enable."""

INSTALL_HINT = (
    "Crossbar.io is not installed: install hedgerow's router extra "
    "(pip install 'hedgerow[router]') or put a crossbar executable on PATH"
)

_READY_MARKERS = ("local node configuration ran successfully", "NODE_BOOT_COMPLETE")
_SERIALIZERS = ("msgpack", "cbor", "json")


class CrossbarError(RuntimeError):
    """Crossbar.io could not be found, configured, started or stopped."""


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
        raise CrossbarError(INSTALL_HINT)
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
    role that may register, subscribe, call or publish anything that can
    match ``hedgerow.`` (hedgerow's management API and its announcements).

    `principals` have secrets, roles and URI prefixes of their own: only a
    principal may register or publish under its prefixes, and it registers
    nowhere else. With principals, the shared principal `authid` is optional:
    it is there when its secret is set.
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
    principals: Sequence[Principal] = ()

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
        self._check_principals()

    def _check_principals(self) -> None:
        object.__setattr__(self, "principals", tuple(self.principals))
        named = {"role": self.role, "anonymous_role": self.anonymous_role}
        for name, role in named.items():
            if role in (ROUTER_ROLE, self.management_role):
                msg = (
                    f"{name}={role!r}: that is the router's own or the management role; "
                    "pick another name"
                )
                raise ValueError(msg)
        if self.management_role == ROUTER_ROLE:
            msg = f"management_role={ROUTER_ROLE!r}: that is the router's own role"
            raise ValueError(msg)
        authids = {self.authid, self.management_authid}
        roles = {self.role, self.anonymous_role, self.management_role, ROUTER_ROLE}
        for principal in self.principals:
            if principal.authid in authids:
                msg = f"principal {principal.authid!r}: the authid is taken"
                raise ValueError(msg)
            if principal.role in roles:
                msg = f"principal {principal.authid!r}: role {principal.role!r} is taken"
                raise ValueError(msg)
            authids.add(principal.authid)
            roles.add(principal.role)
        self.policy  # noqa: B018 - checks that no two principals share a name

    @property
    def policy(self) -> Policy:
        """What each role may do (`Policy`): the management and principals' namespaces."""
        return Policy.of(self.principals, self.management_role)

    @property
    def shared(self) -> bool:
        """True if the shared principal `authid` is served: always without principals,
        with them only when its secret is set."""
        if not self.auth:
            return False
        return (
            not self.principals
            or bool(os.environ.get(self.secret_env))
            or (self.secret_file is not None and Path(self.secret_file).is_file())
        )

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

_HEDGEROW_ROOT = Path(__file__).resolve().parents[2]
"""The directory holding this hedgerow package (on the router worker's Python path)."""
_GUARD = Path(__file__).resolve().with_name("_router_guard.py")

AUTHORIZER_CLASS = "hedgerow.transports._router_authorizer.RouterAuthorizer"


def node_config(config: RouterConfig) -> dict[str, Any]:
    """Crossbar's node configuration (version 2) for `config`; secrets stay ``${VAR}``.

    Every role is authorized by the router component `AUTHORIZER_CLASS`,
    which Crossbar imports from this hedgerow's directory.
    """
    names = [config.role] if config.shared else []
    names += [principal.role for principal in config.principals if config.auth]
    if config.anonymous:
        names.append(config.anonymous_role)
    if config.management_secret_env is not None:
        names.append(config.management_role)
    roles = [{"name": name, "authorizer": AUTHORIZER_URI} for name in names]
    realms = [{"name": realm, "roles": roles} for realm in config.realms]
    authorizers = [
        {
            "type": "class",
            "classname": AUTHORIZER_CLASS,
            "realm": realm,
            "role": ROUTER_ROLE,
            "extra": config.policy.as_data(),
        }
        for realm in config.realms
    ]
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
        "workers": [
            {
                "type": "router",
                "options": {"pythonpath": [str(_HEDGEROW_ROOT)]},
                "realms": realms,
                "components": authorizers,
                "transports": transports,
            }
        ],
    }


def _tcp_endpoint(config: RouterConfig, port: int) -> dict[str, Any]:
    """A listening TCP endpoint on `port`, with Crossbar's ``tls`` section when asked."""
    endpoint: dict[str, Any] = {"type": "tcp", "interface": config.host, "port": port}
    if config.tls:
        endpoint["tls"] = {"key": str(config.tls_key), "certificate": str(config.tls_certificate)}
    return endpoint


def _auth_section(config: RouterConfig) -> dict[str, Any]:
    """Static ticket and WAMP-CRA principals: (authid, ``${VAR}`` of its secret, role)."""
    principals = [(config.authid, config.secret_env, config.role)] if config.shared else []
    principals += [(p.authid, p.variable, p.role) for p in config.principals]
    if config.management_secret_env is not None:
        principals.append(
            (config.management_authid, config.management_secret_env, config.management_role)
        )
    auth: dict[str, Any] = {}
    if "ticket" in config.auth:
        auth["ticket"] = {
            "type": "static",
            "principals": {
                authid: {"ticket": "${" + variable + "}", "role": role}
                for authid, variable, role in principals
            },
        }
    if "wampcra" in config.auth:
        auth["wampcra"] = {
            "type": "static",
            "users": {
                authid: {"secret": "${" + variable + "}", "role": role}
                for authid, variable, role in principals
            },
        }
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
        """The id of crossbar's guard, and of the process group of the guard, crossbar and
        its workers (None before `start`)."""
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
        if self.config.shared:
            secret = self.config.secret()
            if secret is None:
                raise CrossbarError(self.config._no_secret())
            env[self.config.secret_env] = secret
        for principal in self.config.principals if self.config.auth else ():
            try:
                secret = principal.secret()
            except ValueError as exc:
                raise CrossbarError(str(exc)) from None
            if secret is None:
                msg = f"principal {principal.authid!r} needs its secret: set ${principal.variable}"
                raise CrossbarError(msg)
            env[principal.variable] = secret
        name = self.config.management_secret_env
        if name is not None and not env.get(name):
            msg = f"the management principal needs its secret: set ${name}"
            raise CrossbarError(msg)
        return env

    def command(self, *, remove_cbdir: bool | None = None) -> list[str]:
        """The command line: crossbar under its guard (``_router_guard.py``), which stops it
        if this process dies and then removes the node directory if `remove_cbdir`
        (default: if this object made it)."""
        executable = self.executable or crossbar_executable()
        if shutil.which(executable) is None:
            msg = f"cannot run {executable}: not found or not executable"
            raise CrossbarError(msg)
        remove = self._own_dir if remove_cbdir is None else remove_cbdir
        return [
            sys.executable,
            "-I",  # the guard needs nothing but the standard library
            str(_GUARD),
            "--cbdir",
            str(self.cbdir),
            *(["--remove-cbdir"] if remove else []),
            "--",
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
            stdin=subprocess.PIPE,  # the guard's: end of file means we are gone
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
        # The guard, crossbar and its workers share a process group (the guard's id).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
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
