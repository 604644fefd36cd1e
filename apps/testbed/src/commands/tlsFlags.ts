/**
 * `--tls-ca`, `--tls-cert`, `--tls-key`: mutual TLS on the runners' sockets, the same three flags on `testbed runner`
 * and `testbed run --cluster` (what they mean and what is checked: @testbed/cluster's SocketTls.ts).
 */
import { Flag } from "effect/cli"

export const tlsFlags = {
  tlsCa: Flag.String("tls-ca").pipe(
    Flag.withDescription(
      "With a cluster: PEM file of the cluster's CA; runner sockets then speak mutual TLS (with --tls-cert, --tls-key)"
    ),
    Flag.optional
  ),
  tlsCert: Flag.String("tls-cert").pipe(
    Flag.withDescription("With a cluster: PEM certificate of this host, signed by --tls-ca"),
    Flag.optional
  ),
  tlsKey: Flag.String("tls-key").pipe(
    Flag.withDescription("With a cluster: PEM private key of --tls-cert (never logged)"),
    Flag.optional
  )
}
