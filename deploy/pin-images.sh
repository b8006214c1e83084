#!/usr/bin/env bash
# Pins the base images of deploy/Dockerfile to the digests the registries serve now
# (multi-arch index digests). Needs crane (go run github.com/google/go-containerregistry/cmd/crane@latest)
# or docker buildx. Run it before a release and commit the result.
set -euo pipefail
cd "$(dirname "$0")/.."
go_version=$(awk '/^go /{print $2}' go.mod)
digest() {
  if command -v crane >/dev/null; then crane digest "$1"
  else docker buildx imagetools inspect "$1" --format '{{json .Manifest.Digest}}' | tr -d '"'; fi
}
go_img="golang:${go_version}-trixie"
rt_img="gcr.io/distroless/static-debian13:nonroot"
go_d=$(digest "$go_img"); rt_d=$(digest "$rt_img")
sed -i -E \
  -e "s|^ARG GO_VERSION=.*|ARG GO_VERSION=${go_version}|" \
  -e "s|^ARG GO_IMAGE=.*|ARG GO_IMAGE=golang:\${GO_VERSION}-trixie@${go_d}|" \
  -e "s|^ARG RUNTIME_IMAGE=.*|ARG RUNTIME_IMAGE=${rt_img}@${rt_d}|" deploy/Dockerfile
grep -E '^ARG (GO_VERSION|GO_IMAGE|RUNTIME_IMAGE)=' deploy/Dockerfile
