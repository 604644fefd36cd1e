/** The TLS stacks that ship with testbed, for the interop matrix (`fixtures/experiments/tls-matrix.yaml`). */
import type { ServicePlugin } from "../ServicePlugin.ts"
import gnutls from "./GnuTls.ts"
import botan from "./Botan.ts"
import go from "./GoTls.ts"
import java from "./JavaJsse.ts"
import openssl from "./OpenSsl.ts"

export const stacks: ReadonlyArray<ServicePlugin> = [openssl, gnutls, botan, go, java]
