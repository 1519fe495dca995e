#!/usr/bin/env bash
# Builds Shopify's toxiproxy server (a real fault proxy: latency, bandwidth, resets) from the Go
# module pinned in scripts/peers/toxiproxy/, caches the binary by version and prints its path.
# The benchmarks put it between stateseal and moto to model a real network (this kernel has no
# netem). Cache: $STATESEAL_TOXIPROXY_CACHE, else ${XDG_CACHE_HOME:-$HOME/.cache}/stateseal/toxiproxy.
#
#   bash scripts/peers/toxiproxy.sh        # build when missing (about a minute cold); print the path
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mod="$here/toxiproxy/go.mod"
cache="${STATESEAL_TOXIPROXY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stateseal/toxiproxy}"
version="$(awk '$1 == "github.com/Shopify/toxiproxy/v2" { sub(/^v/, "", $2); print $2 }' "$mod")"
out="$cache/toxiproxy-server-$version"
if [[ ! -x "$out" ]]; then
  command -v go >/dev/null || { echo "toxiproxy.sh: Go is not installed" >&2; exit 1; }
  mkdir -p "$cache"
  echo "toxiproxy.sh: building toxiproxy $version ..." >&2
  (cd "$here/toxiproxy" && CGO_ENABLED=0 go build -mod=readonly -trimpath -o "$out.tmp.$$" \
    github.com/Shopify/toxiproxy/v2/cmd/server)
  mv -f "$out.tmp.$$" "$out"
fi
echo "$out"
