// Compiles the loaded tree into the plan a replay runs: named scripts followed (cycles refused), responses read
// (blobs opened, small ones kept in memory), actions validated by their modules, the tree flattened into steps.
// The steps of one node are untraced (Effect.fnUntraced): a span per node cost more than compiling the node (a
// 10,000-step script took 1.5 s to load with them); the plan is one span. Bytes are Buffers: a socket writes them as
// they are (a plain Uint8Array gets a Buffer view made on every write).
import { Duration, Effect, Result } from "effect"
import type { ActionArg, ActionModule } from "../Action.ts"
import type { Blob } from "../BlobStore.ts"
import type * as Plan from "../Plan.ts"
import { type CommandStep, type Node, responseField, ScriptInvalid, type ScriptStep } from "../Script.ts"
import { ActionInvalid, type LoadError, ScriptCycle, ScriptNameNotFound } from "./LoadErrors.ts"
import * as ResponseBlobs from "./ResponseBlobs.ts"
import type { LoadedFile } from "./ScriptFiles.ts"

export interface Compiler {
  readonly blobs: ResponseBlobs.ResponseBlobs
  readonly modules: ReadonlyMap<string, ActionModule>
  /** The blobs the compiled responses name. */
  readonly used: Map<string, Blob>
}

/** Where a node is: its file and its path in it (`recorded_script.scripts[3] -> greeting`). */
interface At {
  readonly file: LoadedFile
  readonly path: string
}

const isHex = (text: string) => /^([0-9a-fA-F]{2})*$/.test(text)

/** The response of a step: bytes, or (a large blob) the blob, served from its file. */
const response = Effect.fnUntraced(function* (c: Compiler, at: At, node: ScriptStep | CommandStep) {
  const source = responseField(node)
  if (source === undefined) return undefined
  if (source._tag === "Text") return Buffer.from(source.text, "utf8")
  if (source._tag === "Blob") {
    const blob = yield* c.blobs.response(source.name)
    c.used.set(blob.name, blob)
    return blob.bytes ?? blob
  }
  if (!isHex(source.hex)) {
    return yield* new ScriptInvalid({ file: at.file.display, path: `${at.path}.response_hex`, reason: "not hex" })
  }
  return Buffer.from(source.hex, "hex")
})

/** The response of a command step, as the bytes its action gets. */
const actionBytes = Effect.fnUntraced(function* (c: Compiler, at: At, node: CommandStep) {
  const source = responseField(node)
  if (source?._tag !== "Blob") return (yield* response(c, at, node)) as Uint8Array | undefined
  const { blob, bytes } = yield* c.blobs.bytes(source.name)
  c.used.set(blob.name, blob)
  if (bytes === undefined) {
    return yield* new ActionInvalid({
      file: at.file.display,
      path: at.path,
      action: node.action,
      reason: `its response blob ${blob.name} is ${blob.size} bytes; an action gets at most ${ResponseBlobs.maxActionBytes}`
    })
  }
  return bytes
})

const exchange = Effect.fnUntraced(function* (c: Compiler, at: At, node: ScriptStep) {
  if (node.command === undefined && !isHex(node.command_hex ?? "")) {
    return yield* new ScriptInvalid({ file: at.file.display, path: `${at.path}.command_hex`, reason: "not hex" })
  }
  const command = node.command !== undefined ? Buffer.from(node.command, "utf8") : Buffer.from(node.command_hex!, "hex")
  const bytes = (yield* response(c, at, node)) ?? new Uint8Array(0)
  return { _tag: "Exchange", path: at.path, command, response: bytes, fault: node.fault } satisfies Plan.Step
})

/** `sleep SECONDS`, or a module's action (validated by the module now, run on each connection later). */
const command = Effect.fnUntraced(function* (c: Compiler, at: At, node: CommandStep) {
  const invalid = (reason: string) =>
    new ActionInvalid({ file: at.file.display, path: at.path, action: node.action, reason })
  if (node.action === "sleep") {
    const [seconds] = node.args
    const value = typeof seconds === "number" ? seconds : typeof seconds === "string" ? Number(seconds) : NaN
    if (node.args.length !== 1 || !Number.isFinite(value) || value < 0) {
      return yield* invalid("sleep takes one number of seconds")
    }
    return { _tag: "Sleep", path: at.path, duration: Duration.millis(value * 1000) } satisfies Plan.Step
  }
  const dot = node.action.indexOf(".")
  if (dot < 0) return yield* invalid("unknown action (built in: sleep, import; others are <module>.<action>)")
  const module = c.modules.get(node.action.slice(0, dot))
  if (module === undefined) return yield* invalid(`module "${node.action.slice(0, dot)}" is not imported by the script`)
  const extra = yield* actionBytes(c, at, node)
  const args: ReadonlyArray<ActionArg> = extra === undefined ? node.args : [...node.args, extra]
  const prepared = module.prepare(node.action.slice(dot + 1), args)
  if (Result.isFailure(prepared)) return yield* invalid(prepared.failure)
  return { _tag: "Action", path: at.path, action: node.action, prepared: prepared.success } satisfies Plan.Step
})

const cycleOf = (stack: ReadonlyArray<string>, key: string) =>
  new ScriptCycle({
    kind: "named",
    cycle: [...stack.slice(stack.indexOf(key)), key].map((k) => k.slice(k.indexOf("#") + 1))
  })

/** The script a `named` node points at, in the scope of the file it appears in. */
const target = (at: At, name: string) => {
  const found = at.file.scope.get(name)
  return found === undefined
    ? Effect.fail(
        new ScriptNameNotFound({ file: at.file.display, path: at.path, name, available: [...at.file.scope.keys()] })
      )
    : Effect.succeed(found)
}

/** Appends the steps of `node` to `out`; `stack` holds the named scripts being expanded (`file#name`). */
export const compile = Effect.fn("Compile.compile")(function* (
  c: Compiler,
  node: Node,
  at: At,
  stack: ReadonlyArray<string>,
  out: Array<Plan.Step>
): Effect.fn.Return<void, LoadError> {
  switch (node.type) {
    case "script":
      out.push(yield* exchange(c, at, node))
      return
    case "compound":
      for (let i = 0; i < node.scripts.length; i++) {
        yield* compile(c, node.scripts[i]!, { file: at.file, path: `${at.path}.scripts[${i}]` }, stack, out)
      }
      return
    case "compound_multi":
      return yield* new ScriptInvalid({
        file: at.file.display,
        path: at.path,
        reason: "compound_multi can only be the script that is run (each sub-script is one connection)"
      })
    case "named": {
      const key = `${at.file.display}#${node.name}`
      if (stack.includes(key)) return yield* cycleOf(stack, key)
      const next = yield* target(at, node.name)
      return yield* compile(c, next.node, { file: next.file, path: `${at.path} -> ${node.name}` }, [...stack, key], out)
    }
    case "command":
      if (node.action !== "import") out.push(yield* command(c, at, node))
      return
    default:
      return
  }
})

/** The entry, through its named indirections (a compound_multi at the end of them is the plan). */
export const entry = Effect.fn("ScriptLoader.entry")(function* (top: LoadedFile, name: string) {
  let at: At = { file: top, path: "" }
  let found = yield* target(at, name)
  let path = name
  const seen: Array<string> = [`${top.display}#${name}`]
  while (found.node.type === "named") {
    const next: string = found.node.name
    const key = `${found.file.display}#${next}`
    if (seen.includes(key)) return yield* cycleOf(seen, key)
    seen.push(key)
    at = { file: found.file, path }
    found = yield* target(at, next)
    path = `${path} -> ${next}`
  }
  return { node: found.node, at: { file: found.file, path }, seen }
})

/** The plan of an entry: one list of steps, or one per connection for a compound_multi. */
export const plan = Effect.fn("ScriptLoader.plan")(function* (
  c: Compiler,
  start: { readonly node: Node; readonly at: At; readonly seen: ReadonlyArray<string> }
) {
  const { node, at, seen } = start
  if (node.type === "compound_multi") {
    const connections: Array<Array<Plan.Step>> = []
    for (let i = 0; i < node.scripts.length; i++) {
      const steps: Array<Plan.Step> = []
      yield* compile(c, node.scripts[i]!, { file: at.file, path: `${at.path}.scripts[${i}]` }, seen, steps)
      connections.push(steps)
    }
    const multi: Plan.Plan = { _tag: "Multi", connections }
    return multi
  }
  const steps: Array<Plan.Step> = []
  yield* compile(c, node, at, seen, steps)
  const single: Plan.Plan = { _tag: "Single", steps }
  return single
})
