#!/usr/bin/env bash
# Checks that the workspace builds with its declared minimum Rust (`rust-version` in Cargo.toml),
# so the declaration stays the truth: `cargo +MSRV check` of every crate and feature, in its own
# target directory. Installs the toolchain with rustup when it is missing; where rustup cannot get
# it, says so and checks nothing (exit 0), since that is the machine's limit, not the code's.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

msrv="$(sed -n 's/^rust-version = "\([0-9.]*\)".*/\1/p' Cargo.toml)"
if [[ -z "$msrv" ]]; then
  echo "msrv.sh: no rust-version in Cargo.toml" >&2
  exit 1
fi
if ! rustup run "$msrv" rustc --version >/dev/null 2>&1; then
  if ! rustup toolchain install "$msrv" --profile minimal >&2; then
    echo "msrv.sh: Rust $msrv cannot be installed here (rustup failed): the MSRV is NOT checked" >&2
    exit 0
  fi
fi
echo "msrv.sh: cargo +$msrv check (workspace, all features)" >&2
cargo +"$msrv" check --workspace --all-features --locked --quiet --target-dir target/msrv
echo "msrv.sh: builds with Rust $msrv" >&2
