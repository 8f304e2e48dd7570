# Sourced by the scripts here, after setting `extras` (a comma-separated list,
# empty for the core package): make .venv (once) and install hedgerow with
# those extras into it, again only when pyproject.toml changed or an extra is
# missing. Extras accumulate: the demo's core install is a subset of the test
# command's, so either script runs from the same .venv without reinstalling.
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
# The stamp holds pyproject.toml's hash on its first line and the extras
# installed with it on the next lines, one a line.
stamp=.venv/.hedgerow-installed
hash="$(sha256sum pyproject.toml | cut -d' ' -f1)"
have=()
if [ -f "$stamp" ] && [ "$(head -n1 "$stamp")" = "$hash" ]; then
  mapfile -t have < <(tail -n +2 "$stamp")
fi
want=("${have[@]}")
missing=0
if [ ! -f "$stamp" ] || [ "$(head -n1 "$stamp")" != "$hash" ]; then
  missing=1
fi
IFS=',' read -r -a asked <<< "${extras:-}"
for extra in "${asked[@]}"; do
  [ -n "$extra" ] || continue
  if [[ " ${have[*]} " != *" $extra "* ]]; then
    want+=("$extra")
    missing=1
  fi
done
if [ "$missing" -eq 1 ]; then
  spec="."
  if [ "${#want[@]}" -gt 0 ]; then
    spec=".[$(IFS=','; echo "${want[*]}")]"
  fi
  label="${spec#.}"
  echo "Installing hedgerow ${label:-(core dependencies only)} into .venv (log: .venv/install.log)..." >&2
  if ! .venv/bin/python -m pip install --disable-pip-version-check --progress-bar off \
      -e "$spec" > .venv/install.log 2>&1; then
    cat .venv/install.log >&2
    echo "pip install failed; see above" >&2
    exit 1
  fi
  printf '%s\n' "$hash" "${want[@]}" > "$stamp"
fi
