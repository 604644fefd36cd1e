// Loaded with `node --import` by the CLI's tests: records the URL of every module the process loads and writes
// them, one per line, to $TESTBED_TRACE_MODULES when it exits — to see which command groups a command line loads.
import { writeFileSync } from "node:fs"
import { registerHooks } from "node:module"

const loaded = new Set()
registerHooks({
  load(url, context, nextLoad) {
    loaded.add(url)
    return nextLoad(url, context)
  }
})
process.on("exit", () => writeFileSync(process.env.TESTBED_TRACE_MODULES, [...loaded].join("\n")))
