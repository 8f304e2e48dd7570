"""A stand-in for ``python -m hedgerow.worker`` that ends in hostile ways (tests only).

``HOSTILE_MODE`` says how, once it has written "ready":

- ``burst-exit``: on a line from the node, writes ``HOSTILE_N`` event lines in one
  burst (the last without its newline) and exits 3 at once, mid-flight for the node;
- ``grandchild-writer``: forks a child that writes event lines to the worker's
  stdout for as long as it can (its pid goes to the file ``HOSTILE_FILE``), then
  waits for the node to kill it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def line(obj: object) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def event(i: int) -> bytes:
    return line({"type": "event", "kind": "started", "path": f"w/a{i}"})


def write_all(data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(1, view) :]


def main() -> None:
    sys.stdin.buffer.readline()  # the config
    mode = os.environ["HOSTILE_MODE"]
    write_all(line({"type": "ready", "pid": os.getpid()}))
    if mode == "burst-exit":
        sys.stdin.buffer.readline()
        write_all(b"".join(event(i) for i in range(int(os.environ["HOSTILE_N"])))[:-1])
        os._exit(3)
    if mode == "grandchild-writer":
        pid = os.fork()
        if pid == 0:
            # Its pid is on file before its first line, which the test waits for.
            file = Path(os.environ["HOSTILE_FILE"])
            file.with_suffix(".tmp").write_text(str(os.getpid()))
            file.with_suffix(".tmp").replace(file)
            i = 0
            while True:
                try:
                    os.write(1, event(i))
                except OSError:  # the node closed its end
                    os._exit(0)
                i += 1
    sys.stdin.buffer.read()  # until the node closes stdin (or kills us)


if __name__ == "__main__":
    main()
