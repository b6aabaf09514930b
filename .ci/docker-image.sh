#!/usr/bin/env bash
# Builds the CPU-only worker image (tag: $1, default decorrelating-neurons:cpu) on a machine whose Docker engine cannot
# reach Docker Hub, as CI does: the base image is made from Debian's packages (mmdebstrap, the Debian mirror apt
# uses here) and imported, then the Dockerfile builds on it with EXTRAS="ray tensorboard" (no CUDA wheels). pip's CA
# bundle goes in as a BuildKit secret (a TLS-inspecting proxy's CA is in the machine's bundle), never into a layer.
# Needs: a running dockerd, Debian's docker.io client (/usr/bin/docker: BuildKit without the buildx plugin),
# mmdebstrap. Measured here (load average 2.6): base 86 s (217 MB), image 82 s (about 2.6 GB).
set -euo pipefail
cd "$(dirname "$0")/.."
tag="${1:-decorrelating-neurons:cpu}"
base="${BASE_TAG:-decorrelating-neurons-base:bookworm}"
docker="${DOCKER:-/usr/bin/docker}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
if ! "$docker" image inspect "$base" >/dev/null 2>&1; then
  mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates bookworm - \
      "deb $mirror bookworm main" "deb $mirror bookworm-updates main" "deb $security bookworm-security main" \
    | "$docker" import - "$base"
fi
secret=()
bundle="${PIP_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
[ -s "$bundle" ] && secret=(--secret "id=ca_bundle,src=$bundle")
DOCKER_BUILDKIT=1 "$docker" build --network host --progress plain "${secret[@]}" \
    --build-arg BASE_IMAGE="$base" --build-arg EXTRAS="ray tensorboard" \
    --build-arg CODE_COMMIT="$(git rev-parse HEAD 2>/dev/null || true)" -t "$tag" .
