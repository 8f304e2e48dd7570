# Sourced by the scripts here: make .venv (once) and install hedgerow with its
# dev and router extras into it (again only when pyproject.toml changed).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "hedgerow needs Python 3.11 or newer; $python is $("$python" --version 2>&1)" >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
stamp=.venv/.hedgerow-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "Installing hedgerow, its dev tools and the Crossbar.io router into .venv (log: .venv/install.log)..." >&2
  if ! .venv/bin/python -m pip install --upgrade pip -e '.[dev,router,twisted]' > .venv/install.log 2>&1; then
    cat .venv/install.log >&2
    echo "pip install failed; see above" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi
