"""Crossbar.io control: write a node config, start the router, wait for it, stop it.

`Crossbar` runs ``crossbar start --cbdir ...`` (with the config of a
`RouterConfig`) as a subprocess, through a guard (``_router_guard.py``) in a
process group of its own that stops it if this process dies, reads its output
until the node reports that its configuration ran, and stops it by its
process id (SIGTERM, then SIGKILL to its group after a timeout). Nothing here
finds processes by name.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Self

from hedgerow._extras import MissingExtra
from hedgerow.transports._crossbar_config import node_config
from hedgerow.transports._node_directory import NodeDirectory, sweep
from hedgerow.transports._router_config import CrossbarError, RouterConfig

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["Crossbar", "CrossbarNotInstalled", "crossbar_executable"]

logger = logging.getLogger("hedgerow.transports")


class CrossbarNotInstalled(CrossbarError, MissingExtra):
    """No crossbar executable: the router extra is missing (the message says how to add it)."""

    def __init__(self) -> None:
        MissingExtra.__init__(
            self, "router", "crossbar", alternative=", or put a crossbar executable on PATH"
        )


NODE_PREFIX = "hedgerow-crossbar-"
"""The name of the temporary node directories `Crossbar` makes (a lock in each, see
``_node_directory.py``)."""

_READY_MARKERS = ("local node configuration ran successfully", "NODE_BOOT_COMPLETE")
_GUARD = Path(__file__).resolve().with_name("_router_guard.py")


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
        self._temporary: NodeDirectory | None = None
        if cbdir is None:
            sweep(NODE_PREFIX)  # what processes killed with their guards left
            self._temporary = NodeDirectory(NODE_PREFIX)
            self.cbdir = self._temporary.path
        else:
            self.cbdir = Path(cbdir)
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
        """The crossbar process's environment: ours, plus `extra_env` and the secrets
        (`RouterConfig.secrets`: CrossbarError if one is missing or two are the same)."""
        env = dict(os.environ)
        env.update(self.config.extra_env)
        env.update(self.config.secrets())
        return env

    def command(self, *, remove_cbdir: bool | None = None) -> list[str]:
        """The command line: crossbar under its guard (``_router_guard.py``), which stops it
        if this process dies and then removes the node directory if `remove_cbdir`
        (default: if this object made it), and keeps every secret out of its output
        (``--redact-env``, with the variables' names: values never go on a command line)."""
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
            *(f"--redact-env={name}" for name in self.config.secret_variables()),
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
            pass_fds=() if self._temporary is None else (self._temporary.fd,),
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
        if self._temporary is not None:
            self._temporary.remove()

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
