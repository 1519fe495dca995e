#!/usr/bin/env bash
# Benchmark (not a test): recovery keys (issue 21), in one run on one moto:
#   - `tofu plan` of the same state through `stateseal keyprovider --kms K --recipient R`
#     against the built-in `aws_kms` provider on K (aim: at most 1.2x);
#   - `stateseal dr drill` of 1,000 states: states per second, beside `audit` of the same states
#     (the same listing and reads, without decryption) as the baseline.
#
#   bash scripts/bench/recovery.sh [--runs N] [--states N]
#
# Uses the release binary (built here unless STATESEAL_BIN points at one), the newest tofu that
# scripts/peers/tofu.sh builds (cached), its own moto server (stopped on exit) and the peers venv.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
bash scripts/peers/tofu.sh >&2
BENCH_TOFU="$(bash scripts/peers/tofu.sh --paths | sort -V | tail -1 | cut -d' ' -f2)"
export BENCH_TOFU
exec bash scripts/bench/with_moto.sh scripts/bench/recovery.py "$@"
