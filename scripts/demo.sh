#!/usr/bin/env bash
# The main job on an embedded default: a private containerd + registry on loopback
# (scripts/localenv.sh), real pod starts made through CRI exactly as the kubelet makes them, traced
# by the kernel probes: the phase breakdown of a cold start, then the files the workload read
# before it was ready, in first-access order — the list a lazy-pull image wants prefetched.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
swift build --product podstart
podstart=$(swift build --show-bin-path)/podstart

export PODSTART_LOCALENV_DIR=${PODSTART_LOCALENV_DIR:-/var/lib/podstart-localenv-demo}
work=$(mktemp -d /tmp/podstart-demo.XXXXXX)
cleanup() {
  bash scripts/localenv.sh down >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

bash scripts/localenv.sh up >/dev/null
eval "$(bash scripts/localenv.sh env)"
image="$PODSTART_TEST_IMAGES/reader:latest"

echo "== a cold start of $image (the pull is real), traced:"
"$podstart" trace --image "$image" --ready-file /tmp/ready --cold

echo
echo "== the same start as trace JSON; the files it read before ready, in first-access order:"
"$podstart" trace --image "$image" --ready-file /tmp/ready --output json --out "$work/trace.json"
python3 - "$work/trace.json" <<'PY'
import json, sys
trace = json.load(open(sys.argv[1]))
for c in trace["containers"]:
    print(f'container {c["name"]}  image {c["image"]}  digest {c["imageDigest"]}')
    print(f'{"first ms":>9} {"bytes":>8} {"opens":>5}  path (layer)')
    for a in c["accesses"]:
        layer = (a["layerDigest"] or "not from the image")[:19]
        print(f'{a["firstAccessMs"]:9.2f} {a["bytes"]:8d} {a["opens"]:5d}  {a["path"]} ({layer})')
    print()
    print("prefetch list (eStargz record JSON lines, first-access order):")
    seen = set()
    for a in c["accesses"]:
        if a["layerDigest"] and a["path"] not in seen:
            seen.add(a["path"])
            print(json.dumps({"path": a["path"].lstrip("/")}))
PY
