/**
 * The Effect Cluster composition for runners and coordinators, by hand: `NodeClusterSocket.layer` reads its
 * settings from environment variables (`PORT`, `HOST`, `SHARD_GROUPS`, …) even when every option is given, so a
 * stray `PORT` would move or break a runner. Storage is Postgres under our own table prefix, with row locks
 * (`shardLockDisableAdvisory`): advisory lock numbers depend on the index of a group in each runner's list, so
 * runners serving different groups would compute colliding lock numbers and one group would never be served.
 */
// Deep imports: the package's index loads every Node module it has, about 350 ms of CPU at each start.
import * as NodeCrypto from "@effect/platform-node/NodeCrypto"
import { PgClient } from "@effect/sql-pg"
import { Cause, Duration, Effect, Layer, Option, type Redacted } from "effect"
import {
  type MessageStorage,
  RunnerAddress,
  RunnerHealth,
  Runners,
  type RunnerStorage,
  ShardingConfig,
  SocketRunner,
  SqlMessageStorage,
  SqlRunnerStorage
} from "effect/cluster"
import { RpcSerialization } from "effect/rpc"
import * as SqlError from "effect/sql/SqlError"
import { ClusterUnavailable } from "./ClusterUnavailable.ts"
import * as KeepConnections from "./internal/keepConnections.ts"
import * as OutageTolerant from "./internal/outageTolerant.ts"
import { clientProtocol, socketServer } from "./internal/sockets.ts"
import type { SocketTls } from "./SocketTls.ts"

/** Effect's tables are `testbed_cluster_*`; ours are `testbed_runners`. */
export const tablePrefix = "testbed_cluster"

/** Must be the same on every runner and coordinator of a cluster. */
export const shardsPerGroup = 64

export interface Timing {
  /**
   * How long a dead runner keeps its shards (row locks): the failover time after a SIGKILL, and how long
   * Postgres may be away before attempts are interrupted. Default 15 s.
   */
  readonly lockExpiry: Duration.Duration
}

export const defaultTiming: Timing = { lockExpiry: Duration.seconds(15) }

export interface ConfigOptions {
  readonly runner?: { readonly host: string; readonly port: number; readonly listenHost?: string | undefined }
  readonly groups: ReadonlyArray<string>
  readonly slots: number
  readonly timing: Timing
}

/** Every field given, none read from the environment. */
export const shardingConfig = (options: ConfigOptions): ShardingConfig.ShardingConfig["Service"] => {
  const expiry = Duration.toMillis(options.timing.lockExpiry)
  return {
    ...ShardingConfig.defaults,
    runnerAddress:
      options.runner === undefined
        ? Option.none()
        : Option.some(RunnerAddress.make(options.runner.host, options.runner.port)),
    runnerListenAddress:
      options.runner?.listenHost === undefined
        ? Option.none()
        : Option.some(RunnerAddress.make(options.runner.listenHost, options.runner.port)),
    assignedShardGroups: options.groups,
    availableShardGroups: options.groups,
    runnerShardWeight: Math.max(1, options.slots),
    shardsPerGroup,
    shardLockDisableAdvisory: true,
    shardLockExpiration: Duration.millis(expiry),
    shardLockRefreshInterval: Duration.millis(Math.max(500, Math.floor(expiry / 3))),
    refreshAssignmentsInterval: Duration.seconds(1),
    runnerHealthCheckInterval: Duration.seconds(5),
    entityMessagePollInterval: Duration.seconds(1),
    entityReplyPollInterval: Duration.millis(200),
    entityTerminationTimeout: Duration.seconds(10)
  }
}

/**
 * The SqlError's message and what Postgres said (its message alone is the driver's step: `PgConnection: Query
 * failed`). Postgres's messages name relations and users, never a password.
 */
const described = (error: SqlError.SqlError) => {
  let inner: unknown = error.cause
  // The driver's reason (SqlSyntaxError, …) wraps Postgres's own error: the innermost one says what happened.
  for (let depth = 0; depth < 4 && inner instanceof Error && inner.cause instanceof Error; depth++) inner = inner.cause
  return inner instanceof Error && inner.message !== "" && inner.message !== error.message
    ? `${error.message} (${inner.message})`
    : error.message
}

/**
 * A database error while the storage is built, as the cluster being unavailable (exit 3, one line naming the
 * database) rather than a crash: a typed `SqlError`, or a defect that is one (the migrations of both of Effect's SQL
 * storages die on an `SqlError`). Anything else goes through as it was.
 */
const unavailable = <E>(cause: Cause.Cause<E>): Cause.Cause<Exclude<E, SqlError.SqlError> | ClusterUnavailable> => {
  for (const reason of cause.reasons) {
    const error = Cause.isFailReason(reason) ? reason.error : Cause.isDieReason(reason) ? reason.defect : undefined
    if (SqlError.isSqlError(error)) return Cause.fail(new ClusterUnavailable({ reason: described(error) }))
  }
  // No SqlError among the reasons: the cause has none of that type either.
  return cause as Cause.Cause<Exclude<E, SqlError.SqlError>>
}

/** Postgres storage that rides out an outage shorter than the lock expiry (see `internal/outageTolerant.ts`). */
const storage = (config: ShardingConfig.ShardingConfig["Service"]) =>
  OutageTolerant.layer({
    lockExpiry: Duration.fromInputUnsafe(config.shardLockExpiration),
    refreshInterval: Duration.fromInputUnsafe(config.shardLockRefreshInterval)
  }).pipe(
    Layer.provide(
      Layer.mergeAll(
        SqlMessageStorage.layerWith({ prefix: tablePrefix }).pipe(Layer.provide(NodeCrypto.layerDigest)),
        SqlRunnerStorage.layerWith({ prefix: tablePrefix })
      ).pipe(
        // Both create their tables at start, concurrently: whichever fails first, and however, it is one mapping.
        Layer.catchCause((cause) =>
          Layer.effectContext<MessageStorage.MessageStorage | RunnerStorage.RunnerStorage, ClusterUnavailable, never>(
            Effect.failCause(unavailable(cause))
          )
        )
      )
    )
  )

/**
 * The Postgres pool of one process. `minConnections` are kept open (opened in the background at start);
 * `applicationName` tells a process's connections apart in `pg_stat_activity`.
 */
export const postgres = (
  url: Redacted.Redacted<string>,
  options: { readonly minConnections?: number; readonly applicationName?: string } = {}
) =>
  PgClient.layer({
    url,
    maxConnections: 8,
    minConnections: options.minConnections ?? 0,
    ...(options.applicationName === undefined ? {} : { applicationName: options.applicationName })
  })

/**
 * A runner keeps this many connections open: its attempts' reply rows each take one, and a runner that had just
 * joined opened four or five at its first attempts (a Postgres backend each, slow on a loaded host) while a runner
 * that had served kept its own: its first attempts started a second or more after those of a runner that had.
 */
export const runnerConnections = (slots: number) => Math.min(8, Math.max(1, slots) + 2)

/**
 * A runner's Postgres pool: `runnerConnections` kept open, named for the runner's address in `pg_stat_activity`
 * (and kept open again after a connection failed to open: `internal/keepConnections.ts`).
 * `Runner.layer` builds it once, for its warm-up and then `runnerOnPool`.
 */
export const runnerPostgres = (url: Redacted.Redacted<string>, config: ShardingConfig.ShardingConfig["Service"]) => {
  const minConnections = runnerConnections(config.runnerShardWeight)
  return Option.match(config.runnerAddress, {
    onNone: () => postgres(url, { minConnections, applicationName: "testbed runner" }),
    onSome: (address) => {
      const applicationName = `testbed runner ${address.host}:${address.port}`
      // Only a name of its own lets the keeper count this runner's connections.
      return KeepConnections.layer({ minimum: minConnections, applicationName }).pipe(
        Layer.provideMerge(postgres(url, { minConnections, applicationName }))
      )
    }
  })
}

/**
 * A runner on a pool it is given (`runnerPostgres`): listens on its address, pings the others, stores in Postgres.
 * With `tls`, its socket and its dials speak mutual TLS (SocketTls.ts).
 */
export const runnerOnPool = (
  config: ShardingConfig.ShardingConfig["Service"],
  tls: Option.Option<SocketTls> = Option.none()
) =>
  SocketRunner.layer.pipe(
    Layer.provide(RunnerHealth.layerPing.pipe(Layer.provide(Runners.layerRpc), Layer.provide(clientProtocol(tls)))),
    Layer.provide([socketServer(tls), clientProtocol(tls)]),
    Layer.provideMerge(storage(config)),
    Layer.provide(ShardingConfig.layer(config)),
    Layer.provide(RpcSerialization.layerSchemaBinary())
  )

/** A runner with its own pool: listens on its address, pings the others, stores messages and locks in Postgres. */
export const runner = (
  url: Redacted.Redacted<string>,
  config: ShardingConfig.ShardingConfig["Service"],
  tls: Option.Option<SocketTls> = Option.none()
) => runnerOnPool(config, tls).pipe(Layer.provideMerge(runnerPostgres(url, config)))

/** A coordinator: client only (it listens on nothing); it still reaches runners' sockets when it can. */
export const coordinator = (
  url: Redacted.Redacted<string>,
  config: ShardingConfig.ShardingConfig["Service"],
  tls: Option.Option<SocketTls> = Option.none()
) =>
  SocketRunner.layerClientOnly.pipe(
    Layer.provide(clientProtocol(tls)),
    Layer.provideMerge(storage(config)),
    Layer.provide(ShardingConfig.layer(config)),
    Layer.provide(RpcSerialization.layerSchemaBinary()),
    Layer.provideMerge(postgres(url))
  )
