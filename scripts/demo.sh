#!/usr/bin/env bash
# The main job on an embedded default: builds podstart, starts a real container (runc over a
# busybox-static root) while `podstart probe` watches, and shows what the kernel saw of its start.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
swift build --product podstart
podstart=$(swift build --show-bin-path)/podstart

work=$(mktemp -d /tmp/podstart-demo.XXXXXX)
id="podstart-demo-$$"
cleanup() {
  runc --root "$work/runc" delete --force "$id" >/dev/null 2>&1 || true
  [[ -n ${probe_pid:-} ]] && kill "$probe_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/bundle"
cp /bin/busybox "$work/rootfs/bin/busybox"
echo "demo" >"$work/rootfs/etc/hostname"
runc spec --bundle "$work/bundle"
python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
path = f"{work}/bundle/config.json"
spec = json.load(open(path))
spec["root"] = {"path": f"{work}/rootfs", "readonly": True}
spec["process"]["terminal"] = False
spec["process"]["args"] = ["/bin/busybox", "sh", "-c", "/bin/busybox cat /etc/hostname; /bin/busybox ls /etc >/dev/null"]
json.dump(spec, open(path, "w"))
PY

echo "== podstart probe: every exec and open of containers that start from now on"
"$podstart" probe --duration 4 --kinds exec,open >"$work/probe.log" 2>"$work/probe.err" &
probe_pid=$!
sleep 1.5   # let the programs load
runc --root "$work/runc" run --bundle "$work/bundle" "$id" >/dev/null
wait "$probe_pid" || { cat "$work/probe.err" >&2; exit 1; }
probe_pid=
cat "$work/probe.log"
cat "$work/probe.err" >&2
