/**
 * A TLS implementation for the interop matrix, in the QUIC interop runner's style: each role is a small POSIX
 * shell script that reads `TESTCASE` (and `ALPN`) from its environment, does what the case asks, and exits 127
 * when the stack cannot do it (`unsupported`). Clients end by printing evidence lines (`tls.protocol=TLSv1.3`,
 * `tls.alpn=h2`, `body.sha256=…`) that the matrix's assertions check. One stack is one plugin file: its name, the
 * programs it needs and its two scripts; `assets/tls/lib.sh` holds what every script shares.
 */
import { make as makePlugin, type ServicePlugin } from "../ServicePlugin.ts"

/** The interop test cases every TLS stack is asked about (the matrix's grids). */
export const testCases = [
  "tls12",
  "tls13",
  "chacha20",
  "x25519",
  "resumption",
  "alpn",
  "mutual-auth",
  "transfer",
  "keyupdate"
] as const
export type TestCase = (typeof testCases)[number]

export interface TlsStackOptions {
  readonly name: string
  readonly description: string
  /** Programs the scripts run; a machine without one lists the plugin as unavailable. */
  readonly programs: ReadonlyArray<string>
  readonly versions?: ReadonlyArray<string>
  /** Shell script of the server role: ends by exec'ing a server listening on `$HOST:$PORT`. */
  readonly server: string
  /** Shell script of the client role: connects to `$TARGET_HOST:$TARGET_PORT`, prints evidence lines. */
  readonly client: string
  /** Readiness budget of the server: longer for stacks compiled on first use (Go, Java). */
  readonly serverReadyTimeout?: string
  /**
   * The docker environment's image: by default a root file system with `programs` (and their libraries) from this
   * machine. `dockerUnsupported` instead gives an image whose cells say `unsupported` with that reason.
   */
  readonly docker?: ServicePlugin["docker"]
  readonly dockerUnsupported?: string
  /**
   * A peer built on this machine before the image (POSIX shell with lib.sh sourced; ends by printing the
   * `tb_cached_build` directory): the image holds it in its own cache, where the role scripts' `tb_cached_build`
   * finds it by the same source hash, and needs none of `programs` (the toolchain).
   */
  readonly dockerPrebuild?: string
  /** Extra files of the default image (configuration the programs read). */
  readonly dockerFiles?: ReadonlyArray<string>
}

/** Where an image keeps the peers built before it (TESTBED_CACHE_DIR of its scripts). */
export const imageCache = "/opt/testbed/cache"

const prebuiltRootfs = (script: string, requires: ReadonlyArray<string>): NonNullable<ServicePlugin["docker"]> => ({
  rootfs: {
    programs: [],
    prebuild: { script: `set -eu\n. "$ASSETS/tls/lib.sh"\n${script}`, into: imageCache, requires },
    env: { TESTBED_CACHE_DIR: imageCache, TB_PREBUILT_HERE: "1" }
  }
})

const dockerOf = (options: TlsStackOptions): NonNullable<ServicePlugin["docker"]> => {
  if (options.docker !== undefined) return options.docker
  if (options.dockerUnsupported !== undefined) {
    return { rootfs: { programs: [], env: { TB_UNSUPPORTED_HERE: options.dockerUnsupported } } }
  }
  if (options.dockerPrebuild !== undefined) return prebuiltRootfs(options.dockerPrebuild, options.programs)
  return {
    rootfs: { programs: options.programs, ...(options.dockerFiles === undefined ? {} : { files: options.dockerFiles }) }
  }
}

const parameters = {
  testcase: { type: "string", default: "tls13", description: `The case to run: ${testCases.join(", ")}` },
  alpn: { type: "string", default: "h2", description: "ALPN protocol(s), comma-separated, for the alpn case" }
} as const

const common = {
  ROLE: "{{ role }}",
  TESTCASE: "{{ testcase }}",
  ALPN: "{{ alpn }}",
  CERT: "{{ cert }}",
  KEY: "{{ key }}",
  CA: "{{ ca }}",
  DIR: "{{ service_dir }}",
  ASSETS: "{{ assets }}"
}

const quote = (word: string) => `'${word.replaceAll("'", "'\\''")}'`

// A machine without one of the stack's programs gets exit 127 saying which (the cell is `unsupported`, never a
// false failure); `testbed plugins list` names the missing programs too. An image made without the stack says why
// in TB_UNSUPPORTED_HERE (its cells are `unsupported` with that reason). An image with the peer built before it
// (TB_PREBUILT_HERE) has no toolchain to check for.
const prelude = (programs: ReadonlyArray<string>) =>
  `set -eu\n. "$ASSETS/tls/lib.sh"\ncd "$DIR"\n[ -z "\${TB_UNSUPPORTED_HERE:-}" ] || tb_unsupported "$TB_UNSUPPORTED_HERE"\n` +
  `[ -n "\${TB_PREBUILT_HERE:-}" ] || for program in ${programs.map(quote).join(" ")}; do\n` +
  `  command -v "$program" > /dev/null || tb_unsupported "$program is not installed on this machine"\ndone\n`

export const make = (options: TlsStackOptions): ServicePlugin =>
  makePlugin({
    name: options.name,
    type: "iut",
    description: options.description,
    protocols: ["tls"],
    versions: options.versions ?? ["system"],
    programs: options.programs,
    requires: ["certificate"],
    unsupportedExitCodes: [127],
    roles: {
      server: {
        command: {
          program: "sh",
          args: ["-c", prelude(options.programs) + options.server, `${options.name}-server`],
          env: { ...common, HOST: "{{ host }}", PORT: "{{ port }}" }
        },
        readiness: { kind: "port", timeout: options.serverReadyTimeout ?? "10 seconds" },
        parameters
      },
      client: {
        command: {
          program: "sh",
          args: ["-c", prelude(options.programs) + options.client, `${options.name}-client`],
          env: { ...common, TARGET_HOST: "{{ target_host }}", TARGET_PORT: "{{ target_port }}" }
        },
        parameters
      }
    },
    artifacts: [{ name: "keys", kind: "keylog", path: "keys.log", description: "TLS key log (SSLKEYLOGFILE format)" }],
    docker: dockerOf(options)
  })
