"""CherryPy's own plugins run on a hedgerow bus as they do on wspbus.

`SignalHandler` is left out: hedgerow has its own (`hedgerow.node.SignalHandler`).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from cherrypy.process import plugins

from hedgerow.node import Bus, BusState


class Recorder(plugins.SimplePlugin):
    """A SimplePlugin subclass: its methods named after channels are listeners."""

    def __init__(self, bus: Bus) -> None:
        super().__init__(bus)
        self.seen: list[tuple[str, BusState]] = []

    def start(self) -> None:
        self.seen.append(("start", self.bus.state))

    def stop(self) -> None:
        self.seen.append(("stop", self.bus.state))

    def graceful(self) -> None:
        self.seen.append(("graceful", self.bus.state))

    def exit(self) -> None:
        self.seen.append(("exit", self.bus.state))

    def early(self) -> None:
        self.seen.append(("early", self.bus.state))

    early.priority = 10  # type: ignore[attr-defined]  # wspbus reads it off the callback


def test_a_simple_plugin_subscribes_to_every_channel_it_has_a_method_for():
    bus = Bus()
    plugin = Recorder(bus)
    plugin.subscribe()
    assert plugin.start in bus.listeners["start"]
    bus.start()
    bus.graceful()
    bus.exit()
    assert plugin.seen == [
        ("start", BusState.STARTING),
        ("graceful", BusState.STARTED),
        ("stop", BusState.STOPPING),
        ("exit", BusState.EXITING),
    ]
    plugin.unsubscribe()
    assert all(not callbacks for callbacks in bus.listeners.values())


def test_a_simple_plugin_keeps_the_priority_of_its_methods():
    bus = Bus()
    bus.listeners["early"] = set()  # a channel added as wspbus's plugins add theirs
    plugin = Recorder(bus)
    bus.subscribe("early", lambda: plugin.seen.append(("default", bus.state)))
    plugin.subscribe()  # after, but its method says priority 10
    bus.publish("early")
    assert [name for name, _ in plugin.seen] == ["early", "default"]


def test_monitor_runs_its_callback_in_a_background_task_while_started():
    bus = Bus()
    beats = threading.Semaphore(0)
    monitor = plugins.Monitor(bus, beats.release, frequency=0.01, name="beat")
    monitor.subscribe()
    bus.start()
    thread = monitor.thread
    assert isinstance(thread, plugins.BackgroundTask)
    assert thread.name == "beat"
    for _ in range(3):
        assert beats.acquire(timeout=30)
    bus.graceful()  # Monitor restarts its task on graceful
    assert monitor.thread is not thread
    assert not thread.running
    assert beats.acquire(timeout=30)
    bus.exit()
    assert monitor.thread is None


def test_a_failing_background_task_logs_through_the_bus():
    bus = Bus()
    logged: list[tuple[str, int]] = []
    failed = threading.Event()

    def log(msg: str, level: int) -> None:
        logged.append((msg, level))
        if level == logging.ERROR:
            failed.set()

    def broken() -> None:
        raise RuntimeError("disk gone")

    bus.subscribe("log", log)
    task = plugins.BackgroundTask(0.01, broken, bus=bus)
    hook = threading.excepthook
    threading.excepthook = lambda args: None  # the task re-raises, as it should
    try:
        task.start()
        assert failed.wait(timeout=30)
        task.join(timeout=30)
    finally:
        threading.excepthook = hook
    (message,) = [msg for msg, level in logged if level == logging.ERROR]
    assert message.startswith("Error in background task thread function")
    assert "RuntimeError: disk gone" in message


def test_pidfile_writes_at_start_and_removes_at_exit(tmp_path):
    bus = Bus()
    path = tmp_path / "node.pid"
    plugins.PIDFile(bus, str(path)).subscribe()
    bus.start()
    assert path.read_text() == f"{os.getpid()}\n"
    bus.exit()
    assert not path.exists()


def test_thread_manager_adds_its_channels_and_publishes_on_them():
    bus = Bus()
    manager = plugins.ThreadManager(bus)
    manager.subscribe()
    started: list[Any] = []
    stopped: list[Any] = []
    bus.subscribe("start_thread", started.append)
    bus.subscribe("stop_thread", stopped.append)
    bus.start()
    bus.publish("acquire_thread")
    bus.publish("acquire_thread")  # the same thread: once
    bus.publish("release_thread")
    assert (started, stopped) == ([1], [1])
    bus.publish("acquire_thread")
    bus.exit()  # stop releases the threads still held
    assert stopped == [1, 1]
