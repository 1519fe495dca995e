#!/usr/bin/env bash
# Benchmark of OIDC tokens (issue 22): requests per second of `GET /state/<path>` with a CI job's
# JWT (from a real oidc-provider, scripts/peers/oidc) against the same GETs with a static bearer
# token, in the same run, on one keep-alive connection each, in alternating rounds. A verified
# token is cached until its exp, so after the first request a JWT costs a SHA-256 and a lookup;
# the ratio JWT/static is the figure that holds across machines.
#
#   bash scripts/bench/oidc.sh                 # builds the release binary first
#   STATESEAL_BIN=path/to/stateseal bash scripts/bench/oidc.sh
#
# Aim (issue 22): at least 0.8x the static token's requests per second.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-python3}
REQUESTS=${REQUESTS:-2000}
ROUNDS=${ROUNDS:-5}
BIN=${STATESEAL_BIN:-}
if [ -z "$BIN" ]; then
  (cd "$ROOT" && cargo build --release -p stateseal --quiet)
  BIN="$ROOT/target/release/stateseal"
fi
(cd "$ROOT/scripts/peers/oidc" && npm ci --no-audit --no-fund --silent)
WORK=$(mktemp -d)
cleanup() {
  [ -n "${SERVER_PID:-}" ] && kill "$SERVER_PID" 2>/dev/null || true
  [ -n "${PEER_PID:-}" ] && kill "$PEER_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cat > "$WORK/peer.json" <<'JSON'
{"clients": [{"client_id": "bench", "client_secret": "bench-secret-0123456789", "ttl": 3600,
  "sub": "repo:acme/infra:ref:refs/heads/main",
  "claims": {"repository": "acme/infra", "repository_id": "4242", "ref": "refs/heads/main"}}]}
JSON
node "$ROOT/scripts/peers/oidc/peer.mjs" "$WORK/peer.json" > "$WORK/peer.out" 2>"$WORK/peer.log" &
PEER_PID=$!
for _ in $(seq 1 100); do grep -q READY "$WORK/peer.out" 2>/dev/null && break; sleep 0.1; done
ISSUER=$(awk '/READY/ {print $2}' "$WORK/peer.out")

STATIC="bench-static-token-0123456789abcdef"
SHA=$(printf %s "$STATIC" | sha256sum | cut -d' ' -f1)
cat > "$WORK/server.hcl" <<HCL
auth {
  token "static" { sha256 = "$SHA" }
  oidc "ci" {
    issuer    = "$ISSUER"
    audiences = ["stateseal"]
  }
  grant {
    to    = ["static"]
    paths = ["4242/*"]
    allow = ["read", "write", "lock"]
  }
  grant {
    oidc   = "ci"
    claims = { repository_id = "4242", ref = "refs/heads/main" }
    paths  = ["\${repository_id}/*"]
    allow  = ["read", "write", "lock"]
  }
}
HCL
SP=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" serve --listen "127.0.0.1:$SP" --data-dir "$WORK/data" --config "$WORK/server.hcl" 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$SP/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

"$PY" - "$SP" "$ISSUER" "$STATIC" "$REQUESTS" "$ROUNDS" <<'PYEOF'
import base64, http.client, json, sys, time, urllib.parse, urllib.request
port, issuer, static, n, rounds = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
basic = base64.b64encode(b"bench:bench-secret-0123456789").decode()
form = urllib.parse.urlencode({"grant_type": "client_credentials", "resource": "urn:stateseal:stateseal", "scope": "state"}).encode()
req = urllib.request.Request(issuer + "/token", data=form, headers={"authorization": "Basic " + basic})
jwt = json.load(urllib.request.urlopen(req))["access_token"]

def conn():
    return http.client.HTTPConnection("127.0.0.1", port, timeout=60)

state = json.dumps({"version": 4, "terraform_version": "1.9.0", "serial": 1, "lineage": "bench",
                    "outputs": {}, "resources": [], "check_results": None}).encode()
c = conn()
c.request("POST", "/state/4242/app", body=state, headers={"authorization": "Bearer " + static, "content-type": "application/json"})
r = c.getresponse(); r.read()
assert r.status == 200, r.status

def run(token):
    c = conn()
    h = {"authorization": "Bearer " + token}
    start = time.perf_counter()
    for _ in range(n):
        c.request("GET", "/state/4242/app", headers=h)
        r = c.getresponse(); r.read()
        assert r.status == 200, r.status
    return n / (time.perf_counter() - start)

run(static); run(jwt)  # warm-up (the JWT's first request verifies its signature)
s_rates, j_rates = [], []
for _ in range(rounds):
    s_rates.append(run(static)); j_rates.append(run(jwt))
s, j = sorted(s_rates)[len(s_rates) // 2], sorted(j_rates)[len(j_rates) // 2]
print(f"GET with a static bearer token: {s:8.0f} req/s (median of {rounds} rounds of {n})")
print(f"GET with an OIDC JWT:           {j:8.0f} req/s")
print(f"ratio JWT/static: {j / s:.2f}x (aim >= 0.80x)")
PYEOF
