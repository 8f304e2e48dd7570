"""Read a `hedgerow chaos --json` report on stdin; exit 1 unless it is well formed and clean."""

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
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        print(f"chaos report is malformed: {exc!r}", file=sys.stderr)
        return 1
    print(f"chaos: {injected} faults injected, {sent} messages sent, {lost} lost", file=sys.stderr)
    if lost or gave_up or not injected or not sent:
        print("chaos report is not clean", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
