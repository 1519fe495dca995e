#!/usr/bin/env bash
# Benchmark (not a test): stateseal against real `tofu` on the same encrypted state (local
# backend), measured in the same run, per pinned tofu release. Prints the ratios:
#   - `stateseal decrypt` of a 64 MiB encrypted state vs `tofu state pull` (aim: >= 10x faster);
#   - `stateseal outputs --json` vs `tofu output -json`.
#
#   bash scripts/bench/tofu.sh [--runs N] [--size-mib M]
#
# Uses the release binary (built here unless STATESEAL_BIN points at one), the tofu binaries
# that scripts/peers/tofu.sh builds (cached), and the peers venv. See tofu.py for what is timed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
bash scripts/peers/venv.sh >&2
bash scripts/peers/tofu.sh >&2

bin="${STATESEAL_BIN:-}"
if [ -z "$bin" ]; then
  echo "== building stateseal (release)" >&2
  cargo build --release -p stateseal >&2
  bin="${CARGO_TARGET_DIR:-$root/target}/release/stateseal"
fi

tofus="$(bash scripts/peers/tofu.sh --paths | tr ' ' '=' | paste -sd, -)"
.venv/bin/python scripts/bench/tofu.py --bin "$bin" --tofu "$tofus" "$@"
