#!/usr/bin/env bash
# Benchmark (not a test) of listings on `storage "s3"` (issue 24): 2,000 states in a versioned
# bucket on moto (200 of them locked in DynamoDB, 20 by a lock file alone), `stateseal serve` on
# that bucket, and the states page (`GET /ui/states`, every page of it) and `GET /v1/states`
# timed cold (a fresh server instance: every object read once) and warm (nothing changed: the
# bucket's listing and one Scan), with moto's CPU time and request count beside each, and the
# warm/cold ratio measured in the same run. Targets: warm < 1 s, cold < 15 s against moto.
#
#   bash scripts/bench/serve_s3_listing.sh [--states N] [--rounds R]
#
# Uses the release binary (built here unless STATESEAL_BIN points at one), its own moto server
# (stopped on exit) and the peers venv. See serve_s3_listing.py.
set -euo pipefail

exec bash "$(dirname "${BASH_SOURCE[0]}")/with_moto.sh" scripts/bench/serve_s3_listing.py "$@"
