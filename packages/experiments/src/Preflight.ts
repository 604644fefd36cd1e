/**
 * What `--dry-run` checks beyond the file and the plugins, without running anything: that each plugin can run in
 * its test's environment (a docker image or build context in the docker environment, the image present locally —
 * the docker environment never pulls — its programs on PATH on localhost), and that each run step's program is on
 * PATH. A run that is certain to fail is reported before it starts, each problem with its YAML path.
 */
import { type Problems, Programs, type ServicePlugin } from "@testbed/plugins"
import { Duration, Effect, Result } from "effect"
import type { ExperimentConfig, Indices, Step } from "./ExperimentConfig.ts"

/** The answers a pre-flight check needs from the machine. */
export interface Probes {
  /** Whether a program is found on PATH. */
  readonly onPath: (program: string) => Effect.Effect<boolean>
  /** Whether the image is present locally; a string says why Docker could not answer. */
  readonly imagePresent: (image: string) => Effect.Effect<boolean | string>
}

/** A service of a test as written: where its implementation is named, and the plugin found for it. */
interface ServiceAt {
  readonly at: string
  readonly plugin: ServicePlugin.ServicePlugin
}

interface TestAt {
  readonly at: string
  /** Where the environment is chosen (for a problem with the environment itself). */
  readonly environmentAt: string
  readonly environment: string
  readonly services: ReadonlyArray<ServiceAt>
  readonly programs: ReadonlyArray<{ readonly at: string; readonly program: string }>
}

type Environment = string | { readonly type: string } | undefined

const nameOf = (value: Environment): string | undefined =>
  value === undefined ? undefined : typeof value === "string" ? value : value.type

/** A run step's program, when it is a plain name looked up on PATH (not a path, no template, PATH not changed). */
const stepPrograms = (at: string, steps: unknown) =>
  (Array.isArray(steps) ? (steps as ReadonlyArray<Step>) : []).flatMap((step, index) => {
    if (!("run" in step)) return []
    const program = step.run.command?.[0]
    if (program === undefined || program.includes("/") || program.includes("{{") || step.run.env?.PATH !== undefined)
      return []
    return [{ at: `${at}.steps[${index}].run.command[0]`, program }]
  })

/** Every test and matrix of the file with the paths its parts are written at. */
const testsOf = (
  config: ExperimentConfig,
  indices: Indices,
  findService: (name: string) => ServicePlugin.ServicePlugin | undefined
): ReadonlyArray<TestAt> => {
  const fallback = nameOf(config.environment) ?? "localhost"
  const environmentOf = (at: string, own: Environment, panther: Environment) => ({
    environment: nameOf(own ?? panther) ?? fallback,
    environmentAt:
      own !== undefined ? `${at}.environment` : panther !== undefined ? `${at}.network_environment` : "environment"
  })
  const service = (at: string, implementation: string) => {
    const plugin = findService(implementation)
    return plugin === undefined ? [] : [{ at, plugin }]
  }
  const tests = (config.tests ?? []).map((test, k) => {
    const at = `tests[${indices.tests[k] ?? k}]`
    return {
      at,
      ...environmentOf(at, test.environment, test.network_environment),
      services: Object.entries(test.services ?? {}).flatMap(([key, s]) =>
        service(`${at}.services.${key}.implementation`, s.implementation)
      ),
      programs: stepPrograms(at, test.steps)
    }
  })
  const matrices = (config.matrices ?? []).map((matrix, k) => {
    const at = `matrices[${indices.matrices[k] ?? k}]`
    const entries = (side: "servers" | "clients") =>
      matrix[side].flatMap((entry, i) =>
        typeof entry === "string"
          ? service(`${at}.${side}[${i}]`, entry)
          : service(`${at}.${side}[${i}].implementation`, entry.implementation)
      )
    return {
      at,
      ...environmentOf(at, matrix.environment, matrix.network_environment),
      services: [...entries("servers"), ...entries("clients")],
      programs: stepPrograms(at, matrix.steps)
    }
  })
  return [...tests, ...matrices]
}

/** The problems of one service in the docker environment. */
const dockerProblems = Effect.fn("Preflight.docker")(function* (service: ServiceAt, probes: Probes) {
  const docker = service.plugin.docker
  const name = service.plugin.name
  if (docker?.image === undefined && docker?.build === undefined && docker?.rootfs === undefined)
    return [
      {
        path: service.at,
        message: `plugin "${name}" has no docker image, build context or rootfs: the docker environment cannot run it`
      }
    ]
  // A build context or root file system is built when the run starts; only a ready-made image must be here already.
  if (docker.build !== undefined || docker.rootfs !== undefined || docker.image === undefined) return []
  const present = yield* probes.imagePresent(docker.image)
  if (present === true) return []
  return [
    {
      path: service.at,
      message:
        present === false
          ? `image "${docker.image}" of plugin "${name}" is not present locally (the docker environment does not pull: build or load it first)`
          : `cannot check image "${docker.image}" of plugin "${name}": ${present}`
    }
  ]
})

/** The problems of one service on localhost: programs its plugin needs that are not on PATH. */
const localProblems = Effect.fn("Preflight.localhost")(function* (service: ServiceAt, probes: Probes) {
  const missing: Array<string> = []
  for (const program of service.plugin.programs ?? []) if (!(yield* probes.onPath(program))) missing.push(program)
  return missing.length === 0
    ? []
    : [
        {
          path: service.at,
          message: `plugin "${service.plugin.name}" needs ${missing.map((p) => `"${p}"`).join(", ")}, not found on PATH`
        }
      ]
})

/** Every problem the machine shows for a planned file; none when the run can start. */
export const check = Effect.fn("Preflight.check")(function* (
  config: ExperimentConfig,
  indices: Indices,
  findService: (name: string) => ServicePlugin.ServicePlugin | undefined,
  probes: Probes
) {
  const problems: Array<Problems.Problem> = []
  for (const test of testsOf(config, indices, findService)) {
    for (const service of test.services) {
      if (test.environment === "docker") problems.push(...(yield* dockerProblems(service, probes)))
      if (test.environment === "localhost") problems.push(...(yield* localProblems(service, probes)))
    }
    if (test.environment !== "localhost") continue
    for (const { at, program } of test.programs)
      if (!(yield* probes.onPath(program))) problems.push({ path: at, message: `"${program}" is not found on PATH` })
  }
  return problems
})

/** Docker may take this long to say whether it has an image. */
const imageTimeout = Duration.seconds(10)

/** The machine's own answers: PATH from the file system (Programs), images through the Docker engine. */
export const liveProbes = Effect.gen(function* () {
  // The Docker client (and its module) is reached only when a plan names an image: once, then reused.
  const engine = yield* Effect.cached(
    Effect.tryPromise({
      try: () => import("@testbed/stages/Docker"),
      catch: (error) => ({ message: `cannot load the Docker client: ${String(error)}` })
    }).pipe(
      Effect.flatMap((Docker) => Effect.provide(Effect.service(Docker.Docker), Docker.Docker.layer)),
      Effect.result
    )
  )
  const onPath = (program: string) => Effect.sync(() => Programs.onPath(program))
  const imagePresent = (image: string): Effect.Effect<boolean | string> =>
    Effect.flatMap(engine, (docker) =>
      Result.isFailure(docker)
        ? Effect.succeed(`Docker is not reachable: ${docker.failure.message}`)
        : docker.success.imageExists(image).pipe(
            Effect.timeoutOrElse({
              duration: imageTimeout,
              orElse: () => Effect.succeed(`Docker did not answer within ${Duration.format(imageTimeout)}`)
            }),
            Effect.catch((error) => Effect.succeed(`Docker is not reachable: ${error.message}`))
          )
    )
  return { onPath, imagePresent } satisfies Probes
})
