/**
 * What a process exit code means, and where it comes from: every expected error class carries its code (Effect's
 * `Runtime.errorExitCode` marker, a getter on the class), and `fromCause` reads it from whatever failed. No table
 * keyed on tag strings anywhere: a new error states its code where it is defined.
 *
 *   0    everything passed
 *   1    a test (or a command under test) failed
 *   2    usage or file problems: a bad flag, file, name or definition the user must fix
 *   3    infrastructure: Docker or a broker unreachable, a full disk, a process that could not be started
 *   75   temporarily busy (EX_TEMPFAIL): another run holds a lock; try again
 *   130  interrupted (SIGINT/SIGTERM)
 */
import { Cause, Exit, Runtime } from "effect"

export const passed = 0
export const testFailed = 1
export const usage = 2
export const infrastructure = 3
export const busy = 75
export const interrupted = 130

/** What an expected error class declares: `override get [Runtime.errorExitCode]() { return ExitCode.usage }`. */
export interface Carrier {
  readonly [Runtime.errorExitCode]: number
}

/** Whether a value declares its own exit code. */
export const isCarrier = (u: unknown): u is Carrier =>
  typeof u === "object" && u !== null && typeof (u as Partial<Carrier>)[Runtime.errorExitCode] === "number"

/** The code an error declares, else 1 (an error that declares none counts as a failure). */
export const ofError = (error: unknown): number => Runtime.getErrorExitCode(error)

/**
 * The exit code of a cause: the first expected failure's own code; 130 when it holds interruptions and nothing
 * else; 1 for a defect (a bug); 0 for an empty cause.
 */
export const fromCause = (cause: Cause.Cause<unknown>): number => {
  const failure = cause.reasons.find(Cause.isFailReason)
  if (failure !== undefined) return ofError(failure.error)
  if (cause.reasons.some(Cause.isDieReason)) return testFailed
  if (cause.reasons.length > 0 && cause.reasons.every(Cause.isInterruptReason)) return interrupted
  return passed
}

/** The exit code of a finished program. */
export const fromExit = (exit: Exit.Exit<unknown, unknown>): number =>
  Exit.isSuccess(exit) ? passed : fromCause(exit.cause)
