// How the benches that need a throwaway Postgres run: the program with a fresh Postgres in its scope, then their
// temporary directory removed (also when the program fails, which exits 1 with its error).
import { rmSync } from "node:fs"
import { Effect, Layer, type Scope } from "effect"
import { Postgres } from "../packages/cluster/test/postgres.ts"

export const runWithPostgres = <A, E>(program: Effect.Effect<A, E, Postgres | Scope.Scope>, dir: string) =>
  Effect.runPromise(program.pipe(Effect.provide(Layer.fresh(Postgres.layer)), Effect.scoped))
    .then(() => rmSync(dir, { recursive: true, force: true }))
    .catch((error) => {
      rmSync(dir, { recursive: true, force: true })
      console.error(error)
      process.exit(1)
    })
