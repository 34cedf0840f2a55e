#!/usr/bin/env bash
# kiln's main job (run by `bash scripts/setup.sh main`, which prepares everything first).
#
# It builds examples from Containerfile.examples/ on the default base image and runs the
# hello image: with `kiln run` once kiln has it, until then with podman (kiln saves the image
# as a docker-archive that a throw-away podman store loads and runs).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
kiln() { "$repo/bin/kiln" "$@"; }
export CONTAINERS_CONF=/etc/kiln/podman-containers.conf

# A command exists when its own help comes back (not the top-level help, which some CLI
# parsers print for an unknown command with --help).
has_command() {
  local out
  out="$(kiln "$1" --help 2>/dev/null)" || return 1
  [[ "$out" == *"Usage: kiln $1 "* ]]
}

echo "+ kiln build -t localhost/kiln-parallel:latest Containerfile.examples/parallel-stages"
kiln build -t localhost/kiln-parallel:latest Containerfile.examples/parallel-stages
echo "+ kiln build -t localhost/kiln-hello:latest Containerfile.examples/hello"
kiln build -t localhost/kiln-hello:latest Containerfile.examples/hello

if has_command run; then
  echo "+ kiln run --rm localhost/kiln-hello:latest"
  kiln run --rm localhost/kiln-hello:latest
  echo "main-job: ok"
  exit 0
fi

# `kiln run` comes with its own issue; until then podman runs what kiln built.
tmp="$(mktemp -d /tmp/kiln-main-job.XXXXXX)"
podman_store=(--root "$tmp/podman" --runroot "$tmp/podman-run" --tmpdir "$tmp/podman-tmp")
cleanup() {
  # Not `podman system reset`: it also deletes the host's podman networks. Unmount
  # whatever podman left under $tmp (deepest first), then remove the tree.
  local m
  while read -r m; do umount -l "$m" 2>/dev/null || true; done < <(
    awk -v t="$tmp" 'index($5, t "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r
  )
  rm -rf "$tmp"
}
trap cleanup EXIT

echo "+ kiln save --format docker-archive -o hello.tar localhost/kiln-hello:latest"
kiln save --format docker-archive -o "$tmp/hello.tar" localhost/kiln-hello:latest
echo "+ podman load -i hello.tar   (throw-away podman store)"
podman "${podman_store[@]}" load -q -i "$tmp/hello.tar"
echo "+ podman run --rm --network=none localhost/kiln-hello:latest"
podman "${podman_store[@]}" run --rm --network=none localhost/kiln-hello:latest
echo "main-job: ok"
