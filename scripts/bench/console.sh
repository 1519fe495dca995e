#!/usr/bin/env bash
# Benchmark of the console's states page (issue 13): 1,000 states (a small Terraform-shaped state
# each, encryption at rest on with pbkdf2 + aes_gcm, so every row's key providers come from an
# envelope; 100 of them locked), `GET /ui/states` timed against `GET /v1/states` (the JSON API
# over the same listing) in the same run. The ratio to the JSON API is the figure that holds
# across machines; the server time is the console's own `Server-Timing` header.
#
#   bash scripts/bench/console.sh            # builds the release binary first
#   STATESEAL_BIN=path/to/stateseal bash scripts/bench/console.sh
#
# Target (issue 13): the states page for 1,000 states renders in under 200 ms server time.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-python3}
STATES=${STATES:-1000}  # at most 1,000: one page of the console
ROUNDS=${ROUNDS:-30}
BIN=${STATESEAL_BIN:-}
if [ -z "$BIN" ]; then
  (cd "$ROOT" && cargo build --release -p stateseal --quiet)
  BIN="$ROOT/target/release/stateseal"
fi
WORK=$(mktemp -d)
cleanup() {
  [ -n "${SERVER_PID:-}" ] && kill "$SERVER_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
cat > "$WORK/server.hcl" <<'HCL'
encryption {
  key_provider "pbkdf2" "main" { passphrase = "benchmark passphrase, not a secret" }
  method "aes_gcm" "main" { keys = key_provider.pbkdf2.main }
  state { method = method.aes_gcm.main }
}
HCL
SP=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" serve --listen "127.0.0.1:$SP" --data-dir "$WORK/data" --config "$WORK/server.hcl" 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$SP/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
grep -q "encryption  on" "$WORK/server.log" || { cat "$WORK/server.log"; exit 1; }

"$PY" - "$SP" "$STATES" "$ROUNDS" <<'PYEOF'
import http.client, json, statistics, sys, time
port, n, rounds = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)

def req(method, path, body=None, headers=None):
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data

for i in range(n):
    state = {"version": 4, "terraform_version": "1.15.5", "serial": 1, "lineage": f"lin-{i}",
             "outputs": {"name": {"value": f"app-{i}", "type": "string"}},
             "resources": [{"mode": "managed", "type": "terraform_data", "name": "r",
                            "instances": [{"attributes": {"id": str(i), "input": i}}]}],
             "check_results": None}
    st, _, body = req("POST", f"/state/team-{i % 10}/app-{i:04d}", json.dumps(state).encode())
    assert st == 200, body
    if i % 10 == 0:
        lock = {"ID": f"00000000-0000-4000-8000-{i:012d}", "Operation": "OperationTypeApply",
                "Info": "", "Who": f"runner-{i}@host", "Version": "1.15.5",
                "Created": "2026-11-30T03:04:05Z", "Path": ""}
        st, _, body = req("POST", f"/state/team-{i % 10}/app-{i:04d}/lock", json.dumps(lock).encode())
        assert st == 200, body

# The console shows 500 states a page unless asked for more (at most 1,000: max_keys).
ui = f"/ui/states?max_keys={n}"
# The form cookie of an anonymous visitor (no auth block), reused by every request.
st, h, body = req("GET", ui)
assert st == 200 and body.count(b"<tr>") == n + 1, (st, body[:300])
cookie = h["set-cookie"].split(";")[0]
cold = float(h["server-timing"].split("dur=")[1])

def once(path, headers):
    t = time.perf_counter()
    st, h, body = req("GET", path, headers=headers)
    assert st == 200
    server = float(h["server-timing"].split("dur=")[1]) if "server-timing" in h else None
    return (time.perf_counter() - t) * 1000, server, len(body)

# Interleaved, so that a machine busy with something else slows both sides alike.
paths = [(ui, {"cookie": cookie}), (ui + "&sort=age&dir=desc", {"cookie": cookie}),
         ("/v1/states", {})]
runs = {p: [] for p, _ in paths}
for _ in range(rounds):
    for p, hdr in paths:
        runs[p].append(once(p, hdr))
def med(p, i):
    return statistics.median(r[i] for r in runs[p])
ui_client, ui_server, ui_bytes = med(ui, 0), med(ui, 1), runs[ui][0][2]
sorted_client, sorted_server = med(ui + "&sort=age&dir=desc", 0), med(ui + "&sort=age&dir=desc", 1)
api_client, api_bytes = med("/v1/states", 0), runs["/v1/states"][0][2]
print(f"console states page, {n} states ({n // 10} locked), encryption on, median of {rounds}:")
print(f"  GET /ui/states      server {ui_server:7.1f} ms  client {ui_client:7.1f} ms  {ui_bytes} bytes"
      f"  (first render, envelopes read: {cold:.1f} ms)")
print(f"  GET /ui/states?sort=age&dir=desc  server {sorted_server:7.1f} ms  client {sorted_client:7.1f} ms")
print(f"  GET /v1/states      client {api_client:7.1f} ms  {api_bytes} bytes (baseline: the JSON API)")
print(f"  ratio console/JSON API (client time): {ui_client / api_client:.2f}")
print(f"  target: server time < 200 ms: {'met' if ui_server < 200 else 'NOT met'}")
PYEOF
