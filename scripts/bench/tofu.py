"""Times stateseal against real `tofu` on the same encrypted state in a local-backend directory.

Both sides are timed the same way, as one whole process each with stdout thrown away (what a
user or a script waits for): `stateseal decrypt terraform.tfstate` against `tofu state pull`,
and `stateseal outputs --json` against `tofu output -json`. Runs alternate, the medians are
compared, and the ratios (tofu / stateseal: how many times faster stateseal is) are printed.

The state is like pull.py's (terraform_data resources of random strings, built here in linear
time: pull.py's generator re-serialises the whole state per step, too slow for 64 MiB), encrypted
by stateseal with aes_gcm keyed by pbkdf2 at OpenTofu's defaults (600000 iterations of SHA-512:
the same key derivation on both sides). Before timing, both sides must return the same state
(lineage, serial, outputs, resources) and the same outputs.
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import tempfile
import time

from pull import CONFIGS


MAIN_TF = """terraform {
  encryption {%s
    state {
      method = method.aes_gcm.main
    }
  }
}
"""


def make_state(size, terraform_version):
    """A state of at least `size` bytes as `json.dumps(indent=2)` writes it; three outputs."""
    rnd = random.Random(7)
    resources, total, i = [], 0, 0
    while total < size:
        blob = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(400))
        r = {
            "mode": "managed", "type": "terraform_data", "name": f"r{i}",
            "provider": 'provider["terraform.io/builtin/terraform"]',
            "instances": [{"schema_version": 0, "attributes": {
                "id": f"id-{i}", "input": {"value": blob, "type": "string"},
                "output": None, "triggers_replace": None}, "sensitive_attributes": []}],
        }
        resources.append(r)
        total += len(json.dumps(r, indent=2)) + 100  # and the deeper indentation
        i += 1
    state = {
        "version": 4,
        "terraform_version": terraform_version,
        "serial": 1,
        "lineage": "b0b0b0b0-0000-4000-8000-000000000001",
        "outputs": {
            "greeting": {"value": "hello", "type": "string"},
            "count": {"value": i, "type": "number"},
            "token": {"value": "s3cr3t", "type": "string", "sensitive": True},
        },
        "resources": resources,
        "check_results": None,
    }
    return (json.dumps(state, indent=2) + "\n").encode()


def timed(cmd, cwd, env):
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def compare(label, ours, theirs, cwd, env, runs):
    """Alternating runs; returns the ratio of medians (theirs / ours)."""
    a, b = [], []
    for _ in range(runs):
        a.append(timed(ours, cwd, env))
        b.append(timed(theirs, cwd, env))
    m_a, m_b = statistics.median(a), statistics.median(b)
    ratio = m_b / m_a
    print(f"  {label}: stateseal {m_a * 1000:.0f} ms (min {min(a) * 1000:.0f}, max "
          f"{max(a) * 1000:.0f}) | tofu {m_b * 1000:.0f} ms (min {min(b) * 1000:.0f}, max "
          f"{max(b) * 1000:.0f}) | stateseal is {ratio:.1f}x faster")
    return ratio


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--tofu", required=True, help="VERSION=PATH[,VERSION=PATH...]")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--size-mib", type=float, default=64)
    a = ap.parse_args()
    a.bin = os.path.abspath(a.bin)
    tofus = [t.split("=", 1) for t in a.tofu.split(",") if "=" in t]
    assert tofus, "no tofu: run bash scripts/peers/tofu.sh"
    env = dict(os.environ, CHECKPOINT_DISABLE="1", TF_IN_AUTOMATION="1", TF_INPUT="0")
    env.pop("TF_ENCRYPTION", None)
    env.pop("TF_WORKSPACE", None)
    print(f"{a.runs} runs each, medians (release binary {a.bin})")
    worst = None
    for version, path in tofus:
        # A state written by this release (tofu refuses one from a newer release).
        state = make_state(int(a.size_mib * 1024 * 1024), version)
        with tempfile.TemporaryDirectory() as d:
            # No CLI configuration file: tofu warns about it on stdout, into the JSON.
            rc = os.path.join(d, "tofurc")
            with open(rc, "w") as f:
                f.write("disable_checkpoint = true\n")
            env["TF_CLI_CONFIG_FILE"] = rc
            with open(os.path.join(d, "main.tf"), "w") as f:
                f.write(MAIN_TF % CONFIGS["pbkdf2"])
            with open(os.path.join(d, "plain.json"), "wb") as f:
                f.write(state)
            subprocess.run([a.bin, "encrypt", "plain.json", "-o", "terraform.tfstate"], cwd=d,
                           env=env, check=True, stderr=subprocess.DEVNULL)
            os.remove(os.path.join(d, "plain.json"))
            size = os.path.getsize(os.path.join(d, "terraform.tfstate"))
            subprocess.run([path, "init", "-input=false"], cwd=d, env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            run = lambda cmd: subprocess.run(cmd, cwd=d, env=env, check=True,
                                             capture_output=True).stdout
            # tofu re-serialises what it pulls (its own field order and defaults), so the
            # synthetic state is compared by content, not byte for byte.
            ours = json.loads(run([a.bin, "decrypt", "terraform.tfstate"]))
            theirs = json.loads(run([path, "state", "pull"]))
            for k in ("lineage", "serial", "outputs"):
                assert ours[k] == theirs[k], f"decrypt and state pull differ in {k}"
            names = lambda st: sorted(r["name"] for r in st["resources"])  # tofu sorts them
            assert names(ours) == names(theirs), "the same resources"
            out_ours = json.loads(run([a.bin, "outputs", "--json"]))
            assert out_ours == json.loads(run([path, "output", "-json"])), "outputs = output"
            print(f"[tofu {version}] plaintext {len(state) / 2**20:.2f} MiB, encrypted "
                  f"{size / 2**20:.2f} MiB")
            r1 = compare("decrypt vs state pull", [a.bin, "decrypt", "terraform.tfstate"],
                         [path, "state", "pull"], d, env, a.runs)
            compare("outputs --json vs output -json", [a.bin, "outputs", "--json"],
                    [path, "output", "-json"], d, env, a.runs)
            worst = r1 if worst is None else min(worst, r1)
    print(f"decrypt vs state pull, slowest ratio: {worst:.1f}x; target >= 10x: "
          f"{'met' if worst >= 10 else 'NOT met'}")


if __name__ == "__main__":
    main()
