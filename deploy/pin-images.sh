#!/usr/bin/env bash
# Pins the base images of deploy/Dockerfile and deploy/Dockerfile.release to the digests
# the registries serve now (multi-arch index digests) and marks them resolved. Needs
# crane (go run github.com/google/go-containerregistry/cmd/crane@latest) or docker
# buildx. Run it before a release and commit the result (docs/install.md, "Making a
# release").
#
#   deploy/pin-images.sh           resolve and rewrite
#   deploy/pin-images.sh --check   exit 1, naming each image, while a base image has no
#                                  digest or its digests were never resolved here
#                                  (goreleaser's before hook: a release is refused)
set -euo pipefail
cd "$(dirname "$0")/.."
files=(deploy/Dockerfile deploy/Dockerfile.release)
marker='# Digests resolved by deploy/pin-images.sh'

if [ "${1:-}" = "--check" ]; then
  bad=0
  for f in "${files[@]}"; do
    while IFS= read -r line; do
      img=${line#*=}
      case "$img" in
        *@sha256:*) ;;
        *) echo "unpinned: $f: ${line} has no digest"; bad=1 ;;
      esac
    done < <(grep -E '^ARG (GO_IMAGE|RUNTIME_IMAGE)=' "$f")
    if ! grep -q "^$marker" "$f"; then
      echo "unpinned: $f: its digests were never resolved from a registry (no \"$marker\" line)"; bad=1
    fi
  done
  if [ "$bad" = 1 ]; then
    echo "a release is refused until deploy/pin-images.sh has run (with registry access) and its result is committed"
    exit 1
  fi
  echo "base images pinned: $(grep -hE '^ARG (GO_IMAGE|RUNTIME_IMAGE)=' "${files[@]}" | sort -u | tr '\n' ' ')"
  exit 0
fi

go_version=$(awk '/^go /{print $2}' go.mod)
digest() {
  if command -v crane >/dev/null; then crane digest "$1"
  else docker buildx imagetools inspect "$1" --format '{{json .Manifest.Digest}}' | tr -d '"'; fi
}
go_img="golang:${go_version}-trixie"
rt_img="gcr.io/distroless/static-debian13:nonroot"
go_d=$(digest "$go_img"); rt_d=$(digest "$rt_img")
case "$go_d$rt_d" in *sha256:*sha256:*) ;; *) echo "pin-images: no digest from the registry ($go_d, $rt_d)"; exit 1 ;; esac
stamp="$marker on $(date -u +%Y-%m-%d): $go_img, $rt_img"
for f in "${files[@]}"; do
  sed -i -E \
    -e "s|^ARG GO_VERSION=.*|ARG GO_VERSION=${go_version}|" \
    -e "s|^ARG GO_IMAGE=.*|ARG GO_IMAGE=golang:\${GO_VERSION}-trixie@${go_d}|" \
    -e "s|^ARG RUNTIME_IMAGE=.*|ARG RUNTIME_IMAGE=${rt_img}@${rt_d}|" "$f"
  # The marker (replacing an older one) goes right above the first ARG line.
  grep -vF "$marker" "$f" | awk -v stamp="$stamp" '!done && /^ARG /{print stamp; done=1} {print}' > "$f.tmp" && mv "$f.tmp" "$f"
  grep -E "^($marker|ARG (GO_VERSION|GO_IMAGE|RUNTIME_IMAGE)=)" "$f"
done
