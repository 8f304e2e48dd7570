"""The process bus: states, priorities, failures, waiting, signals and re-exec."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from hedgerow.node import Bus, BusState, ChannelFailures, SignalHandler

PROCESS_TIMEOUT = 60


def test_start_stop_exit_move_through_the_states_and_publish():
    bus = Bus()
    seen: list[tuple[str, BusState]] = []
    for channel in ("start", "stop", "exit"):
        bus.subscribe(channel, lambda c=channel: seen.append((c, bus.state)))
    assert bus.state is BusState.STOPPED
    bus.start()
    assert bus.state is BusState.STARTED
    bus.stop()
    assert bus.state is BusState.STOPPED
    bus.start()
    bus.exit()
    assert bus.state is BusState.EXITING
    assert seen == [
        ("start", BusState.STARTING),
        ("stop", BusState.STOPPING),
        ("start", BusState.STARTING),
        ("stop", BusState.STOPPING),
        ("exit", BusState.EXITING),
    ]
    bus.exit()  # a second exit does nothing
    assert len(seen) == 5


def test_listeners_run_by_priority_lower_first_then_in_subscription_order():
    bus = Bus()
    order: list[str] = []

    def late() -> None:
        order.append("late")

    late.priority = 80  # type: ignore[attr-defined]  # wspbus reads it off the callback
    bus.subscribe("main", late)
    bus.subscribe("main", lambda: order.append("default-1"))
    bus.subscribe("main", lambda: order.append("early"), priority=10)
    bus.subscribe("main", lambda: order.append("default-2"))
    bus.publish("main")
    assert order == ["early", "default-1", "default-2", "late"]


def test_subscribe_twice_is_once_and_unsubscribe_removes():
    bus = Bus()
    calls: list[int] = []

    def listener() -> None:
        calls.append(1)

    bus.subscribe("x", listener)
    bus.subscribe("x", listener)
    assert bus.publish("x") == [None]
    bus.unsubscribe("x", listener)
    bus.unsubscribe("x", listener)
    assert bus.publish("x") == []
    assert bus.publish("no-such-channel", 1, k=2) == []


def test_publish_passes_arguments_and_returns_outputs():
    bus = Bus()
    bus.subscribe("sum", lambda a, b=0: a + b)
    bus.subscribe("sum", lambda a, b=0: a * b)
    assert bus.publish("sum", 3, b=4) == [7, 12]


def test_every_listener_runs_and_failures_come_together(caplog):
    bus = Bus()
    ran: list[str] = []

    def boom(name: str) -> None:
        ran.append(name)
        raise ValueError(name)

    bus.subscribe("x", lambda: boom("first"), priority=1)
    bus.subscribe("x", lambda: ran.append("middle"), priority=2)
    bus.subscribe("x", lambda: boom("last"), priority=3)
    with caplog.at_level(logging.ERROR), pytest.raises(ChannelFailures) as info:
        bus.publish("x")
    assert ran == ["first", "middle", "last"]
    assert [str(e) for e in info.value.get_instances()] == ["first", "last"]
    assert str(info.value) == "ValueError: first\nValueError: last"
    assert info.value.channel == "x"
    assert caplog.text.count("Error in 'x' listener") == 2


def test_keyboard_interrupt_stops_publishing_at_once():
    bus = Bus()
    ran: list[str] = []

    def interrupt() -> None:
        raise KeyboardInterrupt

    bus.subscribe("x", interrupt, priority=1)
    bus.subscribe("x", lambda: ran.append("after"), priority=2)
    with pytest.raises(KeyboardInterrupt):
        bus.publish("x")
    assert ran == []


def test_system_exit_after_failures_exits_with_1():
    bus = Bus()

    def fail() -> None:
        raise ValueError

    def leave() -> None:
        raise SystemExit(0)

    bus.subscribe("x", fail, priority=1)
    bus.subscribe("x", leave, priority=2)
    with pytest.raises(SystemExit) as info:
        bus.publish("x")
    assert info.value.code == 1


def test_a_failing_start_listener_exits_the_bus_and_reraises():
    bus = Bus()
    stopped = threading.Event()
    bus.subscribe("start", lambda: (_ for _ in ()).throw(OSError("port taken")))
    bus.subscribe("stop", stopped.set)
    with pytest.raises(ChannelFailures, match="port taken"):
        bus.start()
    assert stopped.is_set()
    assert bus.state is BusState.EXITING


def test_failing_stop_or_exit_listeners_set_exit_status_70():
    bus = Bus()
    bus.subscribe("stop", lambda: 1 / 0)
    bus.start()
    bus.exit()
    assert bus.state is BusState.EXITING
    assert bus.exit_status == 70


def test_graceful_and_log_publish():
    bus = Bus()
    got: list[object] = []
    bus.subscribe("graceful", lambda: got.append("graceful"))
    bus.subscribe("log", lambda msg, level: got.append((msg, level)))
    bus.graceful()
    bus.log("hello", logging.WARNING)
    assert "graceful" in got
    assert ("hello", logging.WARNING) in got


def test_wait_returns_when_another_thread_reaches_the_state():
    bus = Bus()
    reached = threading.Event()

    def waiter() -> None:
        bus.wait(BusState.STARTED)
        reached.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    bus.start()
    assert reached.wait(timeout=10)
    thread.join(timeout=10)
    bus.exit()


def test_block_publishes_main_until_exit_then_joins_threads():
    bus = Bus()
    ticks = threading.Event()
    worker_done = threading.Event()
    release = threading.Event()

    def worker() -> None:
        release.wait()
        worker_done.set()

    def on_main() -> None:
        ticks.set()

    def exiter() -> None:
        ticks.wait()
        bus.exit()
        release.set()  # block() must still wait for this thread

    bus.subscribe("main", on_main)
    threading.Thread(target=worker, name="worker").start()
    threading.Thread(target=exiter, name="exiter").start()
    bus.start()
    bus.block(interval=0.01)
    assert bus.state is BusState.EXITING
    assert worker_done.is_set()


def test_start_with_callback_runs_once_started():
    bus = Bus()
    seen: list[BusState] = []
    done = threading.Event()

    def callback(tag: str, *, more: int) -> None:
        seen.append(bus.state)
        assert (tag, more) == ("x", 1)
        done.set()

    thread = bus.start_with_callback(callback, ("x",), {"more": 1})
    assert done.wait(timeout=10)
    thread.join(timeout=10)
    assert seen == [BusState.STARTED]
    bus.exit()


def test_start_with_callback_skips_the_callback_when_start_fails():
    bus = Bus()
    called = threading.Event()
    bus.subscribe("start", lambda: 1 / 0)
    with pytest.raises(ChannelFailures):
        bus.start_with_callback(called.set)
    assert not called.is_set()


# -- in a real process --------------------------------------------------------

SCRIPT = """\
import os, sys
from hedgerow.node import Bus, SignalHandler

bus = Bus()
bus.subscribe("start", lambda: print("start", flush=True))
bus.subscribe("graceful", lambda: print("graceful", flush=True))
bus.subscribe("stop", lambda: print("stop", flush=True))
bus.subscribe("exit", lambda: print("exit", flush=True))
SignalHandler(bus, on_repeat=lambda signum: print("repeat", signum, flush=True)).subscribe()
if os.environ.get("RESTART_ONCE") == "yes":
    os.environ["RESTART_ONCE"] = "done"
    bus.subscribe("main", bus.restart)
bus.start()
print("ready", os.getpid(), flush=True)
bus.block(interval=0.01)
print("status", bus.exit_status, flush=True)
sys.exit(bus.exit_status)
"""


def run_script(tmp_path: Path, **env: str) -> subprocess.Popen[str]:
    script = tmp_path / "node.py"
    script.write_text(textwrap.dedent(SCRIPT))
    return subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )


def read_until(process: subprocess.Popen[str], needle: str) -> list[str]:
    lines: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line.strip())
        if line.startswith(needle):
            return lines
    pytest.fail(f"{needle!r} never came: {lines}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_exit_gracefully(tmp_path, signum):
    process = run_script(tmp_path)
    read_until(process, "ready")
    process.send_signal(signum)
    out, err = process.communicate(timeout=PROCESS_TIMEOUT)
    assert process.returncode == 0, err
    assert out.split() == ["stop", "exit", "status", "0"]


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGUSR1])
def test_sighup_and_sigusr1_reload(tmp_path, signum):
    process = run_script(tmp_path)
    read_until(process, "ready")
    process.send_signal(signum)
    read_until(process, "graceful")
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=PROCESS_TIMEOUT)
    assert process.returncode == 0
    assert out.split()[:2] == ["stop", "exit"]


def test_restart_re_execs_the_process(tmp_path):
    process = run_script(tmp_path, RESTART_ONCE="yes")
    first = read_until(process, "ready")
    second = read_until(process, "ready")
    # Stopped, exited, then started again in the same process (execv keeps the pid).
    assert first == ["start", f"ready {process.pid}"]
    assert second == ["stop", "exit", "start", f"ready {process.pid}"]
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=PROCESS_TIMEOUT)
    assert process.returncode == 0


def test_signal_handler_restores_previous_handlers_at_exit():
    bus = Bus()
    before = signal.getsignal(signal.SIGTERM)
    handler = SignalHandler(bus)
    handler.subscribe()
    assert signal.getsignal(signal.SIGTERM) == handler._handle
    bus.start()
    bus.exit()
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_second_exit_signal_right_after_the_first_ones_log_line_is_a_repeat():
    """The window between "Caught signal SIGTERM." and the bus reaching STOPPING:
    a second SIGTERM there must cut the stop short, not start a second exit."""
    bus = Bus()
    bus.start()
    repeats: list[int] = []
    handler = SignalHandler(bus, on_repeat=repeats.append)
    exits: list[BusState] = []
    bus.subscribe("stop", lambda: exits.append(bus.state))

    def second_signal(msg: str, _level: int) -> None:
        if msg == "Caught signal SIGTERM.":
            handler._handle(signal.SIGTERM, None)  # as a signal arriving between two bytecodes

    bus.subscribe("log", second_signal)
    handler._handle(signal.SIGTERM, None)
    assert repeats == [signal.SIGTERM]
    assert exits == [BusState.STOPPING]  # one exit, not two
    assert bus.state is BusState.EXITING


# -- wspbus's public surface ----------------------------------------------------


def test_listeners_is_wspbus_mapping_of_channel_to_set_with_the_builtin_channels():
    bus = Bus()
    assert bus.listeners == {
        channel: set() for channel in ("start", "stop", "exit", "graceful", "log", "main")
    }

    def listener() -> None:
        pass

    bus.subscribe("start", listener)
    bus.subscribe("mine", listener)
    assert bus.listeners["start"] == {listener}
    assert bus.listeners["mine"] == {listener}
    bus.unsubscribe("start", listener)
    assert bus.listeners["start"] == set()


def test_a_callback_added_to_the_mapping_directly_runs_after_prioritised_ones():
    """wspbus's own plugins add channels through the mapping (ThreadManager)."""
    bus = Bus()
    order: list[str] = []
    bus.listeners.setdefault("custom", set()).add(lambda: order.append("direct"))
    bus.subscribe("custom", lambda: order.append("late"), priority=90)
    assert bus.publish("custom") == [None, None]
    # Default priority (50), so before a priority-90 listener.
    assert order == ["direct", "late"]


def test_subscribe_is_a_decorator_that_keeps_the_function():
    bus = Bus()
    seen: list[str] = []

    @bus.subscribe("graceful")
    def reload() -> None:
        seen.append("reload")

    @bus.subscribe("graceful", priority=10)
    def first() -> None:
        seen.append("first")

    bus.graceful()
    assert seen == ["first", "reload"]
    assert callable(reload)
    assert bus.listeners["graceful"] == {reload, first}


def test_wait_publishes_once_per_interval_not_on_every_state_change():
    """Four transitions while waiting, well within one interval: no tick yet."""
    bus = Bus()
    ticks: list[BusState] = []
    ticked = threading.Event()
    bus.subscribe("tick", lambda: (ticks.append(bus.state), ticked.set()))
    # A tick due to the STARTING change would come in this window (a bounded
    # wait for something that must not happen).
    bus.subscribe("start", lambda: ticked.wait(timeout=0.5))
    waiting = threading.Thread(
        target=bus.wait, args=(BusState.EXITING,), kwargs={"interval": 300, "channel": "tick"}
    )
    waiting.start()
    wait_until_inside(waiting, Bus.wait)
    bus.start()
    bus.stop()
    bus.start()
    bus.exit()
    waiting.join(timeout=30)
    assert not waiting.is_alive()
    assert ticks == []


def wait_until_inside(thread: threading.Thread, function: Any) -> None:
    """Return once `thread` is running `function` (seen on its stack)."""
    code = function.__code__
    reached = threading.Event()
    while not reached.is_set():
        frame = sys._current_frames().get(thread.ident or 0)
        while frame is not None and frame.f_code is not code:
            frame = frame.f_back
        if frame is None:
            reached.wait(0.001)  # polling a stack: nothing to wait on
        else:
            reached.set()


def test_wait_publishes_on_the_channel_while_waiting():
    bus = Bus()
    ticks: list[BusState] = []
    enough = threading.Event()

    def tick() -> None:
        ticks.append(bus.state)
        if len(ticks) == 3:
            enough.set()

    bus.subscribe("tick", tick)
    waiting = threading.Thread(
        target=bus.wait, args=(BusState.EXITING,), kwargs={"interval": 0.01, "channel": "tick"}
    )
    waiting.start()
    assert enough.wait(timeout=30)
    bus.exit()
    waiting.join(timeout=30)
    assert not waiting.is_alive()
    assert ticks[:3] == [BusState.STOPPED] * 3


LEAVER = """\
from hedgerow.node import Bus

bus = Bus()
bus.subscribe("stop", lambda: print("stop", flush=True))
bus.subscribe("exit", lambda: print("exit", flush=True))
bus.start()
print("leaving", flush=True)
"""


def test_a_bus_still_running_at_interpreter_exit_warns_and_exits(tmp_path):
    script = tmp_path / "leaver.py"
    script.write_text(LEAVER)
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["leaving", "stop", "exit"]
    assert "RuntimeWarning" in done.stderr
    assert "main thread is exiting" in done.stderr


RESTARTER = """\
import os, sys
from hedgerow.node import Bus

print("cwd", os.getcwd(), flush=True)
if "INHERITED_FD" not in os.environ:
    fd = os.open(os.devnull, os.O_RDONLY)
    os.set_inheritable(fd, True)  # as a library might: re-exec must close it all the same
    os.environ["INHERITED_FD"] = str(fd)
    bus = Bus()
    bus.subscribe("main", bus.restart)
    os.chdir(sys.argv[1])  # the application wanders off
    bus.start()
    bus.block(interval=0.01)
else:
    try:
        os.fstat(int(os.environ["INHERITED_FD"]))
    except OSError:
        print("descriptor closed", flush=True)
    else:
        print("descriptor inherited", flush=True)
"""


def test_restart_goes_back_to_the_start_up_directory_and_closes_descriptors(tmp_path):
    """Started with ``-m`` from a directory only ``-m`` puts on the path: the
    re-exec'd process finds the module again, in the directory it started in."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "restarter.py").write_text(RESTARTER)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "restarter", str(elsewhere)],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"cwd {app}", f"cwd {app}", "descriptor closed"]


TREE_LEAVER = """\
import hedgerow as hr
from hedgerow.node import Bus

tree = hr.start_tree(hr.SupervisorSpec([hr.ChildSpec("w", hr.Actor)]))
bus = Bus()
bus.subscribe("stop", lambda: print("stopped", tree.stop(), flush=True))
bus.start()
"""


def test_the_exit_hook_runs_before_python_waits_for_a_trees_actor_threads(tmp_path):
    """With atexit alone the interpreter would join the actors' (non-daemon)
    threads first, and wait for ever: the hook must stop the tree before that."""
    script = tmp_path / "tree_leaver.py"
    script.write_text(TREE_LEAVER)
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["stopped", "shutdown"]
    assert "RuntimeWarning" in done.stderr
