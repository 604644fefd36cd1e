/**
 * Writes recorded sessions as script files the older tools load: `<base>-N.json` (first unused N from 1)
 * holding `{"recorded_script": {"type": "compound", ...}}`, or compound_multi (one compound per connection)
 * when several connections were recorded. Response fields and blobs follow the older writer's rules.
 */
import * as Path from "node:path"
import { Effect, FileSystem, Runtime, Schema } from "effect"
import { BlobStore } from "./BlobStore.ts"
import { commandFields, type Compound, defaultName, type Node, responseFields, stringify } from "./Script.ts"
import { ExitCode } from "@testbed/events"

export interface Exchange {
  /** What the client sent before the server answered (empty when the server spoke first). */
  readonly command: Uint8Array
  /**
   * The server's answer: bytes, or a raw file already holding them (the record proxy's large responses), which
   * becomes a blob (the file is moved into the blob store).
   */
  readonly response: Uint8Array | { readonly file: string; readonly size: number }
}

export class ScriptWriteFailed extends Schema.TaggedError<ScriptWriteFailed>()("ScriptWriteFailed", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.infrastructure
  }
  override get message(): string {
    return `cannot write script ${this.path}: ${this.reason}`
  }
}

/** The script nodes of one connection's exchanges (blobs are stored as a side effect). */
export const toCompound = Effect.fn("ScriptWriter.toCompound")(function* (exchanges: ReadonlyArray<Exchange>) {
  const blobs = yield* BlobStore
  const scripts: Array<Node> = []
  for (const exchange of exchanges) {
    const response =
      exchange.response instanceof Uint8Array
        ? yield* responseFields(exchange.response, blobs.put)
        : { response_blob: yield* blobs.putFile(exchange.response.file) }
    scripts.push({ type: "script", ...commandFields(exchange.command), ...response })
  }
  return { type: "compound", scripts } satisfies Compound
})

/** The top-level script for the recorded connections, in the order they were accepted. */
export const toScript = Effect.fn("ScriptWriter.toScript")(function* (
  connections: ReadonlyArray<ReadonlyArray<Exchange>>
) {
  const compounds: Array<Compound> = []
  for (const exchanges of connections) compounds.push(yield* toCompound(exchanges))
  const script: Node = compounds.length === 1 ? compounds[0]! : { type: "compound_multi", scripts: compounds }
  return { [defaultName]: script }
})

/** Writes `<base>-N.json` with the first N not taken (created exclusively, so two writers never collide). */
export const write = Effect.fn("ScriptWriter.write")(function* (
  base: string,
  connections: ReadonlyArray<ReadonlyArray<Exchange>>
) {
  const fs = yield* FileSystem.FileSystem
  const text = new TextEncoder().encode(`${stringify(yield* toScript(connections))}\n`)
  yield* fs
    .makeDirectory(Path.dirname(Path.resolve(base)), { recursive: true })
    .pipe(Effect.mapError((error) => new ScriptWriteFailed({ path: base, reason: error.message })))
  for (let n = 1; ; n++) {
    const path = `${base}-${n}.json`
    const written = yield* fs.writeFile(path, text, { flag: "wx" }).pipe(
      Effect.as(true),
      Effect.catchIf(
        (error) => error.reason._tag === "AlreadyExists",
        () => Effect.succeed(false)
      ),
      Effect.mapError((error) => new ScriptWriteFailed({ path, reason: error.message }))
    )
    if (written) return path
  }
})
