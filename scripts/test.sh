#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what it needs from Debian's packages, builds,
# and runs every test. Tests that need root, BPF, containerd or a registry run for real and FAIL
# (they never skip) when the machine refuses them, saying why.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
swift build --build-tests
# One test at a time: several suites time real work (a readiness wait of 1.5 s ± 0.15 s, pulls
# through a throttling proxy) or ask the kernel what is attached, and a 512 MiB decompression
# running beside them on a 2-core machine would make those measure each other.
swift test --skip-build --no-parallel "$@"
