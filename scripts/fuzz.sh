#!/usr/bin/env bash
# Coverage-guided fuzzing of podstart's parsers (docs/fuzzing.md): builds one libFuzzer harness
# per parser with the toolchain's -sanitize=fuzzer,address and runs each for SECONDS (default
# 60) from its committed corpus (Fuzz/corpora/NAME). Exits non-zero when a harness crashes,
# leaking the input as .build-fuzz/crashes/NAME/crash-*; turn it into a regression test.
#
# The harnesses are compiled here, straight from the parser sources, into .build-fuzz: the
# normal `swift build` never sees them (no sanitizers, no extra targets), and no dependency of
# the package is rebuilt (the parsers need only Foundation and PodstartCore).
#   scripts/fuzz.sh [SECONDS] [NAME...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
out=.build-fuzz
mkdir -p "$out/modules" "$out/bin" "$out/crashes"
flags=(-sanitize=fuzzer,address -parse-as-library -Onone -g -I "$out/modules" -L "$out/modules")

# A static library and module of Swift sources, instrumented; rebuilt when a source or a file
# named in $also (headers) is newer. $extra: more compiler flags for this module only.
module() {
    local name="$1"; shift
    if [ ! -f "$out/modules/lib$name.a" ] || [ "$(cat "$out/modules/$name.sources" 2>/dev/null)" != "$*" ] \
            || [ -n "$(find "$@" ${also:-} -newer "$out/modules/lib$name.a" | head -1)" ]; then
        echo "fuzz: building module $name"
        echo "$*" > "$out/modules/$name.sources"
        swiftc "${flags[@]}" ${extra:-} -emit-library -static -emit-module -module-name "$name" \
            -emit-module-path "$out/modules/$name.swiftmodule" -o "$out/modules/lib$name.a" "$@"
    fi
}

# PodstartCore as the package has it; the parser files of KubeletSources and AccessProfiles as
# modules of the same names, so their imports hold.
module PodstartCore Sources/PodstartCore/*.swift
# A file that imports any other module (the HTTP client, Yams) is left out: the parsers never
# need it, and the package's dependencies are not built here.
kubelet=()
for f in Sources/KubeletSources/*.swift; do
    if grep -E '^import ' "$f" | grep -qvE '^import (Foundation|PodstartCore|Glibc|Darwin)$'; then continue; fi
    kubelet+=("$f")
done
module KubeletSources "${kubelet[@]}"
module AccessProfiles Sources/AccessProfiles/{ImageProfile,ImageProfile+JSON,ProfilePath,PrefetchPlan,TraceFiles,OCIDescriptor,ProfileArtifact,OCIRegistryError}.swift
# ContainerRuntime's parsers of runtime data (verbose CRI answers, the content store's OCI
# documents, mount tables), without the gRPC client.
module ContainerRuntime Sources/ContainerRuntime/{CRITypes,CRIVerboseInfo,ImageLayers,OverlayRootfs,MountInfo}.swift
# The agent's config file goes through Yams (libyaml underneath): both built here from the
# package's checkout (`swift build` has fetched it), libyaml's C instrumented too.
yams=.build/checkouts/Yams/Sources
[ -d "$yams" ] || { echo "fuzz: $yams missing: run swift build first" >&2; exit 1; }
if [ ! -f "$out/modules/libCYaml.a" ]; then
    echo "fuzz: building libyaml"
    rm -rf "$out/cyaml" && mkdir -p "$out/cyaml"
    for c in "$yams"/CYaml/src/*.c; do
        clang -fsanitize=fuzzer-no-link,address -g -O1 -DYAML_DECLARE_EXPORT -I "$yams/CYaml/include" -c "$c" -o "$out/cyaml/$(basename "$c" .c).o"
    done
    ar rcs "$out/modules/libCYaml.a" "$out"/cyaml/*.o
fi
flags+=(-I "$yams/CYaml/include")
extra="-D SWIFT_PACKAGE -suppress-warnings" module Yams "$yams"/Yams/*.swift
module PodstartAgent Sources/PodstartAgent/AgentConfigFile.swift
# The ring-buffer decoder sees the C event structs through the shim target's header, as the
# package build does; only the header is needed (the harness calls no libbpf function).
mkdir -p "$out/cmodules"
printf 'module CPodstartBPF {\n    header "%s"\n    export *\n}\n' "$PWD/Sources/CPodstartBPF/include/CPodstartBPF.h" \
    > "$out/cmodules/module.modulemap"
flags+=(-I "$out/cmodules")
also="Sources/CPodstartBPF/include/CPodstartBPF.h bpf/podstart_events.h" module KernelProbes Sources/KernelProbes/EventDecoder.swift

harnesses=()
if [ "$#" -gt 0 ]; then harnesses=("$@"); else
    for h in Fuzz/Harnesses/*.swift; do harnesses+=("$(basename "$h" .swift)"); done
fi

failed=0
for name in "${harnesses[@]}"; do
    src="Fuzz/Harnesses/$name.swift"
    bin="$out/bin/$name"
    if [ ! -x "$bin" ] || [ -n "$(find "$src" "$out/modules" -newer "$bin" | head -1)" ]; then
        echo "fuzz: building $name"
        swiftc "${flags[@]}" "$src" -lKubeletSources -lAccessProfiles -lContainerRuntime -lKernelProbes -lPodstartAgent -lYams -lCYaml -lPodstartCore -o "$bin" 2>&1 \
            | grep -v "Cannot export local symbol" || true
        [ -x "$bin" ] || { echo "fuzz: $name did not build" >&2; exit 1; }
    fi
    corpus="Fuzz/corpora/$name"
    work="$out/corpus/$name"   # new inputs found go here, not into the committed corpus
    mkdir -p "$corpus" "$work" "$out/crashes/$name"
    echo "fuzz: running $name for ${seconds}s"
    if ! "$bin" "$work" "$corpus" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
            -print_final_stats=1 -artifact_prefix="$out/crashes/$name/" >"$out/$name.log" 2>&1; then
        echo "fuzz: $name CRASHED — see $out/$name.log and $out/crashes/$name/" >&2
        tail -40 "$out/$name.log" >&2
        failed=1
    else
        grep -E "stat::number_of_executed_units|cov: " "$out/$name.log" | tail -2 | sed "s/^/fuzz: $name: /"
    fi
done
exit "$failed"
