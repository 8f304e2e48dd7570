#!/usr/bin/env bash
# The main job: run the example supervision tree on the embedded default,
# showing a crash and its recovery, then exit 0.
source "$(dirname "$0")/_venv.sh"
exec .venv/bin/python examples/flaky_worker/main.py "$@"
