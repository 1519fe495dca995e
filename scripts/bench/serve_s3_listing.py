"""Listings of `stateseal serve` on `storage "s3"`, cold and warm (run by serve_s3_listing.sh).

Puts N small states straight into a versioned bucket on moto (as Terraform writes them), locks
a tenth of them with DynamoDB items and a hundredth with lock files alone, starts the server on
the bucket, and times:

* cold: the first walk of every page of `GET /ui/states` by a fresh server instance (every
  object read once), then `GET /v1/states` (all states at once) by another fresh instance;
* warm: the same requests again (median of --rounds), nothing changed.

Beside each: moto's CPU time during it (moto serves every request from one Python process, so
a cold listing is bounded by it) and moto's request count from its log.
"""

import argparse
import concurrent.futures
import http.client
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import boto3

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet_rekey import moto_cpu_seconds, moto_requests, moto_settings  # noqa: E402


def storage_block(bucket, table, endpoint):
    return f"""storage "s3" {{
  bucket         = "{bucket}"
  region         = "us-east-1"
  dynamodb_table = "{table}"
  use_lockfile   = true
{moto_settings(endpoint, 2)}}}
"""


def state(i):
    return (
        '{"version": 4, "terraform_version": "1.15.5", "serial": 1, '
        f'"lineage": "lin-{i}", "outputs": {{"name": {{"value": "app-{i}", "type": "string"}}}}, '
        '"resources": [], "check_results": null}\n'
    ).encode()


def lock(i):
    return (
        f'{{"ID":"00000000-0000-4000-8000-{i:012d}","Operation":"OperationTypeApply","Info":"",'
        f'"Who":"runner-{i}@host","Version":"1.15.5","Created":"2026-11-30T03:04:05Z","Path":""}}'
    )


class Server:
    """`stateseal serve` on 127.0.0.1 (a free port), stopped by its PID."""

    def __init__(self, binary, config, work):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log = open(os.path.join(work, f"server-{self.port}.log"), "w")
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir",
             os.path.join(work, "data"), "--config", config],
            stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1)
                break
            except Exception:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the server did not start: see {self.log.name}")
                time.sleep(0.1)
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)

    def get(self, path):
        self.conn.request("GET", path)
        r = self.conn.getresponse()
        body = r.read()
        assert r.status == 200, (path, r.status, body[:300])
        return body

    def walk_pages(self):
        """Every page of /ui/states; the number of rows seen."""
        path, rows = "/ui/states", 0
        while path:
            body = self.get(path).decode()
            rows += body.count("<tr>") - 1
            after = body.split('rel="next" href="', 1)
            path = after[1].split('"', 1)[0].replace("&amp;", "&") if len(after) > 1 else None
        return rows

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


def measured(endpoint, what):
    """(seconds, moto CPU seconds, moto requests, result) of what()."""
    cpu, logged = moto_cpu_seconds(endpoint), moto_requests(endpoint)
    t = time.monotonic()
    result = what()
    secs = time.monotonic() - t
    return secs, moto_cpu_seconds(endpoint) - cpu, moto_requests(endpoint) - logged, result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--states", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    ep, n = args.endpoint, args.states
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name="us-east-1")
    s3 = session.client("s3", endpoint_url=ep)
    ddb = session.client("dynamodb", endpoint_url=ep)
    bucket, table = f"listing-{os.getpid()}", f"listing-locks-{os.getpid()}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}])

    def put(i):
        key = f"team-{i % 10}/app-{i:05d}"
        s3.put_object(Bucket=bucket, Key=key, Body=state(i))
        if i % 10 == 0:
            ddb.put_item(TableName=table, Item={"LockID": {"S": f"{bucket}/{key}"},
                                                "Info": {"S": lock(i)}})
        elif i % 100 == 1:
            s3.put_object(Bucket=bucket, Key=f"{key}.tflock", Body=lock(i).encode())

    t = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(n)))
    print(f"{n} states put into s3://{bucket} on moto in {time.monotonic() - t:.1f} s", file=sys.stderr)

    with tempfile.TemporaryDirectory() as work:
        config = os.path.join(work, "server.hcl")
        with open(config, "w") as f:
            f.write(storage_block(bucket, table, ep))
        results = {}
        for name, request in [("GET /ui/states (every page)", Server.walk_pages),
                              ("GET /v1/states", lambda s: s.get("/v1/states"))]:
            server = Server(args.bin, config, work)
            try:
                cold = measured(ep, lambda: request(server))
                warm = [measured(ep, lambda: request(server)) for _ in range(args.rounds)]
            finally:
                server.stop()
            if name.startswith("GET /ui"):
                assert cold[3] == n and all(w[3] == n for w in warm), (cold[3], n)
            results[name] = (cold, warm)

    print(f"listings of {n} states on storage \"s3\" (moto), {n // 10} locked in DynamoDB, "
          f"{len([i for i in range(n) if i % 10 and i % 100 == 1])} by a lock file alone:")
    for name, (cold, warm) in results.items():
        w = statistics.median(x[0] for x in warm)
        wcpu = statistics.median(x[1] for x in warm)
        wreq = statistics.median(x[2] for x in warm)
        print(f"  {name}")
        print(f"    cold  {cold[0]:7.2f} s   moto CPU {cold[1]:6.2f} s   moto requests {cold[2]}")
        print(f"    warm  {w:7.2f} s   moto CPU {wcpu:6.2f} s   moto requests {wreq:.0f}"
              f"   (median of {len(warm)})")
        print(f"    warm/cold {w / cold[0]:.3f}")
    ui_cold, ui_warm = results["GET /ui/states (every page)"]
    w = statistics.median(x[0] for x in ui_warm)
    print(f"  targets: /ui/states warm < 1 s: {'met' if w < 1 else 'NOT met'}; "
          f"cold < 15 s: {'met' if ui_cold[0] < 15 else 'NOT met'}")


if __name__ == "__main__":
    main()
