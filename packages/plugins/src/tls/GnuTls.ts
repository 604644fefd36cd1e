/** GnuTLS (`gnutls-serv` / `gnutls-cli`) as a stack of the TLS interop matrix. */
import * as TlsStack from "./TlsStack.ts"

// Cases that only restrict what is negotiated, as GnuTLS priority strings (both roles).
const priorities = `
case "$TESTCASE" in
  tls12) priority=NORMAL:-VERS-ALL:+VERS-TLS1.2 ;;
  tls13|keyupdate) priority=NORMAL:-VERS-ALL:+VERS-TLS1.3 ;;
  chacha20) priority=NORMAL:-CIPHER-ALL:+CHACHA20-POLY1305 ;;
  x25519) priority=NORMAL:-GROUP-ALL:+GROUP-X25519 ;;
  resumption|alpn|mutual-auth|transfer) priority=NORMAL ;;
  *) tb_unsupported "$TESTCASE" ;;
esac
export SSLKEYLOGFILE="$DIR/keys.log"
`

const server = `${priorities}
set -- -p "$PORT" --x509certfile "$CERT" --x509keyfile "$KEY" --priority "$priority" --http
case "$TESTCASE" in
  alpn) for protocol in $(echo "$ALPN" | tr ',' ' '); do set -- "$@" --alpn "$protocol"; done ;;
  mutual-auth) set -- "$@" --require-client-cert --verify-client-cert --x509cafile "$CA" ;;
  transfer) tb_payload payload.bin; set -- "$@" --httpdata payload.bin ;;
esac
exec gnutls-serv "$@"
`

const client = `${priorities}
set -- --x509cafile "$CA" --verify-hostname localhost -p "$TARGET_PORT" --priority "$priority" --logfile info.log
case "$TESTCASE" in
  alpn) for protocol in $(echo "$ALPN" | tr ',' ' '); do set -- "$@" --alpn "$protocol"; done ;;
  mutual-auth) set -- "$@" --x509certfile "$CERT" --x509keyfile "$KEY" ;;
  resumption) set -- "$@" --resume ;;
  # gnutls-cli writes what it receives one byte per system call: 10 MiB take longer than a cell's budget.
  transfer) tb_unsupported "gnutls-cli writes received data one byte per write(2); 10 MiB exceed the budget" ;;
  keyupdate) set -- "$@" --inline-commands ;;
esac
# An inline command on its own line: ^rekey1^ updates our keys and asks the server to update its own; the request
# follows under the new keys.
rekey_then_request() { printf '^rekey1^\\n'; sleep 1; tb_request; }
producer=tb_request
[ "$TESTCASE" = keyupdate ] && producer=rekey_then_request
tb_converse "$producer" gnutls-cli "$@" "$TARGET_HOST" > answer.out 2> answer.err \\
  || tb_fail "$(tail -n 3 info.log answer.err)"
grep -q '^- Rekey was completed' info.log && echo "tls.keyupdate=sent"
description=$(grep '^- Description: ' info.log | tail -n 1)
[ -n "$description" ] || tb_fail "no handshake in gnutls-cli's output: $(tail -n 3 info.log)"
first=$(grep -m 1 '^- Description: ' info.log)
echo "$description" | sed -E 's/^- Description: \\((TLS1\\.[0-9])-.*\\)-\\(([A-Z0-9-]+)\\)$/tls.protocol=\\1\\ntls.cipher=\\2/' \\
  | sed -e 's/^tls.protocol=TLS1/tls.protocol=TLSv1/'
echo "$first" | sed -n -E 's/.*\\(ECDHE-([A-Z0-9]+)\\).*/tls.group=\\1/p'
grep -q '^\\*\\*\\* This is a resumed session' info.log && echo "tls.resumed=yes" || echo "tls.resumed=no"
grep -m 1 '^- Application protocol: ' info.log | sed 's/^- Application protocol: /tls.alpn=/' | grep . || echo "tls.alpn=none"
grep -q '^- Status: The certificate is trusted' info.log && echo "tls.verified=yes"
tb_body_evidence answer.out
`

export default TlsStack.make({
  name: "tls-gnutls",
  description: "GnuTLS's gnutls-serv/gnutls-cli driven per interop test case",
  programs: ["gnutls-serv", "gnutls-cli"],
  server,
  client
})
