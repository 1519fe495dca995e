"""Times recovery keys against their baselines on one moto (see recovery.sh).

1. Two local-backend directories hold the same resources: one encrypted through
   `stateseal keyprovider --kms K --recipient R` (an OpenTofu external key provider: one extra
   process per run, a KMS Decrypt of the stored wrap, a KMS Encrypt and an age wrap of a new key),
   one through the built-in aws_kms provider on K (GenerateDataKey and Decrypt). `tofu plan
   -lock=false` runs alternate between them; the medians are compared.
2. One envelope written through the keyprovider is stored under N keys; `stateseal dr drill`
   of the bucket (the identity only, KMS unreachable) is timed against `stateseal audit` of the
   same bucket (the same listing and reads, no decryption).
"""

import argparse
import concurrent.futures
import os
import statistics
import subprocess
import sys
import tempfile
import time

import boto3

from fleet_rekey import backend

RESOURCES = """
resource "terraform_data" "app" {
  count = 20
  input = "value ${count.index}"
}
"""


def encryption(body, provider):
    """The encryption block: `body` (one key provider) feeding one aes_gcm method."""
    return f"""terraform {{
  encryption {{{body}
    method "aes_gcm" "rk" {{
      keys = key_provider.{provider}
    }}
    state {{
      method = method.aes_gcm.rk
    }}
  }}
}}
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--states", type=int, default=1000)
    args = ap.parse_args()
    ep, tofu = args.endpoint, os.environ["BENCH_TOFU"]
    kw = dict(endpoint_url=ep, region_name="us-east-1",
              aws_access_key_id="testing", aws_secret_access_key="testing")
    kms = boto3.client("kms", **kw)
    key = kms.create_key()["KeyMetadata"]["Arn"]
    env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_REGION="us-east-1", AWS_ENDPOINT_URL_KMS=ep, AWS_ENDPOINT_URL_STS=ep,
               AWS_EC2_METADATA_DISABLED="true", TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1")
    work = tempfile.mkdtemp(prefix="recovery-bench-")
    ident = os.path.join(work, "identity.txt")
    recipient = subprocess.run([args.bin, "dr", "keygen", "--output", ident], capture_output=True,
                               check=True, text=True).stdout.strip()

    ours = f'''
    key_provider "external" "rk" {{
      command = ["{args.bin}", "keyprovider", "--kms", "{key}", "--recipient", "{recipient}"]
    }}'''
    builtin = f'''
    key_provider "aws_kms" "rk" {{
      kms_key_id = "{key}"
      key_spec   = "AES_256"
      region     = "us-east-1"
    }}'''
    dirs = {}
    for label, body, name in (("keyprovider", ours, "external.rk"), ("aws_kms", builtin, "aws_kms.rk")):
        d = os.path.join(work, label)
        os.mkdir(d)
        with open(os.path.join(d, "main.tf"), "w") as f:
            f.write(encryption(body, name) + RESOURCES)
        for cmd in (["init", "-no-color"], ["apply", "-auto-approve", "-no-color"]):
            p = subprocess.run([tofu] + cmd, cwd=d, env=env, capture_output=True, text=True)
            if p.returncode != 0:
                sys.exit(f"tofu {cmd} in {label} failed:\n{p.stdout}{p.stderr}")
        dirs[label] = d

    times = {label: [] for label in dirs}
    for _ in range(args.runs):
        for label, d in dirs.items():
            t = time.monotonic()
            p = subprocess.run([tofu, "plan", "-lock=false", "-no-color", "-detailed-exitcode"],
                               cwd=d, env=env, capture_output=True, text=True)
            times[label].append(time.monotonic() - t)
            if p.returncode != 0:
                sys.exit(f"tofu plan in {label} exited {p.returncode}:\n{p.stdout}{p.stderr}")
    med = {label: statistics.median(v) for label, v in times.items()}
    for label, m in med.items():
        print(f"tofu plan through {label}: median {m * 1000:.0f} ms of {args.runs} runs")
    ratio = med["keyprovider"] / med["aws_kms"]
    print(f"ratio keyprovider / aws_kms: {ratio:.2f}x (aim: at most 1.2x) {'OK' if ratio <= 1.2 else 'MISSED'}")

    # The drill: one keyprovider envelope under N keys.
    s3 = boto3.client("s3", **kw)
    ddb = boto3.client("dynamodb", **kw)
    bucket, table = "recovery-bench", "recovery-bench-locks"
    s3.create_bucket(Bucket=bucket)
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}])
    with open(os.path.join(dirs["keyprovider"], "terraform.tfstate"), "rb") as f:
        envelope = f.read()
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda i: s3.put_object(Bucket=bucket, Key=f"svc{i}/terraform.tfstate",
                                            Body=envelope), range(args.states)))
    ctl = os.path.join(work, "ctl")
    os.mkdir(ctl)
    with open(os.path.join(ctl, "main.tf"), "w") as f:
        f.write(backend(bucket, table, ep))
    no_kms = dict(env, AWS_ENDPOINT_URL_KMS="http://127.0.0.1:1")
    rates = {}
    for label, cmd in (("audit", ["audit", f"s3://{bucket}", "--json"]),
                       ("dr drill", ["dr", "drill", f"s3://{bucket}", "--identity", ident, "--json"])):
        t = time.monotonic()
        p = subprocess.run([args.bin, "--chdir", ctl] + cmd, env=no_kms, capture_output=True)
        secs = time.monotonic() - t
        if p.returncode != 0:
            sys.exit(f"{label} failed ({p.returncode}): {p.stderr.decode()[-2000:]}")
        rates[label] = args.states / secs
        print(f"{label} of {args.states} states: {secs:.2f} s = {rates[label]:.0f} states/s")
    print(f"dr drill / audit (states/s): {rates['dr drill'] / rates['audit']:.2f}x")


if __name__ == "__main__":
    main()
