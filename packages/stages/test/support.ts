// Shared by the Docker-backed tests: engine detection (a failure under CI=true, a skip otherwise), a private
// copy of a fixture stage on randomly chosen private subnets, and a Stages layer with its own state directory.
import { NodeServices } from "@effect/platform-node"
import { EventBus } from "@testbed/events"
import Dockerode from "dockerode"
import { Effect, Layer } from "effect"
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Docker } from "../src/Docker.ts"
import { Stages } from "../src/Stages.ts"

export const ci = process.env.CI === "true"
import { fixtures } from "./paths.ts"

export { fixtures, repo } from "./paths.ts"

/** Whether an engine answers; under CI a missing engine fails the suite instead of skipping it. */
export const engineAvailable: boolean = await new Dockerode().ping().then(
  () => true,
  () => false
)
if (ci && !engineAvailable) {
  throw new Error("CI=true but no Docker engine answers: run scripts/start-dockerd.sh (tests must not skip in CI)")
}

/** Two adjacent /24s in 10.200.0.0–10.249.255.0, picked per test so concurrent tests do not overlap. */
export const randomSubnets = () => {
  const a = 200 + Math.floor(Math.random() * 50)
  const b = Math.floor(Math.random() * 127) * 2
  return [`10.${a}.${b}`, `10.${a}.${b + 1}`] as const
}

export interface Sandbox {
  readonly dir: string
  readonly catalog: string
  readonly stateDir: string
  readonly prefixes: readonly [string, string]
  readonly cleanup: () => void
}

/**
 * Copies fixture stages into a temporary catalog, with the fixture subnets (10.231.x, 10.231.1x) moved to random
 * ones and relative image contexts made absolute. `edit` changes each definition's text first.
 */
export const sandbox = (
  names: ReadonlyArray<string>,
  edit: (text: string, name: string) => string = (t) => t
): Sandbox => {
  const dir = mkdtempSync(join(tmpdir(), "testbed-stages-"))
  const catalog = join(dir, "stages")
  const prefixes = randomSubnets()
  for (const name of names) {
    cpSync(join(fixtures, "stages", name), join(catalog, name), { recursive: true })
    for (const file of ["stage.yaml", "docker-compose.yml", "common.yml", ".env"]) {
      const path = join(catalog, name, file)
      let text: string
      try {
        text = readFileSync(path, "utf8")
      } catch {
        continue
      }
      text = edit(text, name)
        .replaceAll(/10\.231\.1?1\./g, `${prefixes[0]}.`)
        .replaceAll(/10\.231\.1?2\./g, `${prefixes[1]}.`)
        .replaceAll("../../images/busybox", join(fixtures, "images", "busybox"))
        .replaceAll("../routing-lab/src", join(fixtures, "stages", "routing-lab", "src"))
      writeFileSync(path, text)
    }
  }
  return {
    dir,
    catalog,
    stateDir: join(dir, ".testbed"),
    prefixes,
    cleanup: () => rmSync(dir, { recursive: true, force: true })
  }
}

export const engineLayer = Layer.mergeAll(Docker.layer, EventBus.EventBus.layer, NodeServices.layer)

export const stagesLayer = (box: Sandbox) =>
  Stages.layer({ catalog: box.catalog, stateDir: box.stateDir, concurrency: 4 }).pipe(Layer.provideMerge(engineLayer))

/** Containers and networks of a sandbox's namespace, straight from the engine. */
export const leftovers = (namespace: string) =>
  Effect.gen(function* () {
    const docker = yield* Docker
    const containers = yield* docker.listContainers({ "testbed.namespace": namespace })
    const networks = yield* docker.listNetworks({ "testbed.namespace": namespace })
    return { containers: containers.length, networks: networks.length }
  })

/** The containers labelled with `namespace`, stopped ones included (for tests outside this package: the CLI's). */
export const labelledContainers = (namespace: string) =>
  Effect.promise(() =>
    new Dockerode().listContainers({ all: true, filters: { label: [`testbed.namespace=${namespace}`] } })
  )

/** The networks labelled with `namespace`. */
export const labelledNetworks = (namespace: string) =>
  Effect.promise(() => new Dockerode().listNetworks({ filters: { label: [`testbed.namespace=${namespace}`] } }))
