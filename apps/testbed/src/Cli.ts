/**
 * The `testbed` command tree. Each package's command group lives in `commands/<group>.ts` and is imported only
 * when the command line names it: a group's module pulls in its libraries (MQTT, Docker, the experiment
 * manager…), and `testbed report` should not pay for all of them. The other groups stand in as empty commands
 * that carry their summary, so `testbed --help` still lists every group and an unknown command still gets
 * suggestions. Commands decode flags, provide layers and call one library function — no logic of their own.
 */
import type * as NodeServices from "@effect/platform-node/NodeServices"
import { Effect } from "effect"
import { Command } from "effect/cli"
import packageJson from "../package.json" with { type: "json" }
import { Debug } from "./ExitCode.ts"

export const version: string = packageJson.version

/** What every group may require: the platform services `bin.ts` provides. */
// biome-ignore lint/suspicious/noExplicitAny: a group's name and inputs are its own; only E and R matter here
export type Group = Command.Command<any, any, any, unknown, NodeServices.NodeServices>

interface GroupEntry {
  /** One line for the root help; the group's own description shows in `testbed GROUP --help`. */
  readonly summary: string
  readonly load: () => Promise<Group>
}

/** The command groups, in the order the root help lists them. */
export const groups: Readonly<Record<string, GroupEntry>> = {
  cluster: {
    summary: "Inspect a cluster of runners (testbed runner, testbed run --cluster)",
    load: () => import("./commands/cluster.ts").then((module) => module.clusterCommand)
  },
  fleet: {
    summary: "Drive a fleet of agents over MQTT (compatible with the MQTT system governor)",
    load: () => import("./commands/fleet.ts").then((module) => module.fleet)
  },
  plugins: {
    summary: "Service and environment plugins",
    load: () => import("./commands/plugins.ts").then((module) => module.plugins)
  },
  replay: {
    summary: "Record a TCP session, replay it as a deterministic fake, fail on the first divergence",
    load: () => import("./commands/replay.ts").then((module) => module.replay)
  },
  report: {
    summary: "Render the reports of a recorded run (JSON, Markdown, JUnit XML, CTRF, HTML) from its event log",
    load: () => import("./commands/report.ts").then((module) => module.report)
  },
  runner: {
    summary: "Run test attempts for `testbed run --cluster` on this host (an Effect Cluster runner)",
    load: () => import("./commands/runner.ts").then((module) => module.runnerCommand)
  },
  run: {
    summary: "Run an experiment: bring implementations and testers up, run steps, check assertions, write reports",
    load: () => import("./commands/run.ts").then((module) => module.runCommand)
  },
  schema: {
    summary: "Print the JSON Schema of experiment, stage or plugin files (editor completion and checking)",
    load: () => import("./commands/schema.ts").then((module) => module.schema)
  },
  stage: {
    summary: "Bring named Docker topologies up and down, open shells in their nodes, run commands there",
    load: () => import("./commands/stage.ts").then((module) => module.stageCommand)
  }
}

/** Global flags that walk the whole tree (completion scripts, the wizard): they need every group loaded. */
const wholeTreeFlags = new Set(["--completions", "--wizard"])

/**
 * The groups an argv needs: every group whose name appears in it. Loading one too many (a flag value that
 * happens to equal a group name) costs time, never correctness, so no parsing guesses are made here.
 */
export const groupsNamedIn = (argv: ReadonlyArray<string>): ReadonlyArray<string> =>
  argv.some((arg) => wholeTreeFlags.has(arg.split("=")[0] ?? arg))
    ? Object.keys(groups)
    : Object.keys(groups).filter((name) => argv.includes(name))

const standIn = (name: string, entry: GroupEntry): Group =>
  Command.make(name).pipe(Command.withShortDescription(entry.summary))

/** The root command with the named groups loaded and the others standing in. */
export const rootFor = Effect.fn("Cli.rootFor")(function* (argv: ReadonlyArray<string>) {
  const needed = new Set(groupsNamedIn(argv))
  const subcommands = yield* Effect.forEach(
    Object.entries(groups),
    ([name, entry]) =>
      needed.has(name)
        ? Effect.map(
            Effect.promise(() => entry.load()),
            (group) => Command.withShortDescription(group, entry.summary)
          )
        : Effect.succeed(standIn(name, entry)),
    { concurrency: "unbounded" }
  )
  return Command.make("testbed").pipe(
    Command.withDescription(
      "Test networked systems and protocol implementations: experiments, TCP record/replay, MQTT fleets, Docker stages, reports."
    ),
    Command.withSubcommands(subcommands),
    Command.withGlobalFlags([Debug])
  )
})

/** Runs the command tree on the given argv (without the node and script paths). */
export const run = (argv: ReadonlyArray<string>) =>
  Effect.flatMap(rootFor(argv), (root) => Command.runWith(root, { version })(argv))
