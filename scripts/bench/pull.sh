#!/usr/bin/env bash
# Benchmark (not a test): `stateseal state pull` of a 10 MiB encrypted state from moto against
# a plain boto3 GetObject of the same object, measured in the same run. Prints the ratios.
#
#   bash scripts/bench/pull.sh [--runs N] [--size-mib M]
#
# Uses the release binary (built here unless STATESEAL_BIN points at one), its own moto server
# (stopped on exit), and the peers venv. See pull.py for what is timed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
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

.venv/bin/python scripts/bench/pull.py --endpoint "$url" --bin "$bin" "$@"
