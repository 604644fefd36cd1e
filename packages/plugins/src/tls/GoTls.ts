/**
 * Go's crypto/tls as a stack of the TLS interop matrix: a small client and server (`assets/tls/go/main.go`) built
 * with the machine's `go` on first use, cached by the hash of its source.
 */
import * as TlsStack from "./TlsStack.ts"

// GOFLAGS and GO111MODULE from the caller's environment must not turn the one-file build into a module build.
const build = `peer=$(tb_cached_build tls-go "$ASSETS/tls/go" \\
  sh -c 'GO111MODULE=off GOFLAGS= go build -o "$OUT/tls-peer" "$SRC/main.go"')/tls-peer
`

export default TlsStack.make({
  name: "tls-go",
  description: "Go's crypto/tls: a client and server in testbed, built with the system's go (cached by source hash)",
  programs: ["go"],
  dockerUnsupported:
    "the docker image has no Go toolchain (the peer is built on first use with go build; run this stack on localhost)",
  serverReadyTimeout: "2 minutes",
  server: `${build}exec "$peer"\n`,
  client: `${build}exec "$peer"\n`
})
