"""A stand-in for ``python -m hedgerow.worker`` that misbehaves on its stdout (tests only).

``STANDIN_MODE`` says what it writes to the node; ``STANDIN_MARK`` is a file: the
first incarnation (no file yet) creates it and misbehaves, later ones behave.
``STANDIN_WHEN`` is ``after`` (the default: after "ready") or ``before``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

OUT = sys.stdout.buffer


def line(obj: object) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def event(**fields: object) -> bytes:
    return line({"type": "event", "kind": "started", "path": "w/a", **fields})


BAD = {
    "garbage": b"\x00\xff this is not JSON\n",
    "not-an-object": b"[1, 2, 3]\n",
    "no-type": line({"kind": "started"}),
    "unknown-type": line({"type": "surprise"}),
    "deep": b'{"type": "event", "path": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n",
    "huge-int": b'{"type": "event", "kind": "started", "path": "w", "incarnation": '
    + b"9" * 5000
    + b"}\n",
    "bad-kind": event(kind="exploded"),
    "bad-path": event(path=["w"]),
    "bad-incarnation": event(incarnation="one"),
    "inf-incarnation": b'{"type": "event", "kind": "started", "path": "w", "incarnation": 1e400}\n',
    "nan-delay": b'{"type": "event", "kind": "restart_scheduled", "path": "w", "delay": NaN}\n',
    "bad-reason": event(kind="failed", reason={"error": ["x"], "message": 5}),
    "bad-info": event(info="pid 3"),
    "bad-traceback": event(kind="failed", reason="x", traceback=["a"]),
    "bad-ready": line({"type": "ready", "pid": "me"}),
    "bad-exit": line({"type": "exit", "status": "done"}),
}


def main() -> None:
    config = json.loads(sys.stdin.buffer.readline())
    mode = os.environ["STANDIN_MODE"]
    mark = Path(os.environ["STANDIN_MARK"])
    first = not mark.exists()
    if first:
        mark.write_text(mode)
    ready = {
        "type": "ready",
        "guid": config["guid"],
        "pid": os.getpid(),
        "port": config["port"],
        "name": config["name"],
    }
    before = os.environ.get("STANDIN_WHEN") == "before"
    try:
        if first and before:
            write_bad(mode)
        OUT.write(line(ready))
        OUT.flush()
        if first and not before:
            write_bad(mode)
    except BrokenPipeError:
        return
    sys.stdin.buffer.read()  # until the node closes stdin (or kills us)


def write_bad(mode: str) -> None:
    if mode == "huge":
        chunk = b"x" * (1024 * 1024)
        for _ in range(64):  # 64 MiB without a newline
            OUT.write(chunk)
        OUT.flush()
        return
    OUT.write(BAD[mode])
    OUT.flush()


if __name__ == "__main__":
    main()
