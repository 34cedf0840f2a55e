#!/usr/bin/env bash
# kiln's main job (run by `bash scripts/setup.sh main`, which prepares everything first).
#
# It builds examples from Containerfile.examples/ on the default base image and runs the
# hello image: with `kiln run` once kiln has it, until then with podman (kiln saves the image
# as a docker-archive that a throw-away podman store loads and runs). A kiln without `build`
# shows the store instead: list, inspect, save as oci-archive (read back by skopeo) and as
# docker-archive (loaded and run by podman).
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

if has_command build && has_command run; then
  echo "+ kiln build -t localhost/kiln-hello:latest Containerfile.examples/hello"
  kiln build -t localhost/kiln-hello:latest Containerfile.examples/hello
  echo "+ kiln run --rm localhost/kiln-hello:latest"
  kiln run --rm localhost/kiln-hello:latest
  exit 0
fi

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

if has_command build; then
  # `kiln run` comes with its own issue; until then podman runs what kiln built.
  echo "+ kiln build -t localhost/kiln-parallel:latest Containerfile.examples/parallel-stages"
  kiln build -t localhost/kiln-parallel:latest Containerfile.examples/parallel-stages
  echo "+ kiln build -t localhost/kiln-hello:latest Containerfile.examples/hello"
  kiln build -t localhost/kiln-hello:latest Containerfile.examples/hello
  echo "+ kiln save --format docker-archive -o hello.tar localhost/kiln-hello:latest"
  kiln save --format docker-archive -o "$tmp/hello.tar" localhost/kiln-hello:latest
  echo "+ podman load -i hello.tar   (throw-away podman store)"
  podman "${podman_store[@]}" load -q -i "$tmp/hello.tar"
  echo "+ podman run --rm --network=none localhost/kiln-hello:latest"
  podman "${podman_store[@]}" run --rm --network=none localhost/kiln-hello:latest
  echo "main-job: ok"
  exit 0
fi

echo "+ kiln images"
kiln images
echo "+ kiln inspect --format '{{.Id}}' localhost/busybox"
kiln inspect --format '{{.Id}}' localhost/busybox
echo "+ kiln save --format oci-archive -o busybox-oci.tar localhost/busybox"
kiln save --format oci-archive -o "$tmp/busybox-oci.tar" localhost/busybox
echo "+ skopeo inspect oci-archive:busybox-oci.tar | jq .Digest"
skopeo inspect "oci-archive:$tmp/busybox-oci.tar" | jq .Digest
echo "+ kiln save --format docker-archive -o busybox-docker.tar localhost/busybox"
kiln save --format docker-archive -o "$tmp/busybox-docker.tar" localhost/busybox
echo "+ podman load -i busybox-docker.tar   (throw-away podman store)"
podman "${podman_store[@]}" load -q -i "$tmp/busybox-docker.tar"
echo "+ podman run --rm --network=none localhost/busybox busybox echo hello from kiln"
out="$(podman "${podman_store[@]}" run --rm --network=none localhost/busybox:latest busybox echo hello from kiln)"
echo "$out"
[ "$out" = "hello from kiln" ] || { echo "main-job: unexpected output from podman run" >&2; exit 1; }
echo "main-job: ok"
