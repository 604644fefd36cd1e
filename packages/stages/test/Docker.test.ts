// The engine service's typed errors: an engine that is not there (with a hint), overlapping subnets, images that
// are neither present nor buildable.
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Docker } from "../src/Docker.ts"
import { Stages } from "../src/Stages.ts"
import { engineAvailable, randomSubnets, sandbox, stagesLayer } from "./support.ts"

/** The layer reads DOCKER_HOST when it is built, like the docker CLI. */
const withDockerHost = <A, E>(host: string, effect: Effect.Effect<A, E, Docker>) =>
  Effect.gen(function* () {
    const saved = process.env.DOCKER_HOST
    process.env.DOCKER_HOST = host
    const docker = yield* Effect.ensuring(
      Effect.provide(
        Effect.gen(function* () {
          return yield* Docker
        }),
        Docker.layer
      ),
      Effect.sync(() => {
        if (saved === undefined) delete process.env.DOCKER_HOST
        else process.env.DOCKER_HOST = saved
      })
    )
    return yield* Effect.provideService(effect, Docker, docker)
  })

describe("Docker", () => {
  it.effect("a missing local socket is DockerUnavailable with a hint on starting the engine", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        withDockerHost(
          "unix:///nonexistent/docker.sock",
          Docker.use((d) => d.ping)
        )
      )
      assert.strictEqual(error._tag, "DockerUnavailable")
      if (error._tag !== "DockerUnavailable") return
      assert.strictEqual(error.host, "unix:///nonexistent/docker.sock")
      assert.include(error.hint, "start-dockerd.sh")
    })
  )

  it.effect("a remote engine that does not answer is DockerUnavailable pointing at DOCKER_HOST", () =>
    Effect.gen(function* () {
      // Port 1 on loopback: nothing listens there, and no traffic leaves this machine.
      const error = yield* Effect.flip(
        withDockerHost(
          "tcp://127.0.0.1:1",
          Docker.use((d) => d.ping)
        )
      )
      assert.strictEqual(error._tag, "DockerUnavailable")
      if (error._tag === "DockerUnavailable") assert.include(error.hint, "DOCKER_HOST")
    })
  )

  it.effect.skipIf(!engineAvailable)("an overlapping subnet is a NetworkConflict naming network and subnet", () =>
    Effect.gen(function* () {
      const docker = yield* Docker
      const [prefix] = randomSubnets()
      const subnet = `${prefix}.0/24`
      const labels = { "testbed.test": `conflict-${process.pid}-${prefix}` }
      const first = yield* docker.createNetwork({ name: `tb-conflict-a-${prefix}`, subnet, labels })
      yield* Effect.addFinalizer(() => Effect.ignore(docker.removeNetwork(first)))
      const error = yield* Effect.flip(
        docker
          .createNetwork({ name: `tb-conflict-b-${prefix}`, subnet, labels })
          .pipe(Effect.tap((id) => Effect.addFinalizer(() => Effect.ignore(docker.removeNetwork(id)))))
      )
      assert.strictEqual(error._tag, "NetworkConflict")
      if (error._tag === "NetworkConflict") assert.strictEqual(error.subnet, subnet)
    }).pipe(Effect.provide(Docker.layer))
  )

  it.effect.skipIf(!engineAvailable)(
    "an image that is neither present nor buildable fails up with ImageNotFound, leaving nothing",
    () => {
      const box = sandbox(["routing-lab"], (text) =>
        text.replace(
          "image: testbed/busybox:fixture\n    build: { context: ../../images/busybox }",
          "image: testbed/not-here:none"
        )
      )
      return Effect.gen(function* () {
        const stages = yield* Stages
        const error = yield* Effect.flip(stages.up(yield* stages.load("routing-lab")))
        assert.strictEqual(error._tag, "ImageNotFound")
        if (error._tag === "ImageNotFound") assert.strictEqual(error.image, "testbed/not-here:none")
        const docker = yield* Docker
        assert.strictEqual((yield* docker.listNetworks({ "testbed.namespace": stages.namespace })).length, 0)
        assert.isNull((yield* stages.status()).current)
      }).pipe(Effect.provide(stagesLayer(box)), Effect.ensuring(Effect.sync(() => box.cleanup())))
    }
  )

  it.effect.skipIf(!engineAvailable)(
    "a network the engine refuses during up fails it at once (containers waiting for it are interrupted) and nothing is left",
    () => {
      const box = sandbox(["routing-lab"])
      return Effect.gen(function* () {
        const docker = yield* Docker
        // Someone else's network on net2's subnet: net2 cannot be made, net1 and client1 may already be.
        const other = yield* docker.createNetwork({
          name: `tb-taken-${box.prefixes[1]}`,
          subnet: `${box.prefixes[1]}.0/24`,
          labels: { "testbed.test": `taken-${process.pid}` }
        })
        yield* Effect.addFinalizer(() => Effect.ignore(docker.removeNetwork(other)))
        const stages = yield* Stages
        const error = yield* Effect.flip(stages.up(yield* stages.load("routing-lab")))
        assert.strictEqual(error._tag, "NetworkConflict")
        assert.strictEqual((yield* docker.listContainers({ "testbed.namespace": stages.namespace })).length, 0)
        assert.strictEqual((yield* docker.listNetworks({ "testbed.namespace": stages.namespace })).length, 0)
      }).pipe(Effect.provide(stagesLayer(box)), Effect.ensuring(Effect.sync(() => box.cleanup())))
    },
    120_000
  )
})
