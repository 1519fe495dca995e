#!/usr/bin/env bash
# Checks that the README's main command leaves a clone's `git status` clean: it runs
# `stateseal --config examples/server/server.hcl serve` (the README's command, on the binary the
# tests built, and on a free port instead of 8080 so it cannot collide with a running server) in
# a fresh shared clone of HEAD for a few seconds, stops it by PID, and fails if anything it wrote
# (./stateseal-data: states, versions, locks) shows up as untracked.
#
#   bash scripts/checks/readme_leaves_tree_clean.sh [STATESEAL_BINARY]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="${1:-$root/target/debug/stateseal}"
if [[ ! -x "$bin" ]]; then
  echo "readme_leaves_tree_clean.sh: no binary at $bin (build it first)" >&2
  exit 1
fi

work="$(mktemp -d)"
pid=""
cleanup() {
  if [[ -n "$pid" ]]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

git clone --quiet --shared "$root" "$work/clone"
cd "$work/clone"
"$bin" --config examples/server/server.hcl serve --listen 127.0.0.1:0 2>"$work/server.log" &
pid=$!
for _ in $(seq 50); do
  grep -q "body limit" "$work/server.log" && break
  sleep 0.1
done
if ! grep -q "body limit" "$work/server.log"; then
  echo "readme_leaves_tree_clean.sh: the server did not start:" >&2
  cat "$work/server.log" >&2
  exit 1
fi
sleep 2
kill "$pid"
wait "$pid" || true
pid=""
if [[ ! -d stateseal-data ]]; then
  echo "readme_leaves_tree_clean.sh: the server did not create ./stateseal-data; this check checks nothing" >&2
  exit 1
fi
dirty="$(git status --porcelain --untracked-files=all)"
if [[ -n "$dirty" ]]; then
  echo "readme_leaves_tree_clean.sh: the README's main command left the tree dirty:" >&2
  echo "$dirty" >&2
  exit 1
fi
echo "readme_leaves_tree_clean.sh: git status is clean after the README's main command" >&2
