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
PY

page=${PODSTART_DEMO_PAGE:-/tmp/podstart-demo-start.html}
"$podstart" trace --image "$image" --ready-file /tmp/ready --output html --out "$page"
echo
echo "== another start as a page, the waterfall and the reads on one time axis: file://$page"

echo
echo "== two more starts; the image's access profile over the three, and its prefetch plan:"
"$podstart" trace --image "$image" --ready-file /tmp/ready --runs 2 --output json --out "$work/more.jsonl"
"$podstart" profile plan --from "$work/trace.json" "$work/more.jsonl"

echo
echo "== the plan as an eStargz record, converted by ctr-remote; each layer's head (prefetched up to the landmark):"
"$podstart" profile export --from "$work/trace.json" "$work/more.jsonl" --format estargz --out "$work/record.jsonl"
cat "$work/record.jsonl"
ctr-remote image convert --oci --estargz --estargz-record-in "$work/record.jsonl" "$image" podstart.demo/reader:esgz >/dev/null
manifest=$(ctr images ls name==podstart.demo/reader:esgz | awk 'NR == 2 { print $3 }')
for layer in $(ctr content get "$manifest" | python3 -c 'import json, sys; print(*[l["digest"] for l in json.load(sys.stdin)["layers"]])'); do
  echo "layer ${layer:0:19}: $(ctr content get "$layer" | tar -tzf - | grep -v /$ | head -6 | tr '\n' ' ')"
done
ctr images rm podstart.demo/reader:esgz >/dev/null
