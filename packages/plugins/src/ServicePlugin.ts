/**
 * A service plugin describes one implementation (under test, or a tester) as data: what it speaks, how to
 * start it per role as a command template with declared parameters, how to tell it is ready, what it leaves
 * behind, and how it says "this test is not supported". No base classes: a plugin is a plain value.
 */
import { Schema } from "effect"

/** The kinds of value a plugin parameter takes; checked before anything runs. */
export const ParameterType = Schema.Literals(["string", "int", "port", "boolean", "path", "host", "list"])
export type ParameterType = typeof ParameterType.Type

export const ParameterValue = Schema.Union([Schema.String, Schema.Finite, Schema.Boolean, Schema.Array(Schema.String)])
export type ParameterValue = typeof ParameterValue.Type

export const ParameterSpec = Schema.Struct({
  type: ParameterType,
  description: Schema.optionalKey(Schema.String),
  default: Schema.optionalKey(ParameterValue),
  /** A required parameter without a default must be given in the experiment file. */
  required: Schema.optionalKey(Schema.Boolean)
})
export type ParameterSpec = typeof ParameterSpec.Type

/**
 * A command whose program, arguments and environment are templates (`{{ port }}`, `{{ cert | shquote }}`).
 * An argument that is exactly `{{ name }}` of a `list` parameter expands to one argument per item.
 */
export const CommandTemplate = Schema.Struct({
  program: Schema.String,
  args: Schema.optionalKey(Schema.Array(Schema.String)),
  env: Schema.optionalKey(Schema.Record(Schema.String, Schema.String)),
  /** Text written to the process's standard input, then closed. Without it stdin is empty. */
  stdin: Schema.optionalKey(Schema.String)
})
export type CommandTemplate = typeof CommandTemplate.Type

/** How to tell a started service is ready to be talked to. `timeout` is a duration string ("10 seconds"). */
export const Readiness = Schema.Union([
  Schema.Struct({ kind: Schema.Literal("none") }),
  Schema.Struct({ kind: Schema.Literal("port"), timeout: Schema.optionalKey(Schema.String) }),
  Schema.Struct({ kind: Schema.Literal("log"), pattern: Schema.String, timeout: Schema.optionalKey(Schema.String) }),
  Schema.Struct({
    kind: Schema.Literal("command"),
    command: CommandTemplate,
    timeout: Schema.optionalKey(Schema.String)
  })
])
export type Readiness = typeof Readiness.Type

export const Role = Schema.Literals(["server", "client"])
export type Role = typeof Role.Type

export const RoleSpec = Schema.Struct({
  command: CommandTemplate,
  /** Default: `port` for a server, `none` for a client. */
  readiness: Schema.optionalKey(Readiness),
  parameters: Schema.optionalKey(Schema.Record(Schema.String, ParameterSpec)),
  /**
   * `service` runs until the test ends (exiting earlier is a crash); `task` runs to completion and its exit
   * code counts. Default: `service` for a server, `task` for a client.
   */
  lifetime: Schema.optionalKey(Schema.Literals(["service", "task"]))
})
export type RoleSpec = typeof RoleSpec.Type

/** A file the service leaves, relative to its own output directory (templates allowed). */
export const ArtifactSpec = Schema.Struct({
  name: Schema.String,
  kind: Schema.Literals(["log", "capture", "keylog", "replay_script", "feedback", "report", "other"]),
  path: Schema.String,
  description: Schema.optionalKey(Schema.String)
})
export type ArtifactSpec = typeof ArtifactSpec.Type

/** What a plugin needs the harness to prepare once per run. */
export const Requirement = Schema.Literals(["certificate"])
export type Requirement = typeof Requirement.Type

/** A root file system from this machine's files, for the docker environment (see `docker.rootfs`). */
export const RootfsSpec = Schema.Struct({
  /** Programs (names on PATH or absolute paths) copied with the shared libraries they load. */
  programs: Schema.Array(Schema.String),
  /** Further absolute paths of files copied as they are (configuration such as /etc/ssl/openssl.cnf). */
  files: Schema.optionalKey(Schema.Array(Schema.String)),
  /** Environment variables of the image (ENV lines). */
  env: Schema.optionalKey(Schema.Record(Schema.String, Schema.String)),
  /**
   * A build on this machine before the image is assembled (a peer compiled from the plugin's sources): `script`
   * runs with `sh -c` (ASSETS set to the built-in plugins' assets) and prints, on its last stdout line, a
   * directory whose files are copied to `into/<its name>` in the image (and hashed into its tag, like every file).
   */
  prebuild: Schema.optionalKey(
    Schema.Struct({
      script: Schema.String,
      into: Schema.String.check(Schema.isPattern(/^(\/[A-Za-z0-9_-][A-Za-z0-9._-]*)+$/)),
      /**
       * Programs the build needs on this machine (a toolchain). One missing: no build; the image instead carries
       * `TB_UNSUPPORTED_HERE` naming it, so its cells say `unsupported`, as a missing program does on localhost.
       */
      requires: Schema.optionalKey(Schema.Array(Schema.String))
    })
  )
})
export type RootfsSpec = typeof RootfsSpec.Type

export const ServicePlugin = Schema.Struct({
  name: Schema.String.check(Schema.isPattern(/^[a-z0-9][a-z0-9._-]*$/)),
  type: Schema.Literals(["iut", "tester"]),
  description: Schema.optionalKey(Schema.String),
  protocols: Schema.Array(Schema.String),
  /** Versions this plugin can run; the first is the default. */
  versions: Schema.Array(Schema.String),
  roles: Schema.Struct({ server: Schema.optionalKey(RoleSpec), client: Schema.optionalKey(RoleSpec) }),
  artifacts: Schema.optionalKey(Schema.Array(ArtifactSpec)),
  /**
   * For the docker environment: an image to run, a build context relative to the plugin file, or a root file
   * system assembled from this machine's files (`rootfs`: the programs with the libraries `ldd` lists, busybox as
   * the shell, extra files) and built into an image tagged by the hash of its inputs.
   */
  docker: Schema.optionalKey(
    Schema.Struct({
      image: Schema.optionalKey(Schema.String),
      build: Schema.optionalKey(Schema.String),
      rootfs: Schema.optionalKey(RootfsSpec)
    })
  ),
  /** Exit codes by which the implementation says "this test case is not supported" (QUIC interop runner: 127). */
  unsupportedExitCodes: Schema.optionalKey(Schema.Array(Schema.Int)),
  requires: Schema.optionalKey(Schema.Array(Requirement)),
  /** Programs that must be on PATH for the plugin to run; `plugins list` reports the missing ones. */
  programs: Schema.optionalKey(Schema.Array(Schema.String))
})
export type ServicePlugin = typeof ServicePlugin.Type

/** Keeps literal types when declaring a plugin in TypeScript; validation happens when it is registered. */
export const make = (plugin: ServicePlugin): ServicePlugin => plugin

/** The default lifetime of a role. */
export const lifetimeOf = (role: Role, spec: RoleSpec): "service" | "task" =>
  spec.lifetime ?? (role === "server" ? "service" : "task")

/** The default readiness of a role. */
export const readinessOf = (role: Role, spec: RoleSpec): Readiness =>
  spec.readiness ?? (role === "server" ? { kind: "port" } : { kind: "none" })
