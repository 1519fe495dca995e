#!/usr/bin/env bash
# Benchmark (not a test): `bootstrap s3 --apply` (first and no-change second run) and the SSE
# migration `rekey s3://… --sse-only --sse-kms ARN --apply` of N states at --concurrency 8 and 1,
# against a plain boto3 self-copy loop (the runbook's way) in the same run on the same moto.
# Prints seconds, states/s and the ratios.
#
#   bash scripts/bench/fleet_sse.sh [--states N]
#
# Uses the release binary (built here unless STATESEAL_BIN points at one), its own moto server
# (stopped on exit), and the peers venv. See fleet_sse.py for what is timed.
set -euo pipefail

exec bash "$(dirname "${BASH_SOURCE[0]}")/with_moto.sh" scripts/bench/fleet_sse.py "$@"
