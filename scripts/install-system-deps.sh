#!/usr/bin/env bash
# Installs the Debian packages testbed's tests and fixtures use, and starts a Docker engine if none runs.
# Idempotent: packages already present are skipped; a running dockerd is left alone.
#   mosquitto        real MQTT broker for fleet tests
#   docker.io        Docker engine for stages (started by scripts/start-dockerd.sh)
#   busybox-static   the base of the locally built test image (no registry needed)
#   openssl gnutls-bin  real TLS implementations for the interop experiments
#   libxml2-utils    xmllint, to validate JUnit reports against their XSD
#   chromium         headless browser to load the HTML report
#   iproute2 procps  ip and ps for network and process checks
#   nftables         nft, for random loss on stage links (applied inside the nodes' namespaces)
#   tcpdump          per-service packet captures in experiments
#   botan            Botan 2's tls_client, a third TLS stack for the interop matrix (tls-botan)
#   golang-go        builds the Go crypto/tls peer of the interop matrix (tls-go; cached by source hash)
#   default-jdk-headless  javac and java for the JSSE peer of the interop matrix (tls-java; cached by source hash)
#   tshark           reads the handshake out of a cell's capture (the matrix test's evidence from the wire)
#   postgresql       throwaway Postgres servers (initdb/pg_ctl as user postgres) for the cluster tests
#   socat            the README tutorial's echo server (and its test); a one-shot server (no fork) for the readiness
#                    test that must not take its only connection
#   strace valgrind  execution environments wrapped around a service (syscall summary, memcheck) and their tests
#   linux-perf       the `perf stat` execution environment and its test
#   prometheus       the real Prometheus that scrapes `testbed run --metrics-port` in its test
#   systemd          systemd-analyze verify, for the docs' runner unit (docs/cluster.md section 4; no PID 1 needed)
#   gcc libc6-dev    compiles the tiny C program with a deliberate memory error that the memcheck test runs
set -euo pipefail

packages=(mosquitto docker.io busybox-static openssl gnutls-bin libxml2-utils chromium iproute2 procps nftables tcpdump socat strace valgrind linux-perf gcc libc6-dev prometheus postgresql ca-certificates botan golang-go default-jdk-headless tshark systemd)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing: ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Debian mosquitto package starts a system broker on 1883; tests start their own on free ports.
bash "$(dirname "$0")/start-dockerd.sh"
