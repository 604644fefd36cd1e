/**
 * `testbed cluster status [--cluster postgres://…]` (else TESTBED_CLUSTER_URL, ClusterUrl.ts): the runners of a cluster, their labels, free slots and the
 * tests they run now. `testbed cluster prune --cluster postgres://… [--runners-gone-for 10m] [--older-than 7d]
 * [--dry-run]`: removes gone runners' rows and finished runs' messages and bundles. Both read Postgres only. Exit 3
 * when Postgres cannot be reached.
 */
import { Console, Duration, Effect, Option } from "effect"
import { Command, Flag } from "effect/cli"
import * as TimeSpanFlag from "../TimeSpanFlag.ts"

const library = Effect.promise(() => import("@testbed/cluster"))

const status = Command.make(
  "status",
  {
    cluster: Flag.String("cluster").pipe(
      Flag.withDescription(
        "The cluster's Postgres URL (else TESTBED_CLUSTER_URL; a password may come from PGPASSWORD)"
      ),
      Flag.optional
    ),
    lockExpiry: TimeSpanFlag.optional("lock-expiry", "A runner not heard from for this long is gone, default 15s")
  },
  Effect.fn(function* ({ cluster, lockExpiry }) {
    const { ClusterUnavailable, ClusterUrl, Status } = yield* library
    const rows = yield* Status.runners(
      yield* ClusterUrl.load(Option.getOrUndefined(cluster)),
      Option.getOrElse(lockExpiry, () => Duration.seconds(15))
    ).pipe(Effect.mapError((error) => new ClusterUnavailable.ClusterUnavailable({ reason: error.message })))
    yield* Console.log(Status.format(rows))
  })
).pipe(Command.withDescription("List the cluster's runners: labels, free slots, running tests, last heartbeat"))

const prune = Command.make(
  "prune",
  {
    cluster: Flag.String("cluster").pipe(
      Flag.withDescription(
        "The cluster's Postgres URL (else TESTBED_CLUSTER_URL; a password may come from PGPASSWORD)"
      ),
      Flag.optional
    ),
    runnersGoneFor: TimeSpanFlag.optional(
      "runners-gone-for",
      "Remove runners not heard from for longer than this, default 10m"
    ),
    olderThan: TimeSpanFlag.optional(
      "older-than",
      "Remove runs finished longer ago than this, with their messages and bundles, default 7d"
    ),
    dryRun: Flag.Boolean("dry-run").pipe(
      Flag.withDescription("Print what would be removed; remove nothing"),
      Flag.withDefault(false)
    )
  },
  Effect.fn(function* ({ cluster, runnersGoneFor, olderThan, dryRun }) {
    const { ClusterUrl, Prune } = yield* library
    const pruned = yield* Prune.run(yield* ClusterUrl.load(Option.getOrUndefined(cluster)), {
      runnersGoneFor: Option.getOrElse(runnersGoneFor, () => Prune.defaults.runnersGoneFor),
      runsOlderThan: Option.getOrElse(olderThan, () => Prune.defaults.runsOlderThan),
      dryRun
    })
    yield* Console.log(Prune.format(pruned, dryRun))
  })
).pipe(
  Command.withDescription(
    "Remove what a cluster's database keeps after the fact: gone runners, finished runs' messages and bundles"
  )
)

export const clusterCommand = Command.make("cluster").pipe(
  Command.withDescription("Inspect a cluster of runners (see `testbed runner` and `testbed run --cluster`)"),
  Command.withSubcommands([status, prune])
)
