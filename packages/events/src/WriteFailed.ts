/**
 * A file of a run (its event log, a log of a service, a step's output) could not be written: the disk is full, the
 * directory went away, the file system is read-only. Not something a test did: the run stops and says which file
 * and why, with the system's own code (`ENOSPC`), and the process exits with the infrastructure code 3.
 */
import { Runtime, Schema } from "effect"
import * as ExitCode from "./ExitCode.ts"

/** The process exit code of a run stopped by its infrastructure (a full disk, a dead Docker engine). */
export const infrastructureExitCode = ExitCode.infrastructure

export class WriteFailed extends Schema.TaggedError<WriteFailed>()("WriteFailed", {
  path: Schema.String,
  /** The system's error code (`ENOSPC`, `EROFS`, `EACCES`…), when there is one. */
  code: Schema.optionalKey(Schema.String),
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot write ${this.path}: ${this.reason}${this.code === undefined ? "" : ` (${this.code})`}`
  }
  override get [Runtime.errorExitCode](): number {
    return infrastructureExitCode
  }
}

export const isWriteFailed = (error: unknown): error is WriteFailed => error instanceof WriteFailed

/** The words Node puts after the code ("ENOSPC: no space left on device, write" → "no space left on device"). */
const describe = (code: string | undefined, message: string | undefined): string | undefined => {
  if (message === undefined) return undefined
  const text = code !== undefined && message.startsWith(`${code}: `) ? message.slice(code.length + 2) : message
  return text.replace(/, (write|open|mkdir|close|ftruncate|rename|fsync)\b.*$/, "")
}

/** The `code` and message of the system error under a failure (a PlatformError's cause, or the error itself). */
export const systemCause = (error: unknown): { readonly code: string | undefined; readonly reason: string } => {
  let current: unknown = error
  for (let depth = 0; depth < 4 && typeof current === "object" && current !== null; depth++) {
    const candidate = current as { readonly code?: unknown; readonly message?: unknown }
    if (typeof candidate.code === "string" && /^E[A-Z0-9]+$/.test(candidate.code)) {
      const message = typeof candidate.message === "string" ? candidate.message : undefined
      return { code: candidate.code, reason: describe(candidate.code, message) ?? candidate.code }
    }
    const next = current as { readonly cause?: unknown; readonly reason?: { readonly cause?: unknown } }
    current = next.reason?.cause ?? next.cause
  }
  const message = error instanceof Error ? error.message : String(error)
  return { code: undefined, reason: message }
}

/** A WriteFailed for `path` from whatever failed (a PlatformError, a Node error). */
export const fromError = (path: string, error: unknown): WriteFailed => {
  const { code, reason } = systemCause(error)
  return new WriteFailed({ path, reason, ...(code === undefined ? {} : { code }) })
}
