#!/usr/bin/env bash
# Installs, from Debian's packages, everything podstart needs to build, test and run its local
# environment. Idempotent: packages already present are not reinstalled; safe to run every time.
set -euo pipefail

packages=(
  # build: libbpf (loader), libelf + zlib (libbpf's own deps), bpftool (vmlinux BTF dumps, debugging)
  libbpf-dev libelf-dev zlib1g-dev bpftool
  # runtime under test: containerd + runc + CNI plugins, a registry, image tooling
  containerd runc containernetworking-plugins docker-registry skopeo umoci busybox-static
  debootstrap stargz-snapshotter
  # the lazy-pull snapshotter daemon (tools/stargz-snapshotter, built below): Debian's Go, the
  # stargz-snapshotter library with its dependencies, and FUSE
  golang-go golang-github-containerd-stargz-snapshotter-dev fuse3
  # deploy/Containerfile built as users build it (scripts/build-agent-image-buildah.sh,
  # ContainerfileImageTests); its storage and configuration stay in the script's own directory
  buildah
  # metrics checks and end-to-end scraping
  prometheus
  # the state store (GRDB links the system SQLite); test certificates for the HTTPS tests
  libsqlite3-dev openssl
  # test helpers: unshare/losetup (util-linux), ip netns (iproute2), a static libc for test workloads
  util-linux iproute2 libc6-dev gcc jq curl sqlite3
  # the agent's journal source: journalctl (systemd), and real journal files for its tests
  # written by systemd-journal-remote (no journald runs without systemd as PID 1)
  systemd systemd-journal-remote
  # deploy/ validation: a venv of Debian's python for kubernetes-validate (PyPI)
  python3-venv
  # the trace page (`trace --output html`) rendered by a real browser in TraceViewsTests, and the
  # README's screenshot of it (scripts/screenshot-trace.sh)
  chromium fonts-dejavu-core
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: these Debian packages are missing and installing them needs root: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Packages such as prometheus and containerd ship services; podstart starts its own private
  # instances, so keep dpkg from starting the system ones.
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; created_policy=1
  fi
  trap '[[ $created_policy == 1 ]] && rm -f "$policy"' EXIT
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# kubernetes-validate (PyPI) checks deploy/ offline against the Kubernetes schemas
# (scripts/validate-deploy.py). In a venv of its own, so Debian's python stays untouched.
tools_venv=/opt/podstart-tools/venv
if [[ ! -x $tools_venv/bin/kubernetes-validate ]]; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: kubernetes-validate is missing; creating $tools_venv needs root" >&2
    exit 1
  fi
  /usr/bin/python3 -m venv "$tools_venv"
  "$tools_venv/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate
fi

# The stargz snapshotter daemon. Debian ships stargz-snapshotter's library but not its daemon, so
# podstart builds its own (tools/stargz-snapshotter/main.go) in GOPATH mode from /usr/share/gocode.
# Some files of the library's service packages import what Debian 12 lacks (k8s.io/cri-api in
# service/resolver/cri.go; the kubeconfig/CRI keychains and the plugin package), so a GOPATH
# overlay holds the packages the daemon imports without those files; an overlay directory shadows
# the whole package, hence every kept file is linked into it.
stargz_tools=/opt/podstart-tools/stargz
stargz_bin=$stargz_tools/bin/podstart-stargz-snapshotter
stargz_src=/usr/share/gocode/src/github.com/containerd/stargz-snapshotter
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
stargz_stamp=$(cat "$here/tools/stargz-snapshotter/main.go" "$stargz_src/go.mod" | sha256sum | cut -c1-16)
if [[ ! -x $stargz_bin || $(cat "$stargz_tools/stamp" 2>/dev/null) != "$stargz_stamp" ]]; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: building $stargz_bin needs root" >&2
    exit 1
  fi
  overlay=$stargz_tools/gopath/src/github.com/containerd/stargz-snapshotter
  rm -rf "$stargz_tools/gopath"
  mkdir -p "$overlay/service/resolver" "$stargz_tools/bin"
  ln -s "$stargz_src"/service/*.go "$overlay/service/"
  for f in "$stargz_src"/service/resolver/*.go; do
    [[ ${f##*/} == cri.go ]] || ln -s "$f" "$overlay/service/resolver/"
  done
  (cd "$here/tools/stargz-snapshotter" &&
    GO111MODULE=off GOPATH=$stargz_tools/gopath:/usr/share/gocode GOCACHE=$stargz_tools/gocache \
      GOFLAGS= go build -o "$stargz_bin" .)
  echo "$stargz_stamp" >"$stargz_tools/stamp"
fi

# Tracepoints live in tracefs; mount it where the kernel expects it if nobody has.
if [[ ! -e /sys/kernel/tracing/events ]] && [[ $(id -u) -eq 0 ]]; then
  mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
fi
