"""Times `stateseal rekey s3://BUCKET/PREFIX --apply` from an old AWS KMS key to a new one, at
--concurrency 1, 8 and 32, through a real network delay.

Set-up (not timed): one bucket with a lock table, two KMS keys, and N states encrypted with the
old key, each by its own `stateseal encrypt` process (so each carries its own data key, as
states written by separate runs do). The N objects are copied under one prefix per concurrency,
so every run starts from identical states; each is one whole process on the same moto. Then
`audit --require primary` must pass for each. Prints states/s, the ratios against
--concurrency 1, and the requests per state (moto's request log).

Latency: real S3 and KMS answer in 10-30 ms and concurrency exists to hide that, while moto
answers in microseconds. So every request stateseal makes goes through toxiproxy (Shopify's
fault proxy, scripts/peers/toxiproxy.sh) with a latency toxic of --latency-ms (default 20) on the
way to moto; the injected delay is measured (a HEAD through the proxy against one straight to
moto) and printed.

moto serves every request from one Python process, so it is measured too: its CPU time during
each run (from /proc) is work that no client concurrency can overlap, which bounds the ratio
at (wall time at --concurrency 1) / (moto's CPU time at --concurrency N). The script prints that
ceiling next to each ratio.
"""

import argparse
import concurrent.futures
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

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


def moto_settings(endpoint, indent):
    """The S3 settings that point a backend block (or the server's `storage "s3"`) at moto
    with its test credentials, indented by `indent` spaces."""
    lines = f"""endpoints = {{
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
"""
    return "".join(" " * indent + line + "\n" for line in lines.splitlines())


def backend(bucket, table, endpoint):
    return f"""terraform {{
  backend "s3" {{
    bucket = "{bucket}"
    key    = "unused"
    region = "us-east-1"
    dynamodb_table = "{table}"
{moto_settings(endpoint, 4)}  }}
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


def moto_requests(endpoint):
    """How many requests moto has logged so far."""
    port = endpoint.rsplit(":", 1)[1]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, ".peers", f"moto-{port}.log"), errors="replace") as f:
        return sum(1 for line in f if '"' in line and " HTTP/1.1\" " in line)


class Toxiproxy:
    """A toxiproxy server on 127.0.0.1 with one proxy to `upstream` and a latency toxic."""

    def __init__(self, upstream, latency_ms):
        binary = subprocess.run(["bash", "scripts/peers/toxiproxy.sh"], capture_output=True,
                                text=True, check=True).stdout.strip()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.api_port = s.getsockname()[1]
        self.proc = subprocess.Popen([binary, "-host", "127.0.0.1", "-port", str(self.api_port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.api = f"http://127.0.0.1:{self.api_port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(self.api + "/version", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        up = upstream.split("://", 1)[1]
        proxy = self.post("/proxies", {"name": "moto", "listen": "127.0.0.1:0", "upstream": up})
        self.endpoint = "http://" + proxy["listen"]
        self.post("/proxies/moto/toxics", {"name": "latency", "type": "latency",
                                           "stream": "upstream", "attributes": {"latency": latency_ms}})

    def post(self, path, body):
        req = urllib.request.Request(self.api + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.load(r)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def round_trip_ms(endpoint, bucket):
    """The median time of 20 HeadBucket requests to `endpoint`, in milliseconds."""
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.head_bucket(Bucket=bucket)
    times = []
    for _ in range(20):
        t = time.monotonic()
        s3.head_bucket(Bucket=bucket)
        times.append((time.monotonic() - t) * 1000)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--states", type=int, default=1000)
    ap.add_argument("--latency-ms", type=int, default=20)
    ap.add_argument("--concurrency", default="1,8,32")
    args = ap.parse_args()
    direct = args.endpoint
    levels = [int(c) for c in args.concurrency.split(",")]
    kw = dict(endpoint_url=direct, region_name="us-east-1",
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

    proxy = Toxiproxy(direct, args.latency_ms) if args.latency_ms > 0 else None
    ep = proxy.endpoint if proxy else direct
    try:
        if proxy:
            straight, through = round_trip_ms(direct, bucket), round_trip_ms(ep, bucket)
            print(f"latency injected by toxiproxy: {through - straight:.1f} ms per request"
                  f" (HeadBucket median {through:.1f} ms through it, {straight:.1f} ms straight to moto;"
                  f" toxic: {args.latency_ms} ms)")
        run(args, levels, bucket, table, old, new, direct, ep, s3)
    finally:
        if proxy:
            proxy.stop()


def run(args, levels, bucket, table, old, new, direct, ep, s3):
    d = tempfile.mkdtemp(prefix="fleet-bench-")
    with open(os.path.join(d, "old.hcl"), "w") as f:
        f.write(kms_provider("old", old, direct) + "state { method = method.aes_gcm.old }\n")
    with open(os.path.join(d, "rotate.hcl"), "w") as f:
        f.write(kms_provider("old", old, ep) + kms_provider("new", new, ep)
                + "state {\n  method = method.aes_gcm.new\n  fallback { method = method.aes_gcm.old }\n}\n")
    with open(os.path.join(d, "main.tf"), "w") as f:
        f.write(backend(bucket, table, ep))
    seed_dir = os.path.join(d, "seed")
    os.mkdir(seed_dir)
    with open(os.path.join(seed_dir, "main.tf"), "w") as f:
        f.write(backend(bucket, table, direct))

    def seed(i):
        plain = os.path.join(d, f"s{i}.json")
        with open(plain, "w") as f:
            f.write(STATE % (i + 1, i))
        out = subprocess.run([args.bin, "--chdir", d, "--config", "old.hcl", "encrypt", plain],
                             capture_output=True, check=True).stdout
        os.remove(plain)
        for c in levels:
            s3.put_object(Bucket=bucket, Key=f"c{c}/svc{i}/terraform.tfstate", Body=out)

    t = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        list(ex.map(seed, range(args.states)))
    print(f"seeded {args.states} states x {len(levels)} prefixes in {time.monotonic() - t:.1f} s", file=sys.stderr)

    results, moto_cpu, requests = {}, {}, {}
    for conc in levels:
        prefix = f"c{conc}"
        cpu, logged = moto_cpu_seconds(direct), moto_requests(direct)
        t = time.monotonic()
        p = subprocess.run([args.bin, "--chdir", d, "--config", "rotate.hcl", "rekey",
                            f"s3://{bucket}/{prefix}/", "--apply", "--concurrency", str(conc), "--json"],
                           capture_output=True)
        secs = time.monotonic() - t
        moto_cpu[conc] = moto_cpu_seconds(direct) - cpu
        requests[conc] = (moto_requests(direct) - logged) / args.states
        if p.returncode != 0:
            sys.exit(f"rekey --concurrency {conc} failed ({p.returncode}): {p.stderr.decode()[-2000:]}")
        summary = json.loads(p.stdout)["summary"]
        assert summary["rekeyed"] == args.states, summary
        audit = subprocess.run([args.bin, "--chdir", seed_dir, "--config", os.path.join(d, "rotate.hcl"),
                                "audit", f"s3://{bucket}/{prefix}/", "--require", "primary"],
                               capture_output=True)
        assert audit.returncode == 0, audit.stderr.decode()[-2000:]
        results[conc] = secs
        print(f"--concurrency {conc}: {args.states} states in {secs:.2f} s = {args.states / secs:.1f} states/s;"
              f" {requests[conc]:.1f} requests per state (moto busy {moto_cpu[conc]:.2f} s of CPU"
              f" = {100 * moto_cpu[conc] / secs:.0f}% of one core)")
    base = levels[0]
    for conc in levels[1:]:
        ceiling = results[base] / moto_cpu[conc]
        ratio = results[base] / results[conc]
        print(f"ratio --concurrency {conc} vs {base}: {ratio:.2f}x;"
              f" ceiling set by moto's CPU time: {ceiling:.2f}x ({100 * ratio / ceiling:.0f}% of it)")


if __name__ == "__main__":
    main()
