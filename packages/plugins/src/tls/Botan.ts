/**
 * Botan 2 (`botan tls_client`) as a stack of the TLS interop matrix. Botan 2 speaks TLS 1.2 only. Its
 * `tls_server` is a line echo server that never ends a connection, so it cannot give the cases' HTTP answer:
 * the server role says so (exit 127) instead of leaving every client to its budget.
 */
import * as TlsStack from "./TlsStack.ts"

const server = `
tb_unsupported "botan tls_server echoes lines and never closes; the cases need an HTTP answer"
`

const client = `
mkdir -p trusted
cp "$CA" trusted/ca.pem
: > policy.txt
set -- "$TARGET_HOST" --port="$TARGET_PORT" --trusted-cas=trusted --skip-system-cert-store --policy=policy.txt
case "$TESTCASE" in
  tls12|transfer) ;;
  chacha20) echo "ciphers = ChaCha20Poly1305" >> policy.txt ;;
  x25519) echo "key_exchange_groups = x25519" >> policy.txt ;;
  alpn) set -- "$@" --next-protocols="$ALPN" ;;
  resumption) set -- "$@" --session-db=sessions.db --session-db-pass=testbed ;;
  tls13|keyupdate) tb_unsupported "Botan 2 has no TLS 1.3" ;;
  mutual-auth) tb_unsupported "botan tls_client has no client certificate option" ;;
  *) tb_unsupported "$TESTCASE" ;;
esac
# tls_client hangs up at the end of its input: stdin stays open until the server closes (10 s at most).
export TB_HOLD=100
if [ "$TESTCASE" = resumption ]; then
  tb_converse tb_request botan tls_client "$@" > first.out 2> first.err || tb_fail "first connection: $(tail -n 3 first.err)"
fi
tb_converse tb_request botan tls_client "$@" > answer.out 2> answer.err || tb_fail "$(tail -n 3 answer.err)"
# tls_client writes its own "Alert: close_notify" line right after the data it received.
if [ "$(tail -c 20 answer.out)" = "Alert: close_notify" ]; then
  head -c -20 answer.out > answer.data && mv answer.data answer.out
fi
handshake=$(grep -a -m 1 '^Handshake complete, ' answer.out || true)
[ -n "$handshake" ] || tb_fail "no handshake in tls_client's output: $(tail -n 3 answer.out answer.err)"
echo "$handshake" | sed -E 's/^Handshake complete, TLS v([0-9.]+) using (.*)$/tls.protocol=TLSv\\1\\ntls.cipher=\\2/'
# tls_client does not print the group; with the policy offering only X25519, a handshake is evidence of it.
[ "$TESTCASE" = x25519 ] && echo "tls.group=X25519 (the only group offered)"
grep -a -m 1 '^Server choose protocol: ' answer.out | sed 's/^Server choose protocol: /tls.alpn=/' | grep . || echo "tls.alpn=none"
# tls_client does not say it resumed; a TLS 1.2 server accepts a resumption by echoing the session's ID (RFC 5246
# 7.4.1.3), so the second connection showing the first one's Session ID is the evidence.
session_id() { grep -a -m 1 '^Session ID ' "$1" 2>/dev/null | cut -d' ' -f3; }
first_id=$(session_id first.out)
[ -n "$first_id" ] && [ "$first_id" = "$(session_id answer.out)" ] && echo "tls.resumed=yes" || echo "tls.resumed=no"
grep -a -q '^Certificate validation status: Verified' answer.out && echo "tls.verified=yes" || echo "tls.verified=no"
tb_body_evidence answer.out
`

export default TlsStack.make({
  name: "tls-botan",
  description: "Botan 2's tls_client driven per interop test case (TLS 1.2 only; its tls_server is an echo server)",
  programs: ["botan"],
  server,
  client
})
