/**
 * `testbed run FILE --cluster URL`: the run stays here (the experiment manager, `events.jsonl`, the reports);
 * only the attempts go to the runners, through the remote `TestCaseExecutor`. The coordinator is a client-only
 * cluster node: it listens on nothing and needs Postgres (and, for speed, the runners' ports).
 */
import { TestCaseExecutor } from "@testbed/experiments"
import { type Duration, Layer, Option, type Redacted } from "effect"
import * as ClusterLayers from "./ClusterLayers.ts"
import * as Envelope from "./Envelope.ts"
import * as RemoteExecutor from "./RemoteExecutor.ts"
import type * as Resume from "./Resume.ts"
import type { SocketTls } from "./SocketTls.ts"

export interface Options {
  readonly url: Redacted.Redacted<string>
  readonly secret: Redacted.Redacted<string>
  readonly runId: string
  readonly file: string
  readonly pluginDirectories: ReadonlyArray<string>
  /** Directories left out of the experiment's bundle (the run's output directory). */
  readonly exclude?: ReadonlyArray<string> | undefined
  /** Bytes the experiment's bundle may hold (`--bundle-limit`). */
  readonly maxBundleBytes?: number | undefined
  readonly lockExpiry: Duration.Duration
  readonly require: ReadonlyArray<string>
  /** `--resume RUNDIR`: the previous coordinator's record (its run id is reused). */
  readonly resume?: Resume.Previous | undefined
  /** Mutual TLS to the runners' sockets (`--tls-*`): needed to reach runners that require it. */
  readonly tls?: SocketTls | undefined
}

/** Provides the remote executor (and the cluster client under it) for one run. */
export const layer = (options: Options) =>
  Layer.effect(
    TestCaseExecutor.TestCaseExecutor,
    RemoteExecutor.make({
      runId: options.runId,
      file: options.file,
      pluginDirectories: options.pluginDirectories,
      exclude: options.exclude,
      maxBundleBytes: options.maxBundleBytes,
      keys: Envelope.keys(options.secret),
      lockExpiry: options.lockExpiry,
      require: options.require,
      resume: options.resume
    })
  ).pipe(
    Layer.provide(
      ClusterLayers.coordinator(
        options.url,
        ClusterLayers.shardingConfig({ groups: ["default"], slots: 1, timing: { lockExpiry: options.lockExpiry } }),
        Option.fromUndefinedOr(options.tls)
      )
    )
  )
