/**
 * Command templates written by plugins (the older tool used Jinja2), rendered with nunjucks. Strict: a
 * variable that is not given is an error naming it, never an empty string. Parameters are checked by a Schema
 * before rendering, and `shquote` quotes a value for `sh`.
 */
import { Effect, Result, Runtime, Schema, SchemaIssue } from "effect"
import { CommandLine } from "effect/process"
import nunjucks from "nunjucks"
import * as Command from "./Command.ts"
import { referencedPaths } from "./internal/templateVariables.ts"
import { ExitCode } from "@testbed/events"

/** The template or its parameters are wrong: nothing was rendered. */
export class TemplateInvalid extends Schema.TaggedError<TemplateInvalid>()("TemplateInvalid", {
  template: Schema.String,
  /** The parameter at fault (a path such as `port` or `hosts[1]`), when there is one. */
  variable: Schema.optionalKey(Schema.String),
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `template ${this.template}: ${this.variable === undefined ? "" : `${this.variable}: `}${this.reason}`
  }
}

/** Rendering stopped: a variable was not given, or a filter failed. */
export class TemplateRenderFailed extends Schema.TaggedError<TemplateRenderFailed>()("TemplateRenderFailed", {
  template: Schema.String,
  /** The variable (or attribute path) that was undefined, when known. */
  variable: Schema.optionalKey(Schema.String),
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `template ${this.template}: ${this.variable === undefined ? "" : `${this.variable}: `}${this.reason}`
  }
}

export type TemplateError = TemplateInvalid | TemplateRenderFailed

export interface Template<P> {
  /** Name used in errors: the plugin and field the template came from. */
  readonly name: string
  readonly source: string
  readonly parameters: Schema.Decoder<P>
}

/** Quotes a value so `sh` reads it back as exactly one word, whatever it contains. */
export const shquote = (value: unknown): string => {
  const quoted = CommandLine.quote(String(value ?? ""), { format: "posix" })
  if (Result.isSuccess(quoted)) return quoted.success
  throw new Error(`shquote: ${quoted.failure.message}`)
}

// The parser is public in nunjucks but missing from its type definitions.
const parser = (nunjucks as unknown as { readonly parser: { readonly parse: (source: string) => unknown } }).parser

const environment = new nunjucks.Environment(null, { autoescape: false, throwOnUndefined: true })
environment.addFilter("shquote", shquote)

const anyParameters: Schema.Decoder<Record<string, unknown>> = Schema.Record(Schema.String, Schema.Unknown)

const parse = (name: string, source: string) =>
  Effect.try({
    try: () => parser.parse(source),
    catch: (cause) => new TemplateInvalid({ template: name, reason: messageOf(cause) })
  })

const messageOf = (cause: unknown) =>
  (cause instanceof Error ? cause.message : String(cause)).replace(/^\(unknown path\)\s*/, "").replace(/\s+/g, " ")

/**
 * The context paths `source` reads (`port`, `server.port`), without rendering it: lets a caller check, before
 * anything runs, that every variable a template uses will be given. Fails when the template does not parse.
 */
export const variables = (source: string): Result.Result<ReadonlyArray<ReadonlyArray<string>>, TemplateInvalid> =>
  Result.map(
    Result.try({
      try: () => parser.parse(source),
      catch: (cause) => new TemplateInvalid({ template: source, reason: messageOf(cause) })
    }),
    referencedPaths
  )

/** Checks the syntax now, so a broken template is reported when the plugin is loaded, not when it is used. */
export const make = <P = Record<string, unknown>>(
  source: string,
  options: { readonly name?: string; readonly parameters?: Schema.Decoder<P> } = {}
): Effect.Effect<Template<P>, TemplateInvalid> => {
  const name = options.name ?? "template"
  return Effect.as(parse(name, source), {
    name,
    source,
    parameters: options.parameters ?? (anyParameters as unknown as Schema.Decoder<P>)
  })
}

const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1()

const decodeParameters = <P>(template: Template<P>, input: unknown) =>
  Schema.decodeUnknownEffect(template.parameters)(input).pipe(
    Effect.mapError((error) => {
      const first = formatIssues(error.issue).issues[0]
      const path = (first?.path ?? []).map((key) => (typeof key === "number" ? `[${key}]` : `.${String(key)}`))
      const variable = path.join("").replace(/^\./, "")
      return new TemplateInvalid({
        template: template.name,
        ...(variable !== "" ? { variable } : {}),
        reason: first?.message ?? error.message
      })
    })
  )

const lookup = (context: unknown, path: ReadonlyArray<string>): unknown =>
  path.reduce<unknown>(
    (value, key) =>
      value !== null && value !== undefined && typeof value === "object"
        ? (value as Record<string, unknown>)[key]
        : undefined,
    context
  )

/** Renders a fragment of `template` (the whole source, or one word of it) against decoded parameters. */
const renderSource = Effect.fn("Template.renderSource")(function* (
  template: Template<unknown>,
  source: string,
  context: object
) {
  const ast = yield* parse(template.name, source)
  // nunjucks only complains about undefined values it outputs; `{% if x %}` or `{{ x | upper }}` would
  // silently see "". Every path the template reads is checked first, so the error can name it.
  for (const path of referencedPaths(ast)) {
    if (lookup(context, path) === undefined) {
      return yield* new TemplateRenderFailed({
        template: template.name,
        variable: path.join("."),
        reason: `${path.join(".")} is undefined`
      })
    }
  }
  return yield* Effect.try({
    try: () => environment.renderString(source, context),
    catch: (cause) => new TemplateRenderFailed({ template: template.name, reason: messageOf(cause) })
  })
})

/** Validates the parameters with the template's Schema, then renders. */
export const render = Effect.fn("Template.render")(function* <P>(
  template: Template<P>,
  parameters: unknown
): Effect.fn.Return<string, TemplateError> {
  const decoded = yield* decodeParameters(template, parameters)
  return yield* renderSource(template as Template<unknown>, template.source, toContext(decoded))
})

const toContext = (decoded: unknown): object =>
  typeof decoded === "object" && decoded !== null ? decoded : { value: decoded }

/** One word of a program template: its source, and whether it was quoted (a quoted empty word is kept). */
interface Word {
  readonly source: string
  readonly quoted: boolean
}

/**
 * Splits a template into words *before* rendering: whitespace outside quotes and outside `{{ }}`, `{% %}`
 * and `{# #}` separates words; quotes only group. Each word then renders to exactly one argument, so a value
 * containing spaces or quotes can never become extra arguments.
 */
export const splitWords = (source: string): ReadonlyArray<Word> => {
  const words: Array<Word> = []
  let current = ""
  let quoted = false
  let inWord = false
  let quote: string | null = null
  let index = 0
  const push = () => {
    if (inWord) words.push({ source: current, quoted })
    current = ""
    quoted = false
    inWord = false
  }
  while (index < source.length) {
    const char = source[index] as string
    const pair = source.slice(index, index + 2)
    if (pair === "{{" || pair === "{%" || pair === "{#") {
      const close = pair === "{{" ? "}}" : pair === "{%" ? "%}" : "#}"
      const end = source.indexOf(close, index + 2)
      const stop = end === -1 ? source.length : end + 2
      current += source.slice(index, stop)
      inWord = true
      index = stop
    } else if (quote !== null) {
      if (char === quote) quote = null
      else current += char
      index++
    } else if (char === "'" || char === '"') {
      quote = char
      quoted = true
      inWord = true
      index++
    } else if (char === "\\" && index + 1 < source.length) {
      current += source[index + 1]
      inWord = true
      index += 2
    } else if (/\s/.test(char)) {
      push()
      index++
    } else {
      current += char
      inWord = true
      index++
    }
  }
  push()
  return words
}

/** Options of the command built from a template (everything but what to run). */
export type CommandOptions = Omit<Command.Command, "program" | "args" | "shell">

/**
 * Renders a template into a Command. By default the template is a program and its arguments, split into
 * words before rendering (no shell involved; `{% %}` blocks must stay inside one word, and a word that renders
 * empty without quotes is dropped, so `{% if verbose %}-v{% endif %}` works). With `shell: true` the whole
 * rendered text is a script for `sh -c`: quote values there with `| shquote`.
 */
export const toCommand = Effect.fn("Template.toCommand")(function* <P>(
  template: Template<P>,
  parameters: unknown,
  options: CommandOptions & { readonly shell?: boolean } = {}
): Effect.fn.Return<Command.Command, TemplateError> {
  const { shell, ...commandOptions } = options
  const decoded = toContext(yield* decodeParameters(template, parameters))
  const generic = template as Template<unknown>
  if (shell === true) {
    return Command.shell(yield* renderSource(generic, template.source, decoded), commandOptions)
  }
  const rendered: Array<string> = []
  for (const word of splitWords(template.source)) {
    const text = yield* renderSource(generic, word.source, decoded).pipe(
      Effect.catchTag("TemplateInvalid", (error) =>
        Effect.fail(
          new TemplateInvalid({
            template: template.name,
            reason: `${error.reason} (in program mode a {% %} block must stay inside one word: ${word.source})`
          })
        )
      )
    )
    if (text !== "" || word.quoted) rendered.push(text)
  }
  const [program, ...args] = rendered
  if (program === undefined) {
    return yield* new TemplateRenderFailed({ template: template.name, reason: "rendered to no program" })
  }
  return Command.make(program, args, commandOptions)
})
