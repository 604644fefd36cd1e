/**
 * `testbed runner`: a long-running Effect Cluster runner hosting the test-attempt entity. It serves the
 * `"default"` shard group and the group of its label set, publishes itself in `testbed_runners` every second
 * (labels, slots, busy slots, the shards it owns), bounds its concurrency with a semaphore of `slots` permits,
 * and removes its row when it stops. Before it serves it warms up (one attempt of its own, `internal/warmUp.ts`).
 */
import { hostname } from "node:os"
import { Experiment } from "@testbed/experiments"
import { PluginRegistry } from "@testbed/plugins"
import { type Duration, Effect, Layer, Option, Path, type Redacted, Ref, Schedule, Semaphore } from "effect"
import { ShardId, Sharding } from "effect/cluster"
import * as AttemptRunner from "./AttemptRunner.ts"
import { TestCaseAttempt } from "./AttemptProtocol.ts"
import * as BundleCache from "./BundleCache.ts"
import * as ClusterLayers from "./ClusterLayers.ts"
import * as Detect from "./Detect.ts"
import * as Envelope from "./Envelope.ts"
import * as Plans from "./internal/plans.ts"
import * as WarmUp from "./internal/warmUp.ts"
import * as Workdir from "./internal/workdir.ts"
import * as Labels from "./Labels.ts"
import * as RunnerDirectory from "./RunnerDirectory.ts"
import type { SocketTls } from "./SocketTls.ts"

export interface Options {
  readonly url: Redacted.Redacted<string>
  readonly secret: Redacted.Redacted<string>
  /** Unique in the cluster (default: host name and port). */
  readonly name?: string | undefined
  /** The address other runners and coordinators reach this one at. */
  readonly advertise: { readonly host: string; readonly port: number }
  /** Where to listen, when not the advertised address (`0.0.0.0`). */
  readonly listenHost?: string | undefined
  readonly labels: ReadonlyArray<string>
  /** Off: only the declared labels (tests declare labels without the programs). */
  readonly detect: boolean
  readonly slots: number
  readonly workdir: string
  readonly pluginDirectories: ReadonlyArray<string>
  readonly lockExpiry: Duration.Duration
  readonly maxArtifactBytes?: number | undefined
  /** Bytes of a stored bundle this runner fetches at most (`--bundle-limit`, default 256 MiB). */
  readonly maxBundleBytes?: number | undefined
  /** Bytes of unpacked bundles its cache keeps (`--bundle-cache`, default 2 GiB). */
  readonly bundleCacheBytes?: number | undefined
  /** Mutual TLS on its socket and its dials (`--tls-*`, SocketTls.ts); plain TCP without. */
  readonly tls?: SocketTls | undefined
}

/** What a runner says about itself at startup. */
export interface Profile {
  readonly name: string
  readonly labels: ReadonlyArray<string>
  readonly groups: ReadonlyArray<string>
}

/** Works out the runner's labels and groups. */
export const profile = Effect.fn("Runner.profile")(function* (options: Options) {
  const registry = yield* PluginRegistry.load({
    directories: options.pluginDirectories,
    builtins: Experiment.builtins
  })
  const labels = options.detect ? yield* Detect.labels(registry, options.labels) : Labels.normalize(options.labels)
  return {
    name: options.name ?? `${hostname()}:${options.advertise.port}`,
    labels,
    groups: Labels.groupsOf(labels)
  } satisfies Profile
})

const publisher = (options: Options, profile: Profile, running: Ref.Ref<ReadonlyMap<string, string>>) =>
  Layer.effectDiscard(
    Effect.gen(function* () {
      const sharding = yield* Sharding.Sharding
      yield* RunnerDirectory.migrate()
      const all = profile.groups.flatMap((group) =>
        Array.from({ length: ClusterLayers.shardsPerGroup }, (_, i) => ShardId.make(group, i + 1))
      )
      const publish = Effect.gen(function* () {
        const now = yield* Ref.get(running)
        yield* RunnerDirectory.publish({
          name: profile.name,
          host: hostname(),
          address: `${options.advertise.host}:${options.advertise.port}`,
          labels: profile.labels,
          group: Labels.groupOf(profile.labels),
          slots: options.slots,
          busy: now.size,
          running: [...new Set(now.values())],
          shards: all.filter((id) => sharding.hasShardId(id)).map((id) => id.toString())
        })
      })
      // A failed heartbeat (Postgres restarting) is retried on the next tick, not fatal.
      yield* publish.pipe(Effect.ignore, Effect.repeat(Schedule.spaced("1 second")), Effect.forkScoped)
      yield* Effect.addFinalizer(() => Effect.ignore(RunnerDirectory.remove(profile.name)))
    })
  )

/**
 * The runner's layer: launch it to serve until interrupted. It holds its work directory for its life
 * (`WORKDIR/runner.lock`; `WorkdirInUse` when another live runner has it).
 */
export const layer = (options: Options, profile: Profile) => Layer.unwrap(build(options, profile))

const build = (given: Options, profile: Profile) =>
  Effect.fn("Runner.layer")(function* () {
    // Absolute from here on: the run's paths (its certificates, `test_dir`) reach services and steps that run in
    // directories of their own, where `--workdir runs` (or the default `.testbed-runner`) means nothing.
    const options = { ...given, workdir: (yield* Path.Path).resolve(given.workdir) }
    yield* Workdir.hold(options.workdir, profile.name)
    const running = yield* Ref.make<ReadonlyMap<string, string>>(new Map())
    const identity: AttemptRunner.RunnerIdentity = {
      name: profile.name,
      host: hostname(),
      workdir: options.workdir,
      pluginDirectories: options.pluginDirectories,
      keys: Envelope.keys(options.secret),
      slots: yield* Semaphore.make(options.slots),
      running,
      maxArtifactBytes: options.maxArtifactBytes ?? 256 * 1024 * 1024,
      bundles: BundleCache.make({
        workdir: options.workdir,
        maxBytes: options.maxBundleBytes ?? BundleCache.defaultMaxBytes,
        maxCacheBytes: options.bundleCacheBytes ?? BundleCache.defaultMaxCacheBytes,
        outageBudget: options.lockExpiry
      }),
      plans: Plans.make()
    }
    // What a killed runner left in the work directory goes, and a smaller --bundle-cache applies (internal/workdir.ts).
    yield* Workdir.atStart(options.workdir, identity.bundles)
    const entity = TestCaseAttempt.toLayer(
      Effect.map(AttemptRunner.handler(identity), (run) =>
        TestCaseAttempt.of({ RunAttempt: ({ payload }) => run(payload) })
      ),
      // One attempt per entity; idle entities go soon (slots, not residency, bound the work).
      { maxIdleTime: "10 seconds", concurrency: 1 }
    )
    const config = ClusterLayers.shardingConfig({
      runner: { host: options.advertise.host, port: options.advertise.port, listenHost: options.listenHost },
      groups: profile.groups,
      slots: options.slots,
      timing: { lockExpiry: options.lockExpiry }
    })
    const serve = Layer.mergeAll(entity, publisher(options, profile, running)).pipe(
      Layer.provide(ClusterLayers.runnerOnPool(config, Option.fromUndefinedOr(options.tls)))
    )
    // Before it takes work (the cluster's layers are built after it): its first attempt then costs what later ones
    // do (internal/warmUp.ts). On the runner's own pool: the warm-up's request has no bundle to fetch.
    return Layer.unwrap(Effect.as(WarmUp.run(identity, profile.labels), serve)).pipe(
      Layer.provide(ClusterLayers.runnerPostgres(options.url, config))
    )
  })()
