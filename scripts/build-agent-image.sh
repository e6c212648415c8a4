#!/usr/bin/env bash
# Assembles the agent's OCI image without a Docker engine: the podstart binary, exactly the shared
# libraries it loads (found with ldd) and a minimal /etc, written with umoci into an OCI layout and
# optionally pushed with skopeo. The image matches deploy/Containerfile's: entrypoint
# /usr/local/bin/podstart, command `agent`, port 9464, runs as root (its power comes from the
# capabilities the DaemonSet grants).
#
#   scripts/build-agent-image.sh [--binary PATH] [--tag NAME:TAG] [--out DIR] [--push REGISTRY] [--no-strip]
#
#   --binary PATH    use this podstart binary. Default: build the release binary with
#                    `swift build -c release --static-swift-stdlib` (~10 min on 2 cores). A
#                    dynamically linked (debug) binary works too: the Swift runtime's .so files
#                    it needs are copied along, at the paths it looks for them.
#   --tag NAME:TAG   image name and tag (default podstart-agent:<podstart --version>)
#   --out DIR        OCI layout directory (default .build/agent-image/oci)
#   --push REGISTRY  copy the image to REGISTRY/NAME:TAG (e.g. 127.0.0.1:5000; plain HTTP is
#                    allowed for 127.0.0.1 and localhost only)
#   --no-strip       keep debug symbols (they are stripped from the copies by default)
#
# Prints the pushed reference (or the OCI layout reference) on the last line.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "build-agent-image: $*" >&2; exit 1; }

binary="" tag="" out=.build/agent-image/oci push="" strip=1
while (($#)); do
  case $1 in
    --binary) binary=${2:?--binary needs a path}; shift 2 ;;
    --tag) tag=${2:?--tag needs NAME:TAG}; shift 2 ;;
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --push) push=${2:?--push needs a registry host:port}; shift 2 ;;
    --no-strip) strip=0; shift ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

for tool in umoci ldd unshare chroot; do
  command -v "$tool" >/dev/null || die "$tool is not installed: run scripts/install-deps.sh"
done
[[ -z $push ]] || command -v skopeo >/dev/null || die "skopeo is not installed: run scripts/install-deps.sh"
((strip == 0)) || command -v objcopy >/dev/null || die "objcopy (binutils) is not installed; pass --no-strip or install binutils"

if [[ -z $binary ]]; then
  echo "build-agent-image: building the release binary (swift build -c release --static-swift-stdlib)" >&2
  swift build -c release --static-swift-stdlib --product podstart >&2
  binary=$(swift build -c release --static-swift-stdlib --show-bin-path)/podstart
fi
[[ -x $binary ]] || die "$binary is not an executable file"
binary=$(readlink -f "$binary")

version=$("$binary" --version 2>/dev/null) || die "$binary --version failed: is it a podstart binary?"
tag=${tag:-podstart-agent:$version}
[[ $tag == *:* && $tag != */* ]] || die "--tag must be NAME:TAG without a registry (got $tag); the registry goes in --push"
name=${tag%%:*} version_tag=${tag#*:}

# journalctl, for the agent's journal source (`journal: true`): the host's, with its libraries.
journalctl=$(command -v journalctl) || die "journalctl is not installed (Debian's systemd package): the agent's journal source runs it"
# Every shared object the binary and journalctl load, resolved as the dynamic loader resolves them here.
libraries=$(ldd "$binary" "$journalctl" | awk '/=> \// { print $3 } /^[ \t]*\/[^ ]+ \(/ { print $1 }' | sort -u)
if ldd "$binary" "$journalctl" | grep -q 'not found'; then
  die "ldd $binary $journalctl: $(ldd "$binary" "$journalctl" | grep 'not found' | tr '\n' ' ')"
fi

work=$(mktemp -d /tmp/podstart-agent-image.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
# Debian's merged /usr: /lib and /lib64 are symlinks into /usr, as on the host, so every path
# ldd printed (and the loader's own, /lib64/ld-linux-x86-64.so.2) stays valid in the image.
mkdir -p "$rootfs"
for link in lib lib64; do
  if [[ -L /$link ]]; then ln -s "$(readlink "/$link")" "$rootfs/$link"; mkdir -p "$rootfs/$(readlink -f "/$link")"; fi
done
mkdir -p "$rootfs"/{usr/local/bin,etc/podstart,etc/ssl/certs,tmp,var/lib/podstart,run,proc,sys,dev}
chmod 1777 "$rootfs/tmp"

copy() {  # copy FILE to the same path in the image, stripped unless --no-strip
  local src=$1 dst=$rootfs$2
  mkdir -p "$(dirname "$dst")"
  if ((strip)); then objcopy --strip-debug "$src" "$dst"; else cp "$src" "$dst"; fi
}
copy "$binary" /usr/local/bin/podstart
copy "$(readlink -f "$journalctl")" /usr/bin/journalctl
for lib in $libraries; do
  real=$(readlink -f "$lib")
  copy "$real" "$real"
  # the name the loader asks for (a symlink such as libbpf.so.1 → libbpf.so.1.1.0), if different
  # (through the merged-/usr symlinks it may already be the copied file itself)
  if [[ ! -e $rootfs$lib ]]; then mkdir -p "$rootfs$(dirname "$lib")"; ln -s "$real" "$rootfs$lib"; fi
done
[[ -f /etc/ssl/certs/ca-certificates.crt ]] && cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\n' >"$rootfs/etc/group"
printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"

# The image must run: the loader finds every library inside the new root. With a /proc of its
# own, as a container has (Swift reads its arguments from /proc/self/cmdline).
got=$(unshare --mount --pid --fork --mount-proc="$rootfs/proc" chroot "$rootfs" /usr/local/bin/podstart --version 2>"$work/chroot.err") || true
[[ $got == "$version" ]] || die "the assembled root file system cannot run podstart --version (got '$got'): $(cat "$work/chroot.err")"
got=$(chroot "$rootfs" /usr/bin/journalctl --version 2>"$work/chroot.err" | head -1) || true
[[ $got == systemd* ]] || die "the assembled root file system cannot run journalctl --version (got '$got'): $(cat "$work/chroot.err")"
umount "$rootfs/proc" 2>/dev/null || true

mkdir -p "$(dirname "$out")"
[[ -d $out ]] || umoci init --layout "$out"
umoci rm --image "$out:$version_tag" 2>/dev/null || true
umoci new --image "$out:$version_tag"
umoci unpack --image "$out:$version_tag" "$work/bundle" >/dev/null
rm -rf "$work/bundle/rootfs"
mv "$rootfs" "$work/bundle/rootfs"
umoci repack --image "$out:$version_tag" "$work/bundle"
umoci config --image "$out:$version_tag" \
  --os linux --architecture amd64 \
  --config.entrypoint /usr/local/bin/podstart --config.cmd agent \
  --config.user 0:0 --config.workingdir / \
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.exposedports 9464/tcp --config.volume /var/lib/podstart \
  --config.label "org.opencontainers.image.title=podstart agent" \
  --config.label "org.opencontainers.image.version=$version" \
  --config.label "org.opencontainers.image.source=deploy/Containerfile"
umoci gc --layout "$out"
echo "build-agent-image: $out:$version_tag ($(du -sh "$out" | cut -f1))" >&2

if [[ -n $push ]]; then
  tls=()
  case $push in
    127.0.0.1:*|localhost:*|127.0.0.1|localhost) tls=(--dest-tls-verify=false) ;;
  esac
  skopeo copy -q "${tls[@]}" "oci:$out:$version_tag" "docker://$push/$name:$version_tag" >&2
  echo "$push/$name:$version_tag"
else
  echo "oci:$out:$version_tag"
fi
