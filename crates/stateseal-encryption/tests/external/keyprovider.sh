#!/bin/sh
# An external key provider (OpenTofu protocol, version 1) in POSIX sh.
#
#   keyprovider.sh            a 16-byte key 01..10; stores {"generation":1}
#   keyprovider.sh hang [MARKER]  writes the header, creates the file MARKER (if given), then
#                             sleeps (replaced by sleep: one process)
#   keyprovider.sh exit3      writes an error to stderr and exits 3
set -e

case "${1:-}" in
  hang)
    echo '{"magic":"OpenTofu-External-Key-Provider","version":1}'
    echo "keyprovider.sh: hanging on purpose" >&2
    if [ -n "${2:-}" ]; then : > "$2"; fi
    exec sleep 600
    ;;
  exit3)
    echo '{"magic":"OpenTofu-External-Key-Provider","version":1}'
    echo "keyprovider.sh: the vault is sealed" >&2
    exit 3
    ;;
esac

echo '{"magic":"OpenTofu-External-Key-Provider","version":1}'
INPUT=$(cat)

if [ "$INPUT" = "null" ]; then
  # No stored metadata: only an encryption key.
  printf '%s' '{"keys":{"encryption_key":"AQIDBAUGBwgJCgsMDQ4PEA=="},"meta":{"external_data":{"generation":1}}}'
else
  case "$INPUT" in
    *'"generation":1'*) ;;
    *) echo "keyprovider.sh: unexpected input: $INPUT" >&2; exit 1 ;;
  esac
  printf '%s' '{"keys":{"encryption_key":"AQIDBAUGBwgJCgsMDQ4PEA==","decryption_key":"AQIDBAUGBwgJCgsMDQ4PEA=="},"meta":{"external_data":{"generation":1}}}'
fi
