/**
 * The script file format of the NDS record/replay tools (record_proxy.py, sock_test.py), read and written
 * exactly: a JSON object `{ name: script }`, the default entry being `recorded_script`.
 *
 * testbed extensions, ignored by the older tools (they read only the keys they know):
 * - `fault` on a `script` step: misbehave while answering (see Fault.ts).
 * - `command_hex` instead of `command`, for client bytes that are not UTF-8 text (the older tools cannot
 *   represent them at all).
 */
import { Effect, Option, Runtime, Schema, SchemaIssue } from "effect"
import { Fault } from "./Fault.ts"
import { ExitCode } from "@testbed/events"

export const defaultName = "recorded_script"

/** Text responses are split into `responses` chunks of this many characters; hex holds half as many bytes. */
export const chunkChars = 162
/** A response longer than this is binary (goes to a blob) whatever its bytes. */
export const minBlob = 4 * 1024

export const Sha1Name = Schema.String.check(
  Schema.isPattern(/^([0-9a-fA-F]{40}|.*_c[0-9]+)$/, {
    message: "a blob name is 40 hex digits (sha1) or a legacy name ending in _c<digits>"
  })
)

export const ScriptStep = Schema.Struct({
  type: Schema.Literal("script"),
  command: Schema.optionalKey(Schema.String),
  command_hex: Schema.optionalKey(Schema.String),
  response: Schema.optionalKey(Schema.String),
  responses: Schema.optionalKey(Schema.Array(Schema.String)),
  response_hex: Schema.optionalKey(Schema.String),
  response_blob: Schema.optionalKey(Sha1Name),
  fault: Schema.optionalKey(Fault)
})
export type ScriptStep = typeof ScriptStep.Type

export const Named = Schema.Struct({ type: Schema.Literal("named"), name: Schema.String })
export type Named = typeof Named.Type

export const External = Schema.Struct({ type: Schema.Literal("external"), file: Schema.String })
export type External = typeof External.Type

/** Arguments are whatever JSON the module wants (strings, numbers, lists of channel names…). */
export const CommandStep = Schema.Struct({
  type: Schema.Literal("command"),
  action: Schema.String,
  args: Schema.Array(Schema.Json),
  response: Schema.optionalKey(Schema.String),
  responses: Schema.optionalKey(Schema.Array(Schema.String)),
  response_hex: Schema.optionalKey(Schema.String),
  response_blob: Schema.optionalKey(Sha1Name)
})
export type CommandStep = typeof CommandStep.Type

export const Nop = Schema.Struct({ type: Schema.Literals(["nop", "comment"]) })
export type Nop = typeof Nop.Type

export interface Compound {
  readonly type: "compound" | "compound_multi"
  readonly scripts: ReadonlyArray<Node>
}
export type Node = ScriptStep | Named | External | CommandStep | Nop | Compound

export const Compound: Schema.Codec<Compound> = Schema.Struct({
  type: Schema.Literals(["compound", "compound_multi"]),
  scripts: Schema.Array(Schema.suspend((): Schema.Codec<Node> => Node))
})
export const Node: Schema.Codec<Node> = Schema.Union([ScriptStep, Named, External, CommandStep, Nop, Compound])

/** A whole script file. Key order is kept: it is the order the older tools load names in. */
export const ScriptFile = Schema.Record(Schema.String, Node)
export type ScriptFile = typeof ScriptFile.Type

export const types = ["script", "compound", "compound_multi", "named", "external", "command", "nop", "comment"]

export class ScriptInvalid extends Schema.TaggedError<ScriptInvalid>()("ScriptInvalid", {
  file: Schema.String,
  path: Schema.String,
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `${this.file}: ${this.path === "" ? "" : `at ${this.path}: `}${this.reason}`
  }
}

/** The issue's message and the JSON path below the node it is at (`.command`, `.args[2]`). */
const splitIssue = (issue: SchemaIssue.Issue): { reason: string; at: string } => {
  const [reason = "", at = ""] = SchemaIssue.makeFormatterDefault()(issue).split(/\n\s*at /)
  return { reason, at: at.replace(/\["([^"]+)"\]/g, ".$1") }
}

const shallow = {
  script: ScriptStep,
  named: Named,
  external: External,
  command: CommandStep,
  nop: Nop,
  comment: Nop
} as const

/**
 * Decodes one node, type first, so an error names the unknown type or the bad field and its JSON path
 * (`recorded_script.scripts[3].command`) rather than "expected one of 8 shapes".
 */
export const decodeNode = Effect.fn("Script.decodeNode")(function* (
  file: string,
  path: string,
  json: unknown
): Effect.fn.Return<Node, ScriptInvalid> {
  const fail = (at: string, reason: string) => Effect.fail(new ScriptInvalid({ file, path: at, reason }))
  if (typeof json !== "object" || json === null || Array.isArray(json)) return yield* fail(path, "expected an object")
  const record = json as Record<string, unknown>
  const type = record.type
  if (typeof type !== "string") return yield* fail(path, 'missing "type"')
  if (type === "compound" || type === "compound_multi") {
    const scripts = record.scripts
    if (!Array.isArray(scripts)) return yield* fail(`${path}.scripts`, "expected an array of scripts")
    const children: Array<Node> = []
    for (let i = 0; i < scripts.length; i++) {
      children.push(yield* decodeNode(file, `${path}.scripts[${i}]`, scripts[i]))
    }
    return { type, scripts: children }
  }
  if (!(type in shallow)) return yield* fail(`${path}.type`, `unknown script type "${type}"`)
  const schema = shallow[type as keyof typeof shallow] as Schema.Codec<Node>
  const node = yield* Schema.decodeUnknownEffect(schema)(json).pipe(
    Effect.mapError((error) => {
      const { reason, at } = splitIssue(error.issue)
      return new ScriptInvalid({ file, path: `${path}${at}`, reason })
    })
  )
  if (node.type === "script") {
    if (node.command === undefined && node.command_hex === undefined) return yield* fail(path, 'missing "command"')
    if (responseField(node) === undefined) {
      return yield* fail(path, "missing response field (one of response, responses, response_hex, response_blob)")
    }
  }
  return node
})

/** Decodes a parsed file; every entry's errors carry the entry name as the start of the path. */
export const decodeFile = Effect.fn("Script.decodeFile")(function* (file: string, json: unknown) {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return yield* new ScriptInvalid({ file, path: "", reason: "a script file is a JSON object of named scripts" })
  }
  const entries: Array<[string, Node]> = []
  for (const [name, value] of Object.entries(json)) entries.push([name, yield* decodeNode(file, name, value)])
  return entries
})

/** Parses the text of a file (JSON errors become ScriptInvalid) and decodes it. */
export const parseFile = (file: string, text: string) =>
  Effect.try({
    try: () => JSON.parse(text) as unknown,
    catch: (error) => new ScriptInvalid({ file, path: "", reason: `not JSON: ${String(error)}` })
  }).pipe(Effect.flatMap((json) => decodeFile(file, json)))

export type ResponseSource =
  | { readonly _tag: "Text"; readonly text: string }
  | { readonly _tag: "Hex"; readonly hex: string }
  | { readonly _tag: "Blob"; readonly name: string }

/** The response as the older readers take it: the first present of response, responses, response_hex, response_blob. */
export const responseField = (node: ScriptStep | CommandStep): ResponseSource | undefined => {
  if (node.response !== undefined) return { _tag: "Text", text: node.response }
  if (node.responses !== undefined) return { _tag: "Text", text: node.responses.join("") }
  if (node.response_hex !== undefined) return { _tag: "Hex", hex: node.response_hex }
  if (node.response_blob !== undefined) return { _tag: "Blob", name: node.response_blob }
  return undefined
}

const utf8 = new TextDecoder("utf-8", { fatal: true })

/** Client bytes as the `command` text when they are UTF-8, else as `command_hex`. */
export const commandFields = (bytes: Uint8Array): { command: string } | { command_hex: string } => {
  const text = Option.liftThrowable(() => utf8.decode(bytes))()
  return Option.isSome(text) ? { command: text.value } : { command_hex: Buffer.from(bytes).toString("hex") }
}

/** The older writer's rule: binary when any byte is 0 or above 127, or when longer than 4096 bytes. */
export const isBinary = (bytes: Uint8Array): boolean => bytes.length > minBlob || bytes.some((b) => b === 0 || b > 127)

/**
 * The field a writer uses for a response, by the older writer's rules: text of ≤ 162 chars → response;
 * longer text → responses in 162-char chunks; binary of ≤ 81 bytes → response_hex; else a blob (`blob`
 * is called to store it and returns its name).
 */
export const responseFields = <E, R>(
  bytes: Uint8Array,
  blob: (bytes: Uint8Array) => Effect.Effect<string, E, R>
): Effect.Effect<
  { response: string } | { responses: Array<string> } | { response_hex: string } | { response_blob: string },
  E,
  R
> => {
  if (!isBinary(bytes)) {
    const text = Buffer.from(bytes).toString("latin1")
    if (text.length <= chunkChars) return Effect.succeed({ response: text })
    const responses: Array<string> = []
    for (let i = 0; i < text.length; i += chunkChars) responses.push(text.slice(i, i + chunkChars))
    return Effect.succeed({ responses })
  }
  if (bytes.length <= chunkChars / 2) return Effect.succeed({ response_hex: Buffer.from(bytes).toString("hex") })
  return Effect.map(blob(bytes), (name) => ({ response_blob: name }))
}

/** JSON text as the older writer made it: 4-space indent, every non-ASCII character escaped. */
export const stringify = (file: ScriptFile | Record<string, Node>): string =>
  JSON.stringify(file, null, 4).replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`
  )
