#!/usr/bin/env bash
# Browser tests of the console (`stateseal serve` at /ui, issue 13): real headless Chromium
# (Debian's `chromium`) driven by playwright-core (pinned in package-lock.json), against a real
# `stateseal serve` on 127.0.0.1 fed by real Terraform applies (scripts/peers/tf.py).
#
#   bash tests/browser/run.sh        # called by scripts/test.sh; needs the venv (scripts/peers/venv.sh)
#
# Installs what is missing (idempotent: Debian's chromium when /usr/bin/chromium is absent, the
# npm packages with `npm ci`), builds the stateseal binary, starts the server by PID with an auth
# block (users admin and viewer) and encryption at rest, and a second one on `storage "s3"` on
# its own moto (states_s3.test.mjs), runs `node --test`, and stops the servers by PID and moto by
# port. Screenshots and the server logs go to target/browser/ (gitignored).
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
s3_server_pid=""
moto_port=""
cleanup() {
  for pid in "$server_pid" "$s3_server_pid"; do
    if [ -n "$pid" ]; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  if [ -n "$moto_port" ]; then
    bash scripts/peers/moto.sh stop "$moto_port" >/dev/null 2>&1 || true
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

# A second server on storage "s3": its own moto (stopped by port on exit), a versioned bucket and
# a lock table, encryption at rest, no auth block (loopback only).
moto_url="$(bash scripts/peers/moto.sh start)"
moto_port="${moto_url##*:}"
"$root/.venv/bin/python" - "$moto_url" <<'PY'
import sys, boto3
s = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                          region_name="us-east-1")
s3 = s.client("s3", endpoint_url=sys.argv[1])
s3.create_bucket(Bucket="browser-states")
s3.put_bucket_versioning(Bucket="browser-states", VersioningConfiguration={"Status": "Enabled"})
s.client("dynamodb", endpoint_url=sys.argv[1]).create_table(
    TableName="browser-locks", BillingMode="PAY_PER_REQUEST",
    KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
    AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}])
PY
cat > "$work/server-s3.hcl" <<HCL
encryption {
  key_provider "pbkdf2" "server" { passphrase = "browser-test passphrase, not a secret" }
  method "aes_gcm" "server" { keys = key_provider.pbkdf2.server }
  state { method = method.aes_gcm.server }
}
storage "s3" {
  bucket         = "browser-states"
  region         = "us-east-1"
  dynamodb_table = "browser-locks"
  use_lockfile   = true
  endpoints = {
    s3       = "$moto_url"
    dynamodb = "$moto_url"
    sts      = "$moto_url"
  }
  use_path_style              = true
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  access_key                  = "testing"
  secret_key                  = "testing"
}
HCL
s3_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$bin" serve --listen "127.0.0.1:$s3_port" --data-dir "$work/data-s3" \
  --config "$work/server-s3.hcl" 2>"$art/server-s3.log" &
s3_server_pid=$!
for _ in $(seq 1 300); do
  curl -sf "http://127.0.0.1:$s3_port/healthz" >/dev/null 2>&1 && break
  kill -0 "$s3_server_pid" 2>/dev/null || { cat "$art/server-s3.log" >&2; exit 1; }
  sleep 0.1
done
echo "== browser tests: stateseal serve on S3 (moto) on 127.0.0.1:$s3_port (pid $s3_server_pid)" >&2

STATESEAL_UI_URL="http://127.0.0.1:$port" \
STATESEAL_UI_S3_URL="http://127.0.0.1:$s3_port" \
STATESEAL_UI_ADMIN_PASSWORD="$admin_pw" \
STATESEAL_UI_VIEWER_PASSWORD="$viewer_pw" \
STATESEAL_UI_SERVER_LOG="$art/server.log" \
STATESEAL_UI_ARTIFACTS="$art" \
STATESEAL_TEST_PYTHON="${STATESEAL_TEST_PYTHON:-$root/.venv/bin/python}" \
  node --test --test-concurrency=1 tests/browser/console.test.mjs tests/browser/states_s3.test.mjs
