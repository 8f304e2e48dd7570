"""hedgerow.Actor and hedgerow.AsyncioActor on their own (the runtime fixture; mixed:
watcher and target on different runtimes): exit reasons, links and monitors."""

from __future__ import annotations

import queue
import threading
from typing import Any

import pytest
from helpers import Worker

import hedgerow as hr


class Watcher(hr.Actor):
    """Forwards every message it gets into a queue the test reads."""

    def __init__(self, out: queue.Queue[Any], trap: bool = False) -> None:
        super().__init__()
        self.out = out
        self.actor_trap_exits = trap

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, tuple) and message[0] == "monitor":
            return self.actor_monitor(message[1])
        if isinstance(message, tuple) and message[0] == "link":
            self.actor_link(message[1])
            return None
        if message == "crash":
            raise RuntimeError("watcher crashed")
        self.out.put(message)
        return None

    def on_stop(self) -> None:
        self.out.put("watcher stopped")

    def on_failure(self, *exc_info: Any) -> None:
        self.out.put(("watcher failed", exc_info[1]))


def test_monitor_gets_down_with_the_exit_reason(runtime):
    out: queue.Queue[Any] = queue.Queue()
    watcher = runtime.of(Watcher).start(out)
    target = runtime.of(Worker).start()
    token = watcher.ask(("monitor", target))
    target.tell("crash")
    down = out.get(timeout=10)
    assert isinstance(down, hr.Down)
    assert down.ref is target
    assert down.monitor == token
    assert isinstance(down.reason, RuntimeError)
    watcher.stop()


def test_monitor_of_a_normal_stop_and_of_a_dead_actor(runtime):
    out: queue.Queue[Any] = queue.Queue()
    watcher = runtime.of(Watcher).start(out)
    target = runtime.of(Worker).start()
    watcher.ask(("monitor", target))
    target.stop()
    assert out.get(timeout=10).reason == hr.NORMAL
    watcher.ask(("monitor", target))
    assert out.get(timeout=10).reason == hr.NOPROC  # already dead, as in Erlang
    watcher.stop()


def test_demonitor_stops_delivery(runtime):
    out: queue.Queue[Any] = queue.Queue()
    watcher = runtime.of(Watcher).start(out)
    target = runtime.of(Worker).start()
    token = watcher.ask(("monitor", target))
    hr.demonitor(token)
    target.stop()
    watcher.stop()
    assert out.get(timeout=10) == "watcher stopped"


def test_linked_actors_fail_together(runtime):
    out: queue.Queue[Any] = queue.Queue()
    watcher = runtime.of(Watcher).start(out)
    target = runtime.of(Worker).start()
    watcher.ask(("link", target))
    target.tell("crash")
    failed = out.get(timeout=10)
    assert failed[0] == "watcher failed"
    assert isinstance(failed[1], hr.LinkedExit)
    assert isinstance(failed[1].reason, RuntimeError)
    assert _wait_dead(watcher)


def test_a_link_works_both_ways(runtime):
    out: queue.Queue[Any] = queue.Queue()
    watcher = runtime.of(Watcher).start(out)
    target = runtime.of(Worker).start()
    watcher.ask(("link", target))
    watcher.tell("crash")
    assert _wait_dead(target)


def test_a_normal_exit_does_not_kill_a_linked_actor(runtime):
    out: queue.Queue[Any] = queue.Queue()
    watcher = runtime.of(Watcher).start(out)
    target = runtime.of(Worker).start()
    watcher.ask(("link", target))
    target.stop()
    assert watcher.ask("ping") is None
    assert out.get(timeout=10) == "ping"
    watcher.stop()


def test_trapping_exits_turns_a_linked_failure_into_a_message(runtime):
    out: queue.Queue[Any] = queue.Queue()
    watcher = runtime.of(Watcher).start(out, trap=True)
    target = runtime.of(Worker).start()
    watcher.ask(("link", target))
    target.tell("crash")
    exit_message = out.get(timeout=10)
    assert isinstance(exit_message, hr.Exit)
    assert isinstance(exit_message.reason, RuntimeError)
    assert watcher.is_alive()
    watcher.stop()


def test_linking_to_a_dead_actor_fails_with_noproc(runtime):
    out: queue.Queue[Any] = queue.Queue()
    watcher = runtime.of(Watcher).start(out, trap=True)
    target = runtime.of(Worker).start()
    target.stop()
    watcher.ask(("link", target))
    assert out.get(timeout=10) == hr.Exit(target, hr.NOPROC)
    watcher.stop()


def test_raising_shutdown_is_a_normal_exit_that_runs_on_stop(runtime):
    stopped = threading.Event()

    class Finisher(hr.Actor):
        def on_receive(self, message: Any) -> Any:
            raise hr.Shutdown("finished")

        def on_stop(self) -> None:
            stopped.set()

    ref = runtime.of(Finisher).start()
    with pytest.raises(hr.Shutdown):
        ref.ask("go")
    assert stopped.wait(timeout=10)
    assert _wait_dead(ref)


def _wait_dead(ref: Any) -> bool:
    actor = ref._actor_weakref()
    return actor is None or actor._hr_exited.wait(timeout=10)
