"""Actors that tests host in worker processes (imported there as ``node.worker_actors``)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import hedgerow as hr


class Echo(hr.Actor):
    """Answers with its pid; prints a line at start (a worker sends prints to stderr)."""

    def on_start(self) -> None:
        print(f"echo started in {os.getpid()}", flush=True)  # noqa: T201 - goes to stderr

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError("echo crashed")
        return (os.getpid(), message)


class Crasher(hr.Actor):
    """Crashes at once after starting (its hosted supervisor restarts it)."""

    def on_start(self) -> None:
        self.actor_ref.tell("crash")

    def on_receive(self, message: Any) -> Any:
        raise RuntimeError("boom")


class IgnoresStop(hr.Actor):
    """Blocks in on_stop for ever: its worker ignores SIGTERM until SIGKILL."""

    def on_stop(self) -> None:
        threading.Event().wait()


class Quits(hr.Actor):
    """Stops by itself after starting (with restart=never, its worker's tree ends)."""

    def on_start(self) -> None:
        self.actor_ref.tell("quit")

    def on_receive(self, message: Any) -> Any:
        self.stop()


class SlowStart(hr.Actor):
    """Never finishes starting: its worker is never ready."""

    def on_start(self) -> None:
        threading.Event().wait()


class SlowOnceMarked(hr.Actor):
    """Starts at once unless the file named by ``SLOW_MARK`` exists: then never finishes."""

    def on_start(self) -> None:
        mark = os.environ.get("SLOW_MARK")
        if mark and os.path.exists(mark):  # noqa: PTH110 - a plain check, as the worker sees it
            threading.Event().wait()


FACTS = "process facts: "


class Facts(hr.Actor):
    """Prints what a test checks of its worker process at start (to stderr, as JSON)."""

    def on_start(self) -> None:
        import json  # noqa: PLC0415
        import signal  # noqa: PLC0415
        import sys  # noqa: PLC0415

        fds = {}
        for entry in Path("/proc/self/fd").iterdir():
            try:
                fds[entry.name] = str(entry.readlink())
            except OSError:
                continue  # the listing's own descriptor, closed already
        dispositions = {}
        for signum in (
            signal.SIGINT,
            signal.SIGTERM,
            signal.SIGHUP,
            signal.SIGPIPE,
            signal.SIGCHLD,
        ):
            handler = signal.getsignal(signum)
            dispositions[signal.Signals(signum).name] = getattr(handler, "__name__", str(handler))
        facts = {
            "pid": os.getpid(),
            "ppid": os.getppid(),
            "sid": os.getsid(0),
            "pgid": os.getpgid(0),
            "fds": fds,
            "signals": dispositions,
            "blocked": sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, [])),
            "env": os.environ.get("FACTS_VAR"),
            "cwd": str(Path.cwd()),
            "argv": sys.argv[1:],
            "threads": threading.active_count(),
        }
        print(FACTS + json.dumps(facts), flush=True)  # noqa: T201 - goes to stderr


GRANDCHILD_FILE = "GRANDCHILD_FILE"


class ForksAChild(hr.Actor):
    """Forks a child of its own that sleeps 60 s, keeping every descriptor of the
    worker (the node's pipes among them), as `os.fork` or multiprocessing's fork
    do; writes the child's pid to the file named by ``GRANDCHILD_FILE``. With
    ``quits=True`` in its kwargs it then stops (its worker's tree ends)."""

    def __init__(self, *, quits: bool = False) -> None:
        super().__init__()
        self.quits = quits

    def on_start(self) -> None:
        import time  # noqa: PLC0415

        pid = os.fork()
        if pid == 0:  # the child: no threads, no locks; it only sleeps
            time.sleep(60)
            os._exit(0)
        Path(os.environ[GRANDCHILD_FILE]).write_text(str(pid))
        if self.quits:
            self.actor_ref.tell("quit")

    def on_receive(self, message: Any) -> Any:
        self.stop()
