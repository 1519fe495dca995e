"""Times `stateseal rekey s3://BUCKET/PREFIX --apply` from an old AWS KMS key to a new one.

Set-up (not timed): one bucket with a lock table, two KMS keys, and N states encrypted with the
old key, each by its own `stateseal encrypt` process (so each carries its own data key, as
states written by separate runs do). The N objects are copied under a second prefix, so the two
runs start from identical states: prefix `c8/` is rekeyed with --concurrency 8 and `c1/` with
--concurrency 1, one whole process each, on the same moto. Then `audit --require primary`
must pass for both. Prints states/s and the ratio.

moto serves every request from one Python process, so it is measured too: its CPU time during
each run (from /proc) is work that no client concurrency can overlap, which bounds the ratio
at (wall time at --concurrency 1) / (moto's CPU time at --concurrency 8). The script prints that
ceiling next to the ratio.
"""

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import time

import boto3

STATE = '{"version":4,"terraform_version":"1.9.0","serial":%d,"lineage":"bench-%d","outputs":{},"resources":[]}\n'


def kms_provider(name, key_id, endpoint):
    return f"""
key_provider "aws_kms" "{name}" {{
  kms_key_id = "{key_id}"
  key_spec   = "AES_256"
  region     = "us-east-1"
  access_key = "testing"
  secret_key = "testing"
  endpoints {{
    kms = "{endpoint}"
    sts = "{endpoint}"
  }}
}}
method "aes_gcm" "{name}" {{
  keys = key_provider.aws_kms.{name}
}}
"""


def backend(bucket, table, endpoint):
    return f"""terraform {{
  backend "s3" {{
    bucket = "{bucket}"
    key    = "unused"
    region = "us-east-1"
    dynamodb_table = "{table}"
    endpoints = {{
      s3       = "{endpoint}"
      dynamodb = "{endpoint}"
      sts      = "{endpoint}"
    }}
    use_path_style              = true
    skip_credentials_validation = true
    skip_requesting_account_id  = true
    skip_metadata_api_check     = true
    skip_region_validation      = true
    access_key                  = "testing"
    secret_key                  = "testing"
  }}
}}
"""


def moto_cpu_seconds(endpoint):
    """CPU time (user + system) moto's server process has used so far."""
    port = endpoint.rsplit(":", 1)[1]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, ".peers", f"moto-{port}.pid")) as f:
        pid = f.read().strip()
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--states", type=int, default=1000)
    args = ap.parse_args()
    ep = args.endpoint
    kw = dict(endpoint_url=ep, region_name="us-east-1",
              aws_access_key_id="testing", aws_secret_access_key="testing")
    s3 = boto3.client("s3", **kw)
    ddb = boto3.client("dynamodb", **kw)
    kms = boto3.client("kms", **kw)
    bucket, table = "fleet-bench", "fleet-bench-locks"
    s3.create_bucket(Bucket=bucket)
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}])
    old = kms.create_key()["KeyMetadata"]["Arn"]
    new = kms.create_key()["KeyMetadata"]["Arn"]

    d = tempfile.mkdtemp(prefix="fleet-bench-")
    with open(os.path.join(d, "old.hcl"), "w") as f:
        f.write(kms_provider("old", old, ep) + "state { method = method.aes_gcm.old }\n")
    with open(os.path.join(d, "rotate.hcl"), "w") as f:
        f.write(kms_provider("old", old, ep) + kms_provider("new", new, ep)
                + "state {\n  method = method.aes_gcm.new\n  fallback { method = method.aes_gcm.old }\n}\n")
    with open(os.path.join(d, "main.tf"), "w") as f:
        f.write(backend(bucket, table, ep))

    def seed(i):
        plain = os.path.join(d, f"s{i}.json")
        with open(plain, "w") as f:
            f.write(STATE % (i + 1, i))
        out = subprocess.run([args.bin, "--chdir", d, "--config", "old.hcl", "encrypt", plain],
                             capture_output=True, check=True).stdout
        os.remove(plain)
        for prefix in ("c8", "c1"):
            s3.put_object(Bucket=bucket, Key=f"{prefix}/svc{i}/terraform.tfstate", Body=out)

    t = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        list(ex.map(seed, range(args.states)))
    print(f"seeded {args.states} states x 2 prefixes in {time.monotonic() - t:.1f} s", file=sys.stderr)

    results = {}
    moto_cpu = {}
    for conc, prefix in ((8, "c8"), (1, "c1")):
        cpu = moto_cpu_seconds(ep)
        t = time.monotonic()
        p = subprocess.run([args.bin, "--chdir", d, "--config", "rotate.hcl", "rekey",
                            f"s3://{bucket}/{prefix}/", "--apply", "--concurrency", str(conc), "--json"],
                           capture_output=True)
        secs = time.monotonic() - t
        moto_cpu[conc] = moto_cpu_seconds(ep) - cpu
        if p.returncode != 0:
            sys.exit(f"rekey --concurrency {conc} failed ({p.returncode}): {p.stderr.decode()[-2000:]}")
        summary = json.loads(p.stdout)["summary"]
        assert summary["rekeyed"] == args.states, summary
        audit = subprocess.run([args.bin, "--chdir", d, "--config", "rotate.hcl", "audit",
                                f"s3://{bucket}/{prefix}/", "--require", "primary"],
                               capture_output=True)
        assert audit.returncode == 0, audit.stderr.decode()[-2000:]
        results[conc] = secs
        print(f"--concurrency {conc}: {args.states} states in {secs:.2f} s = {args.states / secs:.1f} states/s"
              f" (moto busy {moto_cpu[conc]:.2f} s of CPU = {100 * moto_cpu[conc] / secs:.0f}% of one core)")
    print(f"ratio (concurrency 8 vs 1): {results[1] / results[8]:.2f}x;"
          f" ceiling set by moto's CPU time: {results[1] / moto_cpu[8]:.2f}x")


if __name__ == "__main__":
    main()
