/**
 * The `docker` environment: a test's services become a stage of @testbed/stages — one node (container) per
 * service from its plugin's image or build context, all on one private network with a subnet picked per test
 * in 10.200–254.x.0/24 (not 10.231.x) — brought up when the test sets up and down when its scope closes,
 * whatever happened. Its containers and network carry this process as their owner: when the run is killed outright
 * (SIGKILL), the next run on this machine, or `testbed stage prune`, removes them.
 * Service commands run in their node through the stage's exec runner (`DockerExecRunner`), with the attempt's
 * directory bind-mounted at the same path so service directories, logs and artifacts are where they are on
 * localhost, and the paths the services read (assets, the run's certificate) mounted read-only at theirs.
 * A plugin's `docker.rootfs` is an image built offline from this machine's files (see DockerImages).
 */
import type { CommandError, CommandRunner } from "@testbed/commands"
import { EventBus } from "@testbed/events"
import { EnvironmentPlugin } from "@testbed/plugins"
import { Docker, Stage, Stages } from "@testbed/stages"
import * as DockerImages from "./DockerImages.ts"
import type { ChildProcessSpawner } from "effect/process"
import { Context, Deferred, Effect, Fiber, FileSystem, Layer, Option, Path, Random, Ref, Stream } from "effect"

const network = "net"
/** Node names are service keys; a stage name is short and unique per attempt (containers are named after it). */
const stageName = (suffix: number) => `exp-${suffix.toString(16).padStart(8, "0")}`

const setupFailed = (test: string, reason: string) =>
  new EnvironmentPlugin.EnvironmentSetupFailed({ environment: "docker", test, reason })

/** The stage for a test: one idle node per service (commands are exec'd into it), one private network. */
export const stageOf = (
  services: ReadonlyArray<EnvironmentPlugin.EnvironmentService>,
  options: {
    readonly name: string
    readonly prefix: string
    readonly outputDir: string
    readonly resolve: (from: string, to: string) => string
    /** Images built for services whose plugin has a `rootfs`, by service key. */
    readonly images?: ReadonlyMap<string, string>
    readonly readOnlyPaths?: ReadonlyArray<string>
  }
): { readonly stage: unknown; readonly addresses: ReadonlyMap<string, string> } | string => {
  const nodes: Record<string, unknown> = {}
  const addresses = new Map<string, string>()
  for (const [index, service] of services.entries()) {
    const docker = service.plugin.docker
    const built = options.images?.get(service.key)
    const image = built ?? docker?.image
    if (image === undefined && docker?.build === undefined) {
      return `${service.key}: plugin ${service.plugin.name} has no docker image, build context or rootfs`
    }
    const address = `${options.prefix}.${10 + index}`
    addresses.set(service.key, address)
    nodes[service.key] = {
      ...(image === undefined ? {} : { image }),
      // A plugin's image with a build context is built from it when the engine lacks it (the tag stays the
      // plugin's); an image built from a rootfs already exists.
      ...(docker?.build === undefined || built !== undefined
        ? {}
        : { build: { context: options.resolve(service.source, docker.build) } }),
      networks: [{ network, address }],
      // An idle shell keeps the node up; the service's command is exec'd into it.
      command: ["/bin/sh"],
      tty: true,
      mounts: [
        { source: options.outputDir, target: options.outputDir },
        ...(options.readOnlyPaths ?? []).map((path) => ({ source: path, target: path, readOnly: true }))
      ],
      workingDir: options.outputDir,
      hostname: service.key
    }
  }
  return {
    stage: {
      name: options.name,
      networks: { [network]: { subnet: `${options.prefix}.0/24`, gateway: `${options.prefix}.1`, internal: true } },
      nodes
    },
    addresses
  }
}

const encoder = new TextEncoder()

/** Runs one service command in its node, its output appended to the log files as it comes. */
const launchIn = Effect.fn("DockerEnvironment.launchIn")(function* (
  runner: CommandRunner.CommandRunner["Service"],
  service: EnvironmentPlugin.ServiceLaunch
) {
  const fs = yield* FileSystem.FileSystem
  const program = service.command.program ?? "sh"
  const failed = (reason: string) => new EnvironmentPlugin.ServiceLaunchFailed({ service: service.id, program, reason })
  for (const file of [service.stdoutPath, service.stderrPath]) {
    yield* fs.writeFileString(file, "").pipe(Effect.mapError((error) => failed(error.message)))
  }
  const exit = yield* Deferred.make<EnvironmentPlugin.ServiceExit>()
  const stopped = yield* Ref.make(false)
  const append = (file: string, bytes: Uint8Array) => Effect.ignore(fs.writeFile(file, bytes, { flag: "a" }))
  const ended = (exitCode: number | null, signal: string | null) =>
    Effect.flatMap(Ref.get(stopped), (wasStopped) => Deferred.succeed(exit, { exitCode, signal, stopped: wasStopped }))
  const fiber = yield* runner.stream(service.command).pipe(
    Stream.runForEach((chunk) =>
      chunk._tag === "Stdout"
        ? append(service.stdoutPath, chunk.bytes)
        : chunk._tag === "Stderr"
          ? append(service.stderrPath, chunk.bytes)
          : ended(chunk.result.exitCode, chunk.result.signal)
    ),
    Effect.catch((error: CommandError.CommandError) =>
      error._tag === "CommandFailed" || error._tag === "CommandTimedOut"
        ? ended(error.result.exitCode, error.result.signal)
        : Effect.andThen(
            append(service.stderrPath, encoder.encode(`${error._tag}: ${JSON.stringify(error)}\n`)),
            ended(error._tag === "CommandNotFound" ? 127 : null, null)
          )
    ),
    Effect.onInterrupt(() => ended(null, "SIGTERM")),
    Effect.forkScoped
  )
  const process: EnvironmentPlugin.ServiceProcess = {
    pid: undefined,
    exited: Deferred.await(exit),
    poll: Deferred.poll(exit).pipe(
      Effect.flatMap((polled) => (Option.isSome(polled) ? Effect.map(polled.value, Option.some) : Effect.succeedNone))
    ),
    // Interrupting the exec kills the process in the container (the runner does it with a local engine).
    stop: Effect.fn("DockerEnvironment.stop")(function* () {
      if (yield* Deferred.isDone(exit)) return yield* Deferred.await(exit)
      yield* Ref.set(stopped, true)
      yield* Fiber.interrupt(fiber)
      return yield* Deferred.await(exit)
    })
  }
  return process
})

type SetupContext = Parameters<EnvironmentPlugin.EnvironmentPlugin["setup"]>[0]
type Runner = CommandRunner.CommandRunner["Service"]

/**
 * The stages service for one test's stage, on the run's event bus when there is one, and on the engine the context
 * gives when it gives one (a unit test's `Docker.layerMemory`); otherwise the engine DOCKER_HOST names.
 */
const stagesFor = Effect.fnUntraced(function* (test: string, outputDir: string) {
  const path = yield* Path.Path
  const bus = yield* Effect.serviceOption(EventBus.EventBus)
  const engine = yield* DockerImages.engineLayer
  const platform = yield* Effect.context<FileSystem.FileSystem | Path.Path | ChildProcessSpawner.ChildProcessSpawner>()
  const context = yield* Layer.build(
    // Ephemeral: the stage belongs to this process; if it is killed (even SIGKILL), the next run's `up` or a
    // `testbed stage prune` removes its containers and network.
    Stages.Stages.layer({ stateDir: path.join(outputDir, ".stage"), catalog: outputDir, ephemeral: true }).pipe(
      Layer.provideMerge(
        Layer.mergeAll(
          engine,
          Option.match(bus, {
            onNone: () => EventBus.EventBus.layer,
            onSome: (found) => Layer.succeed(EventBus.EventBus, found)
          })
        )
      ),
      Layer.provide(Layer.succeedContext(platform))
    )
  ).pipe(Effect.mapError((error) => setupFailed(test, `${error.reason} (${error.hint})`)))
  return { stages: Context.get(context, Stages.Stages), docker: Context.get(context, Docker.Docker) }
})

/** The image of every service whose plugin has a root file system: built now unless it exists (see DockerImages). */
const imagesFor = Effect.fnUntraced(function* (
  test: string,
  services: ReadonlyArray<EnvironmentPlugin.EnvironmentService>,
  docker: Docker.Docker["Service"]
) {
  const images = new Map<string, string>()
  for (const service of services) {
    const rootfs = service.plugin.docker?.rootfs
    if (rootfs === undefined) continue
    const ready = yield* DockerImages.ensure(service.plugin.name, rootfs).pipe(
      Effect.provideService(Docker.Docker, docker),
      Effect.mapError((error) => setupFailed(test, error.message))
    )
    images.set(service.key, ready.image)
  }
  return images
})

/** Brings the stage up on a subnet of its own; another test (or stage) holding the subnet is a conflict: pick again. */
const bringUp = Effect.fnUntraced(function* (
  context: SetupContext,
  stages: Stages.Stages["Service"],
  images: ReadonlyMap<string, string>
) {
  const path = yield* Path.Path
  const fs = yield* FileSystem.FileSystem
  const { test, outputDir, services = [], readOnlyPaths = [] } = context
  const up = Effect.gen(function* () {
    // 10.231.x is left to the stage fixtures (routing-lab), whose fixed subnets must not meet ours.
    const second = yield* Random.nextIntBetween(200, 253)
    const prefix = `10.${second >= 231 ? second + 1 : second}.${yield* Random.nextIntBetween(0, 255)}`
    const planned = stageOf(services, {
      name: stageName(yield* Random.nextIntBetween(0, 0xffffffff)),
      prefix,
      outputDir,
      resolve: (from, to) => path.resolve(from === "builtin" ? process.cwd() : path.dirname(from), to),
      images,
      readOnlyPaths
    })
    if (typeof planned === "string") return yield* setupFailed(test, planned)
    const source = path.join(outputDir, "stage.json")
    yield* Effect.ignore(fs.writeFileString(source, `${JSON.stringify(planned.stage, null, 2)}\n`))
    const stage = yield* Stage.decode(planned.stage, source)
    yield* Effect.acquireRelease(stages.up({ stage, source, baseDir: outputDir }), () => Effect.ignore(stages.down()))
    return planned.addresses
  })
  return yield* up.pipe(
    Effect.retry({ times: 4, while: (error) => error._tag === "NetworkConflict" }),
    Effect.mapError((error) => (error._tag === "EnvironmentSetupFailed" ? error : setupFailed(test, error.message)))
  )
})

/** The environment over a stage that is up: a node (and its exec runner) and an address per service. */
const environmentOf = (
  addresses: ReadonlyMap<string, string>,
  runners: ReadonlyMap<string, Runner>,
  containers: ReadonlyMap<string, string>,
  fs: FileSystem.FileSystem
): EnvironmentPlugin.Environment => {
  let nextPort = 8000
  const first = [...addresses.values()][0] ?? "127.0.0.1"
  return {
    runnerOf: (node) => runners.get(node),
    // The container of each node: resource sampling and limits go through the engine (internal/containerEngine.ts).
    containerOf: (node) => containers.get(node),
    kind: "docker",
    host: first,
    hostOf: (service) => addresses.get(service) ?? first,
    // Every service has an address of its own: ports never clash between services.
    allocatePort: Effect.sync(() => nextPort++),
    launch: (service) => {
      const node = service.node ?? service.id.split("/").pop() ?? ""
      const runner = runners.get(node)
      if (runner === undefined) {
        return Effect.fail(
          new EnvironmentPlugin.ServiceLaunchFailed({
            service: service.id,
            program: service.command.program ?? "sh",
            reason: `no node "${node}" in the stage (has: ${[...runners.keys()].join(", ")})`
          })
        )
      }
      return launchIn(runner, service).pipe(Effect.provideService(FileSystem.FileSystem, fs))
    }
  }
}

const setup = Effect.fn("DockerEnvironment.setup")(function* (context: SetupContext) {
  const fs = yield* FileSystem.FileSystem
  const { stages, docker } = yield* stagesFor(context.test, context.outputDir)
  const images = yield* imagesFor(context.test, context.services ?? [], docker)
  const addresses = yield* bringUp(context, stages, images)
  const runners = new Map<string, Runner>()
  const containers = new Map<string, string>()
  for (const key of addresses.keys()) {
    const failed = (error: { readonly message: string }) => setupFailed(context.test, error.message)
    runners.set(key, yield* stages.runner(key).pipe(Effect.mapError(failed)))
    containers.set(key, yield* stages.containerOf(key).pipe(Effect.mapError(failed)))
  }
  return environmentOf(addresses, runners, containers, fs)
})

export const plugin: EnvironmentPlugin.EnvironmentPlugin = {
  name: "docker",
  description: "A stage of containers (one per service) on a private network, through @testbed/stages.",
  setup
}
