/**
 * The stage definition (stage.yaml): networks, nodes, readiness, hooks and host settings. Decoding is strict
 * (unknown keys are errors) and every problem names its YAML path, so a typo never silently does nothing.
 */
import { TimeSpan } from "@testbed/events"
import { Effect, Schema, SchemaIssue } from "effect"
import * as Yaml from "yaml"
import * as Check from "./Check.ts"
import * as Impairment from "./Impairment.ts"
import { crossCheck } from "./internal/checks.ts"
import { checkProblems } from "./internal/labChecks.ts"
import * as Link from "./Link.ts"
import { notAMapping } from "./internal/document.ts"
import { parseAddress, parseSubnet } from "./internal/ipv4.ts"
import { InvalidStageName, StageInvalid } from "./StageError.ts"

const namePattern = /^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/

/** Names end up in labels, container names and file paths: no separators, no `..`, at most 63 characters. */
export const Name = Schema.String.check(
  Schema.isPattern(namePattern, { message: "use letters, digits, '.', '_', '-' (no '/', no '..', at most 63)" })
)

export const isValidName = (name: string): boolean => namePattern.test(name)

export const validateName = (name: string): Effect.Effect<string, InvalidStageName> =>
  isValidName(name)
    ? Effect.succeed(name)
    : Effect.fail(
        new InvalidStageName({
          name,
          reason: "use letters, digits, '.', '_', '-' only, starting with a letter or digit; no '/' and no '..'"
        })
      )

const Ipv4 = Schema.String.check(
  Schema.makeFilter((s: string) =>
    parseAddress(s) === undefined ? "expected an IPv4 address (a.b.c.d, 0–255)" : undefined
  )
)
const Cidr = Schema.String.check(
  Schema.makeFilter((s: string) => {
    const subnet = parseSubnet(s)
    return typeof subnet === "string" ? subnet : undefined
  })
)

/** The option that names a network's bridge interface on the host (at most 15 characters, IFNAMSIZ). */
export { bridgeNameOption } from "./internal/checks.ts"

export const Network = Schema.Struct({
  subnet: Schema.optionalKey(Cidr),
  gateway: Schema.optionalKey(Ipv4),
  /** No route to the outside world (Docker `internal`). */
  internal: Schema.optionalKey(Schema.Boolean),
  /**
   * Options of the bridge driver (compose `driver_opts`), e.g. `com.docker.network.bridge.name: net1` to give the
   * host bridge a fixed name that scripts and `host.interfaces` can use. Without it the bridge gets a unique name.
   */
  driverOptions: Schema.optionalKey(Schema.Record(Schema.String, Schema.String))
})
export type Network = typeof Network.Type

export const Build = Schema.Struct({
  /** Directory sent to the engine, relative to the stage file. */
  context: Schema.String,
  dockerfile: Schema.optionalKey(Schema.String)
})
export type Build = typeof Build.Type

export const Attachment = Schema.Struct({
  network: Name,
  /** A static IPv4 address inside the network's subnet. */
  address: Schema.optionalKey(Ipv4)
})
export type Attachment = typeof Attachment.Type

export const Mount = Schema.Struct({
  /** Host path, relative to the stage file; created when missing. */
  source: Schema.String,
  target: Schema.String,
  readOnly: Schema.optionalKey(Schema.Boolean)
})
export type Mount = typeof Mount.Type

export const Healthcheck = Schema.Struct({
  test: Schema.Array(Schema.String),
  interval: Schema.optionalKey(TimeSpan.TimeSpan),
  timeout: Schema.optionalKey(TimeSpan.TimeSpan),
  retries: Schema.optionalKey(Schema.Int)
})

const timeout = Schema.optionalKey(TimeSpan.TimeSpan)

/** What "ready" means for a node; each condition has its own timeout (default 30 seconds). */
export const Readiness = Schema.Union([
  Schema.Struct({ healthy: Schema.Literal(true), timeout }),
  Schema.Struct({ log: Schema.String, timeout }),
  Schema.Struct({ command: Schema.Array(Schema.String), timeout }),
  Schema.Struct({ tcp: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 65535 })), timeout })
])
export type Readiness = typeof Readiness.Type

export const Node = Schema.Struct({
  /** Image to run; built from `build` when missing locally (tagged with this name). */
  image: Schema.optionalKey(Schema.String),
  build: Schema.optionalKey(Build),
  networks: Schema.optionalKey(Schema.Array(Attachment)),
  env: Schema.optionalKey(Schema.Record(Schema.String, Schema.String)),
  command: Schema.optionalKey(Schema.Array(Schema.String)),
  mounts: Schema.optionalKey(Schema.Array(Mount)),
  capabilities: Schema.optionalKey(Schema.Array(Schema.String)),
  sysctls: Schema.optionalKey(Schema.Record(Schema.String, Schema.String)),
  workingDir: Schema.optionalKey(Schema.String),
  hostname: Schema.optionalKey(Schema.String),
  /** Keep stdin open and allocate a TTY, so a bare shell as command stays up (compose `stdin_open`/`tty`). */
  tty: Schema.optionalKey(Schema.Boolean),
  healthcheck: Schema.optionalKey(Healthcheck),
  ready: Schema.optionalKey(Schema.Array(Readiness))
})
export type Node = typeof Node.Type

export const Hook = Schema.Struct({
  node: Name,
  command: Schema.Array(Schema.String),
  timeout
})
export type Hook = typeof Hook.Type

/** A host interface: one of the stage's own bridges (`network`) or an existing interface by `name`. */
export const HostInterface = Schema.Struct({
  network: Schema.optionalKey(Name),
  name: Schema.optionalKey(Schema.String.check(Schema.isPattern(/^[A-Za-z0-9_.-]{1,15}$/))),
  /** `false` turns ARP off on the interface (`ip link set dev X arp off`). */
  arp: Schema.optionalKey(Schema.Boolean),
  /** Per-interface IPv4 sysctls: `{ arp_ignore: "1" }` sets net.ipv4.conf.<interface>.arp_ignore. */
  ipv4: Schema.optionalKey(Schema.Record(Schema.String, Schema.String))
})
export type HostInterface = typeof HostInterface.Type

export const Host = Schema.Struct({
  sysctls: Schema.optionalKey(Schema.Record(Schema.String, Schema.String)),
  interfaces: Schema.optionalKey(Schema.Array(HostInterface))
})
export type Host = typeof Host.Type

/** Several copies of one stage side by side (`--instance NAME`): each gets its own block of this pool. */
export const Instances = Schema.Struct({ pool: Cidr })
export type Instances = typeof Instances.Type

export const Stage = Schema.Struct({
  name: Name,
  description: Schema.optionalKey(Schema.String),
  networks: Schema.optionalKey(Schema.Record(Name, Network)),
  nodes: Schema.Record(Name, Node),
  /** Point-to-point links between nodes (veth pairs inside their namespaces). */
  links: Schema.optionalKey(Schema.Array(Link.Link)),
  /** Impairments applied when the stage comes up; `testbed stage impair` changes them live. */
  impairments: Schema.optionalKey(Schema.Array(Impairment.Declared)),
  /** Graded checks (`testbed stage check`). */
  checks: Schema.optionalKey(Schema.Array(Check.Check)),
  instances: Schema.optionalKey(Instances),
  hooks: Schema.optionalKey(
    Schema.Struct({ up: Schema.optionalKey(Schema.Array(Hook)), down: Schema.optionalKey(Schema.Array(Hook)) })
  ),
  host: Schema.optionalKey(Host)
})
export type Stage = typeof Stage.Type
export type StageEncoded = typeof Stage.Encoded

/** A decoded stage with the directory its relative paths (build contexts, mounts) are resolved against. */
export interface Loaded {
  readonly stage: Stage
  readonly source: string
  readonly baseDir: string
}

const formatPath = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>(
    (acc, key) => (typeof key === "number" ? `${acc}[${key}]` : acc === "" ? String(key) : `${acc}.${String(key)}`),
    ""
  )

const toProblems = (issue: SchemaIssue.Issue) =>
  SchemaIssue.makeFormatterStandardSchemaV1()(issue).issues.map((i) => ({
    path: formatPath((i.path ?? []).map((p) => (typeof p === "object" && p !== null && "key" in p ? p.key : p))),
    message: i.message
  }))

/** Decodes an already parsed value; cross references (networks, hook nodes) are checked too. */
export const decode = (input: unknown, source: string): Effect.Effect<Stage, StageInvalid> =>
  Schema.decodeUnknownEffect(Stage)(input, { errors: "all", onExcessProperty: "error" }).pipe(
    Effect.mapError((error) => new StageInvalid({ source, problems: toProblems(error.issue) })),
    Effect.flatMap((stage) => {
      const problems = crossCheck(stage)
      return problems.length === 0 ? Effect.succeed(stage) : Effect.fail(new StageInvalid({ source, problems }))
    })
  )

/** Parses YAML text, then decodes it. */
export const decodeYaml = (text: string, source: string): Effect.Effect<Stage, StageInvalid> =>
  Effect.try({
    try: () => Yaml.parse(text) as unknown,
    catch: (error) => new StageInvalid({ source, problems: [{ path: "", message: `not YAML: ${String(error)}` }] })
  }).pipe(
    Effect.flatMap((value) => {
      const problem = notAMapping(value, "a stage needs a name and nodes", "name:, nodes:")
      return problem === undefined
        ? decode(value, source)
        : Effect.fail(new StageInvalid({ source, problems: [{ path: "", message: problem }] }))
    })
  )

/** A checks file (`checks: [...]`) for `stage`: decoded strictly, every check's nodes and addresses cross-checked. */
export const decodeChecks = (
  text: string,
  source: string,
  stage: Stage
): Effect.Effect<ReadonlyArray<Check.Check>, StageInvalid> =>
  Effect.try({
    try: () => Yaml.parse(text) as unknown,
    catch: (error) => new StageInvalid({ source, problems: [{ path: "", message: `not YAML: ${String(error)}` }] })
  }).pipe(
    Effect.flatMap((value) =>
      Schema.decodeUnknownEffect(Check.ChecksFile)(value, { errors: "all", onExcessProperty: "error" }).pipe(
        Effect.mapError((error) => new StageInvalid({ source, problems: toProblems(error.issue) }))
      )
    ),
    Effect.flatMap((file) => {
      const problems = checkProblems(stage, file.checks)
      return problems.length === 0 ? Effect.succeed(file.checks) : Effect.fail(new StageInvalid({ source, problems }))
    })
  )
