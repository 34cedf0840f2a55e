#!/usr/bin/env bash
# kiln's main job (run by `bash scripts/setup.sh main`, which prepares everything first):
# builds examples from Containerfile.examples/ on the default base image, then runs the hello
# image with `kiln run` (conmon and runc, from the same store).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
kiln() { "$repo/bin/kiln" "$@"; }

echo "+ kiln build -t localhost/kiln-parallel:latest Containerfile.examples/parallel-stages"
kiln build -t localhost/kiln-parallel:latest Containerfile.examples/parallel-stages
echo "+ kiln build -t localhost/kiln-hello:latest Containerfile.examples/hello"
kiln build -t localhost/kiln-hello:latest Containerfile.examples/hello
echo "+ kiln run --rm localhost/kiln-hello:latest"
kiln run --rm localhost/kiln-hello:latest
echo "main-job: ok"
