#!/usr/bin/env bash
# The whole test suite, plus the type and lint checks the package promises.
source "$(dirname "$0")/_venv.sh"
.venv/bin/python -m ruff check hedgerow tests bench examples
.venv/bin/python -m mypy
exec .venv/bin/python -m pytest "$@"
