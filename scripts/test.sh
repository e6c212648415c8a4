#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what it needs from Debian's packages, builds,
# and runs every test. Tests that need root, BPF, containerd or a registry run for real and FAIL
# (they never skip) when the machine refuses them, saying why.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
swift build --build-tests
swift test --skip-build "$@"
