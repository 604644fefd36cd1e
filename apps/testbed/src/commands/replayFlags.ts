/**
 * The flags `testbed replay serve|test|check` share (short flags as sock_test.py had them: -i input, -t name,
 * -l listen), and how they become a @testbed/replay ScriptSource and serve flags.
 */
import { Script, type ScriptSource } from "@testbed/replay"
import { Option } from "effect"
import { Flag } from "effect/cli"
import * as TimeSpanFlag from "../TimeSpanFlag.ts"

const optionalString = (name: string, description: string) =>
  Flag.String(name).pipe(Flag.withDescription(description), Flag.optional)

/** Where the script is and what it may load (check takes the file as an argument instead of -i). */
export const sourceFlags = {
  blobs: optionalString("blobs", "Blob directory (default: blobs/ beside the script)"),
  blobCache: optionalString(
    "blob-cache",
    "Remote blob cache, a directory or http(s) URL (default $REPLAY_BLOB_REMOTE_CACHE)"
  ),
  root: optionalString("root", "External files must stay under this directory"),
  allowOutsideRoot: Flag.Boolean("allow-outside-root").pipe(Flag.withDefault(false)),
  allowModulePath: Flag.Boolean("allow-module-path").pipe(
    Flag.withDescription("Let `import` load action modules from file paths"),
    Flag.withDefault(false)
  )
}

export const serveFlags = {
  ...sourceFlags,
  input: Flag.String("input").pipe(Flag.withAlias("i"), Flag.withDescription("The script file")),
  name: Flag.String("test-name").pipe(
    Flag.withAlias("t"),
    Flag.withDescription("The script entry to run"),
    Flag.withDefault(Script.defaultName)
  ),
  listen: Flag.String("listen").pipe(
    Flag.withAlias("l"),
    Flag.withDescription("HOST:PORT to listen on (port 0: any free port)"),
    Flag.withDefault("127.0.0.1:0")
  ),
  stepTimeout: TimeSpanFlag.optional("step-timeout", "How long a step may wait for client input (default 10 s)"),
  fault: Flag.String("fault").pipe(
    Flag.withDescription(
      "Misbehave: delay=S, chunk=SIZE[/PAUSE], truncate=BYTES, reset; optionally @N (the N-th response)"
    ),
    Flag.atLeast(0)
  ),
  optionalConnections: Flag.Boolean("optional-connections").pipe(
    Flag.withDescription("Connections of the script that no client opened are not failures"),
    Flag.withDefault(false)
  )
}

interface SourceFlags {
  readonly blobs: Option.Option<string>
  readonly blobCache: Option.Option<string>
  readonly root: Option.Option<string>
  readonly allowOutsideRoot: boolean
  readonly allowModulePath: boolean
}

export const toSource = (file: string, flags: SourceFlags, name?: string): ScriptSource.ScriptSource => ({
  file,
  name,
  blobs: Option.getOrUndefined(flags.blobs),
  blobCache: Option.getOrUndefined(flags.blobCache),
  root: Option.getOrUndefined(flags.root),
  allowOutsideRoot: flags.allowOutsideRoot,
  allowModulePaths: flags.allowModulePath
})
