#!/usr/bin/env bash
# Builds real OpenTofu (`tofu`) from its Go module, at the releases pinned in scripts/peers/tofu/*/
# (one small Go module of ours per release, each with OpenTofu as a tool dependency and a committed
# go.sum), and caches each binary by version, so a warm run costs nothing.
#
#   bash scripts/peers/tofu.sh            # build what is missing; print "VERSION PATH" per release
#   bash scripts/peers/tofu.sh --paths    # the same, without building (missing ones are left out)
#
# Cache: $STATESEAL_TOFU_CACHE, else ${XDG_CACHE_HOME:-$HOME/.cache}/stateseal/tofu. It lives outside
# the clone, so CI's fresh clones on one machine share it. Needs Go (go.mod's version) and the Go
# module proxy; a cold build of one release takes a few minutes on 2 cores.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${STATESEAL_TOFU_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stateseal/tofu}"
build=1
[[ "${1:-}" == "--paths" ]] && build=0

if ((build)) && ! command -v go >/dev/null; then
  echo "tofu.sh: Go is not installed; it is needed to build OpenTofu (apt-get install golang, or go.dev)" >&2
  exit 1
fi
mkdir -p "$cache"

for mod in "$here"/tofu/*/go.mod; do
  dir="$(dirname "$mod")"
  # The pinned release is the version of OpenTofu that the module requires.
  version="$(awk '$1 == "github.com/opentofu/opentofu" { sub(/^v/, "", $2); print $2 }' "$mod")"
  if [[ -z "$version" ]]; then
    echo "tofu.sh: $mod requires no github.com/opentofu/opentofu version" >&2
    exit 1
  fi
  out="$cache/tofu-$version"
  if [[ ! -x "$out" ]] && ((build)); then
    echo "tofu.sh: building OpenTofu $version (cold: a few minutes) ..." >&2
    start=$SECONDS
    # -mod=readonly: the committed go.sum decides; a missing checksum fails instead of editing it.
    # version.dev=no is what OpenTofu's release builds set: without it the binary calls itself
    # "X.Y.Z-dev", a prerelease that fails `required_version = ">= X.Y"` constraints.
    (cd "$dir" && CGO_ENABLED=0 go build -mod=readonly -trimpath \
      -ldflags "-X github.com/opentofu/opentofu/version.dev=no" -o "$out.tmp.$$" \
      github.com/opentofu/opentofu/cmd/tofu)
    mv -f "$out.tmp.$$" "$out"
    echo "tofu.sh: built $out in $((SECONDS - start)) s" >&2
  fi
  [[ -x "$out" ]] && echo "$version $out"
done
