"""Times the hardened-backend commands on moto: `bootstrap s3 --apply` (first run, then the
no-change second run), and the SSE-S3 → SSE-KMS migration `rekey s3://… --sse-only --sse-kms
ARN --apply` of N states at --concurrency 8 and 1, against the runbook's way measured in the
same run: a plain boto3 loop of self-copies (no lock, no check, no digest).

Set-up (not timed): a versioned bucket with a lock table and N states written with SSE-S3 under
three prefixes (c8/, c1/, runbook/). After each stateseal run `verify --kms-key ARN` must pass.
Prints seconds, states/s and the ratios.
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

from fleet_rekey import STATE, backend


def timed(cmd):
    t = time.monotonic()
    p = subprocess.run(cmd, capture_output=True)
    secs = time.monotonic() - t
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd[3:6])} failed ({p.returncode}): {p.stderr.decode()[-2000:]}")
    return secs, p.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--states", type=int, default=500)
    args = ap.parse_args()
    ep, n = args.endpoint, args.states
    kw = dict(endpoint_url=ep, region_name="us-east-1",
              aws_access_key_id="testing", aws_secret_access_key="testing")
    s3 = boto3.client("s3", **kw)
    ddb = boto3.client("dynamodb", **kw)
    bucket, table = "sse-bench", "sse-bench-locks"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}])
    d = tempfile.mkdtemp(prefix="sse-bench-")
    with open(os.path.join(d, "main.tf"), "w") as f:
        # stateseal also reads a kms endpoint here (bootstrap creates the key).
        f.write(backend(bucket, table, ep).replace(
            f'sts      = "{ep}"', f'sts      = "{ep}"\n      kms      = "{ep}"'))
    ss = [args.bin, "--chdir", d]

    first, out = timed(ss + ["bootstrap", "s3", "--bucket", "sse-bench-boot", "--apply", "--json"])
    arn = json.loads(out)["kms_key_arn"]
    second, out = timed(ss + ["bootstrap", "s3", "--bucket", "sse-bench-boot", "--apply", "--json"])
    assert json.loads(out)["summary"]["create"] + json.loads(out)["summary"]["change"] == 0
    print(f"bootstrap --apply: first run {first:.2f} s (10 changes), second run {second:.2f} s (no changes)")

    def seed(i):
        for prefix in ("c8", "c1", "runbook"):
            s3.put_object(Bucket=bucket, Key=f"{prefix}/svc{i}/terraform.tfstate",
                          Body=STATE % (i + 1, i), ServerSideEncryption="AES256")

    t = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        list(ex.map(seed, range(n)))
    print(f"seeded {n} SSE-S3 states x 3 prefixes in {time.monotonic() - t:.1f} s", file=sys.stderr)

    results = {}
    for conc, prefix in ((8, "c8"), (1, "c1")):
        url = f"s3://{bucket}/{prefix}/"
        secs, out = timed(ss + ["rekey", url, "--sse-only", "--sse-kms", arn, "--apply",
                                "--concurrency", str(conc), "--json"])
        summary = json.loads(out)["summary"]
        assert summary["copied"] == n, summary
        timed(ss + ["verify", url, "--kms-key", arn])
        results[conc] = secs
        print(f"rekey --sse-only --concurrency {conc}: {n} states in {secs:.2f} s = {n / secs:.1f} states/s")

    t = time.monotonic()
    for i in range(n):
        key = f"runbook/svc{i}/terraform.tfstate"
        s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": key},
                       ServerSideEncryption="aws:kms", SSEKMSKeyId=arn, MetadataDirective="REPLACE")
    loop = time.monotonic() - t
    print(f"baseline (boto3 self-copy loop, no lock/check): {n} states in {loop:.2f} s = {n / loop:.1f} states/s")
    print(f"ratio (concurrency 8 vs 1): {results[1] / results[8]:.2f}x")
    print(f"ratio (concurrency 8 vs the boto3 loop): {loop / results[8]:.2f}x")


if __name__ == "__main__":
    main()
