"""Times `stateseal state pull` of an encrypted state against boto3 GetObject of the same object.

Both sides are timed the same way, as one whole process each (what a user or a script waits
for): `python -c <boto3 GetObject + read>` and `stateseal state pull > /dev/null`. Runs
alternate, and the medians are compared. The in-process boto3 time (client already built) is
printed too, for reference.

Two encryption configurations are measured: aes_gcm keyed by pbkdf2 (OpenTofu's defaults:
600000 iterations of SHA-512, which is most of the cost by design) and aes_gcm with a literal key
(no key derivation), so the transfer and decryption overhead can be read on its own.
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

import boto3

BOTO_SNIPPET = """
import boto3, sys
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
body = s3.get_object(Bucket=sys.argv[2], Key=sys.argv[3])["Body"].read()
assert len(body) > 0
"""

CONFIGS = {
    "pbkdf2": """
    key_provider "pbkdf2" "main" {
      passphrase = "correct-horse-battery-staple"
    }
    method "aes_gcm" "main" {
      keys = key_provider.pbkdf2.main
    }""",
    "raw-key": """
    method "aes_gcm" "main" {
      keys = {
        encryption_key = [%s]
        decryption_key = [%s]
      }
    }""" % ((", ".join(str(i) for i in range(1, 33)),) * 2),
}


def make_state(size):
    rnd = random.Random(7)
    resources = []
    state = {
        "version": 4,
        "terraform_version": "1.15.5",
        "serial": 1,
        "lineage": "b0b0b0b0-0000-4000-8000-000000000001",
        "outputs": {"greeting": {"value": "hello", "type": "string"}},
        "resources": resources,
        "check_results": None,
    }
    i = 0
    while len(json.dumps(state, indent=2)) < size:
        for _ in range(100):
            blob = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(400))
            resources.append({
                "mode": "managed", "type": "terraform_data", "name": f"r{i}",
                "provider": 'provider["terraform.io/builtin/terraform"]',
                "instances": [{"schema_version": 0, "attributes": {
                    "id": f"id-{i}", "input": {"value": blob, "type": "string"},
                    "output": None, "triggers_replace": None}, "sensitive_attributes": []}],
            })
            i += 1
    return (json.dumps(state, indent=2) + "\n").encode()


def backend_tf(endpoint, bucket, body):
    return f"""terraform {{
  backend "s3" {{
    bucket = "{bucket}"
    key    = "bench/terraform.tfstate"
    region = "us-east-1"
    endpoints = {{ s3 = "{endpoint}", sts = "{endpoint}" }}
    use_path_style              = true
    use_lockfile                = true
    skip_credentials_validation = true
    access_key                  = "testing"
    secret_key                  = "testing"
  }}
  encryption {{{body}
    state {{
      method = method.aes_gcm.main
    }}
  }}
}}
"""


def timed(cmd, **kw):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kw)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--size-mib", type=float, default=10)
    a = ap.parse_args()
    s3 = boto3.client("s3", endpoint_url=a.endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    plain = make_state(int(a.size_mib * 1024 * 1024))
    print(f"plaintext state: {len(plain) / 2**20:.2f} MiB, {a.runs} runs each, medians "
          f"(release binary {a.bin})")
    env = dict(os.environ, AWS_EC2_METADATA_DISABLED="true")
    env.pop("TF_ENCRYPTION", None)
    ratios = {}
    for name, body in CONFIGS.items():
        bucket = f"bench-{name}-{os.getpid()}"
        s3.create_bucket(Bucket=bucket)
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "main.tf"), "w") as f:
                f.write(backend_tf(a.endpoint, bucket, body))
            with open(os.path.join(d, "plain.json"), "wb") as f:
                f.write(plain)
            subprocess.run([a.bin, "state", "push", "plain.json"], cwd=d, env=env, check=True,
                           stderr=subprocess.DEVNULL)
            key = "bench/terraform.tfstate"
            stored = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            assert b"encryption_version" in stored[-200:], "the stored object is an envelope"
            out = subprocess.run([a.bin, "state", "pull"], cwd=d, env=env, check=True,
                                 capture_output=True).stdout
            assert out == plain, "pull returns the pushed bytes"
            ours, boto_proc, boto_inproc = [], [], []
            for _ in range(a.runs):
                ours.append(timed([a.bin, "state", "pull"], cwd=d, env=env))
                boto_proc.append(timed([sys.executable, "-c", BOTO_SNIPPET, a.endpoint, bucket, key]))
                t = time.perf_counter()
                s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                boto_inproc.append(time.perf_counter() - t)
            m_ours, m_proc, m_in = (statistics.median(x) for x in (ours, boto_proc, boto_inproc))
            ratios[name] = m_ours / m_proc
            print(f"[{name}] object {len(stored) / 2**20:.2f} MiB: "
                  f"stateseal state pull {m_ours * 1000:.0f} ms | "
                  f"boto3 GetObject process {m_proc * 1000:.0f} ms "
                  f"(in-process, client built: {m_in * 1000:.0f} ms) | "
                  f"ratio {ratios[name]:.2f}x")
    worst = max(ratios.values())
    print(f"ratio stateseal/boto3 (whole processes): "
          + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items())
          + f"; target <= 1.5x: {'met' if worst <= 1.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
