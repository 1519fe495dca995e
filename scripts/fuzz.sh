#!/usr/bin/env bash
# Smoke run of every cargo-fuzz target (fuzz/), 30 seconds each by default. Not part of CI
# (scripts/test.sh only checks that the fuzz crate builds): fuzzing is slow and needs cargo-fuzz.
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET]
#
# New inputs go to a temporary corpus (the committed, minimized corpus/ is read, never written);
# a crash is saved under fuzz/artifacts/<target>/ and fails the script.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/fuzz"
secs="${1:-30}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is not installed: cargo install cargo-fuzz" >&2
  exit 2
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# cargo-fuzz passes -Z flags (sanitizers): nightly, or stable with RUSTC_BOOTSTRAP=1.
export RUSTC_BOOTSTRAP=1
for target in $(cargo fuzz list); do
  mkdir -p "$work/$target"
  echo "== fuzz $target for ${secs}s" >&2
  cargo fuzz run "$target" "$work/$target" "corpus/$target" -- -max_total_time="$secs"
done
echo "== every fuzz target ran ${secs}s without a crash" >&2
