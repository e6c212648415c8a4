#!/usr/bin/env bash
# Builds the agent's image from deploy/Containerfile with buildah (Debian 12's buildah 1.28, or
# newer), as users' builders build it, and optionally pushes it. scripts/build-agent-image.sh
# assembles the same image without any engine.
#
#   scripts/build-agent-image-buildah.sh [--binary PATH] [--tag NAME:TAG] [--push REGISTRY]
#                                        [--state DIR] [--local-base-images] [--no-strip]
#
#   --binary PATH        put this podstart binary in the image (the Containerfile's `prebuilt`
#                        stage) instead of building the release binary inside (its `build` stage,
#                        `swift build -c release --static-swift-stdlib`: 15-25 min on 2 cores). A
#                        dynamically linked (debug) binary works too: the Swift runtime's .so files
#                        it loads are copied along, at the paths it looks for them.
#   --tag NAME:TAG       image name and tag (default podstart-agent:<podstart --version>)
#   --push REGISTRY      push the image to REGISTRY/NAME:TAG (e.g. 127.0.0.1:5000; plain HTTP is
#                        allowed for 127.0.0.1 and localhost only; `buildah login REGISTRY` first
#                        where it asks for credentials), then drop the local copy
#   --state DIR          buildah's storage and the cached base root file systems (default
#                        /var/lib/podstart-buildah); buildah's global storage is not touched
#   --local-base-images  make the base images here and never pull: debian:12-slim from Debian's
#                        mirror (debootstrap --variant=minbase, cached in DIR), and, without
#                        --binary, swift:6.3-bookworm as that Debian with the Swift toolchain of
#                        `swift` on PATH and the host's local git mirrors (url.*.insteadOf). For
#                        machines that reach Debian's mirror but no container registry.
#   --no-strip           keep debug symbols in what --binary copies (stripped by default)
#
# RUN steps share the host's network (buildah --network host): they only reach Debian's mirror,
# and no bridge or firewall rule is made for them. Prints the pushed reference (or the local
# image's name) on the last line.
set -euo pipefail

die() { echo "build-agent-image-buildah: $*" >&2; exit 1; }
log() { echo "build-agent-image-buildah: [${SECONDS}s] $*" >&2; }

binary="" tag="" push="" state=/var/lib/podstart-buildah local_bases=0 strip=1
while (($#)); do
  case $1 in
    --binary) binary=${2:?--binary needs a path}; shift 2 ;;
    --tag) tag=${2:?--tag needs NAME:TAG}; shift 2 ;;
    --push) push=${2:?--push needs a registry host:port}; shift 2 ;;
    --state) state=${2:?--state needs a directory}; shift 2 ;;
    --local-base-images) local_bases=1; shift ;;
    --no-strip) strip=0; shift ;;
    -h|--help) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[[ $(id -u) -eq 0 ]] || die "must run as root (buildah's storage in $state, RUN steps in runc containers)"
# paths as the caller meant them, before moving to the repository's root
[[ -z $binary ]] || binary=$(readlink -f "$binary" 2>/dev/null || echo "$binary")
mkdir -p "$state" || die "cannot create the state directory $state"
state=$(readlink -f "$state")
cd "$(dirname "$0")/.."

for tool in buildah runc; do
  command -v "$tool" >/dev/null || die "$tool is not installed: run scripts/install-deps.sh"
done
((local_bases == 0)) || command -v debootstrap >/dev/null || die "debootstrap is not installed: run scripts/install-deps.sh"
[[ -z $binary ]] || ((strip == 0)) || command -v objcopy >/dev/null ||
  die "objcopy (binutils) is not installed; pass --no-strip or install binutils"

if [[ -n $binary ]]; then
  [[ -x $binary && -f $binary ]] || die "$binary is not an executable file"
  version=$("$binary" --version 2>/dev/null) || die "$binary --version failed: is it a podstart binary?"
  [[ $version =~ ^[0-9A-Za-z._+-]+$ ]] || die "$binary --version printed no version (got '$(head -1 <<<"$version")'): is it a podstart binary?"
else
  version=$(sed -n 's/.*static let string = "\(.*\)".*/\1/p' Sources/PodstartAgent/DurationText.swift)
  [[ -n $version ]] || die "no PodstartVersion.string in Sources/PodstartAgent/DurationText.swift"
fi
tag=${tag:-podstart-agent:$version}
[[ $tag == *:* && $tag != */* ]] || die "--tag must be NAME:TAG without a registry (got $tag); the registry goes in --push"
name=${tag%%:*} version_tag=${tag#*:}
image=localhost/$name:$version_tag

# The run root holds locks and mount counts that must not outlive a reboot: /run, keyed by DIR.
runroot=/run/podstart-buildah/$(printf '%s' "$state" | sha256sum | cut -c1-12)
bh() { buildah --root "$state/storage" --runroot "$runroot" --storage-driver overlay "$@"; }
exec 9>"$state/lock"
flock 9   # one build at a time per state directory (tests in two processes share it)
# buildah's temporary layers (GBs for the swift image) in the state directory, not /var/tmp;
# what a failed or killed build left there goes with the next one
export TMPDIR=$state/tmp
rm -rf "$TMPDIR" && mkdir -p "$TMPDIR"

work=$(mktemp -d /tmp/podstart-agent-buildah.XXXXXX)
# Working containers a failed step left (buildah 1.28 also leaves one of a stage another stage
# copies from) go at the end: the lock makes this run the only one using this storage.
trap 'bh rm --all >/dev/null 2>&1; rm -rf "$work" "$TMPDIR"' EXIT

bud=(bud --network host --format oci -f "$PWD/deploy/Containerfile" -t "$image"
     --label "org.opencontainers.image.version=$version")

# --- base images made here -------------------------------------------------------------------
debian_image=docker.io/library/debian:12-slim
swift_image=docker.io/library/swift:6.3-bookworm
debian_root=$state/debian-12-minbase   # the debootstrapped tree, kept between runs
mirror=${PODSTART_DEBIAN_MIRROR:-http://deb.debian.org/debian}

# A base image is remade when the function that makes it changed: its text's hash is an
# annotation (not a label, which every image built on it would inherit).
recipe_label=io.podstart.base-recipe
recipe() { declare -f "$1" commit_tree | sha256sum | cut -c1-16; }
current() {  # current IMAGE FUNCTION: IMAGE exists, made by FUNCTION as it is now
  [[ $(bh inspect --type image --format "{{index .ImageAnnotations \"$recipe_label\"}}" "$1" 2>/dev/null) == "$(recipe "$2")" ]]
}
# The host's git URL rewrites to local directories (e.g. url./opt/swift-packages/.insteadOf
# https://github.com/, any scope): "DIRECTORY URL" lines.
git_mirrors() {
  local key value base
  while read -r key value; do
    base=${key#url.}; base=${base%.insteadof}
    if [[ -n $key && -d $base ]]; then echo "$base $value"; fi
  done <<<"$(git config --get-regexp '^url\..*\.insteadof$' 2>/dev/null || true)"
}

# commit_tree IMAGE DIR [buildah config flags…]: IMAGE is DIR's tree (owners, modes and links kept)
commit_tree() {
  local target=$1 tree=$2 container mount
  shift 2
  container=$(bh from --pull=never scratch)
  mount=$(bh mount "$container")
  cp -a "$tree/." "$mount/"
  bh umount "$container" >/dev/null
  bh config --os linux --arch amd64 "$@" "$container"
  bh commit --rm --format oci "$container" "$target" >/dev/null
}

make_debian_image() {
  if [[ ! -f $debian_root/.complete ]]; then
    log "debootstrap bookworm (minbase) from $mirror into $debian_root (first run only)"
    rm -rf "$debian_root"
    debootstrap --variant=minbase bookworm "$debian_root" "$mirror" >"$state/debootstrap.log" 2>&1 ||
      die "debootstrap failed; see $state/debootstrap.log"
    # as in Debian's own images: no downloaded packages, no package lists, no device nodes
    rm -rf "$debian_root"/var/cache/apt/archives/*.deb "$debian_root"/var/lib/apt/lists/* "$debian_root"/dev/*
    touch "$debian_root/.complete"
  fi
  log "making $debian_image from $debian_root"
  local tree=$work/debian
  mkdir -p "$tree" && cp -a "$debian_root/." "$tree/" && rm -f "$tree/.complete"
  commit_tree "$debian_image" "$tree" --annotation "$recipe_label=$(recipe make_debian_image)" \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd bash
  rm -rf "$tree"
}

make_swift_image() {
  local swift toolchain container mount base value
  swift=$(command -v swift) || die "--local-base-images without --binary needs a Swift toolchain: no swift on PATH"
  toolchain=$(dirname "$(dirname "$(dirname "$(readlink -f "$swift")")")")   # …/usr/bin/swift → …
  log "making $swift_image from $debian_image and the toolchain in $toolchain"
  container=$(bh from --pull=never "$debian_image")
  # what the official swift:*-bookworm images install next to the toolchain
  bh run --network host "$container" -- sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends binutils git gnupg2 libc6-dev libcurl4-openssl-dev \
      libedit2 libgcc-12-dev libncurses-dev libpython3-dev libsqlite3-0 libstdc++-12-dev libxml2-dev \
      libz3-dev pkg-config tzdata unzip zlib1g-dev ca-certificates >/dev/null && rm -rf /var/lib/apt/lists/*' >&2
  mount=$(bh mount "$container")
  cp -a "$toolchain/usr/." "$mount/usr/"
  # The host's rewrites to local git mirrors, so the build's package resolution works where
  # GitHub is unreachable; the mirrors themselves are bound into RUN steps (see bud below).
  : >"$mount/root/.gitconfig"
  while read -r base value; do
    [[ -z $base ]] || git config --file "$mount/root/.gitconfig" --add "url.$base.insteadOf" "$value"
  done <<<"$(git_mirrors)"
  bh umount "$container" >/dev/null
  bh config --annotation "$recipe_label=$(recipe make_swift_image)" "$container"
  bh commit --rm --format oci "$container" "$swift_image" >/dev/null
}

if ((local_bases)); then
  bud+=(--pull=never)
  # Short names (FROM debian:12-slim) mean docker.io/library/…, the names the images are made
  # under, whatever the host's registries.conf searches. Nothing under /etc/containers is written
  # (Debian's policy.json, accept anything, is used as installed).
  printf 'unqualified-search-registries = ["docker.io"]\nshort-name-mode = "permissive"\n' >"$state/registries.conf"
  export CONTAINERS_REGISTRIES_CONF=$state/registries.conf
  current "$debian_image" make_debian_image || make_debian_image
  log "$debian_image ready"
  if [[ -z $binary ]]; then
    current "$swift_image" make_swift_image || make_swift_image
    log "$swift_image ready"
    for base in $(git_mirrors | cut -d' ' -f1 | sort -u); do bud+=(--volume "$base:$base:ro"); done
  fi
fi

# --- the build context -----------------------------------------------------------------------
if [[ -n $binary ]]; then
  # deploy/prebuilt/: the binary and the libraries it loads that no Debian package provides (a
  # debug build's Swift runtime), at the paths the loader finds them; the runtime stage's
  # packages provide the rest, and its `RUN podstart --version` proves they do.
  context=$work/context
  prebuilt=$context/deploy/prebuilt
  copy() {  # copy FILE to the same path under deploy/prebuilt/, stripped unless --no-strip
    local dst=$prebuilt$2
    mkdir -p "$(dirname "$dst")"
    if ((strip)); then objcopy --strip-debug "$1" "$dst"; else cp "$1" "$dst"; fi
  }
  copy "$binary" /usr/local/bin/podstart
  if ldd "$binary" | grep -q 'not found'; then
    die "ldd $binary: $(ldd "$binary" | grep 'not found' | tr '\n' ' ')"
  fi
  for lib in $(ldd "$binary" | awk '/=> \// { print $3 }'); do
    real=$(readlink -f "$lib")
    if dpkg -S "$lib" >/dev/null 2>&1 || dpkg -S "$real" >/dev/null 2>&1; then continue; fi
    copy "$real" "$real"
    [[ -e $prebuilt$lib ]] || { mkdir -p "$prebuilt$(dirname "$lib")"; ln -s "$real" "$prebuilt$lib"; }
  done
  bud+=(--build-arg PODSTART_BINARY_STAGE=prebuilt)
else
  context=$PWD   # the repository; .dockerignore keeps .build out
fi

log "buildah ${bud[*]} $context"
built=0
bh "${bud[@]}" "$context" >&2 && built=1
# the working container and image of a stage another stage copies from, which buildah 1.28 leaves
bh rm --all >/dev/null 2>&1 || true
bh rmi --prune >/dev/null 2>&1 || true
((built)) || die "buildah bud failed (its output is above)"
log "built $image ($(bh images --format '{{.Size}}' "$image" 2>/dev/null || echo '?'))"

if [[ -n $push ]]; then
  tls=()
  case $push in
    127.0.0.1:*|localhost:*|127.0.0.1|localhost) tls=(--tls-verify=false) ;;
  esac
  bh push -q "${tls[@]}" "$image" "docker://$push/$name:$version_tag" >&2
  bh rmi "$image" >/dev/null
  log "pushed $push/$name:$version_tag"
  echo "$push/$name:$version_tag"
else
  echo "$image"
fi
