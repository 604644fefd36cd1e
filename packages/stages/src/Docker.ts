/**
 * The Docker Engine, as typed effects over dockerode. Honours DOCKER_HOST (unix://, tcp://, ssh://) the way
 * the docker CLI does; every refusal becomes a named error, every created or removed thing an uninterruptible
 * call so that cleanup after an interrupt sees exactly what exists.
 */
import { Context, Effect, Layer, Schedule, Schema } from "effect"
import Dockerode from "dockerode"
import { call, containerOptions, describeHost, ignoreMissing, unavailable } from "./internal/engine.ts"
import {
  demuxToString,
  execAttached,
  execInteractive,
  execPiped,
  type ExecSink,
  type InteractiveIo
} from "./internal/exec.ts"
import * as MemoryEngine from "./internal/memoryEngine.ts"
import { DockerFailed, type DockerUnavailable, ImageBuildFailed, NetworkConflict } from "./StageError.ts"

export type EngineError = DockerFailed | DockerUnavailable

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
    Health: Schema.optionalKey(Schema.NullOr(Schema.Struct({ Status: Schema.String })))
  })
})
export type ContainerHealth = typeof ContainerHealth.Type

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
    readonly buildImage: (options: {
      readonly context: string
      readonly src: ReadonlyArray<string>
      readonly dockerfile: string
      readonly tag: string
      readonly labels: Readonly<Record<string, string>>
    }) => Effect.Effect<void, ImageBuildFailed | EngineError>
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

const make = (docker: Dockerode, host: string) => {
  const local = host.startsWith("unix://")
  const run = <A>(operation: string, f: () => Promise<A>, mutating = false) => call(host, operation, f, { mutating })

  const imageExists = (image: string) =>
    run("image inspect", () => docker.getImage(image).inspect()).pipe(
      Effect.as(true),
      Effect.catchTag("DockerFailed", (e) => (e.statusCode === 404 ? Effect.succeed(false) : Effect.fail(e)))
    )

  const buildImage = Effect.fn("Docker.buildImage")(function* (options: {
    readonly context: string
    readonly src: ReadonlyArray<string>
    readonly dockerfile: string
    readonly tag: string
    readonly labels: Readonly<Record<string, string>>
  }) {
    const fail = (reason: string) => new ImageBuildFailed({ image: options.tag, context: options.context, reason })
    const stream = yield* run("build", () =>
      docker.buildImage(
        { context: options.context, src: [...options.src] },
        { t: options.tag, dockerfile: options.dockerfile, labels: { ...options.labels }, rm: true, forcerm: true }
      )
    )
    yield* Effect.callback<void, ImageBuildFailed>((resume) => {
      docker.modem.followProgress(
        stream,
        (
          error: unknown,
          output: ReadonlyArray<{ readonly error?: string; readonly errorDetail?: { message?: string } }>
        ) => {
          const failed = output?.find((o) => o.error !== undefined || o.errorDetail !== undefined)
          if (error) resume(Effect.fail(fail(String(error))))
          else if (failed) resume(Effect.fail(fail(failed.errorDetail?.message ?? failed.error ?? "unknown")))
          else resume(Effect.void)
        }
      )
    })
  })

  const createNetwork = (spec: NetworkSpec) =>
    run(
      "network create",
      () =>
        docker.createNetwork({
          Name: spec.name,
          Driver: "bridge",
          CheckDuplicate: true,
          Internal: spec.internal ?? false,
          Labels: { ...spec.labels },
          Options: {
            ...spec.options,
            ...(spec.bridgeName ? { "com.docker.network.bridge.name": spec.bridgeName } : {})
          },
          ...(spec.subnet
            ? {
                IPAM: {
                  Driver: "default",
                  Config: [{ Subnet: spec.subnet, ...(spec.gateway ? { Gateway: spec.gateway } : {}) }]
                }
              }
            : {})
        }),
      true
    ).pipe(
      Effect.map((network) => network.id),
      Effect.catchTag(
        "DockerFailed",
        (e): Effect.Effect<never, DockerFailed | NetworkConflict> =>
          e.statusCode === 403 || e.statusCode === 409 || /overlap|already exists|conflict/i.test(e.reason)
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

  const createContainer = (spec: ContainerSpec) =>
    run("container create", () => docker.createContainer(containerOptions(spec)), true).pipe(
      Effect.map((container) => container.id)
    )

  const listContainers = (labels: Readonly<Record<string, string>>) =>
    run("container list", () => docker.listContainers({ all: true, filters: labelFilter(labels) })).pipe(
      Effect.flatMap(decodeAnswer(Schema.Array(ContainerSummary), "container list"))
    )

  const listNetworks = (labels: Readonly<Record<string, string>>) =>
    run("network list", () => docker.listNetworks({ filters: labelFilter(labels) })).pipe(
      Effect.flatMap(decodeAnswer(Schema.Array(NetworkSummary), "network list"))
    )

  return Docker.of({
    host,
    local,
    ping: Effect.asVoid(run("ping", () => docker.ping())),
    imageExists,
    buildImage,
    createNetwork,
    removeNetwork: (id) => ignoreMissing(run("network remove", () => docker.getNetwork(id).remove(), true)),
    listNetworks,
    createContainer,
    connectNetwork: (network, container, address) =>
      Effect.asVoid(
        run(
          "network connect",
          () =>
            docker.getNetwork(network).connect({
              Container: container,
              ...(address ? { EndpointConfig: { IPAMConfig: { IPv4Address: address } } } : {})
            }),
          true
        )
      ),
    startContainer: (id) => Effect.asVoid(run("container start", () => docker.getContainer(id).start(), true)),
    removeContainer: (id) =>
      ignoreMissing(run("container remove", () => docker.getContainer(id).remove({ force: true, v: true }), true)).pipe(
        // A removal already in progress (409) finishes on its own; wait for it so networks can go next.
        Effect.retry({
          schedule: Schedule.spaced("200 millis"),
          times: 25,
          while: (e) => e._tag === "DockerFailed" && e.statusCode === 409
        })
      ),
    listContainers,
    health: (id) =>
      run("container inspect", () => docker.getContainer(id).inspect()).pipe(
        Effect.flatMap(decodeAnswer(ContainerHealth, "container inspect"))
      ),
    logs: (id) =>
      run("container logs", () => docker.getContainer(id).logs({ stdout: true, stderr: true, follow: false })).pipe(
        Effect.map((buffer) => demuxToString(buffer as unknown as Uint8Array))
      ),
    exec: (id, spec, sink) => execAttached(docker, host, local, id, spec, sink),
    interactive: (id, cmd, io) => execInteractive(docker, host, id, cmd, io),
    piped: (id, cmd, io) => execPiped(docker, host, id, cmd, io)
  })
}
