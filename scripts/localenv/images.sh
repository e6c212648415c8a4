# Recipes of podstart's OCI test images, sourced by scripts/localenv.sh (which provides $OCI,
# $BUILD and $HERE). Every image is built offline from busybox-static and small static C programs
# with umoci, one `layer` call per image layer. Editing this file rebuilds all images on the next
# `localenv.sh up`.

IMAGES=(pause:latest small-files:latest large-layer:latest large-layer:compressible
        slow-ready:latest reader:latest whiteouts:latest)

# new_image NAME TAG: an empty image in the shared OCI layout, unpacked into $BUILD/NAME-TAG
new_image() {
  local ref=$OCI:$1-$2 bundle=$BUILD/$1-$2
  [[ -d $OCI ]] || umoci init --layout "$OCI"
  umoci rm --image "$ref" 2>/dev/null || true
  rm -rf "$bundle"
  umoci new --image "$ref"
  umoci unpack --image "$ref" "$bundle" >/dev/null
}

# layer NAME TAG [last]: commit what was added to the bundle's rootfs as one new layer, then
# re-unpack it for the next layer unless this was the last one
layer() {
  local ref=$OCI:$1-$2 bundle=$BUILD/$1-$2
  umoci repack --image "$ref" "$bundle"
  rm -rf "$bundle"
  [[ ${3:-} == last ]] || umoci unpack --image "$ref" "$bundle" >/dev/null
}

add_busybox() {
  local rootfs=$1
  mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/etc"
  cp /bin/busybox "$rootfs/bin/busybox"
  chmod 1777 "$rootfs/tmp"
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\n' >"$rootfs/etc/group"
}

# Writes the image's file content; each call after `layer` goes into a new layer.
build_pause() {
  local b=$BUILD/pause-latest
  new_image pause latest
  gcc -static -Os -o "$b/rootfs/pause" "$HERE/localenv/pause.c"
  layer pause latest last
  umoci config --image "$OCI:pause-latest" --config.entrypoint /pause --config.user 65535:65535
}

build_small_files() {
  local b=$BUILD/small-files-latest i
  new_image small-files latest
  add_busybox "$b/rootfs"; layer small-files latest
  mkdir -p "$b/rootfs/data/small"
  for i in $(seq -w 0 1999); do
    # 1 KiB of distinct, deterministic text per file
    printf 'podstart small file %s\n%01000d\n' "$i" 0 | head -c 1024 >"$b/rootfs/data/small/f$i.txt"
  done
  layer small-files latest last
  umoci config --image "$OCI:small-files-latest" \
    --config.entrypoint /bin/busybox --config.cmd sleep --config.cmd 3600
}

# large-layer:latest = 64 MiB of incompressible bytes in one layer (download-bound pulls);
# large-layer:compressible = 512 MiB of zeros in one layer, ~0.5 MiB compressed (decompress-bound).
build_large_layer() {
  local tag=$1 b=$BUILD/large-layer-$1
  new_image large-layer "$tag"
  add_busybox "$b/rootfs"; layer large-layer "$tag"
  mkdir -p "$b/rootfs/data"
  if [[ $tag == compressible ]]; then
    head -c 512M /dev/zero >"$b/rootfs/data/zeros.bin"
  else
    # Incompressibility is what matters here, not reproducibility.
    head -c 64M /dev/urandom >"$b/rootfs/data/random.bin"
  fi
  layer large-layer "$tag" last
  umoci config --image "$OCI:large-layer-$tag" \
    --config.entrypoint /bin/busybox --config.cmd sleep --config.cmd 3600
}

# slow-ready: waits $READY_DELAY seconds (default 1.5), then creates /tmp/ready and keeps running.
build_slow_ready() {
  local b=$BUILD/slow-ready-latest
  new_image slow-ready latest
  add_busybox "$b/rootfs"; layer slow-ready latest last
  umoci config --image "$OCI:slow-ready-latest" --config.env READY_DELAY=1.5 \
    --config.entrypoint /bin/busybox --config.entrypoint sh --config.entrypoint -c \
    --config.entrypoint '/bin/busybox sleep "$READY_DELAY"; /bin/busybox touch /tmp/ready; exec /bin/busybox sleep 3600'
}

# reader: /reader (static) reads /data/one.txt (all 1000 bytes), the first 8192 of the 65536
# bytes of /data/two.bin (both in layer 2) and /data/three.txt (all 3000 bytes, layer 3).
build_reader() {
  local b=$BUILD/reader-latest
  new_image reader latest
  add_busybox "$b/rootfs"
  gcc -static -Os -o "$b/rootfs/reader" "$HERE/localenv/reader.c"
  layer reader latest
  mkdir -p "$b/rootfs/data"
  printf '%01000d' 1 >"$b/rootfs/data/one.txt"
  head -c 65536 /dev/zero | tr '\0' 'b' >"$b/rootfs/data/two.bin"
  printf '%01000d' 9 >"$b/rootfs/data/unread.txt"
  layer reader latest
  printf '%03000d' 3 >"$b/rootfs/data/three.txt"
  layer reader latest last
  umoci config --image "$OCI:reader-latest" --config.entrypoint /reader
}

# whiteouts: three layers, the last deleting what the second added (the pull-split shapes test):
# layer 2 holds 1000 small files and 128 MiB of text in one file (compresses ~300:1); layer 3
# removes half of the small files and the text file (whiteout entries) and adds 500 more files.
# Every byte of layer 2 is still downloaded and unpacked.
build_whiteouts() {
  local b=$BUILD/whiteouts-latest i
  new_image whiteouts latest
  add_busybox "$b/rootfs"; layer whiteouts latest
  mkdir -p "$b/rootfs/data/a"
  for i in $(seq -w 0 999); do printf 'podstart whiteouts a %s\n' "$i" >"$b/rootfs/data/a/f$i.txt"; done
  # (yes ends on SIGPIPE: outside the pipeline, so pipefail does not take it for a failure)
  head -c 128M < <(yes 'podstart whiteouts: a line of text that repeats, as logs and source files do') >"$b/rootfs/data/text.txt"
  layer whiteouts latest
  rm -f "$b"/rootfs/data/a/f[0-4]*.txt "$b/rootfs/data/text.txt"
  mkdir -p "$b/rootfs/data/b"
  for i in $(seq -w 0 499); do printf 'podstart whiteouts b %s\n' "$i" >"$b/rootfs/data/b/f$i.txt"; done
  layer whiteouts latest last
  umoci config --image "$OCI:whiteouts-latest" \
    --config.entrypoint /bin/busybox --config.cmd sleep --config.cmd 3600
}

