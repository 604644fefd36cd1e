/**
 * Java's JSSE as a stack of the TLS interop matrix: a small client and server (`assets/tls/java/TlsPeer.java`)
 * compiled with the machine's `javac` on first use, cached by the hash of its source.
 */
import * as TlsStack from "./TlsStack.ts"

const build = `classes=$(tb_cached_build tls-java "$ASSETS/tls/java" sh -c 'javac -d "$OUT" "$SRC/TlsPeer.java"')
`
// A small heap and no JIT tiers beyond C1: the peers are short-lived and the machine is shared.
const java = `java -Xmx256m -XX:TieredStopAtLevel=1 -cp "$classes"`

// JSSE's API does not tell a resumed session from a new one; its handshake log does ("Resuming session" when the
// server accepted the PSK or session ID, unlike "Try resuming session" when the client offers it).
const client = `${build}if [ "$TESTCASE" = resumption ]; then
  ${java} -Djavax.net.debug=ssl:handshake TlsPeer 2> handshake.log \\
    || tb_fail "$(grep -v -E '^(javax.net.ssl| |\\t|\\"|[]{}()])' handshake.log | tail -n 3)"
  grep -q '|Resuming session' handshake.log && echo "tls.resumed=yes" || echo "tls.resumed=no"
else
  exec ${java} TlsPeer
fi
`

export default TlsStack.make({
  name: "tls-java",
  description: "Java's JSSE: a client and server in testbed, compiled with the system's javac (cached by source hash)",
  programs: ["java", "javac"],
  dockerUnsupported:
    "the docker image has no JDK (a root file system of default-jdk-headless is ~300 MB; run this stack on localhost)",
  serverReadyTimeout: "2 minutes",
  server: `${build}exec ${java} TlsPeer\n`,
  client
})
