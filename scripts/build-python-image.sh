#!/usr/bin/env bash
# Builds podstart's real-application test image and pushes it to the local registry of
# scripts/localenv.sh (which must be up):
#
#   layer 1: a minimal Debian 12 root file system with python3 (debootstrap --variant=minbase),
#   layer 2: /app/app.py (scripts/python-app/app.py), whose imports vary with its first argument.
#
#   scripts/build-python-image.sh        prints the pushed reference, e.g. 127.0.0.1:35000/podstart-test/python-app:latest
#
# The debootstrap root is cached under $PODSTART_LOCALENV_DIR/python-app, so only the first run
# downloads (from Debian's mirror, the only network it uses); later runs rebuild the image only
# when this script or the app changed, or when the registry lost it.
set -euo pipefail

ROOT=${PODSTART_LOCALENV_DIR:-/var/lib/podstart-localenv}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=$ROOT/python-app
ROOTFS_CACHE=$WORK/debootstrap          # the debootstrapped tree, kept between runs
OCI=$WORK/oci
BUNDLE=$WORK/bundle
NAME=podstart-test/python-app
TAG=latest
SUITE=bookworm
MIRROR=${PODSTART_DEBIAN_MIRROR:-http://deb.debian.org/debian}

log() { printf 'python-image: %s\n' "$*" >&2; }
die() { printf 'python-image: error: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (debootstrap chroots, umoci keeps file owners)"
for t in debootstrap umoci skopeo curl; do
  command -v "$t" >/dev/null || die "missing $t — run scripts/install-deps.sh"
done
[[ -f $ROOT/registry/port ]] || die "no local registry under $ROOT — run scripts/localenv.sh up first"
PORT=$(cat "$ROOT/registry/port")
curl -fsS -o /dev/null "http://127.0.0.1:$PORT/v2/" ||
  die "the local registry on 127.0.0.1:$PORT does not answer — run scripts/localenv.sh up"
REF=127.0.0.1:$PORT/$NAME:$TAG

mkdir -p "$WORK"
exec 9>"$WORK/lock"
flock 9   # two test processes building at once would share the cache directory

if [[ ! -f $ROOTFS_CACHE/.complete ]]; then
  log "debootstrap $SUITE (minbase + python3) from $MIRROR into $ROOTFS_CACHE (first run only)"
  rm -rf "$ROOTFS_CACHE"
  debootstrap --variant=minbase --include=python3 "$SUITE" "$ROOTFS_CACHE" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
    die "debootstrap failed; see $WORK/debootstrap.log"
  # Downloaded .debs and apt lists are not part of an application image.
  rm -rf "$ROOTFS_CACHE"/var/cache/apt/archives/*.deb "$ROOTFS_CACHE"/var/lib/apt/lists/*
  touch "$ROOTFS_CACHE/.complete"
fi

HASH=$(cat "$HERE/build-python-image.sh" "$HERE/python-app/app.py" | sha256sum | cut -c1-16)
MARKER=$WORK/pushed
if [[ -f $MARKER && $(cat "$MARKER") == "$HASH@$PORT" ]] &&
   curl -fsS -o /dev/null -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
     "http://127.0.0.1:$PORT/v2/$NAME/manifests/$TAG"; then
  echo "$REF"; exit 0
fi

log "building $NAME:$TAG"
rm -rf "$OCI" "$BUNDLE"
umoci init --layout "$OCI"
umoci new --image "$OCI:$TAG"
umoci unpack --image "$OCI:$TAG" "$BUNDLE" >/dev/null
rmdir "$BUNDLE/rootfs" && cp -a "$ROOTFS_CACHE" "$BUNDLE/rootfs"
rm -f "$BUNDLE/rootfs/.complete"
umoci repack --image "$OCI:$TAG" "$BUNDLE"
rm -rf "$BUNDLE"
umoci unpack --image "$OCI:$TAG" "$BUNDLE" >/dev/null
mkdir -p "$BUNDLE/rootfs/app"
cp "$HERE/python-app/app.py" "$BUNDLE/rootfs/app/app.py"
umoci repack --image "$OCI:$TAG" "$BUNDLE"
rm -rf "$BUNDLE"
umoci config --image "$OCI:$TAG" --config.workingdir /app \
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.entrypoint python3 --config.entrypoint /app/app.py --config.cmd json
skopeo copy -q --dest-tls-verify=false "oci:$OCI:$TAG" "docker://$REF"
echo "$HASH@$PORT" >"$MARKER"
echo "$REF"
