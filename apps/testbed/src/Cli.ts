/**
 * The `testbed` command tree. Each package's command group lives in `commands/<group>.ts` and is listed here;
 * commands decode flags, provide layers and call one library function — no logic of their own.
 */
import { Command } from "effect/cli"
import packageJson from "../package.json" with { type: "json" }

export const version: string = packageJson.version

export const root = Command.make("testbed").pipe(
  Command.withDescription(
    "Test networked systems and protocol implementations: experiments, TCP record/replay, MQTT fleets, Docker stages, reports."
  ),
  Command.withSubcommands([])
)

/** Runs the command tree on the given argv (without the node and script paths). */
export const run = Command.runWith(root, { version })
