#!/usr/bin/env python3
"""Benchmarks for the encryption library and the file CLI. Prints ratios against baselines
measured in the same run; it is a benchmark, not a test, and never fails on a number.

    .venv/bin/python scripts/bench/encryption.py [--size-mib 64] [--runs 3]

Measures:
  1. one PBKDF2-HMAC-SHA512 derivation (600k iterations): ours (ring) vs OpenSSL's (hashlib.pbkdf2_hmac);
  2. `stateseal decrypt` of a SIZE-MiB state, end to end (read, parse, base64, AES-GCM, passthrough
     check, write to stdout; and, for information, with -o: an atomic fsync'd write, whose disk time
     both sides pay), vs the same work in Python with the `cryptography` package:
       a. with a literal raw key (the bulk path), b. with pbkdf2 (adds one derivation to both);
  3. that decrypt's throughput vs `openssl speed -evp aes-256-gcm` (16 KiB blocks), end to end and
     for the aes_gcm method alone (in process, no I/O, no JSON, no base64);
  4. the decrypt's peak RSS vs the input file size;
  5. `stateseal encrypt` and `stateseal rekey` of a small state with pbkdf2 (600k iterations),
     whole process, as a ratio to one OpenSSL PBKDF2 derivation: with the key cache, encrypt
     derives once (its check reuses the key) and rekey twice (old salt, new salt).
"""
import argparse, base64, json, os, resource, subprocess, sys, tempfile, time, hashlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KEY = bytes(range(1, 33))
PASS = "correct-horse-battery-staple"


def sh(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, **kw)


def best_of(runs, fn):
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter(); fn(); best = min(best, time.perf_counter() - t)
    return best


def python_decrypt(path, out, key_from_meta):
    """The same work as `stateseal decrypt [-o out]`, in Python with cryptography."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    with open(path, "rb") as f:
        env = json.loads(f.read())
    assert env["encryption_version"] == "v0"
    data = base64.b64decode(env["encrypted_data"])
    key = key_from_meta(env["meta"])
    plain = AESGCM(key).decrypt(data[:12], data[12:], None)
    st = json.loads(plain)
    assert st["serial"] == env["serial"] and st["lineage"] == env["lineage"]
    if out is None:
        with open(os.devnull, "wb") as f:  # like `stateseal decrypt FILE > /dev/null`
            f.write(plain)
        return
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(plain); f.flush(); os.fsync(f.fileno())
    os.replace(tmp, out)


def pbkdf2_key(meta):
    m = json.loads(base64.b64decode(meta["key_provider.pbkdf2.main"]))
    return hashlib.pbkdf2_hmac(m["hash_function"], PASS.encode(), base64.b64decode(m["salt"]), m["iterations"], m["key_length"])


def child_peak_rss_kib(cmd):
    """Runs cmd in a fresh process (via /usr/bin/time -f %M) and returns its peak RSS in KiB."""
    r = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, capture_output=True, check=True)
    return int(r.stderr.decode().strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=64)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()

    print("building release binaries…", file=sys.stderr)
    sh("cargo", "build", "--release", "-q", "-p", "stateseal", cwd=ROOT)
    sh("cargo", "build", "--release", "-q", "-p", "stateseal-encryption", "--example", "crypto_bench", cwd=ROOT)
    bin_ = os.path.join(ROOT, "target/release/stateseal")
    kdf = os.path.join(ROOT, "target/release/examples/crypto_bench")

    # 1. PBKDF2
    kdf_out = sh(kdf, str(a.runs * 2), str(a.size_mib)).stdout.split()
    ours_kdf, ours_gcm_bps = float(kdf_out[0]), float(kdf_out[1])
    ossl_kdf = best_of(a.runs * 2, lambda: hashlib.pbkdf2_hmac("sha512", PASS.encode(), b"\x11" * 32, 600000, 32))

    with tempfile.TemporaryDirectory() as d:
        # a state with one big output (random-ish text, as real states hold certificates, keys, JSON blobs)
        blob = base64.b64encode(os.urandom(a.size_mib * 1024 * 1024 * 3 // 4 - 4096)).decode()
        state = {"version": 4, "terraform_version": "1.10.0", "serial": 42, "lineage": "5b3c0f4e-2d7a-4c1e-9a8b-0f1e2d3c4b5a",
                 "outputs": {"blob": {"value": blob, "type": "string"}}, "resources": [], "check_results": None}
        plain_path = os.path.join(d, "state.json")
        with open(plain_path, "w") as f:
            json.dump(state, f, indent=2); f.write("\n")
        plain_size = os.path.getsize(plain_path)
        keys = "[" + ",".join(str(b) for b in KEY) + "]"
        cfgs = {
            "literal key": f'method "aes_gcm" "main" {{\n keys = {{ encryption_key = {keys}, decryption_key = {keys} }}\n}}\nstate {{ method = method.aes_gcm.main }}\n',
            "pbkdf2": f'key_provider "pbkdf2" "main" {{ passphrase = "{PASS}" }}\nmethod "aes_gcm" "main" {{ keys = key_provider.pbkdf2.main }}\nstate {{ method = method.aes_gcm.main }}\n',
        }
        results = {}
        for name, cfg in cfgs.items():
            cfg_path = os.path.join(d, "enc.hcl")
            with open(cfg_path, "w") as f:
                f.write(cfg)
            enc_path = os.path.join(d, "state.enc")
            sh(bin_, "--config", cfg_path, "encrypt", plain_path, "-o", enc_path)
            enc_size = os.path.getsize(enc_path)
            out = os.path.join(d, "out.json")
            file_cmd = [bin_, "--config", cfg_path, "decrypt", enc_path, "-o", out]
            sh(*file_cmd)
            with open(out, "rb") as f1, open(plain_path, "rb") as f2:
                assert f1.read() == f2.read(), "decrypt output differs"
            getkey = (lambda meta: KEY) if name == "literal key" else pbkdf2_key
            with open(os.devnull, "wb") as null:
                stdout_cmd = [bin_, "--config", cfg_path, "decrypt", enc_path]
                ours = best_of(a.runs, lambda: subprocess.run(stdout_cmd, stdout=null, check=True))
            py = best_of(a.runs, lambda: python_decrypt(enc_path, None, getkey))
            ours_file = best_of(a.runs, lambda: sh(*file_cmd))
            py_file = best_of(a.runs, lambda: python_decrypt(enc_path, out, getkey))
            rss = child_peak_rss_kib(stdout_cmd) * 1024
            results[name] = (ours, py, ours_file, py_file, rss, enc_size)

    # 5. encrypt and rekey wall time vs one OpenSSL derivation
    with tempfile.TemporaryDirectory() as d:
        small = os.path.join(d, "small.json")
        with open(small, "w") as f:
            f.write('{"version":4,"terraform_version":"1.10.0","serial":1,"lineage":"l","outputs":{},"resources":[]}\n')
        old_cfg, new_cfg = os.path.join(d, "old.hcl"), os.path.join(d, "new.hcl")
        with open(old_cfg, "w") as f:
            f.write(f'key_provider "pbkdf2" "old" {{ passphrase = "{PASS}-old" }}\nmethod "aes_gcm" "old" {{ keys = key_provider.pbkdf2.old }}\nstate {{ method = method.aes_gcm.old }}\n')
        with open(new_cfg, "w") as f:
            f.write(f'key_provider "pbkdf2" "old" {{ passphrase = "{PASS}-old" }}\nkey_provider "pbkdf2" "new" {{ passphrase = "{PASS}-new" }}\n'
                    'method "aes_gcm" "old" { keys = key_provider.pbkdf2.old }\nmethod "aes_gcm" "new" { keys = key_provider.pbkdf2.new }\n'
                    'state {\n method = method.aes_gcm.new\n fallback { method = method.aes_gcm.old }\n}\n')
        enc_out = os.path.join(d, "small.enc")
        encrypt_t = best_of(a.runs, lambda: sh(bin_, "--config", old_cfg, "encrypt", small, "-o", enc_out))
        def rekey_once():
            sh(bin_, "--config", old_cfg, "encrypt", small, "-o", enc_out)
            t = time.perf_counter(); sh(bin_, "--config", new_cfg, "rekey", enc_out); return time.perf_counter() - t
        rekey_t = min(rekey_once() for _ in range(a.runs))

    # 3. OpenSSL AES-256-GCM speed, 16 KiB blocks (bytes/s)
    r = subprocess.run(["openssl", "speed", "-evp", "aes-256-gcm", "-seconds", "2"], capture_output=True, text=True)
    line = [l for l in r.stdout.splitlines() if l.upper().startswith("AES-256-GCM")][-1]
    ossl_bps = float(line.split()[-1].rstrip("k")) * 1000

    mib = plain_size / (1024 * 1024)
    print(f"machine: {os.cpu_count()} cores; state plaintext {plain_size} bytes ({mib:.1f} MiB)")
    print(f"1. pbkdf2-sha512 600k: ours {ours_kdf*1000:.1f} ms, OpenSSL (hashlib) {ossl_kdf*1000:.1f} ms -> ratio {ours_kdf/ossl_kdf:.3f} (goal <= 1.1)")
    for name, (ours, py, ours_file, py_file, rss, enc_size) in results.items():
        print(f"2. decrypt {mib:.0f} MiB state to stdout [{name}]: ours {ours*1000:.0f} ms, Python+cryptography {py*1000:.0f} ms -> {py/ours:.2f}x faster (goal >= 4)")
        print(f"     with -o FILE (atomic, fsync'd; both sides): ours {ours_file*1000:.0f} ms, Python {py_file*1000:.0f} ms -> {py_file/ours_file:.2f}x")
        tput = plain_size / ours
        print(f"3.   throughput [{name}]: {tput/1e9:.2f} GB/s vs openssl speed aes-256-gcm {ossl_bps/1e9:.2f} GB/s -> {100*tput/ossl_bps:.0f}% (goal >= 30%, issue 20)")
        print(f"     the aes_gcm stage alone (in process): {ours_gcm_bps/1e9:.2f} GB/s -> {100*ours_gcm_bps/ossl_bps:.0f}% of openssl speed")
        print(f"4.   peak RSS [{name}]: {rss/1048576:.0f} MiB for a {enc_size/1048576:.0f} MiB input -> {rss/enc_size:.2f}x the file size (goal <= 2)")
    print(f"5. encrypt (pbkdf2 600k, whole process): {encrypt_t*1000:.0f} ms = {encrypt_t/ossl_kdf:.2f}x one OpenSSL derivation (one derivation: ~1)")
    print(f"   rekey (old salt -> new salt):          {rekey_t*1000:.0f} ms = {rekey_t/ossl_kdf:.2f}x one OpenSSL derivation (two derivations: ~2)")


if __name__ == "__main__":
    main()
