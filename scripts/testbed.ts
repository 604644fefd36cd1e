// `pnpm testbed …` from a checkout: the CLI from its sources, run in the directory the command was typed in.
// pnpm runs a script from the workspace root and says where its caller was in INIT_CWD, so relative paths
// (experiment files, --output-dir, ./outputs) mean what the user meant. The root script `exec`s the real Node
// binary (not node_modules/.bin/node, a shell shim that does not pass signals on) so SIGINT/SIGTERM reach this
// process, which stops services and writes reports before it exits.
const caller = process.env.INIT_CWD
if (caller !== undefined && caller !== "") process.chdir(caller)
await import("../apps/testbed/src/bin.ts")
