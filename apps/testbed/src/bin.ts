#!/usr/bin/env node
// Entry point of the `testbed` command. Startup time is what a user feels on every command: Node's compile cache
// keeps the bytecode of the modules between runs, `--version` answers from package.json without loading Effect,
// and any other command line loads the command tree with only the groups it names (Cli.ts).
import { enableCompileCache } from "node:module"
import packageJson from "../package.json" with { type: "json" }

/**
 * A reader that stops early (`testbed plugins list | head -1`) closes the pipe; the next write fails with EPIPE,
 * which Node raises as an uncaught error (a stack trace, exit 1). Output nobody reads is dropped instead and the
 * command runs to its end, finalizers included. Inline: `--version` loads no module but this one.
 */
const dropWritesWhenClosed = (stream: NodeJS.WriteStream): void => {
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE") throw error
    stream.write = () => true
  })
}

enableCompileCache()
dropWritesWhenClosed(process.stdout)
dropWritesWhenClosed(process.stderr)

const argv = process.argv.slice(2)
if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-v")) {
  // The same line effect/cli prints for its built-in --version.
  process.stdout.write(`testbed v${packageJson.version}\n`)
} else {
  const { main } = await import("./main.ts")
  main(argv)
}
