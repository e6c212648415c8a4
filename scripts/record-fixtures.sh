#!/usr/bin/env bash
# Records the correlator's fixtures (Tests/PodstartCoreTests/Fixtures): for each case, runs
# `podstart agent --record-inputs` (kernel probes on, containerd's log) against the local
# containerd while `podstart trace` starts one pod through CRI, saves the agent's /v1/pods answer
# (the timelines it produced) and the recording trimmed to that pod's start.
#
#   PODSTART_LOCALENV_DIR=… scripts/localenv.sh up            (and stargz-up for lazy-cold)
#   PODSTART_LOCALENV_DIR=… scripts/record-fixtures.sh [PODSTART_BINARY] [CASE…]
#
# With CASEs, only those are recorded again (reader-cold reader-warm slow-ready-cold
# slow-ready-warm lazy-cold).
#
# Needs root (BPF, containerd) and curl.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
PODSTART=${1:-$REPO/.build/debug/podstart}
shift || true
CASES=("$@")
PODSTART_BENCH=${PODSTART_BENCH:-$(dirname "$PODSTART")/podstart-bench}  # the test tools (trim-inputs)
OUT=$REPO/Tests/PodstartCoreTests/Fixtures
DIR=${PODSTART_LOCALENV_DIR:-/var/lib/podstart-localenv}
[[ -x $PODSTART ]] || { echo "record-fixtures: no podstart binary at $PODSTART (swift build first)" >&2; exit 1; }
[[ -x $PODSTART_BENCH ]] || { echo "record-fixtures: no podstart-bench binary at $PODSTART_BENCH (swift build first)" >&2; exit 1; }
command -v curl >/dev/null || { echo "record-fixtures: curl missing (apt-get install curl)" >&2; exit 1; }
eval "$(bash "$HERE/localenv.sh" env)"
bash "$HERE/localenv.sh" status >/dev/null || { echo "record-fixtures: the local environment is not up ($HERE/localenv.sh up)" >&2; exit 1; }

work=$(mktemp -d)
agent=
cleanup() { [[ -n $agent ]] && kill -TERM "$agent" 2>/dev/null && wait "$agent" || true; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$OUT"

wanted() { [[ ${#CASES[@]} -eq 0 ]] || [[ " ${CASES[*]} " == *" $1 "* ]]; }

# record NAME IMAGE COLD(yes|no) [SIDE(overlayfs|stargz) [COMMAND…]]
record() {
  local name=$1 image=$2 cold=$3 side=${4:-overlayfs} port
  shift 3; shift || true
  wanted "$name" || return 0
  local endpoint=$CONTAINER_RUNTIME_ENDPOINT log=$DIR/containerd/containerd.log
  local snapshots=$DIR/containerd/root/io.containerd.snapshotter.v1.overlayfs/snapshots
  if [[ $side == stargz ]]; then
    [[ -n ${PODSTART_STARGZ_CRI_ENDPOINT:-} ]] || { echo "record-fixtures: $name needs the stargz side (localenv.sh stargz-up)" >&2; exit 1; }
    endpoint=$PODSTART_STARGZ_CRI_ENDPOINT log=$DIR/containerd-stargz/containerd.log
    snapshots=$DIR/stargz/root/snapshotter/snapshots  # the FUSE mount of each lazily pulled layer
  fi
  "$PODSTART" agent --record-inputs "$work/$name.raw.jsonl" --state-dir "$work/$name-state" --listen 127.0.0.1:0 \
    --cri-endpoint "$endpoint" --containerd-log "$log" 2>"$work/$name.agent.log" &
  agent=$!
  # "agent started" comes first, then the listener's "serving … listen=HOST:PORT"
  for _ in $(seq 1 300); do grep -q "listen=127.0.0.1:" "$work/$name.agent.log" 2>/dev/null && break; sleep 0.1; done
  grep -q "listen=127.0.0.1:" "$work/$name.agent.log" || { cat "$work/$name.agent.log" >&2; exit 1; }
  if grep -q "kernel probes unavailable" "$work/$name.agent.log"; then echo "record-fixtures: the agent has no kernel probes" >&2; exit 1; fi
  port=$(grep -o 'listen=127.0.0.1:[0-9]*' "$work/$name.agent.log" | head -1 | cut -d: -f2)
  sleep 1
  local flags=(--cri-endpoint "$endpoint" --image "$PODSTART_TEST_IMAGES/$image" --ready-file /tmp/ready)
  [[ $cold == yes ]] && flags+=(--cold)
  [[ $# -gt 0 ]] && flags+=(--cmd "$@")
  "$PODSTART" trace "${flags[@]}" >"$work/$name.trace.txt"
  sleep 4  # the agent's grace (2 s) after ready, and a tick
  curl -sf "http://127.0.0.1:$port/v1/pods" >"$work/$name.v1.json"
  kill -TERM "$agent"; wait "$agent" || true; agent=
  "$PODSTART_BENCH" trim-inputs --input "$work/$name.raw.jsonl" --traces "$work/$name.v1.json" --output "$OUT/$name.jsonl" \
    --snapshots "$snapshots"
  # the timelines as the agent served them, one object per line inside {"items":[…]}
  cp "$work/$name.v1.json" "$OUT/$name.traces.json"
  echo "record-fixtures: $name: $(wc -l <"$OUT/$name.jsonl") lines, $(wc -c <"$work/$name.raw.jsonl") bytes recorded before trimming" >&2
}

record reader-cold reader:latest yes
record reader-warm reader:latest no
record slow-ready-cold slow-ready:latest yes
record slow-ready-warm slow-ready:latest no
# a lazy start: the eStargz image pulled cold on the stargz snapshotter, busybox reading 1 MiB of
# its 64 MiB of random data through FUSE (as LazyFetchEndToEndTests)
record lazy-cold large-layer:estargz yes stargz /bin/busybox sh -c \
  "/bin/busybox head -c 1048576 /data/random.bin > /dev/null && /bin/busybox touch /tmp/ready; exec /bin/busybox sleep 3600"
