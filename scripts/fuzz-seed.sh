#!/usr/bin/env bash
# Seeds Fuzz/corpora from the real samples (../shared/reference, Tests/*/Fixtures): what
# scripts/fuzz.sh starts from. Run once when the samples change; the result is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
ref="${PODSTART_REFERENCE:-../shared/reference}"
PODSTART_BIN="${PODSTART_BIN:-.build/debug/podstart}" REF="$ref" python3 - <<'PY'
import hashlib, json, os, subprocess
ref = os.environ["REF"]
def put(name, data):
    d = f"Fuzz/corpora/{name}"
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str): data = data.encode()
    with open(f"{d}/{hashlib.sha1(data).hexdigest()[:16]}", "wb") as f: f.write(data)
def lines(path): return open(path, encoding="utf-8", errors="replace").read().split("\n")
kubelet = [f"{ref}/kubelet-journal-sample.log", f"{ref}/kubelet-journal-sample-v1.36.log", f"{ref}/real-cluster-1.28/kubelet.log"]
containerd = [f"{ref}/containerd-2.3/containerd-2.3.4-cri-lines.log", f"{ref}/real-cluster-1.28/containerd.log"]
# one startup line (klog text or JSON) per file, and the kubelet's sandbox lines
for p in kubelet:
    for l in [l for l in lines(p) if "podStartSLOduration" in l or "No sandbox for pod can be found" in l][:25]: put("startup-line", l)
# containerd: runs of 8 CRI lines, so a start and its finish meet
for p in containerd:
    ls = [l for l in lines(p) if 'msg="' in l]
    for i in range(0, min(len(ls), 240), 8): put("containerd-line", "\n".join(ls[i:i+8]))
# whole-log pieces, mixed kubelet and containerd, up to 8 KiB
for p in kubelet + containerd + [f"{ref}/real-cluster-1.28/node-merged-kubelet-containerd.log"]:
    text = open(p, "rb").read()
    for i in range(0, min(len(text), 8 * 8192), 8192): put("log-scanner", text[i:i+8192])
# journald records around real messages, as journalctl -o json writes them
for n, p in enumerate(kubelet + containerd):
    msgs = [l for l in lines(p) if l][:40]
    recs = [json.dumps({"__CURSOR": f"s=1;i={n}{i}", "__REALTIME_TIMESTAMP": str(1732896797944352 + i),
                        "_SYSTEMD_UNIT": "kubelet.service", "MESSAGE": m}) for i, m in enumerate(msgs)]
    for i in range(0, len(recs), 4): put("journal-record", "\n".join(recs[i:i+4]) + "\n")
put("journal-record", json.dumps({"__CURSOR": "s=1;i=9", "MESSAGE": list(b"I1129 bytes\xff")}) + "\n")
# Prometheus text: the kubelet's and podstart's own metrics, in pieces
for p in [f"{ref}/kubelet-metrics-sample.prom", f"{ref}/real-cluster-1.28/kubelet-metrics-final.txt", f"{ref}/real-cluster-1.28/podstart-metrics-final.txt"]:
    text = open(p, "rb").read()
    for i in range(0, min(len(text), 6 * 8192), 8192): put("prometheus-text", text[i:i+8192])
# traces recorded by `podstart trace --output json`, one per file, and the API's list
for p in ["Tests/AccessProfilesTests/Fixtures/reader-3-starts.jsonl", "Tests/AccessProfilesTests/Fixtures/small-files-modes.jsonl",
          "Tests/AccessProfilesTests/Fixtures/small-files-heldout.json"]:
    for l in [l for l in lines(p) if l.strip()]: put("trace-json", l)
api = open(f"{ref}/real-cluster-1.28/podstart-v1-pods-final.json").read()
if len(api) < 65536: put("trace-json", api)
# profiles: what `profile export --format json` writes for those traces, and OCI descriptors
for p in ["Tests/AccessProfilesTests/Fixtures/reader-3-starts.jsonl", "Tests/AccessProfilesTests/Fixtures/small-files-modes.jsonl"]:
    for l in [l for l in lines(p) if l.strip()][:1]:
        digest = json.loads(l)["containers"][0].get("imageDigest")
        out = subprocess.run([os.environ["PODSTART_BIN"], "profile", "export", "--from", p, "--image", digest, "--format", "json"],
                             capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip(): put("profile-json", out.stdout.strip())
        else: print("profile export:", out.stdout, out.stderr)
put("profile-json", json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "ab" * 32, "size": 1234,
     "artifactType": "application/vnd.podstart.profile.v1+json", "annotations": {"dev.podstart.created": "2026-12-06T03:41:40Z"}}]}))
PY
for d in Fuzz/corpora/*; do echo "$(basename "$d"): $(ls "$d" | wc -l) files, $(du -sh "$d" | cut -f1)"; done
