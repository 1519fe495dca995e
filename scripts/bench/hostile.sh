#!/usr/bin/env bash
# Hostile-load benchmark of `stateseal serve` (issue 17, the server's load rows), all on
# 127.0.0.1 with bounded loops:
#
#   1. flood: 64 connections send wrong Basic credentials for 30 s (each request a new source
#      address and user name, so the back-off never spares a password check); a signed-in user
#      keeps working. Targets: server RSS < 300 MiB throughout, the user's p99 < 100 ms, RSS
#      < 150 MiB within 10 s after.
#   2. slowloris: 500 connections that never finish their headers, with a legitimate client
#      served throughout; then again with the server under `ulimit -n 256`. Target: every one
#      closed within the header deadline (10 s), the legitimate client never refused.
#   3. brute force: one address guesses one user's password for 60 s. Targets: < 10 guesses a
#      minute get a password check once the back-off started; the right password is refused
#      during the back-off and accepted after it.
#
#   bash scripts/bench/hostile.sh            # builds the release binary first
#   STATESEAL_BIN=path/to/stateseal bash scripts/bench/hostile.sh
#   FLOOD_SECONDS=30 BRUTE_SECONDS=60 bash scripts/bench/hostile.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-python3}
FLOOD_SECONDS=${FLOOD_SECONDS:-30}
BRUTE_SECONDS=${BRUTE_SECONDS:-60}
BIN=${STATESEAL_BIN:-}
if [ -z "$BIN" ]; then
  (cd "$ROOT" && cargo build --release -p stateseal --quiet)
  BIN="$ROOT/target/release/stateseal"
fi
WORK=$(mktemp -d)
SERVER_PID=
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}
cleanup() { stop_server; rm -rf "$WORK"; }
trap cleanup EXIT
port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# The client side holds 500+ sockets.
ulimit -n 4096 2>/dev/null || true

HASH=$(printf %s 'ci-pw' | "$BIN" serve hash-password)
cat > "$WORK/server.hcl" <<HCL
auth {
  user "ci" { password_hash = "$HASH" }
  grant {
    to    = ["ci"]
    paths = ["*"]
    allow = ["read", "write", "lock"]
  }
}
HCL

# start_server [FILE_LIMIT]: a fresh server (fresh data directory and throttle records).
start_server() {
  SP=$(port)
  rm -rf "$WORK/data"
  if [ -n "${1:-}" ]; then
    (ulimit -n "$1"; exec "$BIN" serve --listen "127.0.0.1:$SP" --data-dir "$WORK/data" --config "$WORK/server.hcl") 2>"$WORK/server.log" &
  else
    "$BIN" serve --listen "127.0.0.1:$SP" --data-dir "$WORK/data" --config "$WORK/server.hcl" 2>"$WORK/server.log" &
  fi
  SERVER_PID=$!
  for _ in $(seq 1 300); do grep -q "body limit" "$WORK/server.log" 2>/dev/null && break; sleep 0.1; done
  grep -q "body limit" "$WORK/server.log" || { cat "$WORK/server.log"; exit 1; }
  echo "  (server pid $SERVER_PID, open-file limit $(awk '/Max open files/ {print $4}' "/proc/$SERVER_PID/limits"), RSS at start $(awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' "/proc/$SERVER_PID/status"))"
}

echo "stateseal serve hostile-load benchmark; $(nproc) cores; $("$BIN" --version 2>/dev/null || echo stateseal)"

echo "1. flood: 64 connections of wrong credentials for ${FLOOD_SECONDS} s, one signed-in user"
start_server
F=$("$PY" "$ROOT/scripts/bench/hostile.py" flood "$SP" "$SERVER_PID" "$FLOOD_SECONDS" 64 ci:ci-pw)
"$PY" - "$F" <<'PYEOF'
import json, sys
f = json.loads(sys.argv[1])
print(f"   attack answers: {f['attack_answers']}")
print(f"   signed-in user: {f['user_requests']} requests, {f['user_errors']} errors {f['user_error_kinds']}, "
      f"p50 {f['user_p50_ms']} ms, p99 {f['user_p99_ms']} ms, max {f['user_max_ms']} ms (target p99 < 100 ms)")
print(f"   server RSS: {f['rss_before_mib']} MiB before, peak {f['rss_peak_mib']} MiB during (target < 300), "
      f"{f['rss_10s_after_mib']} MiB 10 s after (target < 150)")
PYEOF
echo "   password checks refused as busy (503) in the log: $(grep -c 'password-check permit' "$WORK/server.log" || true)"
stop_server

for LIMIT in "" 256; do
  if [ -z "$LIMIT" ]; then echo "2. slowloris: 500 connections, header deadline 10 s"; else echo "2b. slowloris under ulimit -n $LIMIT"; fi
  start_server "$LIMIT"
  S=$("$PY" "$ROOT/scripts/bench/hostile.py" slowloris "$SP" "$SERVER_PID" 500 10)
  "$PY" - "$S" <<'PYEOF'
import json, sys
s = json.loads(sys.argv[1])
print(f"   opened {s['opened']} of {s['slowloris_connections']} ({s['failed_to_open']} failed to open); "
      f"closed by the server {s['closed_by_server']}, within the deadline {s['closed_within_deadline']}, "
      f"longest open {s['max_seconds_open']} s, still open at the end {s['still_open_at_end']}")
print(f"   legitimate client: {s['legit_served']} served, {s['legit_failed']} failed {s['legit_error_kinds']}, "
      f"p99 {s['legit_p99_ms']} ms; server RSS {s['server_rss_mib']} MiB")
PYEOF
  stop_server
done

echo "3. brute force: one address guesses one user's password for ${BRUTE_SECONDS} s"
start_server
B=$("$PY" "$ROOT/scripts/bench/hostile.py" bruteforce "$SP" ci wrong-guess ci-pw "$BRUTE_SECONDS")
"$PY" - "$B" <<'PYEOF'
import json, sys
b = json.loads(sys.argv[1])
print(f"   password checks before the back-off: {b['checked_before_back_off']}; after it started: "
      f"{b['checked_after_back_off_started']} in {b['back_off_window_s']} s = {b['checks_per_min_after_back_off']} per minute "
      f"(target < 10); refused with 429: {b['throttled_429']}")
print(f"   right password during the back-off: {b['right_password_during_back_off']} (Retry-After {b['retry_after_s']} s); "
      f"after it: {b['right_password_after_back_off']}")
PYEOF
echo "   refusals logged with address and user: $(grep -c 'client=127.0.0.200' "$WORK/server.log" || true); lines naming the password: $(grep -c 'wrong-guess' "$WORK/server.log" || true)"
stop_server
