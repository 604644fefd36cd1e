/**
 * `testbed cluster status --cluster postgres://…`: the runners of a cluster, their labels, free slots and the
 * tests they run now. Reads Postgres only. Exit 3 when Postgres cannot be reached.
 */
import { Console, Duration, Effect, Option, Redacted } from "effect"
import { Command, Flag } from "effect/cli"
import * as TimeSpanFlag from "../TimeSpanFlag.ts"

const library = Effect.promise(() => import("@testbed/cluster"))

const status = Command.make(
  "status",
  {
    cluster: Flag.String("cluster").pipe(Flag.withDescription("The cluster's Postgres URL")),
    lockExpiry: TimeSpanFlag.optional("lock-expiry", "A runner not heard from for this long is gone, default 15s")
  },
  Effect.fn(function* ({ cluster, lockExpiry }) {
    const { ClusterUnavailable, Status } = yield* library
    const rows = yield* Status.runners(
      Redacted.make(cluster),
      Option.getOrElse(lockExpiry, () => Duration.seconds(15))
    ).pipe(Effect.mapError((error) => new ClusterUnavailable.ClusterUnavailable({ reason: error.message })))
    yield* Console.log(Status.format(rows))
  })
).pipe(Command.withDescription("List the cluster's runners: labels, free slots, running tests, last heartbeat"))

export const clusterCommand = Command.make("cluster").pipe(
  Command.withDescription("Inspect a cluster of runners (see `testbed runner` and `testbed run --cluster`)"),
  Command.withSubcommands([status])
)
