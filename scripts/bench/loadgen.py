#!/usr/bin/env python3
"""Load generator for scripts/bench/serve.sh: keep-alive HTTP/1.1 clients on threads.

  loadgen.py get URL CONCURRENCY REQUESTS
      GETs of one URL; prints {"p50_ms", "p99_ms", "rps", "bytes"} as JSON.
  loadgen.py cycle BASE CONCURRENCY CYCLES BODY_FILE
      each client owns state BASE/c<N> and runs LOCK, POST ?ID= (serial + 1), UNLOCK;
      prints the cycle latencies the same way.
"""
import base64, hashlib, http.client, json, sys, threading, time, urllib.parse


def conn_for(url):
    u = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=120), u.path


def request(c, method, path, body=None):
    headers = {}
    if body is not None:
        headers = {"Content-Type": "application/json",
                   "Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()}
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    return r.status, data


def summary(lat, elapsed, total_bytes):
    lat.sort()
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000
    return {"n": len(lat), "p50_ms": round(pick(0.50), 2), "p99_ms": round(pick(0.99), 2),
            "rps": round(len(lat) / elapsed, 1), "bytes": total_bytes}


def run(workers):
    threads = [threading.Thread(target=w) for w in workers]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def get(url, conc, n):
    lat, sizes, lock = [], [0], threading.Lock()
    def worker():
        c, path = conn_for(url)
        mine = []
        got = 0
        for _ in range(max(1, -(-n // conc))):
            t = time.perf_counter()
            status, data = request(c, "GET", path)
            mine.append(time.perf_counter() - t)
            assert status == 200, status
            got += len(data)
        with lock:
            lat.extend(mine)
            sizes[0] += got
    elapsed = run([worker] * conc)
    return summary(lat, elapsed, sizes[0])


def cycle(base, conc, n, body_file):
    template = open(body_file, "rb").read()
    lat, lock = [], threading.Lock()
    def worker(i):
        c, path = conn_for(f"{base}/c{i}")
        serial = 1
        status, _ = request(c, "POST", path, template.replace(b'"serial":1,', b'"serial":1,', 1))
        assert status == 200, status
        mine = []
        for k in range(max(1, -(-n // conc))):
            lid = f"{i:08x}-{k:04x}-0000-0000-000000000000"
            info = json.dumps({"ID": lid, "Operation": "OperationTypeApply", "Info": "", "Who": "bench@local",
                               "Version": "1.15.5", "Created": "2026-11-30T00:00:00Z", "Path": ""},
                              separators=(",", ":")).encode()
            serial += 1
            body = template.replace(b'"serial":1,', f'"serial":{serial},'.encode(), 1)
            t = time.perf_counter()
            s1, _ = request(c, "LOCK", path, info)
            s2, _ = request(c, "POST", f"{path}?ID={lid}", body)
            s3, _ = request(c, "UNLOCK", path, info)
            mine.append(time.perf_counter() - t)
            assert (s1, s2, s3) == (200, 200, 200), (s1, s2, s3)
        with lock:
            lat.extend(mine)
    elapsed = run([lambda i=i: worker(i) for i in range(conc)])
    return summary(lat, elapsed, 0)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "get":
        print(json.dumps(get(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
    elif mode == "cycle":
        print(json.dumps(cycle(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])))
    else:
        sys.exit(__doc__)
