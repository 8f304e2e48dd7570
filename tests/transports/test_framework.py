"""`use_framework`: txaio's one framework per process, chosen once, with errors that say
what to do. The suite runs under asyncio, and again under Twisted (`scripts/test.sh`)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from conftest import FRAMEWORK

import hedgerow as hr
from hedgerow.transports import FRAMEWORKS, selected_framework, use_framework
from hedgerow.transports._framework import event_loop

TIMEOUT = 30.0


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip


def test_the_process_runs_on_the_framework_it_chose():
    assert selected_framework() == FRAMEWORK
    assert use_framework(FRAMEWORK) == FRAMEWORK  # choosing it again changes nothing
    loop = event_loop()
    assert loop.framework == FRAMEWORK
    assert loop.is_running()


def test_the_other_framework_cannot_be_chosen_once_one_runs():
    [other] = [f for f in FRAMEWORKS if f != FRAMEWORK]
    with pytest.raises(RuntimeError) as caught:
        hr.use_framework(other)
    message = str(caught.value)
    assert f"already runs WAMP on {FRAMEWORK}" in message
    assert f"hedgerow.use_framework({other!r}) before" in message
    assert selected_framework() == FRAMEWORK


def test_an_unknown_framework_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown framework 'tornado': expected one of asyncio"):
        use_framework("tornado")


def test_importing_hedgerow_chooses_nothing_and_starts_no_reactor():
    done = run_python(
        """
        import sys
        import hedgerow
        from hedgerow.transports import selected_framework
        assert selected_framework() is None, selected_framework()
        assert "twisted.internet.reactor" not in sys.modules
        hedgerow.use_framework("twisted")
        assert selected_framework() == "twisted"
        assert "twisted.internet.reactor" not in sys.modules  # started on first join
        """
    )
    assert done.returncode == 0, done.stderr


def test_twisted_missing_says_which_extra_to_install():
    done = run_python(
        """
        import sys
        sys.modules["twisted"] = None  # as if it were not installed
        import hedgerow
        try:
            hedgerow.use_framework("twisted")
        except RuntimeError as exc:
            print(exc)
        """
    )
    assert done.returncode == 0, done.stderr
    assert "Twisted is not installed: pip install 'hedgerow[twisted]'" in done.stdout


def test_once_twisteds_reactor_has_stopped_wamp_fails_fast_instead_of_hanging():
    done = run_python(
        """
        import threading
        import hedgerow
        hedgerow.use_framework("twisted")
        from hedgerow.transports import WampTransport
        from hedgerow.transports._framework import event_loop

        loop = event_loop()
        from twisted.internet import reactor
        reactor.callFromThread(reactor.stop)
        [thread] = [t for t in threading.enumerate() if t.name == "hedgerow-wamp"]
        thread.join(10)
        assert not thread.is_alive()
        try:
            event_loop()
        except RuntimeError as exc:
            print("event_loop:", exc)
        print("submit:", loop.submit(lambda: None).exception(5))
        joined = WampTransport("ws://127.0.0.1:1/ws").join("realm1", None)
        print("join:", joined.exception(5))
        """
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "event_loop: Twisted's reactor has stopped, and a reactor cannot run twice" in out
    assert "submit: Twisted's reactor has stopped" in out
    assert "join: Twisted's reactor has stopped, and a reactor cannot run twice" in out


def test_a_reactor_the_application_runs_is_used_and_no_thread_is_started():
    done = run_python(
        """
        import threading
        import hedgerow
        hedgerow.use_framework("twisted")
        from twisted.internet import reactor
        from hedgerow.transports import WampTransport
        from hedgerow.transports._framework import event_loop

        def outside_the_reactor():
            # hedgerow's blocking calls are made off the reactor's thread
            joined = WampTransport("ws://127.0.0.1:1/ws").join("realm1", None)
            print("join:", joined.exception(10).error_message())
            names = [t.name for t in threading.enumerate()]
            print("threads:", "hedgerow-wamp" in names, event_loop().reactor is reactor)
            reactor.callFromThread(reactor.stop)

        reactor.callWhenRunning(threading.Thread(target=outside_the_reactor).start)
        reactor.run()
        """
    )
    assert done.returncode == 0, done.stderr
    assert "join: hedgerow.error.not_connected: cannot connect to websocket" in done.stdout
    assert "threads: False True" in done.stdout
