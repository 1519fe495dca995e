#!/usr/bin/env python3
"""An external encryption method (OpenTofu protocol, version 1): XOR with the key.

    method.py [--record FILE] [MODE]

Without a key, XOR with 0x5a. --record appends each stdin it receives to FILE. MODE:
  ok (default), hang [MARKER] (header, then create the file MARKER if given, then sleep),
  garbage (header, then not JSON), exit2.
"""
import base64
import json
import sys
import time

args = sys.argv[1:]
record = None
if args[:1] == ["--record"]:
    record, args = args[1], args[2:]
mode = args[0] if args else "ok"

sys.stdout.write(json.dumps({"magic": "OpenTofu-External-Encryption-Method", "version": 1}) + "\n")
sys.stdout.flush()

if mode == "hang":
    if len(args) > 1:
        open(args[1], "w").close()
    time.sleep(600)

data = sys.stdin.read()
if record:
    with open(record, "a") as f:
        f.write(data + "\n")
if mode == "exit2":
    sys.stderr.write("method.py: refusing on purpose\n")
    sys.exit(2)
if mode == "garbage":
    sys.stderr.write("method.py: about to write garbage\n")
    sys.stdout.write('{"payload": ')
    sys.exit(0)

msg = json.loads(data)
key = base64.b64decode(msg["key"]) if "key" in msg else b"\x5a"
payload = base64.b64decode(msg["payload"])
out = bytes(b ^ key[i % len(key)] for i, b in enumerate(payload))
sys.stdout.write(json.dumps({"payload": base64.b64encode(out).decode()}))
