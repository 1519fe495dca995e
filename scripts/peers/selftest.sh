#!/usr/bin/env bash
# End-to-end check of the test-peer harness: venv, moto, aws.py, and real Terraform
# (tf.py) applying with an encrypted, locked S3 backend on moto.
#
#   bash scripts/peers/selftest.sh
#
# Ends with the line "selftest: N passed, M failed"; exits non-zero on any failure.
# Stops at the first failure (later steps depend on earlier ones). moto is
# stopped by its PID file on every exit path.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
py="$root/.venv/bin/python"

passed=0
failed=0
port=""
work="$(mktemp -d "${TMPDIR:-/tmp}/stateseal-selftest.XXXXXX")"

cleanup() {
  if [ -n "$port" ]; then
    bash "$here/moto.sh" stop "$port" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

summary() { printf 'selftest: %d passed, %d failed\n' "$passed" "$failed"; }

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# step NAME COMMAND...: run COMMAND with its output in $work/NAME.log; stop at the first failure.
step() {
  local name="$1" t0 rc log
  shift
  log="$work/$name.log"
  t0=$(now_ms)
  "$@" >"$log" 2>&1
  rc=$?
  if [ "$rc" = 0 ]; then
    passed=$((passed + 1))
    printf 'ok    %-28s %6d ms\n' "$name" "$(( $(now_ms) - t0 ))"
    return 0
  fi
  failed=$((failed + 1))
  printf 'FAIL  %-28s (exit %d); last lines of its output:\n' "$name" "$rc"
  tail -n 30 "$log" | sed 's/^/  | /'
  summary
  exit 1
}

aws() { "$py" "$here/aws.py" --endpoint "$endpoint" "$@"; }
tf() { "$py" "$here/tf.py" --chdir "$work/tf" -- "$@"; }

bucket="stateseal-selftest"
key="env/selftest/terraform.tfstate"
table="stateseal-selftest-locks"
alias="alias/stateseal-selftest"

# --- venv
step venv bash "$here/venv.sh"

# --- moto
start_moto() {
  endpoint="$(bash "$here/moto.sh" start)" || return 1
  port="${endpoint##*:}"
}
# Not in a subshell: it sets $endpoint and $port for the cleanup trap.
t0=$(now_ms)
if start_moto >"$work/moto-start.log" 2>&1; then
  passed=$((passed + 1))
  printf 'ok    %-28s %6d ms\n' "moto start ($port)" "$(( $(now_ms) - t0 ))"
else
  failed=$((failed + 1))
  printf 'FAIL  moto start; output:\n'; sed 's/^/  | /' "$work/moto-start.log"
  summary; exit 1
fi

# --- AWS resources on moto
setup_aws() {
  aws mkbucket "$bucket" --versioning &&
  aws mktable "$table" &&
  aws mkkey "$alias" | grep -q '^arn:aws:kms:'
}
step aws-setup setup_aws

# --- Terraform config with an encrypted, double-locked S3 backend on moto
mkdir -p "$work/tf"
cat >"$work/tf/main.tf" <<EOF
terraform {
  backend "s3" {
    bucket         = "$bucket"
    key            = "$key"
    region         = "us-east-1"
    encrypt        = true
    kms_key_id     = "$alias"
    use_lockfile   = true
    dynamodb_table = "$table"
    endpoints = {
      s3       = "$endpoint"
      dynamodb = "$endpoint"
    }
    use_path_style              = true
    skip_credentials_validation = true
    skip_requesting_account_id  = true
    skip_metadata_api_check     = true
  }
}

variable "greeting" {
  type    = string
  default = "hello from stateseal"
}

resource "terraform_data" "probe" {
  input = var.greeting
}

output "greeting" {
  value = terraform_data.probe.output
}
EOF

step tf-init tf init -input=false -no-color
step tf-apply tf apply -auto-approve -lock-timeout=0s -no-color

check_output() {
  tf output -json >"$work/out.json" &&
  "$py" - "$work/out.json" <<'PY'
import json, sys
out = json.load(open(sys.argv[1]))
assert out["greeting"]["value"] == "hello from stateseal", out
PY
}
step tf-output check_output

check_state_object() {
  aws head "$bucket" "$key" >"$work/head.json" &&
  aws get "$bucket" "$key" >"$work/state.json" &&
  "$py" - "$work/head.json" "$work/state.json" "$alias" <<'PY'
import json, sys
head = json.load(open(sys.argv[1]))
state = json.load(open(sys.argv[2]))
assert head.get("ServerSideEncryption") == "aws:kms", head
assert head.get("SSEKMSKeyId") == sys.argv[3], head  # moto echoes what Terraform sent
assert state["serial"] >= 1, state
assert any(r["type"] == "terraform_data" for r in state["resources"]), state
PY
}
step state-object-in-s3 check_state_object

check_locks_released() {
  local rc
  aws head "$bucket" "$key.tflock"; rc=$?
  [ "$rc" = 3 ] || { echo "expected no $key.tflock (exit 3), got exit $rc"; return 1; }
  aws getitem "$table" "$bucket/$key"; rc=$?
  [ "$rc" = 3 ] || { echo "expected no DynamoDB lock item (exit 3), got exit $rc"; return 1; }
  aws getitem "$table" "$bucket/$key-md5" >/dev/null   # the digest item Terraform keeps
}
step locks-released check_locks_released

# Exit codes pass through tf.py: 0 = no changes, 2 = changes (with -detailed-exitcode).
check_plan_codes() {
  local rc
  tf plan -detailed-exitcode -lock-timeout=0s -no-color; rc=$?
  [ "$rc" = 0 ] || { echo "plan without changes: expected exit 0, got $rc"; return 1; }
  tf plan -detailed-exitcode -lock-timeout=0s -no-color -var greeting=changed; rc=$?
  [ "$rc" = 2 ] || { echo "plan with changes: expected exit 2, got $rc"; return 1; }
}
step tf-plan-exit-codes check_plan_codes

# --- stop moto by PID
stop_moto() {
  local pid
  pid="$(cat "$root/.peers/moto-$port.pid")" &&
  bash "$here/moto.sh" stop "$port" &&
  [ ! -e "$root/.peers/moto-$port.pid" ] &&
  ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q moto_server &&
  rm -f "$root/.peers/moto-$port.log"   # kept only when something failed
}
step moto-stop stop_moto
port=""

summary
[ "$failed" = 0 ]
