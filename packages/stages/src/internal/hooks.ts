// Up and down hooks: one command in one node, its output kept for the error, bounded by its timeout.
import { Duration, Effect } from "effect"
import { Docker } from "../Docker.ts"
import type { Hook } from "../Stage.ts"
import { HookFailed } from "../StageError.ts"

const defaultTimeout = Duration.minutes(1)

/** Output kept for the error message: the last 64 KiB a hook wrote is plenty to say what went wrong. */
const outputLimit = 64 * 1024

/** Runs one hook in the container `containerOf` names for its node; fails with `HookFailed` unless it exits 0. */
export const run = Effect.fn("Hooks.run")(function* (
  phase: "up" | "down",
  containerOf: (node: string) => string | undefined,
  hook: Hook
) {
  const docker = yield* Docker
  const id = containerOf(hook.node)
  let output = ""
  const collect = (bytes: Uint8Array) => {
    output = (output + Buffer.from(bytes).toString("utf8")).slice(-outputLimit)
  }
  const failed = (exitCode: number | null) =>
    new HookFailed({ phase, node: hook.node, command: hook.command, exitCode, output })
  if (id === undefined) return yield* failed(null)
  const timeout = hook.timeout ?? defaultTimeout
  const code = yield* docker.exec(id, { cmd: hook.command }, { stdout: collect, stderr: collect }).pipe(
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () =>
        Effect.sync(() => {
          output += `\n(timed out after ${Duration.format(timeout)})`
          return null
        })
    })
  )
  if (code !== 0) return yield* failed(code)
})
