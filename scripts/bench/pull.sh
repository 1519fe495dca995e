#!/usr/bin/env bash
# Benchmark (not a test): `stateseal state pull` of a 10 MiB encrypted state from moto against
# a plain boto3 GetObject of the same object, measured in the same run. Prints the ratios.
#
#   bash scripts/bench/pull.sh [--runs N] [--size-mib M]
#
# Uses the release binary (built here unless STATESEAL_BIN points at one), its own moto server
# (stopped on exit), and the peers venv. See pull.py for what is timed.
set -euo pipefail

exec bash "$(dirname "${BASH_SOURCE[0]}")/with_moto.sh" scripts/bench/pull.py "$@"
