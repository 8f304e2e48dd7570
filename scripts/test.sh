#!/usr/bin/env bash
# The whole test suite, plus the type and lint checks the package promises,
# and `hedgerow check` on every example tree file.
source "$(dirname "$0")/_venv.sh"
.venv/bin/python -m ruff check hedgerow tests bench examples
.venv/bin/python -m mypy
shopt -s nullglob
.venv/bin/hedgerow check --quiet examples/*/*.toml examples/*/*.yaml examples/*/*.yml examples/*/*.json
exec .venv/bin/python -m pytest "$@"
