#!/usr/bin/env bash
# Benchmark of `stateseal serve` (issue 10): 1 MiB states, encryption on (pbkdf2 + aes_gcm),
# the embedded data directory, GETs at concurrency 1, 8 and 32, and lock + write + unlock
# cycles at concurrency 8; against nginx (Debian's package) serving the same 1 MiB file with
# the same client in the same run. The ratio to nginx is the figure that holds across machines.
#
#   bash scripts/bench/serve.sh            # builds the release binary first
#   STATESEAL_BIN=path/to/stateseal bash scripts/bench/serve.sh
#
# Prints one line per measurement and the server's peak RSS. Targets (issue 10): >= 300 GET/s
# at concurrency 8; cycle p99 <= 50 ms at concurrency 8; peak RSS <= 200 MiB.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-python3}
GETS=${GETS:-400}
CYCLES=${CYCLES:-160}
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
curl -sf -X POST --data-binary @"$WORK/state.json" "http://127.0.0.1:$SP/state/bench/one" >/dev/null

mkdir -p "$WORK/www"
cp "$WORK/state.json" "$WORK/www/one"
NP=$(port)
cat > "$WORK/nginx.conf" <<NGX
worker_processes auto;
user root;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  server { listen 127.0.0.1:$NP; root $WORK/www; location / { default_type application/json; } }
}
NGX
nginx -c "$WORK/nginx.conf" -p "$WORK"
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$NP/one" >/dev/null && break; sleep 0.1; done

echo "stateseal serve benchmark: 1 MiB states, encryption on, data directory; $(nproc) cores"
for c in 1 8 32; do
  S=$("$PY" "$ROOT/scripts/bench/loadgen.py" get "http://127.0.0.1:$SP/state/bench/one" "$c" "$GETS")
  N=$("$PY" "$ROOT/scripts/bench/loadgen.py" get "http://127.0.0.1:$NP/one" "$c" "$GETS")
  "$PY" - "$c" "$S" "$N" <<'PYEOF'
import json, sys
c, s, n = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
print(f"GET c={c:>2}: stateseal {s['rps']:>7} req/s p50 {s['p50_ms']:>7} ms p99 {s['p99_ms']:>7} ms | "
      f"nginx {n['rps']:>7} req/s p50 {n['p50_ms']:>7} ms p99 {n['p99_ms']:>7} ms | "
      f"throughput ratio {s['rps'] / n['rps']:.2f}")
PYEOF
done
C=$("$PY" "$ROOT/scripts/bench/loadgen.py" cycle "http://127.0.0.1:$SP/state/bench/cycle" 8 "$CYCLES" "$WORK/state.json")
"$PY" - "$C" <<'PYEOF'
import json, sys
c = json.loads(sys.argv[1])
print(f"lock+write+unlock c= 8: {c['rps']} cycles/s p50 {c['p50_ms']} ms p99 {c['p99_ms']} ms")
PYEOF
echo "server peak RSS: $(awk '/VmHWM/ {printf "%.1f MiB", $2/1024}' "/proc/$SERVER_PID/status")"
