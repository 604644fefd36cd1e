/** OpenSSL (`openssl s_server` / `s_client`) as a stack of the TLS interop matrix. */
import * as TlsStack from "./TlsStack.ts"

const server = `
set -- -accept "$HOST:$PORT" -cert "$CERT" -key "$KEY" -keylogfile "$DIR/keys.log" -www
case "$TESTCASE" in
  tls12) set -- "$@" -tls1_2 ;;
  tls13) set -- "$@" -tls1_3 ;;
  chacha20) set -- "$@" -ciphersuites TLS_CHACHA20_POLY1305_SHA256 -cipher ECDHE-ECDSA-CHACHA20-POLY1305 ;;
  x25519) set -- "$@" -groups X25519 ;;
  alpn) set -- "$@" -alpn "$ALPN" ;;
  mutual-auth) set -- "$@" -Verify 1 -verify_return_error -CAfile "$CA" ;;
  resumption|keyupdate) ;;
  transfer) tb_payload payload.bin; set -- "$@" -WWW ;;
  *) tb_unsupported "$TESTCASE" ;;
esac
exec openssl s_server "$@"
`

const client = `
connect() {
  openssl s_client -connect "$TARGET_HOST:$TARGET_PORT" -servername localhost -CAfile "$CA" -verify_return_error \\
    -verify_hostname localhost -keylogfile "$DIR/keys.log" "$@"
}
set --
case "$TESTCASE" in
  tls12) set -- -tls1_2 ;;
  tls13) set -- -tls1_3 ;;
  chacha20) set -- -ciphersuites TLS_CHACHA20_POLY1305_SHA256 -cipher ECDHE-ECDSA-CHACHA20-POLY1305 ;;
  x25519) set -- -groups X25519 ;;
  alpn) set -- -alpn "$ALPN" ;;
  mutual-auth) set -- -cert "$CERT" -key "$KEY" ;;
  resumption) tb_request | connect -ign_eof -sess_out session.pem > first.out 2>&1 || tb_fail "first connection: $(tail -n 3 first.out)"
    set -- -sess_in session.pem ;;
  keyupdate|transfer) ;;
  *) tb_unsupported "$TESTCASE" ;;
esac
if [ "$TESTCASE" = keyupdate ]; then
  # s_client's interactive "k" command sends a KeyUpdate; the request goes after it, under the new keys.
  key_update_then_request() { printf 'k\\n'; sleep 1; tb_request; }
  tb_converse key_update_then_request connect -tls1_3 > answer.out 2> answer.err \\
    || tb_fail "$(tail -n 3 answer.err)"
  grep -q '^KEYUPDATE' answer.err && echo "tls.keyupdate=sent"
elif [ "$TESTCASE" = transfer ]; then
  tb_request | connect -quiet > answer.out 2> answer.err || tb_fail "$(tail -n 3 answer.err)"
else
  tb_request | connect -ign_eof "$@" > answer.out 2> answer.err || tb_fail "$(tail -n 3 answer.err)"
fi
if [ "$TESTCASE" != transfer ]; then
session=$(grep -m 1 -E '^(New|Reused), TLSv' answer.out || true)
[ -n "$session" ] || tb_fail "no TLS session in s_client's output: $(tail -n 3 answer.err)"
echo "$session" | sed -E 's/^(New|Reused), (TLSv[0-9.]+), Cipher is (.*)$/tls.protocol=\\2\\ntls.cipher=\\3/'
case "$session" in Reused*) echo "tls.resumed=yes" ;; *) echo "tls.resumed=no" ;; esac
sed -n -E -e 's/^Server Temp Key: ([^,]*).*/tls.group=\\1/p' -e 's/^ALPN protocol: (.*)/tls.alpn=\\1/p' \\
  -e 's/^No ALPN negotiated/tls.alpn=none/p' -e 's/^ *Verify return code: 0 \\(ok\\)/tls.verified=yes/p' answer.out | sort -u

fi
tb_body_evidence answer.out
`

export default TlsStack.make({
  name: "tls-openssl",
  description: "OpenSSL's s_server/s_client driven per interop test case",
  programs: ["openssl"],
  dockerFiles: ["/usr/lib/ssl/openssl.cnf"],
  server,
  client
})
