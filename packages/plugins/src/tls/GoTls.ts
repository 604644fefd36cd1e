/**
 * Go's crypto/tls as a stack of the TLS interop matrix: a small client and server (`assets/tls/go/main.go`) built
 * with the machine's `go` on first use, cached by the hash of its source. The build is static (CGO_ENABLED=0), so
 * the same binary runs in the docker environment: there it is built on this machine before the image, which holds
 * only it and busybox (its tag hashes the binary, so changed sources make a new image).
 */
import * as TlsStack from "./TlsStack.ts"

// GOFLAGS and GO111MODULE from the caller's environment must not turn the one-file build into a module build.
// The cache name says static: a peer cached by an older, cgo-linked build must not be copied into an image.
const build = `peer=$(tb_cached_build tls-go-static "$ASSETS/tls/go" \\
  sh -c 'CGO_ENABLED=0 GO111MODULE=off GOFLAGS= go build -o "$OUT/tls-peer" "$SRC/main.go"')/tls-peer
`

export default TlsStack.make({
  name: "tls-go",
  description: "Go's crypto/tls: a client and server in testbed, built with the system's go (cached by source hash)",
  programs: ["go"],
  dockerPrebuild: `command -v go > /dev/null || tb_fail "go is not installed on this machine"\n${build}dirname "$peer"\n`,
  serverReadyTimeout: "2 minutes",
  server: `${build}exec "$peer"\n`,
  client: `${build}exec "$peer"\n`
})
