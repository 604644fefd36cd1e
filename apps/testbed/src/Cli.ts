/**
 * The `testbed` command tree. Each package's command group lives in `commands/<group>.ts` and is listed here;
 * commands decode flags, provide layers and call one library function — no logic of their own.
 */
import { Command } from "effect/cli"
import packageJson from "../package.json" with { type: "json" }
import { fleet } from "./commands/fleet.ts"
import { plugins } from "./commands/plugins.ts"
import { replay } from "./commands/replay.ts"
import { report } from "./commands/report.ts"
import { runCommand } from "./commands/run.ts"
import { stageCommand } from "./commands/stage.ts"
import { Debug } from "./ExitCode.ts"

export const version: string = packageJson.version

export const root = Command.make("testbed").pipe(
  Command.withDescription(
    "Test networked systems and protocol implementations: experiments, TCP record/replay, MQTT fleets, Docker stages, reports."
  ),
  Command.withSubcommands([fleet, plugins, replay, report, runCommand, stageCommand]),
  Command.withGlobalFlags([Debug])
)

/** Runs the command tree on the given argv (without the node and script paths). */
export const run = Command.runWith(root, { version })
