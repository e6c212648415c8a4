#!/usr/bin/env bash
# podstart's local environment: a private containerd (CRI plugin, overlayfs, runc, a CNI bridge
# network), an OCI registry on 127.0.0.1 and the OCI test images, all under one directory.
#
#   scripts/localenv.sh up       start everything (idempotent: reuses what already runs)
#   scripts/localenv.sh down     remove pods it ran, stop every process it started, unmount,
#                                remove netns/CNI leftovers; keeps images and registry data
#   scripts/localenv.sh purge    down, then delete the whole directory
#   scripts/localenv.sh status   what runs, where (exit 0 only if containerd and registry are up)
#   scripts/localenv.sh env      shell exports for podstart, tests, ctr and crictl
#   scripts/localenv.sh stargz-up   `up`, then a second containerd whose CRI pulls lazily through
#                                stargz-snapshotter (a proxy snapshotter, built by install-deps.sh)
#                                and the eStargz test images; the first containerd stays as it was
#
# Directory: $PODSTART_LOCALENV_DIR (default /var/lib/podstart-localenv). Nothing is written
# outside it except what the kernel and runc need: netns mounts under /var/run/netns, the bridge
# link "pst<hash>", cgroups under /podstart/, and containerd's shim sockets under /run/containerd/s.
# `down` removes all of them that belong to this environment.
#
# Network: the registry listens on 127.0.0.1 only; pods get eth0 addresses in a 10.88.x.0/24 on a
# bridge with no gateway and no masquerading, so nothing routes out of them and nothing is sent to
# them.
set -euo pipefail

ROOT=${PODSTART_LOCALENV_DIR:-/var/lib/podstart-localenv}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

CTRD_DIR=$ROOT/containerd
SOCK=$CTRD_DIR/containerd.sock
CTRD_CONFIG=$CTRD_DIR/config.toml
CTRD_PID=$CTRD_DIR/containerd.pid
CTRD_LOG=$CTRD_DIR/containerd.log
REG_DIR=$ROOT/registry
REG_PID=$REG_DIR/registry.pid
REG_PORT_FILE=$REG_DIR/port
REG_LOG=$REG_DIR/registry.log
CNI_CONF_DIR=$ROOT/cni/net.d
CNI_IPAM_DIR=$ROOT/cni/ipam
CNI_BIN_DIR=/usr/lib/cni
# Bridge and subnet derive from the directory, so two environments (a developer's and the tests')
# can run side by side without sharing a bridge or handing out the same addresses.
ENV_HASH=$(printf '%s' "$ROOT" | sha256sum | cut -c1-6)
BRIDGE=pst$ENV_HASH
POD_SUBNET=10.88.$((16#${ENV_HASH:0:2} % 200 + 20)).0/24
OCI=$ROOT/oci
BUILD=$ROOT/build
NS=k8s.io
IMAGE_PREFIX=podstart-test
# The lazy-pull side: a second containerd on the stargz snapshotter, next to the default one.
SZ_CTRD_DIR=$ROOT/containerd-stargz
SZ_SOCK=$SZ_CTRD_DIR/containerd.sock
SZ_DIR=$ROOT/stargz
SZ_SNAP_SOCK=$SZ_DIR/snapshotter.sock
SZ_PID=$SZ_DIR/snapshotter.pid
SZ_LOG=$SZ_DIR/snapshotter.log
SZ_BIN=${PODSTART_STARGZ_SNAPSHOTTER:-/opt/podstart-tools/stargz/bin/podstart-stargz-snapshotter}
# eStargz copies of these test images, pushed as NAME:estargz
ESTARGZ_IMAGES=(large-layer:latest)

log() { printf 'localenv: %s\n' "$*" >&2; }
die() { printf 'localenv: error: %s\n' "$*" >&2; exit 1; }

need_root() { [[ $(id -u) -eq 0 ]] || die "must run as root (containerd, runc and CNI need it)"; }

need_tools() {
  local missing=() t
  for t in containerd containerd-shim-runc-v2 runc ctr docker-registry skopeo umoci gcc ip; do
    command -v "$t" >/dev/null || missing+=("$t")
  done
  [[ -x /bin/busybox ]] || missing+=("/bin/busybox (busybox-static)")
  [[ -x $CNI_BIN_DIR/bridge && -x $CNI_BIN_DIR/host-local && -x $CNI_BIN_DIR/loopback ]] ||
    missing+=("$CNI_BIN_DIR/{bridge,host-local,loopback} (containernetworking-plugins)")
  ((${#missing[@]} == 0)) || die "missing: ${missing[*]} — run scripts/install-deps.sh"
}

pid_alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

port_in_use() { ss -Hltn "sport = :$1" | grep -q .; }

registry_port() {
  if [[ -f $REG_PORT_FILE ]]; then cat "$REG_PORT_FILE"; return; fi
  local p
  for p in $(seq 35000 35999); do
    port_in_use "$p" || { echo "$p" >"$REG_PORT_FILE"; echo "$p"; return; }
  done
  die "no free port in 35000-35999 for the registry"
}

wait_for() { # wait_for SECONDS DESCRIPTION CMD...
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" 2>/dev/null; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# ---------------------------------------------------------------------------------------------
# registry

registry_up() {
  mkdir -p "$REG_DIR/data"
  local port
  port=$(registry_port)
  if pid_alive "$REG_PID"; then return; fi
  if port_in_use "$port"; then
    # The remembered port was taken by something else meanwhile: choose another. Images pushed
    # before stay in the storage directory, which does not depend on the port.
    rm -f "$REG_PORT_FILE"; port=$(registry_port)
  fi
  cat >"$REG_DIR/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $REG_DIR/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  secret: podstart-localenv
EOF
  setsid docker-registry serve "$REG_DIR/config.yml" </dev/null 9>&- >>"$REG_LOG" 2>&1 &
  echo $! >"$REG_PID"
  wait_for 20 registry curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" ||
    die "registry did not answer on 127.0.0.1:$port within 20 s; see $REG_LOG"
  log "registry on 127.0.0.1:$port (pid $(cat "$REG_PID"))"
}

# ---------------------------------------------------------------------------------------------
# test images, built offline from busybox-static and small static C programs

# The recipes (build_* functions and the IMAGES list) live in localenv/images.sh.
source "$HERE/localenv/images.sh"

# A recipe's fingerprint: rebuild the images when the recipes or their C sources change.
recipe_hash() { cat "$HERE"/localenv/images.sh "$HERE"/localenv/*.c | sha256sum | cut -c1-16; }

images_up() {
  local port hash name tag marker
  port=$(cat "$REG_PORT_FILE")
  hash=$(recipe_hash)
  mkdir -p "$BUILD"
  for image in "${IMAGES[@]}"; do
    name=${image%%:*} tag=${image##*:}
    marker=$BUILD/$name-$tag.pushed
    if [[ -f $marker && $(cat "$marker") == "$hash" ]] &&
       [[ -e $REG_DIR/data/docker/registry/v2/repositories/$IMAGE_PREFIX/$name/_manifests/tags/$tag ]]; then
      continue
    fi
    log "building $IMAGE_PREFIX/$name:$tag"
    case $image in
      pause:latest) build_pause ;;
      small-files:latest) build_small_files ;;
      large-layer:*) build_large_layer "$tag" ;;
      slow-ready:latest) build_slow_ready ;;
      reader:latest) build_reader ;;
      whiteouts:latest) build_whiteouts ;;
    esac
    rm -rf "$BUILD/$name-$tag"
    skopeo copy -q --dest-tls-verify=false \
      "oci:$OCI:$name-$tag" "docker://127.0.0.1:$port/$IMAGE_PREFIX/$name:$tag"
    echo "$hash" >"$marker"
  done
  # Old manifests and blobs of rebuilt images are unreferenced now; drop them from the layout.
  umoci gc --layout "$OCI"
}

# ---------------------------------------------------------------------------------------------
# containerd

write_cni_config() {
  mkdir -p "$CNI_CONF_DIR" "$CNI_IPAM_DIR"
  cat >"$CNI_CONF_DIR/10-podstart.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "podstart",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": false,
      "ipMasq": false,
      "hairpinMode": false,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_SUBNET"}]],
        "dataDir": "$CNI_IPAM_DIR"
      }
    }
  ]
}
EOF
}

# write_containerd_config PORT DIR SNAPSHOTTER: a containerd rooted in DIR whose CRI unpacks into
# SNAPSHOTTER (overlayfs, or stargz: the proxy snapshotter on $SZ_SNAP_SOCK).
write_containerd_config() {
  local port=$1 dir=$2 snapshotter=$3 proxy_plugins="" annotations=""
  if [[ $snapshotter == stargz ]]; then
    proxy_plugins="[proxy_plugins.stargz]
  type = \"snapshot\"
  address = \"$SZ_SNAP_SOCK\""
    # The CRI plugin passes each layer's image reference and digest to the snapshotter as labels;
    # without them stargz cannot find the layer in the registry and containerd downloads it whole.
    annotations="disable_snapshot_annotations = false"
  fi
  cat >"$dir/config.toml" <<EOF
# Written by scripts/localenv.sh; rewritten on every \`up\`.
version = 2
root = "$dir/root"
state = "$dir/state"
oom_score = 0

[grpc]
  address = "$dir/containerd.sock"

[ttrpc]
  address = "$dir/containerd.sock.ttrpc"

$proxy_plugins

[debug]
  level = "info"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "127.0.0.1:$port/$IMAGE_PREFIX/pause:latest"
  # No CAP_SYS_RESOURCE on these machines: without this runc fails writing oom_score_adj.
  restrict_oom_score_adj = true
  systemd_cgroup = false
  disable_apparmor = true
  enable_selinux = false
  stats_collect_period = 10

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "$snapshotter"
  $annotations
  default_runtime_name = "runc"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  SystemdCgroup = false

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "$CNI_BIN_DIR"
  conf_dir = "$CNI_CONF_DIR"
  max_conf_num = 1

# Registry hosts as nodes configure them today (containerd 2.x reads only this form): one
# hosts.toml per registry under config_path, read again on every pull, so a test can add a
# registry mirror entry without a restart.
[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "$dir/certs.d"
EOF
  # The local registry speaks plain HTTP on loopback.
  mkdir -p "$dir/certs.d/127.0.0.1:$port"
  cat >"$dir/certs.d/127.0.0.1:$port/hosts.toml" <<EOF
server = "http://127.0.0.1:$port"

[host."http://127.0.0.1:$port"]
  capabilities = ["pull", "resolve", "push"]
  skip_verify = true
EOF
}

ctr_() { ctr --address "$SOCK" --namespace "$NS" "$@"; }

containerd_up() {
  local port
  port=$(cat "$REG_PORT_FILE")
  mkdir -p "$CTRD_DIR/root" "$CTRD_DIR/state" "$CTRD_DIR/opt" "$ROOT/pods"
  write_cni_config
  local previous=$CTRD_CONFIG.prev
  cp "$CTRD_CONFIG" "$previous" 2>/dev/null || : >"$previous"
  write_containerd_config "$port" "$CTRD_DIR" overlayfs
  if ! pid_alive "$CTRD_PID"; then
    start_containerd
  elif ! cmp -s "$CTRD_CONFIG" "$previous"; then
    log "containerd config changed; restarting containerd"
    stop_pid "$CTRD_PID" containerd 20
    start_containerd
  fi
  rm -f "$previous"
  # Pull the pause image now, as a node has it before its first pod, so a pod's sandbox phase
  # does not include a one-time pull. Cheap when it is already there.
  ctr_ images pull --plain-http "127.0.0.1:$port/$IMAGE_PREFIX/pause:latest" >/dev/null ||
    die "could not pull the pause image from 127.0.0.1:$port"
}

start_containerd() { # start_containerd [DIR]: the containerd of DIR (default the overlayfs one)
  local dir=${1:-$CTRD_DIR}
  local sock=$dir/containerd.sock logf=$dir/containerd.log
  rm -f "$sock" "$sock.ttrpc"
  [[ -f $logf ]] && mv "$logf" "$logf.prev"
  setsid containerd --config "$dir/config.toml" </dev/null 9>&- >>"$logf" 2>&1 &
  echo $! >"$dir/containerd.pid"
  wait_for 30 containerd ctr --address "$sock" version >/dev/null ||
    die "containerd did not answer on $sock within 30 s; see $logf"
  # The CRI plugin initialises after the socket opens (it answers "server is not initialized
  # yet" until then); its streaming server starts last.
  wait_for 30 cri grep -q 'Start streaming server' "$logf" ||
    die "containerd's CRI plugin did not start; see $logf"
  log "containerd on $sock (pid $(cat "$dir/containerd.pid"))"
}

# ---------------------------------------------------------------------------------------------
# the lazy-pull side: stargz snapshotter daemon, a containerd on it, eStargz test images

stargz_snapshotter_up() {
  [[ -x $SZ_BIN ]] || die "missing $SZ_BIN (the stargz snapshotter daemon) — run scripts/install-deps.sh"
  [[ -e /dev/fuse ]] || die "no /dev/fuse: the stargz snapshotter mounts layers with FUSE"
  command -v fusermount3 >/dev/null || command -v fusermount >/dev/null || die "no fusermount — install fuse3"
  mkdir -p "$SZ_DIR"
  # No background fetch: a lazily pulled layer then holds only what was read or prefetched, so
  # bytes fetched from the registry measure a prefetch list (podstart-bench prefetch) exactly.
  # Memory caches belong to one resolved layer (image reference + digest): a pull under a new
  # reference starts cold, where the directory caches would serve chunks earlier pulls fetched.
  printf '%s\n' 'no_background_fetch = true' 'no_prometheus = true' \
    'http_cache_type = "memory"' 'filesystem_cache_type = "memory"' >"$SZ_DIR/config.toml"
  pid_alive "$SZ_PID" && return
  # A daemon that is not running left no usable snapshots (see down): start both sides afresh.
  if pid_alive "$SZ_CTRD_DIR/containerd.pid"; then
    SOCK=$SZ_SOCK CTRD_PID=$SZ_CTRD_DIR/containerd.pid remove_pods
    stop_pid "$SZ_CTRD_DIR/containerd.pid" containerd 20
  fi
  unmount_under "$SZ_CTRD_DIR"; unmount_under "$SZ_DIR"
  rm -rf "$SZ_CTRD_DIR/root" "$SZ_CTRD_DIR/state" "$SZ_DIR/root"
  [[ -f $SZ_LOG ]] && mv "$SZ_LOG" "$SZ_LOG.prev"
  # The daemon removes a stale socket itself, and refuses one that a live daemon answers on.
  setsid "$SZ_BIN" -address "$SZ_SNAP_SOCK" -root "$SZ_DIR/root" -config "$SZ_DIR/config.toml" \
    </dev/null 9>&- >>"$SZ_LOG" 2>&1 &
  echo $! >"$SZ_PID"
  wait_for 20 stargz test -S "$SZ_SNAP_SOCK" ||
    die "the stargz snapshotter did not listen on $SZ_SNAP_SOCK within 20 s; see $SZ_LOG"
  log "stargz snapshotter on $SZ_SNAP_SOCK (pid $(cat "$SZ_PID"))"
}

stargz_containerd_up() {
  local port
  port=$(cat "$REG_PORT_FILE")
  mkdir -p "$SZ_CTRD_DIR/root" "$SZ_CTRD_DIR/state" "$SZ_CTRD_DIR/opt"
  local previous=$SZ_CTRD_DIR/config.toml.prev
  cp "$SZ_CTRD_DIR/config.toml" "$previous" 2>/dev/null || : >"$previous"
  write_containerd_config "$port" "$SZ_CTRD_DIR" stargz
  if ! pid_alive "$SZ_CTRD_DIR/containerd.pid"; then
    start_containerd "$SZ_CTRD_DIR"
  elif ! cmp -s "$SZ_CTRD_DIR/config.toml" "$previous"; then
    log "stargz containerd config changed; restarting it"
    stop_pid "$SZ_CTRD_DIR/containerd.pid" containerd 20
    start_containerd "$SZ_CTRD_DIR"
  fi
  rm -f "$previous"
  ctr --address "$SZ_SOCK" --namespace "$NS" images pull --snapshotter stargz --plain-http \
    "127.0.0.1:$port/$IMAGE_PREFIX/pause:latest" >/dev/null ||
    die "the stargz containerd could not pull the pause image from 127.0.0.1:$port"
}

# eStargz copies of test images (ctr-remote image convert in the overlayfs containerd), pushed as
# NAME:estargz; converted again when the source image changes.
estargz_images_up() {
  local port image name src dst marker digest
  port=$(cat "$REG_PORT_FILE")
  for image in "${ESTARGZ_IMAGES[@]}"; do
    name=${image%%:*}
    src=127.0.0.1:$port/$IMAGE_PREFIX/$image dst=127.0.0.1:$port/$IMAGE_PREFIX/$name:estargz
    marker=$BUILD/$name-estargz.pushed
    ctr_ images pull --plain-http "$src" >/dev/null || die "could not pull $src"
    digest=$(ctr_ images ls "name==$src" | awk 'NR==2 {print $3}')
    [[ -f $marker && $(cat "$marker") == "$digest" ]] && continue
    log "converting $src to eStargz"
    ctr-remote --address "$SOCK" --namespace "$NS" image convert --oci --estargz "$src" "$dst" >/dev/null ||
      die "ctr-remote image convert of $src failed"
    ctr_ images push --plain-http "$dst" >/dev/null || die "could not push $dst"
    ctr_ images rm "$dst" >/dev/null
    echo "$digest" >"$marker"
  done
}

# ---------------------------------------------------------------------------------------------
# teardown

stop_pid() { # stop_pid PIDFILE NAME SECONDS
  local file=$1 name=$2 secs=$3 pid
  [[ -f $file ]] || return 0
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_for "$secs" "$name exit" bash -c "! kill -0 $pid"; then
      log "$name (pid $pid) ignored SIGTERM for ${secs}s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      wait_for 5 "$name exit" bash -c "! kill -0 $pid" || true
    fi
  fi
  rm -f "$file"
}

# Processes whose command line names our containerd socket: the shims this containerd started
# (`containerd-shim-runc-v2 -namespace k8s.io -address $SOCK …`). Matched on the exact socket path,
# so shims of any other containerd on the machine are never touched.
our_shims() {
  local p
  for p in /proc/[0-9]*; do
    tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF -- "-address $SOCK " && echo "${p#/proc/}"
  done
  return 0
}

# Removes every CRI pod of this containerd: tasks killed, containers deleted, and the sandboxes'
# network namespaces and IP leases released (what StopPodSandbox would have done).
OUR_CONTAINERS=()
remove_pods() {
  local ids id netns
  pid_alive "$CTRD_PID" || return 0
  ids=$(ctr_ containers list -q 2>/dev/null || true)
  OUR_CONTAINERS=($ids)
  for id in $ids; do
    netns=$(ctr_ containers info "$id" 2>/dev/null |
      sed -n 's/.*"path": "\(\/var\/run\/netns\/[^"]*\)".*/\1/p' | head -1 || true)
    ctr_ tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      ctr_ tasks delete "$id" >/dev/null 2>&1 && break
      ctr_ tasks list -q 2>/dev/null | grep -qx "$id" || break
      sleep 0.2
    done
    ctr_ containers delete "$id" >/dev/null 2>&1 || true
    if [[ -n $netns && -e $netns ]]; then
      ip netns delete "${netns##*/}" 2>/dev/null || { umount "$netns" 2>/dev/null; rm -f "$netns"; }
    fi
  done
}

unmount_under() {
  local dir=$1 m
  # deepest first
  awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
}

# Processes left in the cgroups of this containerd's containers (…/podstart/pod<uid>/<id>), e.g.
# when a shim died before its container. Other environments' pods are never touched.
kill_pod_processes() {
  local id procs pid
  [[ -d /sys/fs/cgroup/pids/podstart ]] || return 0
  for id in "${OUR_CONTAINERS[@]}"; do
    for procs in /sys/fs/cgroup/pids/podstart/*/"$id"/cgroup.procs; do
      [[ -f $procs ]] || continue
      while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done <"$procs"
    done
  done
}

# cgroups this environment's pods used (cgroup_parent /podstart/…); only empty ones can go.
remove_cgroups() {
  local hier d
  for hier in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
    [[ -d ${hier}podstart ]] || continue
    find "${hier}podstart" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
}

down() {
  remove_pods
  stop_pid "$CTRD_PID" containerd 20
  if [[ -f $SZ_CTRD_DIR/containerd.pid ]]; then
    SOCK=$SZ_SOCK CTRD_PID=$SZ_CTRD_DIR/containerd.pid remove_pods
    stop_pid "$SZ_CTRD_DIR/containerd.pid" containerd 20
  fi
  # SIGINT: the daemon unmounts its FUSE filesystems before it exits.
  if pid_alive "$SZ_PID"; then
    kill -INT "$(cat "$SZ_PID")" 2>/dev/null || true
    wait_for 20 "stargz exit" bash -c "! kill -0 $(cat "$SZ_PID")" || true
  fi
  stop_pid "$SZ_PID" stargz-snapshotter 5
  # Closing, the daemon removes its snapshots' contents, committed ones included, while its
  # metadata and the second containerd's would still list them: the lazy side keeps no state
  # (its images are in the registry), so both roots go, after the unmounts below.
  local wipe_stargz=1
  local pid
  kill_pod_processes
  for pid in $(our_shims) $(SOCK=$SZ_SOCK our_shims); do kill -KILL "$pid" 2>/dev/null || true; done
  stop_pid "$REG_PID" registry 10
  unmount_under "$CTRD_DIR"
  unmount_under "$SZ_CTRD_DIR"
  unmount_under "$SZ_DIR"
  [[ ${wipe_stargz:-0} == 1 ]] && rm -rf "$SZ_CTRD_DIR/root" "$SZ_CTRD_DIR/state" "$SZ_DIR/root"
  # All pods are gone, so every IP lease of our network is stale.
  local lease
  for lease in "$CNI_IPAM_DIR"/podstart/*; do
    [[ -f $lease ]] || continue
    case ${lease##*/} in last_reserved_ip.*|lock) continue ;; esac
    rm -f "$lease"
  done
  ip link show "$BRIDGE" >/dev/null 2>&1 && ip link delete "$BRIDGE" 2>/dev/null || true
  remove_cgroups
  rm -f "$SOCK" "$SOCK.ttrpc" "$SZ_SOCK" "$SZ_SOCK.ttrpc" "$SZ_SNAP_SOCK"
  log "down: nothing of the local environment is running"
}

# ---------------------------------------------------------------------------------------------

print_env() {
  local port
  port=$(cat "$REG_PORT_FILE" 2>/dev/null) || die "not set up yet: run '$0 up'"
  cat <<EOF
export PODSTART_LOCALENV_DIR=$ROOT
export PODSTART_CRI_ENDPOINT=unix://$SOCK
export PODSTART_REGISTRY=127.0.0.1:$port
export PODSTART_TEST_IMAGES=127.0.0.1:$port/$IMAGE_PREFIX
export PODSTART_POD_LOG_DIR=$ROOT/pods
export CONTAINERD_ADDRESS=$SOCK
export CONTAINERD_NAMESPACE=$NS
export CONTAINER_RUNTIME_ENDPOINT=unix://$SOCK
export IMAGE_SERVICE_ENDPOINT=unix://$SOCK
EOF
  if pid_alive "$SZ_CTRD_DIR/containerd.pid"; then
    echo "export PODSTART_STARGZ_CRI_ENDPOINT=unix://$SZ_SOCK"
  fi
}

status() {
  local ok=0 port
  port=$(cat "$REG_PORT_FILE" 2>/dev/null || echo "?")
  if pid_alive "$CTRD_PID"; then
    echo "containerd: running (pid $(cat "$CTRD_PID")) on unix://$SOCK"
    echo "pods: $(ctr_ containers list -q 2>/dev/null | wc -l) CRI containers (sandboxes included)"
  else
    echo "containerd: stopped"; ok=1
  fi
  if pid_alive "$REG_PID"; then
    echo "registry: running (pid $(cat "$REG_PID")) on 127.0.0.1:$port"
  else
    echo "registry: stopped"; ok=1
  fi
  echo "directory: $ROOT"
  return $ok
}

up() {
  need_root
  need_tools
  mkdir -p "$ROOT"
  chmod 700 "$ROOT"
  (
    # One `up`/`down` at a time: tests in parallel processes may call `up` together.
    flock 9
    registry_up
    images_up
    containerd_up
  ) 9>"$ROOT/.lock"
  print_env
}

case ${1:-} in
  up) up ;;
  stargz-up)
    up >/dev/null
    ( flock 9; stargz_snapshotter_up; stargz_containerd_up; estargz_images_up ) 9>"$ROOT/.lock"
    print_env ;;
  down) need_root; [[ -d $ROOT ]] || exit 0; ( flock 9; down ) 9>"$ROOT/.lock" ;;
  purge) need_root; if [[ -d $ROOT ]]; then ( flock 9; down ) 9>"$ROOT/.lock"; rm -rf "$ROOT"; fi ;;
  status) status ;;
  env) print_env ;;
  *) echo "usage: $0 up|stargz-up|down|purge|status|env" >&2; exit 2 ;;
esac
