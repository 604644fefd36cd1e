/**
 * A runner's plans of the experiments it runs attempts of. Planning (the YAML, the plugins, the plan of every
 * test) ran for every attempt, for the same file each time: O(tests) of CPU per attempt, 10–30 ms alone and far
 * more with twelve attempts starting at once. A plan is kept per key (the run, and the file's content: a new run
 * plans again, so plugins changed between runs are seen), the last `capacity` of them. Attempts asking while it
 * is being made wait for it; a failed planning is not kept (the next attempt tries again).
 */
import { Deferred, Effect, Exit } from "effect"

export interface Plans<A, E> {
  readonly get: <R>(key: string, plan: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

export const make = <A, E>(capacity = 8): Plans<A, E> => {
  const entries = new Map<string, Deferred.Deferred<A, E>>()
  const get = <R>(key: string, plan: Effect.Effect<A, E, R>) =>
    Effect.suspend((): Effect.Effect<A, E, R> => {
      const known = entries.get(key)
      if (known !== undefined) return Deferred.await(known)
      const made = Deferred.makeUnsafe<A, E>()
      entries.set(key, made)
      // A Map iterates in insertion order: the first key is the oldest.
      if (entries.size > capacity) entries.delete(entries.keys().next().value!)
      return Effect.onExit(plan, (exit) =>
        Effect.andThen(
          Effect.sync(() => {
            if (Exit.isFailure(exit) && entries.get(key) === made) entries.delete(key)
          }),
          Deferred.done(made, exit)
        )
      )
    })
  return { get }
}
