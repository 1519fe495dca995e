#!/usr/bin/env bash
# Benchmark of `stateseal serve` (issues 10 and 20) against nginx serving the same bytes in the
# same run, with the same GET load generator (wrk, C; scripts/bench/serve_wrk.lua), on the embedded
# data directory with encryption on (pbkdf2 + aes_gcm). Two kinds of 1 MiB state:
#
#   server-encrypted  a plaintext state the server encrypts at rest (decrypted on every GET);
#                     nginx serves the plaintext
#   client envelope   an OpenTofu envelope the client encrypted, stored as sent (1.4 MB);
#                     nginx serves the envelope
#
# For both kinds and concurrency 1, 8 and 32: GET req/s, p50 and p99 and the ratio to nginx's
# req/s; lock + write + unlock cycles (LOCK, POST ?ID= with Content-MD5, UNLOCK on one
# connection, as OpenTofu does) per second, p50, p99 and the CPU time the server and the load
# generator spent per cycle, from the Rust load generator
# crates/stateseal-server/examples/lock_write_unlock.rs (one thread, no copy of the body per
# request); then the server's peak RSS over the whole run and the targets of issue 20. The
# ratios are the figures that hold across machines.
#
#   bash scripts/bench/serve.sh                       # builds the release binary first
#   STATESEAL_BIN=path/to/stateseal bash scripts/bench/serve.sh
#   DURATION=5 bash scripts/bench/serve.sh            # seconds per measurement (default 5)
#
# Needs wrk and nginx (Debian's packages; installed when missing) and python3 (setup only).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-python3}
DURATION=${DURATION:-5}
LUA="$ROOT/scripts/bench/serve_wrk.lua"
# The lock + write + unlock load generator (a Rust example on hyper, built once; cached after).
(cd "$ROOT" && cargo build --release -p stateseal-server --example lock_write_unlock --quiet)
CYCLES="$ROOT/target/release/examples/lock_write_unlock"
if ! command -v wrk >/dev/null; then
  apt-get install -y wrk >/dev/null
fi
if ! command -v nginx >/dev/null; then
  apt-get install -y nginx-light >/dev/null 2>&1 || apt-get install -y nginx >/dev/null
fi
BIN=${STATESEAL_BIN:-}
if [ -z "$BIN" ]; then
  (cd "$ROOT" && cargo build --release -p stateseal --quiet)
  BIN="$ROOT/target/release/stateseal"
fi
WORK=$(mktemp -d)
cleanup() {
  [ -n "${SERVER_PID:-}" ] && kill "$SERVER_PID" 2>/dev/null || true
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A 1 MiB plaintext state with serial 1 (compact, as OpenTofu writes remote states).
"$PY" - "$WORK/state.json" <<'PYEOF'
import json, sys
pad = "x" * (1024 * 1024 - 200)
s = {"version": 4, "terraform_version": "1.15.5", "serial": 1, "lineage": "bench",
     "outputs": {"blob": {"value": pad, "type": "string"}}, "resources": [], "check_results": None}
open(sys.argv[1], "w").write(json.dumps(s, separators=(",", ":")) + "\n")
PYEOF
# The same state as a client's envelope (a key the server does not have).
cat > "$WORK/client.hcl" <<'HCL'
key_provider "pbkdf2" "client" { passphrase = "the client's benchmark passphrase" }
method "aes_gcm" "client" { keys = key_provider.pbkdf2.client }
state { method = method.aes_gcm.client }
HCL
"$BIN" --config "$WORK/client.hcl" encrypt "$WORK/state.json" -o "$WORK/envelope.json"
# The bodies of the write cycles: the same two with `serial` moved to the end (JSON member order
# carries no meaning), which lets the load generator hash each new body's Content-MD5 cheaply.
for f in state envelope; do
  "$PY" - "$WORK/$f.json" "$WORK/cycle-$f.json" <<'PYEOF'
import json, sys
doc = json.load(open(sys.argv[1]))
doc["serial"] = doc.pop("serial")
open(sys.argv[2], "w").write(json.dumps(doc, separators=(",", ":")) + "\n")
PYEOF
done

cat > "$WORK/server.hcl" <<'HCL'
encryption {
  key_provider "pbkdf2" "main" { passphrase = "benchmark passphrase, not a secret" }
  method "aes_gcm" "main" { keys = key_provider.pbkdf2.main }
  state { method = method.aes_gcm.main }
}
HCL
SP=$(port)
"$BIN" serve --listen "127.0.0.1:$SP" --data-dir "$WORK/data" --config "$WORK/server.hcl" 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 1 300); do grep -q "body limit" "$WORK/server.log" 2>/dev/null && break; sleep 0.1; done
grep -q "encryption  on" "$WORK/server.log" || { cat "$WORK/server.log"; exit 1; }
curl -sf -X POST --data-binary @"$WORK/state.json" "http://127.0.0.1:$SP/state/bench/server-encrypted" >/dev/null
curl -sf -X POST --data-binary @"$WORK/envelope.json" "http://127.0.0.1:$SP/state/bench/client-envelope" >/dev/null
for kind in server-encrypted client-envelope; do
  want="$WORK/state.json"
  [ "$kind" = client-envelope ] && want="$WORK/envelope.json"
  curl -sf "http://127.0.0.1:$SP/state/bench/$kind" | cmp -s - "$want" \
    || { echo "GET /state/bench/$kind does not answer the bytes stored" >&2; exit 1; }
done

mkdir -p "$WORK/www"
cp "$WORK/state.json" "$WORK/www/server-encrypted"
cp "$WORK/envelope.json" "$WORK/www/client-envelope"
NP=$(port)
cat > "$WORK/nginx.conf" <<NGX
worker_processes auto;
user root;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  server { listen 127.0.0.1:$NP; root $WORK/www; location / { default_type application/json; } }
}
NGX
nginx -c "$WORK/nginx.conf" -p "$WORK"
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$NP/server-encrypted" >/dev/null && break; sleep 0.1; done

# Reads a load generator's RESULT line: "per-second p50-ms p99-ms" (fails on any failure).
result() {
  local what=$1 out
  out=$(awk '/^RESULT/ {print $2, $3, $4, $5}')
  [ -n "$out" ] || { echo "no result for $what" >&2; exit 1; }
  set -- $out
  [ "$4" = 0 ] || { echo "$4 failed requests to $what" >&2; exit 1; }
  echo "$1 $2 $3"
}
# wrk THREADS CONNECTIONS URL: GETs.
measure() {
  wrk -t"$1" -c"$2" -d"${DURATION}s" --timeout 30s -s "$LUA" "$3" | result "$3"
}
# The server's CPU time so far (user + system), in clock ticks.
server_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
TICK=$(getconf CLK_TCK)
# CONNECTIONS BODY PATH_PREFIX: lock + write + unlock cycles, a state per connection; prints
# "cycles/s p50 p99 server-cpu-ms-per-cycle generator-cpu-ms-per-cycle".
cycles() {
  local t0 out
  t0=$(server_ticks)
  out=$(/usr/bin/time -f "%U %S" -o "$WORK/generator.time" \
    "$CYCLES" "http://127.0.0.1:$SP" "$2" "$3" "$1" "$DURATION" 2>/dev/null | result "$3")
  awk -v out="$out" -v t0="$t0" -v t1="$(server_ticks)" -v tick="$TICK" -v d="$DURATION" \
    -v gen="$(tail -n 1 "$WORK/generator.time")" 'BEGIN {
      split(out, r, " "); split(gen, g, " "); n = r[1] * d
      printf "%s %.2f %.2f\n", out, (t1 - t0) * 1000 / tick / n, (g[1] + g[2]) * 1000 / n }'
}

echo "stateseal serve benchmark: 1 MiB states, encryption on, data directory, wrk ${DURATION}s per line; $(nproc) cores"
# Warm-up (not reported).
DURATION=1 measure 2 8 "http://127.0.0.1:$SP/state/bench/server-encrypted" >/dev/null
declare -A RATIO
for kind in server-encrypted client-envelope; do
  for c in 1 8 32; do
    t=$((c < 2 ? c : 2))
    read -r s_rps s_p50 s_p99 < <(measure "$t" "$c" "http://127.0.0.1:$SP/state/bench/$kind")
    read -r n_rps n_p50 n_p99 < <(measure "$t" "$c" "http://127.0.0.1:$NP/$kind")
    RATIO[$kind-$c]=$(awk -v s="$s_rps" -v n="$n_rps" 'BEGIN {printf "%.2f", s / n}')
    printf "GET %-16s c=%-2s: stateseal %7.0f req/s p50 %6.2f ms p99 %6.2f ms | nginx %7.0f req/s p50 %6.2f ms p99 %6.2f ms | ratio %s\n" \
      "$kind" "$c" "$s_rps" "$s_p50" "$s_p99" "$n_rps" "$n_p50" "$n_p99" "${RATIO[$kind-$c]}"
  done
done
declare -A CYCLE_P99
for kind in server-encrypted client-envelope; do
  body="$WORK/cycle-state.json"
  [ "$kind" = client-envelope ] && body="$WORK/cycle-envelope.json"
  for c in 1 8 32; do
    read -r rps p50 p99 cpu gen < <(cycles "$c" "$body" "/state/bench/cycle-$kind-c$c-")
    CYCLE_P99[$kind-$c]=$p99
    printf "lock+write+unlock %-16s c=%-2s: %6.1f cycles/s p50 %6.2f ms p99 %6.2f ms | CPU per cycle: server %5.2f ms, load generator %4.2f ms\n" \
      "$kind" "$c" "$rps" "$p50" "$p99" "$cpu" "$gen"
  done
done
RSS=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$SERVER_PID/status")
echo "server peak RSS: $RSS MiB"

echo "targets (issue 20):"
target() { # description value comparison limit
  local verdict
  verdict=$(awk -v v="$2" -v l="$4" -v op="$3" 'BEGIN {ok = (op == ">=") ? (v >= l) : (v <= l); print ok ? "met" : "MISSED"}')
  printf "  %-52s %8s %s %-6s %s\n" "$1" "$2" "$3" "$4" "$verdict"
}
target "GET c=8 server-encrypted, ratio to nginx" "${RATIO[server-encrypted-8]}" ">=" 0.35
target "GET c=8 client envelope, ratio to nginx" "${RATIO[client-envelope-8]}" ">=" 0.85
target "GET c=1 server-encrypted, ratio to nginx" "${RATIO[server-encrypted-1]}" ">=" 0.35
target "lock+write+unlock c=8 server-encrypted, p99 ms" "${CYCLE_P99[server-encrypted-8]}" "<=" 25
target "server peak RSS, MiB" "$RSS" "<=" 200
