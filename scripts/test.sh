#!/usr/bin/env bash
# The whole test suite, plus the type and lint checks the package promises,
# the docs site's strict build,
# `hedgerow check` on every example tree file, a seeded chaos run that
# fails if a message is lost or the report is malformed, and (with no
# arguments) the transport tests again with WAMP on Twisted's reactor: txaio
# serves one framework per process, so that is a pytest process of its own.
# It installs every extra the tests use: dev tools, the Crossbar.io router,
# Twisted (the second transport run) and the docs site's builder.
extras="dev,router,twisted,docs"
source "$(dirname "$0")/_venv.sh"
.venv/bin/python -m ruff check hedgerow tests bench examples scripts
.venv/bin/python -m mypy
# The docs site, strictly: a broken link or reference, or a docstring that
# does not render, fails (the snippets on its pages run in the test suite).
NO_MKDOCS_2_WARNING=1 .venv/bin/python -m mkdocs build --strict --quiet --site-dir .venv/site
shopt -s nullglob
.venv/bin/hedgerow check --quiet examples/*/*.toml examples/*/*.yaml examples/*/*.yml examples/*/*.json
.venv/bin/hedgerow chaos examples/pipeline/tree.yaml --seed 1 --rate 2 --duration 30 --json \
  | .venv/bin/python scripts/check_chaos_report.py
# Nested supervisors with short shutdowns and brutal_kill: a run that does not
# exit is cut by timeout (its empty report then fails the check).
timeout 300 .venv/bin/hedgerow chaos examples/nested_shutdown/tree.toml --seed 1 --rate 3 \
  --target 'root/store*' --target 'root/ingest' --target 'root/ingest/audit' \
  --kind crash --kind crash_message --kind hang --kind slow --kind flaky \
  --json | .venv/bin/python scripts/check_chaos_report.py
.venv/bin/python -m pytest "$@"
if [ "$#" -eq 0 ]; then
  echo "The transport tests again, on Twisted (HEDGEROW_TEST_FRAMEWORK=twisted):" >&2
  HEDGEROW_TEST_FRAMEWORK=twisted .venv/bin/python -m pytest -q -p no:cacheprovider tests/transports
fi
