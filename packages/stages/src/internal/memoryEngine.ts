// A Docker engine in memory, for unit tests of what drives the engine (bringing stages up and down, cleaning up
// after failures and interrupts): networks, containers and images with labels and label filters, addresses on
// networks, a subnet or name taken twice refused as a conflict. Commands run in a container (`exec`, readiness
// probes, hooks) answer what a script says, on Effect's clock. Nothing is started; no process, no network.
import { Duration, Effect, Option, Stream } from "effect"
import type { ContainerSpec, Docker, EngineError, ExecSpec, NetworkSpec } from "../Docker.ts"
import type { ExecSink } from "./exec.ts"
import { DockerFailed, NetworkConflict } from "../StageError.ts"

/** What a command run in a container does: its exit code and output, after `duration` on the Clock. */
export interface ExecOutcome {
  readonly exitCode?: number | null | undefined
  readonly stdout?: string | undefined
  readonly stderr?: string | undefined
  readonly duration?: Duration.Input | undefined
}

export interface MemoryOptions {
  /** Images present from the start (others appear when built). */
  readonly images?: ReadonlyArray<string> | undefined
  /** The outcome of a command run in a container (by the container's name); default: exit 0 at once. */
  readonly exec?: ((container: string, cmd: ReadonlyArray<string>) => ExecOutcome) | undefined
  /** Whether a path exists in a container (by the container's name); default: none does. */
  readonly pathExists?: ((container: string, path: string) => boolean) | undefined
}

interface Network {
  readonly id: string
  readonly spec: NetworkSpec
}

interface Container {
  readonly id: string
  readonly spec: ContainerSpec
  running: boolean
  readonly networks: Map<string, { readonly networkId: string; readonly address: string }>
}

type Labels = Readonly<Record<string, string>>

/** Every given label is there; an empty value asks only for the label's presence (as the engine's filter). */
const hasLabels = (have: Labels, want: Labels): boolean =>
  Object.entries(want).every(([key, value]) => (value === "" ? key in have : have[key] === value))

const encoder = new TextEncoder()

/** What the engine holds. */
interface Engine {
  readonly options: MemoryOptions
  readonly images: Set<string>
  readonly networks: Map<string, Network>
  readonly containers: Map<string, Container>
  readonly nextId: (kind: string) => string
}

const missing = (operation: string, what: string) =>
  Effect.fail(new DockerFailed({ operation, reason: `no such ${what}`, statusCode: 404 }))

const findNetwork = (engine: Engine, nameOrId: string) =>
  Option.fromNullishOr([...engine.networks.values()].find((n) => n.id === nameOrId || n.spec.name === nameOrId))

const attach = (engine: Engine, container: Container, network: Network, address: string | undefined) =>
  container.networks.set(network.spec.name, {
    networkId: network.id,
    address: address ?? `172.31.${engine.networks.size}.${container.networks.size + 2}`
  })

const createNetwork = (engine: Engine, spec: NetworkSpec) =>
  Effect.suspend(() => {
    const taken = [...engine.networks.values()].find(
      (n) => n.spec.name === spec.name || (spec.subnet !== undefined && n.spec.subnet === spec.subnet)
    )
    if (taken !== undefined) {
      return Effect.fail(
        new NetworkConflict({
          network: spec.name,
          ...(spec.subnet ? { subnet: spec.subnet } : {}),
          reason: `conflicts with network ${taken.spec.name}`
        })
      )
    }
    const network = { id: engine.nextId("n"), spec }
    engine.networks.set(network.id, network)
    return Effect.succeed(network.id)
  })

const createContainer = (engine: Engine, spec: ContainerSpec) =>
  Effect.suspend(() => {
    if (!engine.images.has(spec.image)) return missing("container create", `image ${spec.image}`)
    const container: Container = { id: engine.nextId("c"), spec, running: false, networks: new Map() }
    if (spec.network !== undefined) {
      const network = findNetwork(engine, spec.network.name)
      if (Option.isNone(network)) return missing("container create", `network ${spec.network.name}`)
      attach(engine, container, network.value, spec.network.address)
    }
    engine.containers.set(container.id, container)
    return Effect.succeed(container.id)
  })

/** What `list` answers about a container. */
const summary = (c: Container) => ({
  Id: c.id,
  Names: [`/${c.spec.name}`],
  Image: c.spec.image,
  State: c.running ? "running" : "created",
  Status: c.running ? "Up" : "Created",
  Labels: { ...c.spec.labels },
  NetworkSettings: {
    Networks: Object.fromEntries(
      [...c.networks].map(([name, n]) => [name, { IPAddress: n.address, NetworkID: n.networkId }])
    )
  }
})

const containerOf = (engine: Engine, operation: string, id: string) =>
  Effect.suspend(() => {
    const found = engine.containers.get(id)
    return found === undefined ? missing(operation, `container ${id}`) : Effect.succeed(found)
  })

/** A command in a running container: the script's outcome, after its duration on the Clock. */
const exec = Effect.fn("MemoryEngine.exec")(function* (
  engine: Engine,
  id: string,
  spec: ExecSpec,
  sink: ExecSink
): Effect.fn.Return<number | null, EngineError> {
  const target = yield* containerOf(engine, "exec create", id)
  if (!target.running) {
    return yield* new DockerFailed({ operation: "exec create", reason: "container is not running", statusCode: 409 })
  }
  const outcome = engine.options.exec?.(target.spec.name, spec.cmd) ?? {}
  yield* Effect.sleep(Duration.fromInputUnsafe(outcome.duration ?? Duration.zero))
  if (outcome.stdout) sink.stdout(encoder.encode(outcome.stdout))
  if (outcome.stderr) sink.stderr(encoder.encode(outcome.stderr))
  return outcome.exitCode === undefined ? 0 : outcome.exitCode
})

const connectNetwork = Effect.fn("MemoryEngine.connectNetwork")(function* (
  engine: Engine,
  network: string,
  id: string,
  address: string | undefined
) {
  const target = yield* containerOf(engine, "network connect", id)
  const found = findNetwork(engine, network)
  if (Option.isNone(found)) return yield* missing("network connect", `network ${network}`)
  attach(engine, target, found.value, address)
})

const health = (engine: Engine, id: string) =>
  Effect.map(containerOf(engine, "container inspect", id), (c) => ({
    State: {
      Running: c.running,
      ExitCode: 0,
      ...(c.spec.healthcheck === undefined ? {} : { Health: { Status: c.running ? "healthy" : "starting" } })
    }
  }))

export const make = (options: MemoryOptions = {}): Docker["Service"] => {
  let serial = 0
  const engine: Engine = {
    options,
    images: new Set(options.images ?? []),
    networks: new Map(),
    containers: new Map(),
    nextId: (kind) => `${kind}${(++serial).toString(16).padStart(12, "0")}`
  }
  return {
    host: "memory://",
    local: true,
    ping: Effect.void,
    imageExists: (image) => Effect.sync(() => engine.images.has(image)),
    buildImage: (build) => Effect.sync(() => void engine.images.add(build.tag)),
    createNetwork: (spec) => createNetwork(engine, spec),
    removeNetwork: (id) => Effect.sync(() => void engine.networks.delete(id)),
    listNetworks: (labels) =>
      Effect.sync(() =>
        [...engine.networks.values()]
          .filter((n) => hasLabels(n.spec.labels, labels))
          .map((n) => ({ Id: n.id, Name: n.spec.name, Labels: { ...n.spec.labels }, Options: { ...n.spec.options } }))
      ),
    createContainer: (spec) => createContainer(engine, spec),
    connectNetwork: (network, id, address) => connectNetwork(engine, network, id, address),
    startContainer: (id) =>
      Effect.map(containerOf(engine, "container start", id), (c) => {
        c.running = true
      }),
    removeContainer: (id) => Effect.sync(() => void engine.containers.delete(id)),
    listContainers: (labels) =>
      Effect.sync(() => [...engine.containers.values()].filter((c) => hasLabels(c.spec.labels, labels)).map(summary)),
    health: (id) => health(engine, id),
    logs: (id) => Effect.as(containerOf(engine, "container logs", id), ""),
    // Containers in memory never die and their health is read at once (health): no engine event ever comes.
    events: () => Effect.succeed(Stream.never),
    pathExists: (id, path) =>
      Effect.map(containerOf(engine, "archive", id), (c) => options.pathExists?.(c.spec.name, path) ?? false),
    exec: (id, spec, sink) => exec(engine, id, spec, sink),
    interactive: (id) => Effect.as(containerOf(engine, "exec create", id), 0),
    piped: (id) => Effect.as(containerOf(engine, "exec create", id), 0)
  }
}
