#!/usr/bin/env bash
# A plain Debian base image made without any image registry, for building the Dockerfile
# where the CUDA base cannot be pulled (CI, offline machines):
#   docker build --network host --build-arg BASE="$(bash scripts/docker_local_base.sh | tail -1)" .
# debootstrap (--variant=minbase, plus Python) fetches from the Debian mirror this host's apt
# uses, then `docker import` makes the image. The tag is a hash of this script and the
# release, so the base is made once per machine and found again afterwards. Needs root,
# debootstrap and a running Docker engine. The image reference is printed as the last line.
set -euo pipefail

SUITE=${TASKSPACE_BASE_SUITE:-$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")}
ARCH=$(dpkg --print-architecture)
# What the Dockerfile needs from a base: a Python 3 with venv (the CPU torch wheel is
# installed by the Dockerfile) and CA certificates for pip.
PACKAGES=python3,python3-venv,ca-certificates
KEY=$( { cat "$0"; echo "$SUITE $ARCH $PACKAGES"; } | sha256sum | cut -c1-12)
REF="taskspace-local-base:${SUITE}-${KEY}"

if docker image inspect "$REF" >/dev/null 2>&1; then
  echo "$REF"
  exit 0
fi

# The first plain-suite Debian mirror of this host's apt sources (deb822 .sources or
# one-line .list files), read now rather than written into the repo.
mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v suite="$SUITE" '
      /^URIs:/ { uri = $2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) ok = 1 }
      /^$/ { if (ok && uri) { print uri; exit } ok = 0; uri = "" }
      END { if (ok && uri) print uri }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v suite="$SUITE" '$1 == "deb" { u = $2; s = $3; if ($2 ~ /^\[/) { u = $3; s = $4 } if (s == suite) print u }' "$f"
  done
}
MIRROR=${TASKSPACE_BASE_MIRROR:-$(mirror | head -1)}
[ -n "$MIRROR" ] || { echo "no apt mirror for $SUITE found in /etc/apt/sources.list*" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }

ROOT=$(mktemp -d /tmp/taskspace-base.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT
echo "debootstrap $SUITE from $MIRROR into $ROOT" >&2
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOT" "$MIRROR" >&2
# No downloaded .debs or package lists in the image (apt-get update fetches them again).
rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/* "$ROOT"/tmp/*
tar -C "$ROOT" --numeric-owner -c . | docker import \
  --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' \
  --message "debootstrap --variant=minbase $SUITE ($PACKAGES)" - "$REF" >&2
echo "$REF"
