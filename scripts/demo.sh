#!/usr/bin/env bash
# The main job: run an example supervision tree on the embedded default,
# showing crashes and their recovery; the tree ends by itself and this exits 0.
# It needs only hedgerow's core dependencies (no extras).
extras=""
source "$(dirname "$0")/_venv.sh"
exec .venv/bin/hedgerow run examples/flaky_worker/tree.toml "$@"
