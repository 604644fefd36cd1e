/**
 * The service plugins that ship with testbed. They wrap real implementations nobody here wrote (OpenSSL and
 * GnuTLS from Debian packages), a TCP echo pair that needs nothing but Node (for the quickstart), and `exec`,
 * which runs any program as a service (for ad-hoc testers and harness tests).
 */
import { make, type ServicePlugin } from "./ServicePlugin.ts"
import { stacks as tlsStacks } from "./tls/Stacks.ts"

const extraArgs = {
  extra_args: { type: "list", default: [], description: "More arguments appended to the command line" }
} as const

const httpGet = "GET / HTTP/1.0\r\n\r\n"

export const openssl: ServicePlugin = make({
  name: "openssl",
  type: "iut",
  description: "OpenSSL's s_server (answers GET / with its status page) and s_client (sends GET /, verifies the peer)",
  protocols: ["tls"],
  versions: ["system"],
  programs: ["openssl"],
  requires: ["certificate"],
  roles: {
    server: {
      command: {
        program: "openssl",
        args: [
          "s_server",
          "-accept",
          "{{ host }}:{{ port }}",
          "-cert",
          "{{ cert }}",
          "-key",
          "{{ key }}",
          "-www",
          "-keylogfile",
          "{{ service_dir }}/keys.log",
          "{{ extra_args }}"
        ]
      },
      readiness: { kind: "port", timeout: "10 seconds" },
      parameters: extraArgs
    },
    client: {
      command: {
        program: "openssl",
        args: [
          "s_client",
          "-connect",
          "{{ target_host }}:{{ target_port }}",
          "-servername",
          "localhost",
          "-CAfile",
          "{{ ca }}",
          "-verify_return_error",
          "-verify_hostname",
          "localhost",
          "-ign_eof",
          "-keylogfile",
          "{{ service_dir }}/keys.log",
          "{{ extra_args }}"
        ],
        stdin: httpGet
      },
      parameters: extraArgs
    }
  },
  artifacts: [{ name: "keys", kind: "keylog", path: "keys.log", description: "TLS key log (SSLKEYLOGFILE format)" }],
  docker: { image: "debian:bookworm-slim" }
})

export const gnutls: ServicePlugin = make({
  name: "gnutls",
  type: "iut",
  description: "GnuTLS's gnutls-serv --http and gnutls-cli (sends GET /, verifies the peer)",
  protocols: ["tls"],
  versions: ["system"],
  programs: ["gnutls-serv", "gnutls-cli"],
  requires: ["certificate"],
  roles: {
    server: {
      command: {
        program: "gnutls-serv",
        args: [
          "--http",
          "-p",
          "{{ port }}",
          "--x509certfile",
          "{{ cert }}",
          "--x509keyfile",
          "{{ key }}",
          "{{ extra_args }}"
        ],
        env: { SSLKEYLOGFILE: "{{ service_dir }}/keys.log" }
      },
      readiness: { kind: "port", timeout: "10 seconds" },
      parameters: extraArgs
    },
    client: {
      command: {
        program: "gnutls-cli",
        args: [
          "--x509cafile",
          "{{ ca }}",
          "--verify-hostname",
          "localhost",
          "-p",
          "{{ target_port }}",
          "{{ extra_args }}",
          "{{ target_host }}"
        ],
        env: { SSLKEYLOGFILE: "{{ service_dir }}/keys.log" },
        stdin: httpGet
      },
      parameters: extraArgs
    }
  },
  artifacts: [{ name: "keys", kind: "keylog", path: "keys.log", description: "TLS key log (SSLKEYLOGFILE format)" }],
  docker: { image: "debian:bookworm-slim" }
})

export const nodeEcho: ServicePlugin = make({
  name: "node-echo",
  type: "iut",
  description: "A TCP echo server and a client that checks every line comes back (ships with testbed, needs only Node)",
  protocols: ["tcp-echo"],
  versions: ["bundled"],
  roles: {
    server: {
      command: {
        program: "{{ node }}",
        args: ["{{ assets }}/echo-server.mjs", "--host", "{{ host }}", "--port", "{{ port }}"]
      },
      readiness: { kind: "log", pattern: "echo server listening", timeout: "10 seconds" }
    },
    client: {
      command: {
        program: "{{ node }}",
        args: [
          "{{ assets }}/echo-client.mjs",
          "--host",
          "{{ target_host }}",
          "--port",
          "{{ target_port }}",
          "--count",
          "{{ count }}",
          "--message",
          "{{ message }}"
        ]
      },
      parameters: {
        count: { type: "int", default: 3, description: "Lines to send" },
        message: { type: "string", default: "hello testbed", description: "Text of each line" }
      }
    }
  }
})

const execParameters = {
  program: { type: "string", required: true, description: "Program to run (looked up in PATH)" },
  args: { type: "list", default: [], description: "Its arguments (templates: {{ port }}, {{ target_port }}…)" }
} as const

export const exec: ServicePlugin = make({
  name: "exec",
  type: "tester",
  description: "Runs any program as a service; arguments may use {{ port }}, {{ target_host }}, {{ target_port }}",
  protocols: ["any"],
  versions: ["any"],
  // The QUIC interop runner's convention: exit code 127 means "this test case is not supported".
  unsupportedExitCodes: [127],
  roles: {
    server: {
      command: { program: "{{ program }}", args: ["{{ args }}"] },
      readiness: { kind: "none" },
      parameters: execParameters
    },
    client: { command: { program: "{{ program }}", args: ["{{ args }}"] }, parameters: execParameters }
  }
})

/** The TLS interop stacks (`tls-openssl`, `tls-gnutls`, …) come after the originals, in `tls/`. */
export const services: ReadonlyArray<ServicePlugin> = [nodeEcho, openssl, gnutls, exec, ...tlsStacks]

/** Where the bundled scripts of the built-in plugins live (`{{ assets }}` in templates). */
export const assetsDirectory: string = decodeURIComponent(new URL("../assets", import.meta.url).pathname)
