#!/usr/bin/env bash
# goreleaser's before hook (.goreleaser.yaml): refuses a release whose version is not
# the one set in internal/version/VERSION, or whose Dockerfiles' base images are not
# pinned (deploy/pin-images.sh --check), and packages the Helm chart for the release.
#
#   deploy/release-prepare.sh VERSION IS_SNAPSHOT
#
# A snapshot (CI) reports what a release would refuse and goes on: CI has no registry
# to resolve digests from, and the snapshot builds no image.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$1 snapshot=${2:-false}
want=$(tr -d '[:space:]' < internal/version/VERSION)
refuse() { echo "release refused: $*" >&2; exit 1; }

for key in version appVersion; do
  got=$(sed -n -E "s/^${key}: *\"?([^\"]+)\"?$/\1/p" deploy/helm/rootwarden/Chart.yaml)
  [ "$got" = "$want" ] || refuse "deploy/helm/rootwarden/Chart.yaml $key is $got, internal/version/VERSION is $want"
done
grep -qE "^## ${want//./\\.}( |$)" CHANGELOG.md || refuse "CHANGELOG.md has no section \"## $want\""

if [ "$snapshot" = true ]; then
  echo "snapshot $version of $want"
  if ! deploy/pin-images.sh --check; then
    echo "(snapshot: goes on; a release of these Dockerfiles would be refused)"
  fi
else
  [ "$version" = "$want" ] || refuse "the tag's version is $version, internal/version/VERSION is $want: tag v$want"
  deploy/pin-images.sh --check || refuse "unpinned base images (above)"
fi

out=.cache/release-chart
rm -rf "$out" && mkdir -p "$out"
${HELM:-go run helm.sh/helm/v3/cmd/helm@v3.22.0} package deploy/helm/rootwarden --destination "$out"
