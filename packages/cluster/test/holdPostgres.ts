// A test process in miniature, for PostgresWatchdog.test.ts: starts one throwaway Postgres (postgres.ts), prints
// its directory, port and postmaster's pid as one JSON line, and holds it until it is killed.
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { Postgres } from "./postgres.ts"

// runMain: it keeps the process alive (a fiber waiting forever does not) until a signal.
NodeRuntime.runMain(
  Effect.gen(function* () {
    const { dir, port } = yield* Postgres
    // The first line of postmaster.pid is the postmaster's pid.
    const postmaster = Number(readFileSync(join(dir, "data", "postmaster.pid"), "utf8").split("\n")[0])
    process.stdout.write(`${JSON.stringify({ dir, port, postmaster })}\n`)
    return yield* Effect.never
  }).pipe(Effect.scoped, Effect.provide(Postgres.layer))
)
