#!/usr/bin/env bash
# Regenerates Sources/ContainerRuntime/Generated/ from proto/runtime/v1/api.proto (CRI) and
# proto/containerd/** (the subset of containerd's own API podstart uses: events, containers, tasks,
# namespaces).
#
# The generated Swift is committed, so neither builds nor CI run this. Run it after editing the
# proto. It needs protoc (Debian: protobuf-compiler) and the two Swift plugins; build those once,
# outside the package (first build ≈ 10 min on 2 cores), at the versions Package.swift uses:
#
#   git clone -b 2.4.1 https://github.com/grpc/grpc-swift-protobuf /tmp/protogen/gsp
#   (cd /tmp/protogen/gsp && swift build --product protoc-gen-grpc-swift-2 \
#                        && swift build --product protoc-gen-swift)
#
# and point PODSTART_PROTOC_PLUGINS at the directory holding them (default: that build's bin dir).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
plugins=${PODSTART_PROTOC_PLUGINS:-/tmp/protogen/gsp/.build/debug}
out=$repo/Sources/ContainerRuntime/Generated

for tool in "$plugins/protoc-gen-swift" "$plugins/protoc-gen-grpc-swift-2"; do
  [[ -x $tool ]] || { echo "gen-proto: $tool not found; build it as described at the top of $0" >&2; exit 1; }
done
command -v protoc >/dev/null || { echo "gen-proto: protoc not found (apt-get install protobuf-compiler)" >&2; exit 1; }

mkdir -p "$out"
rm -f "$out"/*.swift
# Internal visibility: the generated types are an implementation detail of ContainerRuntime;
# other modules use the CRIClient API and its Swift value types.
protoc \
  --plugin=protoc-gen-swift="$plugins/protoc-gen-swift" \
  --plugin=protoc-gen-grpc-swift-2="$plugins/protoc-gen-grpc-swift-2" \
  --proto_path="$repo/proto" \
  --swift_out="$out" --swift_opt=Visibility=Internal \
  --grpc-swift-2_out="$out" --grpc-swift-2_opt=Visibility=Internal,Client=true,Server=false \
  runtime/v1/api.proto
# containerd's files share base names (events/task.proto, types/task/task.proto): name the
# generated files after their whole path instead.
protoc \
  --plugin=protoc-gen-swift="$plugins/protoc-gen-swift" \
  --plugin=protoc-gen-grpc-swift-2="$plugins/protoc-gen-grpc-swift-2" \
  --proto_path="$repo/proto" \
  --swift_out="$out" --swift_opt=Visibility=Internal,FileNaming=PathToUnderscores \
  --grpc-swift-2_out="$out" --grpc-swift-2_opt=Visibility=Internal,Client=true,Server=false,FileNaming=PathToUnderscores \
  $(cd "$repo/proto" && find containerd -name '*.proto' | sort)
# protoc mirrors the proto's directory; keep the generated files flat.
find "$out" -mindepth 2 -name '*.swift' -exec mv {} "$out"/ \;
find "$out" -mindepth 1 -type d -empty -delete
# The gRPC plugin writes a file for every proto, even those with only messages.
grep -l '^// This file contained no services' "$out"/*.grpc.swift | xargs -r rm -f
ls -l "$out"
