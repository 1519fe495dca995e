#!/usr/bin/env bash
# Benchmark (not a test): `stateseal rekey s3://… --apply` of 1,000 states from an old AWS KMS
# key to a new one, at --concurrency 1, 8 and 32 in the same run on the same moto, with 20 ms of
# real latency (toxiproxy) on every request on its way to moto. Prints the injected latency,
# states/s and requests per state at each concurrency, and each ratio against --concurrency 1
# beside the ceiling that moto's CPU time sets (targets: >= 6 states/s and at most 7 requests
# per state at 1; >= 5x at 8; >= 80% of the ceiling at 32).
#
#   bash scripts/bench/fleet_rekey.sh [--states N] [--latency-ms MS] [--concurrency 1,8,32]
#
# Uses the release binary (built here unless STATESEAL_BIN points at one), its own moto server
# (stopped on exit), toxiproxy (scripts/peers/toxiproxy.sh) and the peers venv. See
# fleet_rekey.py for what is timed.
set -euo pipefail

exec bash "$(dirname "${BASH_SOURCE[0]}")/with_moto.sh" scripts/bench/fleet_rekey.py "$@"
