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
# recorded correlator input streams (agent --record-inputs): the header and runs of 60 inputs
for p in ["Tests/PodstartCoreTests/Fixtures/reader-cold.jsonl", "Tests/PodstartCoreTests/Fixtures/slow-ready-warm.jsonl",
          "Tests/PodstartCoreTests/Fixtures/lazy-cold.jsonl"]:
    ls = [l for l in lines(p) if l.strip()]
    for i in range(1, min(len(ls), 1200), 60): put("correlator-inputs", "\n".join([ls[0]] + ls[i:i+60]) + "\n")
# the agent's config files: every ConfigMap's config.yaml the deployment ships
import glob, re
for p in sorted(glob.glob("deploy/**/config.yaml", recursive=True)):
    text = open(p).read()
    m = re.search(r"config\.yaml: \|\n((?:    .*\n|\s*\n)+)", text)
    put("yaml-config", "\n".join(l[4:] for l in m.group(1).split("\n")) if m else text)
# containerd's verbose CRI answers: the Status config of containerd 2.3 (recorded), and info
# documents with the keys containerd writes for ContainerStatus and PodSandboxStatus (docs/inputs.md#verbose-info)
put("cri-verbose", open("Tests/ContainerRuntimeTests/Fixtures/containerd-2.3-cri-config.json").read())
put("cri-verbose", json.dumps({"sandboxID": "b39ee2027f7c", "pid": 41234, "removing": False, "snapshotKey": "5f2c0ab1",
                               "snapshotter": "overlayfs", "runtimeType": "io.containerd.runc.v2", "runtimeOptions": {"systemd_cgroup": False},
                               "config": {"metadata": {"name": "app"}, "image": {"image": "127.0.0.1:5000/app:1"}},
                               "runtimeSpec": {"ociVersion": "1.1.0", "process": {"args": ["python3", "app.py"]}}}))
put("cri-verbose", json.dumps({"pid": 41200, "processStatus": "running", "netNamespaceClosed": False, "image": "registry.k8s.io/pause:3.9",
                               "snapshotKey": "b39ee2027f7c", "snapshotter": "overlayfs", "runtimeHandler": "", "runtimeType": "io.containerd.runc.v2",
                               "runtimeSpec": {"linux": {"namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
                                                                         {"type": "network", "path": "/var/run/netns/cni-5e1b2f0c-1d0e-4f6a-9a51-77c3a1c0d9e2"}]}},
                               "cniResult": {"Interfaces": {"eth0": {"IPConfigs": [{"IP": "10.88.0.7", "Gateway": "10.88.0.1"}]}}}}))
# OCI documents as containerd's content store holds them (the local environment's test images):
# manifest + config, and an index pointing at the manifest, NUL separated as the harness reads
content = os.environ.get("PODSTART_TEST_LOCALENV_DIR", "/var/lib/podstart-localenv-test") + "/containerd/root/io.containerd.content.v1.content/blobs/sha256"
if os.path.isdir(content):
    docs = {}
    for name in sorted(os.listdir(content)):
        if os.path.getsize(f"{content}/{name}") < 65536:
            try: docs[name] = json.load(open(f"{content}/{name}"))
            except Exception: pass
    for digest, doc in list(docs.items())[:40]:
        if "layers" not in doc: continue
        config = docs.get(doc.get("config", {}).get("digest", ":").split(":")[1])
        pair = json.dumps(doc).encode() + b"\0" + json.dumps(config or {}).encode()
        put("oci-manifest", pair)
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
            {"mediaType": doc.get("mediaType", "application/vnd.oci.image.manifest.v1+json"), "digest": "sha256:" + digest, "size": 1,
             "platform": {"architecture": "amd64", "os": "linux"}}]}
        put("oci-manifest", json.dumps(index).encode() + b"\0" + pair)
else:
    print("no local content store at", content, "(scripts/localenv.sh up): oci-manifest keeps its corpus")
PY
# kernel records: one run of each kind as the eBPF programs fill them, from the shared header
# (a C program, so the layout is the compiler's and cannot drift from bpf/podstart_events.h)
seeder="$(mktemp -d)"
cat > "$seeder/seed.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <linux/types.h>
#include "podstart_events.h"
static FILE *out;
static void put(const void *record, __u16 size) { fwrite(&size, 2, 1, out); fwrite(record, size, 1, out); }
static void header(struct ps_event_header *h, __u16 kind, __u32 size, __u64 ts) { h->kind = kind; h->version = PS_EVENT_VERSION; h->size = size; h->timestamp_ns = ts; }
static void task(struct ps_task_context *t, __u32 pid, __u32 mntns) { t->pid = t->tid = pid; t->ppid = 1; t->ns_pid = 1; t->mntns = mntns; t->pidns = 4026532000u; t->cgroup_id = 1; strcpy(t->comm, "python3"); }
int main(int argc, char **argv) {
    out = fopen(argv[1], "wb");
    struct ps_exec_event x = {0}; header(&x.header, PS_EVENT_EXEC, sizeof x, 5000000000ull); task(&x.task, 4242, 4026532901u);
    strcpy(x.filename, "/usr/bin/python3"); strcpy(x.path, "/usr/bin/python3.11"); x.path_len = strlen(x.path); x.filename_len = strlen(x.filename); put(&x, sizeof x);
    struct ps_open_event o = {0}; header(&o.header, PS_EVENT_OPEN, sizeof o, 5000100000ull); task(&o.task, 4242, 4026532901u);
    o.result = 3; o.dirfd = -100; o.file.dev = 0x800001; o.file.ino = 131075;
    const char *raw = "os.py", *resolved = "/usr/lib/python3.11/os.py"; o.raw_len = strlen(raw); o.path_len = strlen(resolved);
    strcpy(o.strings, raw); strcpy(o.strings + ps_open_path_at(o.raw_len), resolved);
    o.header.size = ps_open_record_size(ps_open_path_at(o.raw_len), o.path_len); put(&o, o.header.size);
    struct ps_read_range_event r = {0}; header(&r.header, PS_EVENT_READ_RANGE, sizeof r, 5000200000ull);
    r.mntns = 4026532901u; r.dev = 0x800001; r.ino = 131075; r.first_page = 0; r.page_count = 9; r.first_ns = 5000150000ull; r.pid = 4242; put(&r, sizeof r);
    struct ps_block_event b = {0}; header(&b.header, PS_EVENT_BLOCK_IO, sizeof b, 5000300000ull);
    b.dev = 0x800000; b.mntns = 4026532901u; b.pid = 4242; b.op = PS_BLOCK_READ; b.sector = 2048; b.bytes = 36864; b.issue_ns = 5000210000ull; b.latency_ns = 90000; strcpy(b.comm, "python3"); put(&b, sizeof b);
    struct ps_write_begin_event w = {0}; header(&w.header, PS_EVENT_WRITE_BEGIN, sizeof w, 4000000000ull); task(&w.task, 900, 4026531841u);
    w.flags = PS_FLAG_RUNTIME_PROCESS; w.file.dev = 0x800001; w.file.ino = 262147; w.generation = 77;
    strcpy(w.path, "/var/lib/containerd/io.containerd.content.v1.content/ingest/0a1b/data"); w.path_len = strlen(w.path); put(&w, sizeof w);
    struct ps_fork_event f = {0}; header(&f.header, PS_EVENT_FORK, sizeof f, 5000400000ull); task(&f.task, 4242, 4026532901u); f.child_pid = 4243; put(&f, sizeof f);
    struct ps_exit_event e = {0}; header(&e.header, PS_EVENT_EXIT, sizeof e, 5000500000ull); task(&e.task, 4243, 4026532901u); put(&e, sizeof e);
    struct ps_fuse_event u = {0}; header(&u.header, PS_EVENT_FUSE_REQUEST, sizeof u, 5000700000ull); task(&u.task, 4242, 4026532901u);
    u.send_ns = 5000600000ull; u.unique = 118; u.connection = 61; u.opcode = PS_FUSE_READ; u.in_len = 80; u.out_len = 16 + 131072;
    u.flags = PS_FUSE_FILE_FROM_FILL; u.file_dev = 61; u.file_ino = 12; put(&u, sizeof u);
    return fclose(out);
}
C
cc -I bpf -o "$seeder/seed" "$seeder/seed.c"
mkdir -p Fuzz/corpora/kernel-record
"$seeder/seed" "$seeder/records"
cp "$seeder/records" "Fuzz/corpora/kernel-record/$(sha1sum "$seeder/records" | cut -c1-16)"
rm -rf "$seeder"
for d in Fuzz/corpora/*; do echo "$(basename "$d"): $(ls "$d" | wc -l) files, $(du -sh "$d" | cut -f1)"; done
