/**
 * The argv of the packages' small process entry points (`@testbed/replay`'s serve, `@testbed/fleet`'s agent): the
 * one reader of `--flag value` words, decoded by each entry point's Schema. Not a CLI (the app has one): no help, no
 * abbreviations; a stray word, a flag without its value or a flag given twice is refused with exit 2.
 */
import { Effect, Result, Runtime, Schema, SchemaIssue } from "effect"
import * as ExitCode from "./ExitCode.ts"

export class ArgumentsInvalid extends Schema.TaggedError<ArgumentsInvalid>()("ArgumentsInvalid", {
  reason: Schema.String
}) {
  /** Arguments the caller must fix (the READMEs promise exit 2). */
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `invalid arguments: ${this.reason}`
  }
}

/** Which flags take no value (`--insecure`: true) and which may be given more than once (a list). */
export interface Shape {
  readonly switches?: ReadonlySet<string>
  readonly repeatable?: ReadonlySet<string>
}

/** `--flag value`, `--switch` and repeated `--flag value` into a record keyed by the flag's name. */
export const record = (
  argv: ReadonlyArray<string>,
  shape: Shape = {}
): Result.Result<Record<string, unknown>, string> => {
  const out: Record<string, unknown> = {}
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!
    if (!flag.startsWith("--")) return Result.fail(`expected --FLAG VALUE, got "${flag}"`)
    const name = flag.slice(2)
    if (shape.switches?.has(name) === true) {
      out[name] = true
      continue
    }
    const value = argv[++i]
    if (value === undefined) return Result.fail(`${flag} needs a value`)
    if (shape.repeatable?.has(name) === true) out[name] = [...((out[name] as Array<string> | undefined) ?? []), value]
    else if (Object.hasOwn(out, name)) return Result.fail(`${flag} is given twice`)
    else out[name] = value
  }
  return Result.succeed(out)
}

/** The argv decoded by `schema` (unknown flags refused), or ArgumentsInvalid saying what is wrong. */
export const decode = <S extends Schema.Top & { readonly DecodingServices: never }>(
  schema: S,
  argv: ReadonlyArray<string>,
  shape: Shape = {}
): Effect.Effect<S["Type"], ArgumentsInvalid> => {
  const words = record(argv, shape)
  if (Result.isFailure(words)) return Effect.fail(new ArgumentsInvalid({ reason: words.failure }))
  return Schema.decodeUnknownEffect(schema)(words.success, { onExcessProperty: "error" }).pipe(
    Effect.mapError(
      (error) => new ArgumentsInvalid({ reason: SchemaIssue.makeFormatterDefault()(error.issue).replace(/\n/g, "; ") })
    )
  )
}
