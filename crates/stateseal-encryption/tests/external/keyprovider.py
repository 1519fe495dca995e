#!/usr/bin/env python3
"""An external key provider (OpenTofu protocol, version 1) in Python.

    keyprovider.py [--record FILE] [--pid FILE] [MODE]

Keys: "Hello world! 123" (16 bytes); stored metadata {"salt": "<b>", "n": 2}. --record appends
each stdin it receives (one per line) to FILE; --pid writes the process ID to FILE. MODE:
  ok           (default) follow the protocol
  hang [MARKER]  write the header, then (after creating the file MARKER, if given) sleep
  garbage      write the header, then text that is not JSON
  bad-magic    write a header with the wrong magic
  no-header    write the output without the header line
  unknown      add a field the protocol does not have
"""
import base64
import json
import os
import sys
import time

args = sys.argv[1:]
record = pid = None
while args and args[0] in ("--record", "--pid"):
    if args[0] == "--record":
        record = args[1]
    else:
        pid = args[1]
    args = args[2:]
mode = args[0] if args else "ok"

if pid:
    with open(pid, "w") as f:
        f.write(str(os.getpid()))

header = {"magic": "OpenTofu-External-Key-Provider", "version": 1}
if mode == "bad-magic":
    header["magic"] = "Terraform-External-Key-Provider"
if mode != "no-header":
    sys.stdout.write(json.dumps(header) + "\n")
    sys.stdout.flush()

if mode == "hang":
    sys.stderr.write("keyprovider.py: hanging on purpose\n")
    sys.stderr.flush()
    if len(args) > 1:
        open(args[1], "w").close()
    time.sleep(600)

data = sys.stdin.read()
if record:
    with open(record, "a") as f:
        f.write(data + "\n")

if mode == "garbage":
    sys.stderr.write("keyprovider.py: the HSM said no\n")
    sys.stdout.write("this is not json")
    sys.exit(0)

key = base64.b64encode(b"Hello world! 123").decode()
out = {"keys": {"encryption_key": key}, "meta": {"external_data": {"salt": "<b>", "n": 2}}}
if json.loads(data) is not None:
    out["keys"]["decryption_key"] = key
if mode == "unknown":
    out["extra"] = True
sys.stdout.write(json.dumps(out))
