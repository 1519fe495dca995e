#!/usr/bin/env bash
# Benchmark (not a test): `stateseal rekey s3://… --apply` of 1,000 states from an old AWS KMS
# key to a new one, at --concurrency 8 against --concurrency 1, in the same run on the same moto.
# Prints states/s for each and the ratio (targets: ratio >= 2, >= 20 states/s at 8).
#
#   bash scripts/bench/fleet_rekey.sh [--states N]
#
# Uses the release binary (built here unless STATESEAL_BIN points at one), its own moto server
# (stopped on exit), and the peers venv. See fleet_rekey.py for what is timed.
set -euo pipefail

exec bash "$(dirname "${BASH_SOURCE[0]}")/with_moto.sh" scripts/bench/fleet_rekey.py "$@"
