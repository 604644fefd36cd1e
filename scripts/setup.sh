#!/usr/bin/env bash
# Sets up a fresh machine for testbed: Debian packages (and a Docker engine), then the workspace's npm
# dependencies, including the pinned Node 24 runtime (the npm package `node`, so the system Node may be older).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
npx --yes pnpm@10.34.9 install --frozen-lockfile
