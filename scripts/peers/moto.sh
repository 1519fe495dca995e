#!/usr/bin/env bash
# Start and stop moto_server (AWS emulator) instances on 127.0.0.1.
#
#   moto.sh start [PORT]   start one (default: a free port); prints http://127.0.0.1:PORT on stdout
#   moto.sh stop PORT|all  stop by the PID file .peers/moto-PORT.pid (never by process name)
#   moto.sh url [PORT]     print the URL of a running instance (without PORT: the only one)
#   moto.sh list           print "PORT PID" for every instance with a PID file
#
# Needs the venv (bash scripts/peers/venv.sh). Files: .peers/moto-PORT.pid, .peers/moto-PORT.log.
# moto inherits the caller's environment, so moto settings go there, e.g. an
# IAM-enforcing instance: INITIAL_NO_AUTH_ACTION_COUNT=0 moto.sh start
# MOTO_START_TIMEOUT (seconds, default 30) bounds the wait for the health check.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/.venv"
peers="$root/.peers"
timeout_s="${MOTO_START_TIMEOUT:-30}"

die() { printf 'moto.sh: error: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

is_port() { [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le 65535 ]; }

# True when PID is alive and still a moto_server for PORT (guards against PID reuse).
is_our_moto() {
  local pid="$1" port="$2" cmd
  [ -r "/proc/$pid/cmdline" ] || return 1
  cmd="$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmd" == *moto_server* && "$cmd" == *" -p $port "* ]]
}

free_port() {
  "$venv/bin/python" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# Wait until GET /moto-api/data.json answers, or the process dies, or the timeout passes.
# Exit status: 0 ready, 3 process died, 4 timeout.
wait_ready() {
  "$venv/bin/python" - "$1" "$2" "$timeout_s" <<'PY'
import os, sys, time, urllib.request
pid, port, timeout = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
url = f"http://127.0.0.1:{port}/moto-api/data.json"
deadline = time.monotonic() + timeout
while True:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200:
                sys.exit(0)
    except Exception:
        pass
    try:
        # Reap nothing (not our child); just check it still exists.
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as f:
            if f.read().split(")")[-1].split()[0] == "Z":
                sys.exit(3)
    except (ProcessLookupError, FileNotFoundError):
        sys.exit(3)
    if time.monotonic() > deadline:
        sys.exit(4)
    time.sleep(0.05)
PY
}

stop_one() {
  local port="$1" pidfile="$peers/moto-$1.pid" pid i
  if [ ! -f "$pidfile" ]; then
    printf 'moto.sh: no PID file for port %s (not running?)\n' "$port" >&2
    return 0
  fi
  pid="$(cat "$pidfile")"
  if [[ "$pid" =~ ^[0-9]+$ ]] && is_our_moto "$pid" "$port"; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
      is_our_moto "$pid" "$port" || break
      sleep 0.1
    done
    if is_our_moto "$pid" "$port"; then
      printf 'moto.sh: PID %s did not stop on SIGTERM, sending SIGKILL\n' "$pid" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    printf 'moto.sh: stopped moto on port %s (PID %s)\n' "$port" "$pid" >&2
  else
    printf 'moto.sh: PID %s for port %s is not running moto: removing the stale PID file\n' "$pid" "$port" >&2
  fi
  rm -f "$pidfile"
}

cmd_start() {
  [ -x "$venv/bin/moto_server" ] || die "$venv/bin/moto_server not found: run bash scripts/peers/venv.sh first"
  mkdir -p "$peers"
  local port="${1:-}" pick=0 attempt pid log rc t0
  if [ -n "$port" ]; then
    is_port "$port" || die "bad port '$port'"
  else
    pick=1
  fi
  t0=$(date +%s%N)
  for attempt in 1 2 3; do
    [ "$pick" = 1 ] && port="$(free_port)"
    if [ -f "$peers/moto-$port.pid" ] && is_our_moto "$(cat "$peers/moto-$port.pid")" "$port"; then
      die "moto already runs on port $port (PID $(cat "$peers/moto-$port.pid")); stop it first"
    fi
    log="$peers/moto-$port.log"
    # Detached from our stdout/stderr so that $(moto.sh start) returns at once.
    "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" </dev/null >"$log" 2>&1 &
    pid=$!
    printf '%s\n' "$pid" > "$peers/moto-$port.pid"
    rc=0
    wait_ready "$pid" "$port" || rc=$?
    if [ "$rc" = 0 ]; then
      printf 'moto.sh: moto ready on 127.0.0.1:%s (PID %s) in %s ms\n' \
        "$port" "$pid" "$(( ($(date +%s%N) - t0) / 1000000 ))" >&2
      printf 'http://127.0.0.1:%s\n' "$port"
      return 0
    fi
    if [ "$rc" = 3 ]; then
      wait "$pid" 2>/dev/null || true
      rm -f "$peers/moto-$port.pid"
      # A port picked by us may have been taken in between: try another one.
      if [ "$pick" = 1 ] && grep -q 'Address already in use' "$log" 2>/dev/null && [ "$attempt" -lt 3 ]; then
        printf 'moto.sh: port %s was taken meanwhile, retrying with another\n' "$port" >&2
        continue
      fi
      printf 'moto.sh: error: moto_server exited before answering on port %s; last lines of %s:\n' "$port" "$log" >&2
    else
      printf 'moto.sh: error: moto_server did not answer on port %s within %s s; last lines of %s:\n' "$port" "$timeout_s" "$log" >&2
      stop_one "$port" 2>/dev/null || true
    fi
    tail -n 20 "$log" | sed 's/^/  | /' >&2
    exit 1
  done
}

cmd_stop() {
  local arg="${1:-}" f
  [ -n "$arg" ] || die "usage: moto.sh stop PORT|all"
  if [ "$arg" = all ]; then
    shopt -s nullglob
    for f in "$peers"/moto-*.pid; do
      f="${f##*/moto-}"
      stop_one "${f%.pid}"
    done
    return 0
  fi
  is_port "$arg" || die "bad port '$arg'"
  stop_one "$arg"
}

running_ports() {
  shopt -s nullglob
  local f p
  for f in "$peers"/moto-*.pid; do
    p="${f##*/moto-}"; p="${p%.pid}"
    is_our_moto "$(cat "$f")" "$p" && printf '%s %s\n' "$p" "$(cat "$f")"
  done
  return 0
}

cmd_url() {
  local port="${1:-}" ports
  if [ -z "$port" ]; then
    ports="$(running_ports | cut -d' ' -f1)"
    [ -n "$ports" ] || die "no moto instance is running"
    [ "$(printf '%s\n' "$ports" | wc -l)" = 1 ] || die "several moto instances run ($(echo $ports)): give a PORT"
    port="$ports"
  fi
  is_port "$port" || die "bad port '$port'"
  [ -f "$peers/moto-$port.pid" ] && is_our_moto "$(cat "$peers/moto-$port.pid")" "$port" \
    || die "no moto instance runs on port $port"
  printf 'http://127.0.0.1:%s\n' "$port"
}

case "${1:-}" in
  start) shift; [ $# -le 1 ] || usage; cmd_start "$@" ;;
  stop)  shift; [ $# -eq 1 ] || usage; cmd_stop "$1" ;;
  url)   shift; [ $# -le 1 ] || usage; cmd_url "$@" ;;
  list)  running_ports ;;
  *) usage ;;
esac
