"""Read a `hedgerow chaos --json` report on stdin; exit 1 unless it is well formed and clean:
faults were injected and messages sent, none lost, the root did not give up, and no
thread of the tree was left over. An empty stdin (a run killed by `timeout`) fails too."""

from __future__ import annotations

import json
import sys


def main() -> int:
    try:
        report = json.load(sys.stdin)
        messages = report["messages"]
        lost, sent = int(messages["lost"]), int(messages["sent"])
        injected = sum(int(n) for n in report["injected"].values())
        gave_up = bool(report["gave_up"])
        leftover = [str(name) for name in report["leftover_threads"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        print(f"chaos report is malformed: {exc!r}", file=sys.stderr)
        return 1
    print(
        f"chaos: {injected} faults injected, {sent} messages sent, {lost} lost, "
        f"{len(leftover)} threads left over",
        file=sys.stderr,
    )
    if leftover:
        print(f"threads left over: {', '.join(leftover)}", file=sys.stderr)
    if lost or gave_up or leftover or not injected or not sent:
        print("chaos report is not clean", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
