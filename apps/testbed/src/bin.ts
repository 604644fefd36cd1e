#!/usr/bin/env node
// Entry point of the `testbed` command. Startup time is what a user feels on every command: Node's compile cache
// keeps the bytecode of the modules between runs, `--version` answers from package.json without loading Effect,
// and any other command line loads the command tree with only the groups it names (Cli.ts).
import { enableCompileCache } from "node:module"
import packageJson from "../package.json" with { type: "json" }

enableCompileCache()

const argv = process.argv.slice(2)
if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-v")) {
  // The same line effect/cli prints for its built-in --version.
  process.stdout.write(`testbed v${packageJson.version}\n`)
} else {
  const { main } = await import("./main.ts")
  main(argv)
}
