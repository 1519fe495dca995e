#!/usr/bin/env bash
# Browser tests of the console (`stateseal serve` at /ui, issue 13): real headless Chromium
# (Debian's `chromium`) driven by playwright-core (pinned in package-lock.json), against a real
# `stateseal serve` on 127.0.0.1 fed by real Terraform applies (scripts/peers/tf.py).
#
#   bash tests/browser/run.sh        # called by scripts/test.sh; needs the venv (scripts/peers/venv.sh)
#
# Installs what is missing (idempotent: Debian's chromium when /usr/bin/chromium is absent, the
# npm packages with `npm ci`), builds the stateseal binary, starts the server by PID with an auth
# block (users admin and viewer) and encryption at rest, runs `node --test`, and stops the
# server by PID. Screenshots and the server log go to target/browser/ (gitignored).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

if [ ! -x /usr/bin/chromium ]; then
  echo "== browser tests: installing Debian's chromium" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
(cd tests/browser && npm ci --no-audit --no-fund --silent)   # exactly the lock file, ~1 s
# The same features as the test build (`cargo test --workspace --all-features`), so this reuses its
# binary instead of building another one.
cargo build --workspace --all-features --bin stateseal --quiet
bin="$root/target/debug/stateseal"

art="$root/target/browser"
work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$art"
rm -f "$art"/*.png

admin_pw="admin-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
viewer_pw="viewer-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
cat > "$work/server.hcl" <<HCL
encryption {
  key_provider "pbkdf2" "server" { passphrase = "browser-test passphrase, not a secret" }
  method "aes_gcm" "server" { keys = key_provider.pbkdf2.server }
  state { method = method.aes_gcm.server }
}
auth {
  user "admin"  { password_hash = "$(printf %s "$admin_pw" | "$bin" serve hash-password)" }
  user "viewer" { password_hash = "$(printf %s "$viewer_pw" | "$bin" serve hash-password)" }
  grant {
    to    = ["admin"]
    paths = ["*"]
    allow = ["read", "write", "lock", "admin"]
  }
  grant {
    to    = ["viewer"]
    paths = ["*"]
    allow = ["read"]
  }
}
HCL
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$bin" serve --listen "127.0.0.1:$port" --data-dir "$work/data" --config "$work/server.hcl" \
  2>"$art/server.log" &
server_pid=$!
for _ in $(seq 1 300); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$art/server.log" >&2; exit 1; }
  sleep 0.1
done
echo "== browser tests: stateseal serve on 127.0.0.1:$port (pid $server_pid)" >&2

STATESEAL_UI_URL="http://127.0.0.1:$port" \
STATESEAL_UI_ADMIN_PASSWORD="$admin_pw" \
STATESEAL_UI_VIEWER_PASSWORD="$viewer_pw" \
STATESEAL_UI_SERVER_LOG="$art/server.log" \
STATESEAL_UI_ARTIFACTS="$art" \
STATESEAL_TEST_PYTHON="${STATESEAL_TEST_PYTHON:-$root/.venv/bin/python}" \
  node --test --test-concurrency=1 tests/browser/console.test.mjs
