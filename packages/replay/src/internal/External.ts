// Where an `external` file is. The older loader opened it relative to the working directory (in practice the top
// script's directory), even inside an included file; testbed resolves it relative to the including file. Both
// kinds of files load: the including file's directory first, then the top script's. Confinement holds for both.
import * as Path from "node:path"
import { Effect, FileSystem, Option } from "effect"

/** Whether `target` is `root` or below it (lexically: callers check real paths too). */
export const inside = (root: string, target: string): boolean => {
  const rel = Path.relative(root, target)
  return rel === "" || (!rel.startsWith("..") && !Path.isAbsolute(rel))
}

export type Resolved =
  /** The real path of the file. */
  | { readonly _tag: "Found"; readonly real: string }
  /** Every candidate was missing (all inside the root). */
  | { readonly _tag: "Missing"; readonly tried: ReadonlyArray<string> }
  /** The file found leaves the root (through a link), or none was found inside it and a candidate leaves it. */
  | { readonly _tag: "Escapes" }

export interface Where {
  /** The real path of the including file. */
  readonly including: string
  /** The real directory of the top-level script. */
  readonly topDir: string
  readonly root: string
  readonly allowOutsideRoot: boolean
}

export const resolve = Effect.fn("External.resolve")(function* (target: string, where: Where) {
  const fs = yield* FileSystem.FileSystem
  const dirs = [...new Set([Path.dirname(where.including), where.topDir])]
  const tried: Array<string> = []
  let escaped = false
  for (const dir of dirs) {
    const candidate = Path.resolve(dir, target)
    if (!where.allowOutsideRoot && !inside(where.root, candidate)) {
      escaped = true
      continue
    }
    const real = yield* Effect.option(fs.realPath(candidate))
    if (Option.isNone(real)) {
      tried.push(candidate)
      continue
    }
    // A link inside the root that points out of it escapes as much as a `../` does.
    if (!where.allowOutsideRoot && !inside(where.root, real.value)) return { _tag: "Escapes" } as Resolved
    return { _tag: "Found", real: real.value } as Resolved
  }
  // Not found inside the root: a candidate that leaves it is the reason given (and is never looked at).
  return (escaped ? { _tag: "Escapes" } : { _tag: "Missing", tried }) as Resolved
})
