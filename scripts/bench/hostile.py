#!/usr/bin/env python3
"""Hostile-load client for scripts/bench/hostile.sh (issue 17): every loop is bounded in time,
and all traffic goes to 127.0.0.1 (attackers use other loopback source addresses, 127.1.x.y,
which Linux routes to the same host, so per-address throttling sees many clients).

  hostile.py flood PORT PID SECONDS CONNS USER:PASSWORD
      CONNS threads send wrong Basic credentials (a fresh connection, source address and user
      name each time, so no back-off ever applies and every request asks for a password check)
      for SECONDS, while a signed-in user (USER:PASSWORD, from 127.0.0.1) GETs /v1/states every
      50 ms. Samples the server's RSS (PID). Prints JSON: attack answers by status, the user's
      p50/p99/max and errors, peak RSS during the flood, RSS 10 s after it ends.
  hostile.py slowloris PORT PID CONNS DEADLINE
      CONNS connections send a partial request header and then one byte every 2 s; a legitimate
      client GETs /healthz every 200 ms meanwhile. Prints JSON: how many were closed by the
      server and how fast, the legitimate client's successes, failures and p99.
  hostile.py bruteforce PORT USER WRONG RIGHT SECONDS
      guesses USER's password from 127.0.0.200 as fast as answers come for SECONDS; then tries
      RIGHT during the back-off, waits for Retry-After, tries RIGHT again. Prints JSON: answers
      that carried a password check (403) before and after the back-off started, per minute.
"""
import base64, http.client, json, random, socket, sys, threading, time

HOST = "127.0.0.1"


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return -1
    return -1


def one_request(port, method, path, headers, source=None, timeout=30):
    """One request on a fresh connection; returns (status, headers dict) or raises."""
    c = http.client.HTTPConnection(HOST, port, timeout=timeout,
                                   source_address=(source, 0) if source else None)
    try:
        c.request(method, path, headers=headers)
        r = c.getresponse()
        r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}
    finally:
        c.close()


def pct(lat, q):
    if not lat:
        return None
    lat = sorted(lat)
    return round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 1)


def flood(port, pid, seconds, conns, cred):
    user, password = cred.split(":", 1)
    stop = time.monotonic() + seconds
    statuses, lock = {}, threading.Lock()
    legit, legit_errors = [], []
    rss = []

    def attacker(n):
        i = 0
        while time.monotonic() < stop:
            i += 1
            src = f"127.1.{(n * 7 + i // 250) % 250 + 1}.{i % 250 + 1}"
            name = f"guess-{n}-{i}-{random.randrange(1 << 30)}"
            try:
                s, _ = one_request(port, "GET", "/v1/states",
                                   {"Authorization": basic(name, "wrong")}, source=src)
            except OSError as e:
                s = type(e).__name__
            with lock:
                statuses[s] = statuses.get(s, 0) + 1

    def signed_in():
        c = http.client.HTTPConnection(HOST, port, timeout=30)
        h = {"Authorization": basic(user, password)}
        while time.monotonic() < stop:
            t = time.perf_counter()
            try:
                c.request("GET", "/v1/states", headers=h)
                r = c.getresponse()
                r.read()
                if r.status == 200:
                    legit.append(time.perf_counter() - t)
                else:
                    legit_errors.append(r.status)
            except OSError as e:
                legit_errors.append(type(e).__name__)
                c.close()
                c = http.client.HTTPConnection(HOST, port, timeout=30)
            time.sleep(0.05)

    def sampler():
        while time.monotonic() < stop:
            rss.append(rss_mib(pid))
            time.sleep(0.25)

    # The user signs in once before the flood (its verified password is then remembered).
    first = one_request(port, "GET", "/v1/states", {"Authorization": basic(user, password)})[0]
    threads = [threading.Thread(target=attacker, args=(n,)) for n in range(conns)]
    threads += [threading.Thread(target=signed_in), threading.Thread(target=sampler)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = []
    for _ in range(40):
        after.append(rss_mib(pid))
        time.sleep(0.25)
    return {"seconds": seconds, "connections": conns, "user_first_status": first,
            "attack_answers": {str(k): v for k, v in sorted(statuses.items(), key=str)},
            "user_requests": len(legit), "user_errors": len(legit_errors),
            "user_error_kinds": sorted(set(map(str, legit_errors)))[:5],
            "user_p50_ms": pct(legit, 0.50), "user_p99_ms": pct(legit, 0.99),
            "user_max_ms": pct(legit, 1.0),
            "rss_before_mib": round(rss[0], 1) if rss else None,
            "rss_peak_mib": round(max(rss), 1) if rss else None,
            "rss_10s_after_mib": round(after[-1], 1),
            "rss_min_within_10s_after_mib": round(min(after), 1)}


def slowloris(port, pid, conns, deadline):
    opened, closed_after, failed_to_open = [], [], 0
    lock = threading.Lock()
    stop_at = time.monotonic() + deadline + 15

    def loris(n):
        nonlocal failed_to_open
        try:
            s = socket.create_connection((HOST, port), timeout=5,
                                         source_address=(f"127.2.{n // 250 + 1}.{n % 250 + 1}", 0))
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        except OSError:
            with lock:
                failed_to_open += 1
            return
        t0 = time.monotonic()
        with lock:
            opened.append(t0)
        s.settimeout(2)
        while time.monotonic() < stop_at:
            try:
                s.sendall(b"X")
                data = s.recv(4096)
                if data == b"" or data.startswith(b"HTTP/1.1 408"):
                    break
            except socket.timeout:
                continue
            except OSError:
                break
        else:
            s.close()
            return
        with lock:
            closed_after.append(time.monotonic() - t0)
        s.close()

    ok, errors = [], []

    def legit():
        while time.monotonic() < stop_at - 5:
            t = time.perf_counter()
            try:
                s, _ = one_request(port, "GET", "/healthz", {}, timeout=10)
                (ok if s == 200 else errors).append(time.perf_counter() - t if s == 200 else s)
            except OSError as e:
                errors.append(type(e).__name__)
            time.sleep(0.2)

    threads = [threading.Thread(target=loris, args=(n,)) for n in range(conns)]
    for t in threads:
        t.start()
    lt = threading.Thread(target=legit)
    lt.start()
    for t in threads:
        t.join()
    lt.join()
    return {"slowloris_connections": conns, "opened": len(opened), "failed_to_open": failed_to_open,
            "closed_by_server": len(closed_after),
            "closed_within_deadline": sum(1 for c in closed_after if c <= deadline + 1),
            "max_seconds_open": round(max(closed_after), 1) if closed_after else None,
            "still_open_at_end": len(opened) - len(closed_after),
            "legit_served": len(ok), "legit_failed": len(errors),
            "legit_error_kinds": sorted(set(map(str, errors)))[:5],
            "legit_p99_ms": pct(ok, 0.99), "server_rss_mib": round(rss_mib(pid), 1)}


def bruteforce(port, user, wrong, right, seconds):
    src = "127.0.0.200"
    checks_before, checks_after, throttled = 0, [], 0
    started_backoff = None
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        s, h = one_request(port, "GET", "/v1/states", {"Authorization": basic(user, wrong)}, source=src)
        now = time.monotonic()
        if s == 429:
            throttled += 1
            if started_backoff is None:
                started_backoff = now
        elif s == 403:
            if started_backoff is None:
                checks_before += 1
            else:
                checks_after.append(now)
        time.sleep(0.05)
    window = time.monotonic() - (started_backoff or t0)
    during, h = one_request(port, "GET", "/v1/states", {"Authorization": basic(user, right)}, source=src)
    wait = int(h.get("retry-after", "0"))
    time.sleep(wait + 0.5)
    after, _ = one_request(port, "GET", "/v1/states", {"Authorization": basic(user, right)}, source=src)
    return {"seconds": seconds, "checked_before_back_off": checks_before,
            "checked_after_back_off_started": len(checks_after), "throttled_429": throttled,
            "back_off_window_s": round(window, 1),
            "checks_per_min_after_back_off": round(len(checks_after) / window * 60, 1) if window else None,
            "right_password_during_back_off": during, "retry_after_s": wait,
            "right_password_after_back_off": after}


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "flood":
        out = flood(int(args[0]), int(args[1]), float(args[2]), int(args[3]), args[4])
    elif cmd == "slowloris":
        out = slowloris(int(args[0]), int(args[1]), int(args[2]), float(args[3]))
    elif cmd == "bruteforce":
        out = bruteforce(int(args[0]), args[1], args[2], args[3], float(args[4]))
    else:
        sys.exit(f"unknown command {cmd}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
