/**
 * The Docker Engine, as typed effects over dockerode. Honours DOCKER_HOST (unix://, tcp://, ssh://) the way
 * the docker CLI does; every refusal becomes a named error, every created or removed thing an uninterruptible
 * call so that cleanup after an interrupt sees exactly what exists.
 */
import { Context, Effect, Layer, Schedule, Schema, type Scope, type Stream } from "effect"
import Dockerode from "dockerode"
import * as EngineEvents from "./internal/engineEvents.ts"
import { call, containerOptions, describeHost, ignoreMissing, networkOptions, unavailable } from "./internal/engine.ts"
import {
  demuxToString,
  execAttached,
  execInteractive,
  execPiped,
  type ExecSink,
  type InteractiveIo
} from "./internal/exec.ts"
import * as MemoryEngine from "./internal/memoryEngine.ts"

/** What the in-memory engine (`Docker.layerMemory`) starts with, and what a command run in one of its containers gives. */
export type { ExecOutcome, MemoryOptions } from "./internal/memoryEngine.ts"
import { DockerFailed, type DockerUnavailable, ImageBuildFailed, NetworkConflict } from "./StageError.ts"

export type EngineError = DockerFailed | DockerUnavailable
export type { EngineEvent, EventFilter } from "./internal/engineEvents.ts"

export interface NetworkSpec {
  readonly name: string
  readonly subnet?: string | undefined
  readonly gateway?: string | undefined
  readonly internal?: boolean | undefined
  /** Host-side bridge interface name (at most 15 characters), so host settings can address it. */
  readonly bridgeName?: string | undefined
  /** Other options of the bridge driver (`com.docker.network.…`). */
  readonly options?: Readonly<Record<string, string>> | undefined
  readonly labels: Readonly<Record<string, string>>
}

export interface ContainerSpec {
  readonly name: string
  readonly image: string
  readonly labels: Readonly<Record<string, string>>
  readonly env?: ReadonlyArray<string> | undefined
  readonly cmd?: ReadonlyArray<string> | undefined
  readonly workingDir?: string | undefined
  readonly hostname?: string | undefined
  readonly tty?: boolean | undefined
  readonly capAdd?: ReadonlyArray<string> | undefined
  readonly sysctls?: Readonly<Record<string, string>> | undefined
  /** `host:container[:ro]` bind mounts. */
  readonly binds?: ReadonlyArray<string> | undefined
  readonly healthcheck?:
    | {
        readonly test: ReadonlyArray<string>
        readonly intervalNs?: number
        readonly timeoutNs?: number
        readonly retries?: number
      }
    | undefined
  /** The first network is attached at creation (engines before API 1.44 take one); others with `connect`. */
  readonly network?: { readonly name: string; readonly address?: string | undefined } | undefined
}

/** What `list` answers about a container; decoded from the engine's answer. */
export const ContainerSummary = Schema.Struct({
  Id: Schema.String,
  Names: Schema.Array(Schema.String),
  Image: Schema.String,
  State: Schema.String,
  Status: Schema.String,
  Labels: Schema.Record(Schema.String, Schema.String),
  NetworkSettings: Schema.Struct({
    Networks: Schema.Record(Schema.String, Schema.Struct({ IPAddress: Schema.String, NetworkID: Schema.String }))
  })
})
export type ContainerSummary = typeof ContainerSummary.Type

export const NetworkSummary = Schema.Struct({
  Id: Schema.String,
  Name: Schema.String,
  Labels: Schema.NullOr(Schema.Record(Schema.String, Schema.String)),
  Options: Schema.optionalKey(Schema.NullOr(Schema.Record(Schema.String, Schema.String)))
})
export type NetworkSummary = typeof NetworkSummary.Type

export const ContainerHealth = Schema.Struct({
  State: Schema.Struct({
    Running: Schema.Boolean,
    ExitCode: Schema.Int,
    /** The container's first process on the engine's host (0 when it does not run). */
    Pid: Schema.optionalKey(Schema.Int),
    Health: Schema.optionalKey(Schema.NullOr(Schema.Struct({ Status: Schema.String })))
  })
})
export type ContainerHealth = typeof ContainerHealth.Type

export interface BuildOptions {
  readonly context: string
  readonly src: ReadonlyArray<string>
  readonly dockerfile: string
  readonly tag: string
  readonly labels: Readonly<Record<string, string>>
}

export interface ExecSpec {
  readonly cmd: ReadonlyArray<string>
  readonly env?: ReadonlyArray<string> | undefined
  readonly workingDir?: string | undefined
  readonly stdin?: string | undefined
}

const labelFilter = (labels: Readonly<Record<string, string>>) =>
  // An empty value asks only for the label's presence.
  JSON.stringify({ label: Object.entries(labels).map(([k, v]) => (v === "" ? k : `${k}=${v}`)) })

const decodeAnswer =
  <S extends Schema.Top & { readonly DecodingServices: never }>(schema: S, operation: string) =>
  (value: unknown): Effect.Effect<S["Type"], DockerFailed> =>
    Schema.decodeUnknownEffect(schema)(value).pipe(
      Effect.mapError(
        (error) => new DockerFailed({ operation, reason: `unexpected answer from the engine: ${error.message}` })
      )
    )

export class Docker extends Context.Service<
  Docker,
  {
    /** Where the engine is, as given by DOCKER_HOST (for messages). */
    readonly host: string
    /** Whether commands can reach processes of containers from this machine (local unix socket). */
    readonly local: boolean
    readonly ping: Effect.Effect<void, EngineError>
    readonly imageExists: (image: string) => Effect.Effect<boolean, EngineError>
    readonly buildImage: (options: BuildOptions) => Effect.Effect<void, ImageBuildFailed | EngineError>
    readonly createNetwork: (spec: NetworkSpec) => Effect.Effect<string, NetworkConflict | EngineError>
    readonly removeNetwork: (id: string) => Effect.Effect<void, EngineError>
    readonly listNetworks: (
      labels: Readonly<Record<string, string>>
    ) => Effect.Effect<ReadonlyArray<NetworkSummary>, EngineError>
    readonly createContainer: (spec: ContainerSpec) => Effect.Effect<string, EngineError>
    readonly connectNetwork: (network: string, container: string, address?: string) => Effect.Effect<void, EngineError>
    readonly startContainer: (id: string) => Effect.Effect<void, EngineError>
    readonly removeContainer: (id: string) => Effect.Effect<void, EngineError>
    readonly listContainers: (
      labels: Readonly<Record<string, string>>
    ) => Effect.Effect<ReadonlyArray<ContainerSummary>, EngineError>
    readonly health: (id: string) => Effect.Effect<ContainerHealth, EngineError>
    readonly logs: (id: string) => Effect.Effect<string, EngineError>
    /**
     * The engine's events matching `filter`, from now (or `since`, epoch seconds) until the stream's scope ends.
     * The request is open once this succeeds: nothing that happens later is missed.
     */
    readonly events: (
      filter: EngineEvents.EventFilter,
      since?: number
    ) => Effect.Effect<Stream.Stream<EngineEvents.EngineEvent>, EngineError, Scope.Scope>
    /** Whether a path exists in the container's file system (the engine looks: nothing is needed in the image). */
    readonly pathExists: (id: string, path: string) => Effect.Effect<boolean, EngineError>
    /** Runs a command in a container, streaming its output to `sink`; resolves with the exit code. */
    readonly exec: (id: string, spec: ExecSpec, sink: ExecSink) => Effect.Effect<number | null, EngineError>
    /** An interactive session with a TTY bound to the given terminal streams; resolves with the exit code. */
    readonly interactive: (
      id: string,
      cmd: ReadonlyArray<string>,
      io: InteractiveIo
    ) => Effect.Effect<number | null, EngineError>
    /** The same without a TTY: input piped to the command's stdin, stdout and stderr passed through apart. */
    readonly piped: (
      id: string,
      cmd: ReadonlyArray<string>,
      io: InteractiveIo
    ) => Effect.Effect<number | null, EngineError>
  }
>()("@testbed/stages/Docker") {
  /** The engine named by DOCKER_HOST (default: the local socket). */
  static readonly layer: Layer.Layer<Docker, DockerUnavailable> = Layer.effect(
    Docker,
    Effect.gen(function* () {
      const host = describeHost(process.env.DOCKER_HOST)
      const docker = yield* Effect.try({ try: () => new Dockerode(), catch: (error) => unavailable(host, error) })
      return make(docker, host)
    })
  )

  /**
   * An engine in memory, for unit tests of what drives it: networks, containers and images with labels, conflicts
   * on a subnet or name taken twice, and commands in containers answered by `options.exec` on Effect's clock.
   */
  static readonly layerMemory = (options: MemoryEngine.MemoryOptions = {}): Layer.Layer<Docker> =>
    Layer.sync(Docker, () => MemoryEngine.make(options))
}

/** The client and where it points: what every engine call below needs. */
interface Engine {
  readonly docker: Dockerode
  readonly host: string
  readonly local: boolean
}

const run = <A>(engine: Engine, operation: string, f: () => Promise<A>, mutating = false) =>
  call(engine.host, operation, f, { mutating })

const imageExists = Effect.fn("Docker.imageExists")(function* (engine: Engine, image: string) {
  return yield* run(engine, "image inspect", () => engine.docker.getImage(image).inspect()).pipe(
    Effect.as(true),
    Effect.catchTag("DockerFailed", (e) => (e.statusCode === 404 ? Effect.succeed(false) : Effect.fail(e)))
  )
})

/** One line of the build's progress stream: an error line ends the build. */
const BuildProgress = Schema.Struct({
  error: Schema.optionalKey(Schema.String),
  errorDetail: Schema.optionalKey(Schema.Struct({ message: Schema.optionalKey(Schema.String) }))
})
const decodeProgress = Schema.decodeUnknownOption(Schema.Array(BuildProgress))

const buildImage = Effect.fn("Docker.buildImage")(function* (engine: Engine, options: BuildOptions) {
  const fail = (reason: string) => new ImageBuildFailed({ image: options.tag, context: options.context, reason })
  const stream = yield* run(engine, "build", () =>
    engine.docker.buildImage(
      { context: options.context, src: [...options.src] },
      { t: options.tag, dockerfile: options.dockerfile, labels: { ...options.labels }, rm: true, forcerm: true }
    )
  )
  yield* Effect.callback<void, ImageBuildFailed>((resume) => {
    engine.docker.modem.followProgress(stream, (error: unknown, output: unknown) => {
      const lines = decodeProgress(output ?? [])
      const failed =
        lines._tag === "Some"
          ? lines.value.find((o) => o.error !== undefined || o.errorDetail !== undefined)
          : undefined
      if (error) resume(Effect.fail(fail(String(error))))
      else if (failed) resume(Effect.fail(fail(failed.errorDetail?.message ?? failed.error ?? "unknown")))
      else resume(Effect.void)
    })
  })
})

/** The engine answers a create with the new thing's id. */
const Created = Schema.Struct({ id: Schema.String })

/** 403/409 or these words: the engine refused the network because of another one (subnet, bridge name). */
const isConflict = (e: DockerFailed) =>
  e.statusCode === 403 || e.statusCode === 409 || /overlap|already exists|conflict/i.test(e.reason)

const createNetwork = Effect.fn("Docker.createNetwork")(
  function* (engine: Engine, spec: NetworkSpec) {
    const created = yield* run(engine, "network create", () => engine.docker.createNetwork(networkOptions(spec)), true)
    return (yield* decodeAnswer(Created, "network create")(created)).id
  },
  (effect, _engine, spec) =>
    Effect.catchTag(
      effect,
      "DockerFailed",
      (e): Effect.Effect<never, DockerFailed | NetworkConflict> =>
        isConflict(e)
          ? Effect.fail(
              new NetworkConflict({
                network: spec.name,
                ...(spec.subnet ? { subnet: spec.subnet } : {}),
                reason: e.reason
              })
            )
          : Effect.fail(e)
    )
)

const createContainer = Effect.fn("Docker.createContainer")(function* (engine: Engine, spec: ContainerSpec) {
  const created = yield* run(
    engine,
    "container create",
    () => engine.docker.createContainer(containerOptions(spec)),
    true
  )
  return (yield* decodeAnswer(Created, "container create")(created)).id
})

const listContainers = Effect.fn("Docker.listContainers")(function* (
  engine: Engine,
  labels: Readonly<Record<string, string>>
) {
  const answer = yield* run(engine, "container list", () =>
    engine.docker.listContainers({ all: true, filters: labelFilter(labels) })
  )
  return yield* decodeAnswer(Schema.Array(ContainerSummary), "container list")(answer)
})

const listNetworks = Effect.fn("Docker.listNetworks")(function* (
  engine: Engine,
  labels: Readonly<Record<string, string>>
) {
  const answer = yield* run(engine, "network list", () => engine.docker.listNetworks({ filters: labelFilter(labels) }))
  return yield* decodeAnswer(Schema.Array(NetworkSummary), "network list")(answer)
})

const connectNetwork = Effect.fn("Docker.connectNetwork")(function* (
  engine: Engine,
  network: string,
  container: string,
  address?: string
) {
  const endpoint = address ? { EndpointConfig: { IPAMConfig: { IPv4Address: address } } } : {}
  yield* run(
    engine,
    "network connect",
    () => engine.docker.getNetwork(network).connect({ Container: container, ...endpoint }),
    true
  )
})

const removeContainer = Effect.fn("Docker.removeContainer")(function* (engine: Engine, id: string) {
  yield* ignoreMissing(
    run(engine, "container remove", () => engine.docker.getContainer(id).remove({ force: true, v: true }), true)
  ).pipe(
    // A removal already in progress (409) finishes on its own; wait for it so networks can go next.
    Effect.retry({
      schedule: Schedule.spaced("200 millis"),
      times: 25,
      while: (e) => e._tag === "DockerFailed" && e.statusCode === 409
    })
  )
})

const inspect = Effect.fn("Docker.inspect")(function* (engine: Engine, id: string) {
  const answer = yield* run(engine, "container inspect", () => engine.docker.getContainer(id).inspect())
  return yield* decodeAnswer(ContainerHealth, "container inspect")(answer)
})

const logs = Effect.fn("Docker.logs")(function* (engine: Engine, id: string) {
  const buffer = yield* run(engine, "container logs", () =>
    engine.docker.getContainer(id).logs({ stdout: true, stderr: true, follow: false })
  )
  return demuxToString(buffer as unknown as Uint8Array)
})

const pathExists = Effect.fn("Docker.pathExists")(function* (engine: Engine, id: string, path: string) {
  return yield* run(engine, "archive info", () => engine.docker.getContainer(id).infoArchive({ path })).pipe(
    Effect.as(true),
    Effect.catchTag("DockerFailed", (e) => (e.statusCode === 404 ? Effect.succeed(false) : Effect.fail(e)))
  )
})

const make = (docker: Dockerode, host: string) => {
  const engine: Engine = { docker, host, local: host.startsWith("unix://") }
  return Docker.of({
    host,
    local: engine.local,
    ping: Effect.asVoid(run(engine, "ping", () => docker.ping())).pipe(Effect.withSpan("Docker.ping")),
    imageExists: (image) => imageExists(engine, image),
    buildImage: (options) => buildImage(engine, options),
    createNetwork: (spec) => createNetwork(engine, spec),
    removeNetwork: (id) =>
      ignoreMissing(run(engine, "network remove", () => docker.getNetwork(id).remove(), true)).pipe(
        Effect.withSpan("Docker.removeNetwork")
      ),
    listNetworks: (labels) => listNetworks(engine, labels),
    createContainer: (spec) => createContainer(engine, spec),
    connectNetwork: (network, container, address) => connectNetwork(engine, network, container, address),
    startContainer: (id) =>
      Effect.asVoid(run(engine, "container start", () => docker.getContainer(id).start(), true)).pipe(
        Effect.withSpan("Docker.startContainer")
      ),
    removeContainer: (id) => removeContainer(engine, id),
    listContainers: (labels) => listContainers(engine, labels),
    health: (id) => inspect(engine, id),
    logs: (id) => logs(engine, id),
    events: (filter, since) => EngineEvents.subscribe(docker, host, filter, since),
    pathExists: (id, path) => pathExists(engine, id, path),
    exec: (id, spec, sink) => execAttached(docker, host, engine.local, id, spec, sink),
    interactive: (id, cmd, io) => execInteractive(docker, host, id, cmd, io),
    piped: (id, cmd, io) => execPiped(docker, host, id, cmd, io)
  })
}
