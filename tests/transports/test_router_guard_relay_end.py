"""The guard's relay passes on everything crossbar wrote, up to its finish.

Crossbar's output pipe may stay open when the relay finishes (a process it
started still holds it), or the finish's time is up (``finish(0)`` when the
guard's starter is gone): what is in the pipe then is passed on, redacted,
not dropped.
"""

from __future__ import annotations

import os

import pytest

from hedgerow.transports._router_guard import Relay


@pytest.mark.parametrize("timeout", [0.0, 0.05])
def test_what_is_in_the_pipe_when_the_relay_finishes_is_passed_on(capfd, timeout):
    read, write = os.pipe()
    try:
        relay = Relay(read, ["s3cr3t"])
        os.write(write, b"first line\n")
        relay.pump()
        os.write(write, b"last words s3cr3t\nand no end of line")
        relay.finish(timeout)  # the pipe stays open: its writer is not done
    finally:
        os.close(write)
        os.close(read)
    out = capfd.readouterr().out
    assert out == "first line\nlast words <redacted>\nand no end of line"
