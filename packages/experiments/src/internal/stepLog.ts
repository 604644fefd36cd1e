// Where a step's output goes: `steps/<name><suffix>` in the attempt's directory (created when needed), placed
// with `inside` so a step's name can never lead out of it.
import { Effect, FileSystem } from "effect"
import { type Attempt, writeFailed } from "./attempt.ts"
import { inside } from "./runPath.ts"

export const stepLog = Effect.fnUntraced(function* (attempt: Attempt, name: string, suffix: string) {
  const fs = yield* FileSystem.FileSystem
  const dir = yield* inside(attempt.dir, "steps")
  yield* fs.makeDirectory(dir, { recursive: true }).pipe(Effect.mapError(writeFailed(dir)))
  return yield* inside(dir, `${name}${suffix}`)
})
