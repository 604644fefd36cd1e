// Runs the runnable blocks of a Markdown file (scripts/readme-examples.ts) in order, in one directory: files are
// written, TypeScript programs run with node, shell blocks with bash -euo pipefail. The first block that fails
// fails the whole README, with its file, line and output.
import { mkdirSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { Effect } from "effect"
import type { Example } from "../../../../scripts/readme-examples.ts"
import * as Process from "./process.ts"

export interface RunOptions {
  readonly dir: string
  readonly env: NodeJS.ProcessEnv
  /** The Node that runs TypeScript examples. */
  readonly node: string
  readonly timeoutMs?: number
}

export class ExampleFailed extends Error {}

const runOne = (example: Example, options: RunOptions) => {
  if (example.kind === "file") {
    const target = join(options.dir, example.file ?? "")
    mkdirSync(dirname(target), { recursive: true })
    writeFileSync(target, example.code)
    return Effect.void
  }
  const [program, args] =
    example.kind === "program"
      ? (() => {
          const file = `readme-example-${example.line}.ts`
          writeFileSync(join(options.dir, file), example.code)
          return [options.node, [file]] as const
        })()
      : (["bash", ["-euo", "pipefail", "-c", example.code]] as const)
  return Effect.flatMap(
    Process.run(program, args, { cwd: options.dir, env: options.env, timeoutMs: options.timeoutMs ?? 180_000 }),
    (finished) =>
      finished.code === 0
        ? Effect.void
        : Effect.die(
            new ExampleFailed(
              `${example.source}:${example.line} (${example.kind}) exited ${finished.code ?? finished.signal}\n${finished.output}`
            )
          )
  )
}

export const runAll = (examples: ReadonlyArray<Example>, options: RunOptions) =>
  Effect.forEach(examples, (example) => runOne(example, options), { discard: true })
