#!/usr/bin/env bash
# Starts dockerd in the background when no engine answers, with the vfs storage driver (works inside
# sandboxes without overlayfs), and waits until it answers. Leaves an engine that already runs alone.
set -euo pipefail

if docker info >/dev/null 2>&1; then
  exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "dockerd is not installed: run scripts/install-system-deps.sh" >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
mkdir -p /tmp/testbed-dockerd
$SUDO sh -c 'nohup dockerd --storage-driver=vfs >/tmp/testbed-dockerd/dockerd.log 2>&1 &'
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    exit 0
  fi
  sleep 1
done
echo "dockerd did not answer within 60 s; its log:" >&2
tail -n 30 /tmp/testbed-dockerd/dockerd.log >&2
exit 1
