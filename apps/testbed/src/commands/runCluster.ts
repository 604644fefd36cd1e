/**
 * The flags `testbed run` takes for a run across a cluster of runners (`--cluster URL`, `--secret-file`,
 * `--require LABEL`, `--lock-expiry`, `--tls-*`), and the wrapper that provides the remote test-case executor when
 * `--cluster` is given. Without it nothing of @testbed/cluster is loaded: local runs need no database.
 */
import * as NodePath from "node:path"
import { Duration, Effect, Option } from "effect"
import type * as ResumeRecord from "@testbed/cluster/Resume"
import { Flag } from "effect/cli"
import * as TimeSpanFlag from "../TimeSpanFlag.ts"
import { tlsFlags } from "./tlsFlags.ts"

export const clusterFlags = {
  cluster: Flag.String("cluster").pipe(
    Flag.withDescription("Run the tests on the runners of this cluster (its Postgres URL); see `testbed runner`"),
    Flag.optional
  ),
  secretFile: Flag.String("secret-file").pipe(
    Flag.withDescription("With --cluster: file holding the cluster secret (else TESTBED_CLUSTER_SECRET)"),
    Flag.optional
  ),
  require: Flag.String("require").pipe(
    Flag.withDescription("With --cluster: a label every test needs on its runner (repeatable)"),
    Flag.atLeast(0)
  ),
  resume: Flag.String("resume").pipe(
    Flag.withDescription(
      "With --cluster: continue the run in this run directory (its coordinator was killed) in a new one beside it; finished tests are not run again (FILE: the run's own when not given)"
    ),
    Flag.optional
  ),
  lockExpiry: TimeSpanFlag.optional(
    "lock-expiry",
    "With --cluster: a runner not heard from for this long is gone (the runners' value), default 15s"
  ),
  bundleLimit: Flag.Int("bundle-limit").pipe(
    Flag.withDescription(
      "With --cluster: MiB the experiment's bundle (its directory and what it references, sent to the runners) may hold, default 64"
    ),
    Flag.optional
  ),
  ...tlsFlags
}

export interface ClusterFlags {
  readonly cluster: Option.Option<string>
  readonly secretFile: Option.Option<string>
  readonly require: ReadonlyArray<string>
  readonly lockExpiry: Option.Option<Duration.Duration>
  readonly resume: Option.Option<string>
  readonly bundleLimit: Option.Option<number>
  readonly tlsCa: Option.Option<string>
  readonly tlsCert: Option.Option<string>
  readonly tlsKey: Option.Option<string>
}

/**
 * The cluster flags given without `--cluster`, by name. The run would go on locally as if they were not there: a
 * `--resume RUNDIR` without `--cluster` ran every test again, on this machine.
 */
export const withoutCluster = (flags: ClusterFlags): ReadonlyArray<string> =>
  Option.isSome(flags.cluster)
    ? []
    : [
        ["--resume", Option.isSome(flags.resume)],
        ["--require", flags.require.length > 0],
        ["--secret-file", Option.isSome(flags.secretFile)],
        ["--lock-expiry", Option.isSome(flags.lockExpiry)],
        ["--bundle-limit", Option.isSome(flags.bundleLimit)],
        ["--tls-ca", Option.isSome(flags.tlsCa)],
        ["--tls-cert", Option.isSome(flags.tlsCert)],
        ["--tls-key", Option.isSome(flags.tlsKey)]
      ].flatMap(([name, given]) => (given ? [name as string] : []))

/** Runs `run` with the remote executor when `--cluster` is given, as it is otherwise. */
export const onCluster = <A, E, R>(
  flags: ClusterFlags,
  file: string,
  pluginDirectories: ReadonlyArray<string>,
  outputDir: string,
  run: Effect.Effect<A, E, R>,
  /** `--resume`'s record when the caller has read it already (to find FILE). */
  resumed?: ResumeRecord.Previous | undefined
) =>
  Effect.fn("RunCluster.onCluster")(function* () {
    if (Option.isNone(flags.cluster)) return yield* run
    // The coordinator's modules only: the package's index loads the runner's too (its attempts, detection, status),
    // ~15% more CPU at the start of every run.
    const [ClusterUnavailable, ClusterUrl, Coordinator, Envelope, RemoteExecutor, Resume, SocketTls] =
      yield* Effect.promise(() =>
        Promise.all([
          import("@testbed/cluster/ClusterUnavailable"),
          import("@testbed/cluster/ClusterUrl"),
          import("@testbed/cluster/Coordinator"),
          import("@testbed/cluster/Envelope"),
          import("@testbed/cluster/RemoteExecutor"),
          import("@testbed/cluster/Resume"),
          import("@testbed/cluster/SocketTls")
        ])
      )
    const secret = yield* Envelope.loadSecret(Option.getOrUndefined(flags.secretFile))
    const tls = yield* SocketTls.fromFlags({ ca: flags.tlsCa, cert: flags.tlsCert, key: flags.tlsKey })
    const previous = resumed ?? (Option.isSome(flags.resume) ? yield* Resume.load(flags.resume.value) : undefined)
    const layer = Coordinator.layer({
      // A password may come from PGPASSWORD, off the command line (ClusterUrl.ts).
      url: yield* ClusterUrl.load(flags.cluster.value),
      secret,
      runId: previous?.runId ?? RemoteExecutor.newRunId(),
      resume: previous,
      file: NodePath.resolve(file),
      pluginDirectories: pluginDirectories.map((dir) => NodePath.resolve(dir)),
      // Earlier runs' directories are no part of the experiment.
      exclude: [NodePath.resolve(outputDir)],
      maxBundleBytes: Option.getOrUndefined(Option.map(flags.bundleLimit, (mib) => mib * 1024 * 1024)),
      lockExpiry: Option.getOrElse(flags.lockExpiry, () => Duration.seconds(15)),
      require: flags.require,
      tls: Option.getOrUndefined(tls)
    })
    return yield* Effect.provide(run, layer).pipe(
      Effect.catchTag("SqlError", (error) =>
        Effect.fail(new ClusterUnavailable.ClusterUnavailable({ reason: String(error) }))
      )
    )
  })()
