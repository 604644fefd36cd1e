/**
 * How a process started through `effect/process` ended. The spawner reports a death by signal only as the
 * message of a failed `exitCode` ("Process interrupted due to receipt of signal: 'SIGTERM'"), possibly nested in
 * the error's causes, so the signal's name is read from there — in one place for every launcher.
 */
import { Exit } from "effect"

export interface ExitStatus {
  readonly exitCode: number | null
  /** Signal name (e.g. "SIGTERM") when the process was ended by a signal. */
  readonly signal: string | null
}

const signalPattern = /signal: '?(SIG[A-Z0-9]+)/

/** The signal named in a failure of the spawner's `exitCode`, looking through its causes; null if none. */
export const signalOf = (failure: unknown): string | null => {
  const texts: Array<string> = [String(failure)]
  let current: unknown = failure
  for (let depth = 0; depth < 4 && typeof current === "object" && current !== null; depth++) {
    if (current instanceof Error) texts.push(current.message)
    const next = current as { readonly cause?: unknown; readonly reason?: { readonly cause?: unknown } }
    current = next.reason?.cause ?? next.cause
  }
  return signalPattern.exec(texts.join(" "))?.[1] ?? null
}

/** The status of a finished `exitCode` effect: its code, or the signal its failure names. */
export const fromExit = (exit: Exit.Exit<number, unknown>): ExitStatus =>
  Exit.isSuccess(exit) ? { exitCode: exit.value, signal: null } : { exitCode: null, signal: signalOf(exit.cause) }
