#!/usr/bin/env bash
# What every moto benchmark needs: the peers venv, the stateseal binary (release, built here
# unless STATESEAL_BIN points at one) and its own moto server, stopped on exit. Runs
#   .venv/bin/python SCRIPT --endpoint URL --bin BIN ARGS...
#
#   bash scripts/bench/with_moto.sh scripts/bench/SCRIPT.py [ARGS...]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
script="$1"
shift
bash scripts/peers/venv.sh >&2

bin="${STATESEAL_BIN:-}"
if [ -z "$bin" ]; then
  echo "== building stateseal (release)" >&2
  cargo build --release -p stateseal >&2
  bin="${CARGO_TARGET_DIR:-$root/target}/release/stateseal"
fi

url="$(bash scripts/peers/moto.sh start)"
port="${url##*:}"
trap 'bash scripts/peers/moto.sh stop "$port" >/dev/null 2>&1 || true' EXIT

.venv/bin/python "$script" --endpoint "$url" --bin "$bin" "$@"
