/**
 * `testbed stage list|up|down|status|connect|exec|prune`: named Docker topologies from a catalog (`stages/`)
 * or a path (a stage.yaml, a compose file, or a folder holding one). The current stage is recorded in
 * `.testbed/stage.json`.
 */
import { EventBus, ExitCode } from "@testbed/events"
import { Command as Cmd, CommandRunner } from "@testbed/commands"
import { Docker, Stages } from "@testbed/stages"
import { Console, Effect, Layer, Option, Stream } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { ExitWith } from "../ExitCode.ts"

const stage = Command.make("stage").pipe(
  Command.withSharedFlags({
    catalog: Flag.String("catalog").pipe(
      Flag.withDescription("Directory of stages (<name>/stage.yaml)"),
      Flag.withDefault("stages")
    ),
    stateDir: Flag.String("state-dir").pipe(
      Flag.withDescription("Where the current stage is recorded"),
      Flag.withDefault(".testbed")
    )
  }),
  Command.withDescription("Bring named Docker topologies up and down, open shells in their nodes, run commands there")
)

/** Fails with `ExitWith`; `bin.ts` prints the message once (a shell that exited 1 is not a testbed error). */
const exit = (code: number, message?: string) =>
  Effect.fail(new ExitWith(message === undefined ? { code } : { code, message }))

// Errors carry their exit codes (2 for a definition or name to fix, 3 for an unreachable engine, 75 for a busy
// project lock): `bin.ts` says them in one line.
const withStages = <A, E>(f: (stages: Stages.Stages["Service"]) => Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const { catalog, stateDir } = yield* stage
    return yield* Stages.Stages.use(f).pipe(
      Effect.provide(
        Stages.Stages.layer({ catalog, stateDir }).pipe(
          Layer.provide(Layer.mergeAll(Docker.Docker.layer, EventBus.EventBus.layer))
        )
      )
    )
  })

const list = Command.make(
  "list",
  { json: Flag.Boolean("json").pipe(Flag.withDefault(false)) },
  Effect.fn(function* ({ json }) {
    const entries = yield* withStages((stages) => stages.list)
    if (json) return yield* Console.log(JSON.stringify(entries, null, 2))
    if (entries.length === 0) return yield* Console.log("no stages (add stages/<name>/stage.yaml)")
    for (const e of entries) yield* Console.log(`${e.name}\t${e.kind}\t${e.file}`)
  })
).pipe(Command.withDescription("List the stages of the catalog"))

const up = Command.make(
  "up",
  {
    ref: Argument.String("STAGE").pipe(
      Argument.withDescription("A catalog name, or a path to a stage/compose file or folder")
    ),
    rebuild: Flag.Boolean("rebuild").pipe(
      Flag.withDescription("Build images even when present"),
      Flag.withDefault(false)
    )
  },
  Effect.fn(function* ({ ref, rebuild }) {
    const onUndone = (undone: Stages.Undone) => Console.error(Stages.describeUndone(undone))
    const result = yield* withStages((stages) =>
      Effect.flatMap(stages.load(ref), (loaded) => stages.up(loaded, { rebuild, onUndone }))
    )
    yield* Console.log(`stage ${result.name} is up (${result.nodes.map((n) => n.node).join(", ")})`)
  })
).pipe(
  Command.withDescription("Bring a stage up (the one up before is brought down first)"),
  Command.withExamples([
    { command: "testbed stage up routing-lab --catalog fixtures/stages", description: "The routing lab" }
  ])
)

const down = Command.make(
  "down",
  {},
  Effect.fn(function* () {
    const name = yield* withStages((stages) => stages.down())
    yield* Console.log(Option.match(name, { onNone: () => "no stage was up", onSome: (n) => `stage ${n} is down` }))
  })
).pipe(Command.withDescription("Bring the current stage down and restore host settings (idempotent)"))

const status = Command.make(
  "status",
  { json: Flag.Boolean("json").pipe(Flag.withDefault(false)) },
  Effect.fn(function* ({ json }) {
    const s = yield* withStages((stages) => stages.status())
    if (json) return yield* Console.log(JSON.stringify(s, null, 2))
    if (s.current === null) return yield* Console.log("no stage is up")
    yield* Console.log(`stage ${s.current.name} (run ${s.current.runId}, up since ${s.current.startedAt})`)
    for (const n of s.nodes) {
      const addresses = Object.entries(n.addresses)
        .map(([net, ip]) => `${net}=${ip}`)
        .join(" ")
      yield* Console.log(`  ${n.node}\t${n.state}${n.health ? ` (${n.health})` : ""}\t${addresses}\t${n.container}`)
    }
  })
).pipe(Command.withDescription("Show the current stage: nodes, state, addresses, health"))

const connect = Command.make(
  "connect",
  { node: Argument.String("NODE") },
  Effect.fn(function* ({ node }) {
    if (!process.stdin.isTTY) {
      yield* Console.error("stdin is not a terminal: the shell runs without a TTY and reads its commands from stdin")
    }
    const io = { input: process.stdin, output: process.stdout, error: process.stderr }
    const code = yield* withStages((stages) => stages.connect(node, io))
    if (code !== 0) return yield* exit(code ?? 1)
  })
).pipe(Command.withDescription("Open an interactive shell (bash, else sh) in a node of the current stage"))

const exec = Command.make(
  "exec",
  {
    node: Argument.String("NODE"),
    command: Argument.String("COMMAND").pipe(
      Argument.variadic({ min: 1 }),
      Argument.withDescription("After --: the program and its arguments")
    )
  },
  Effect.fn(function* ({ node, command }) {
    const [program = "", ...args] = command
    const result = yield* withStages((stages) =>
      Effect.gen(function* () {
        const runner = yield* stages.runner(node)
        return yield* runner.stream(Cmd.make(program, args)).pipe(
          Stream.runFoldEffect(
            () => null as number | null,
            (code, chunk) =>
              chunk._tag === "Exit"
                ? Effect.succeed(chunk.result.exitCode)
                : Effect.as(
                    Effect.sync(() => (chunk._tag === "Stdout" ? process.stdout : process.stderr).write(chunk.bytes)),
                    code
                  )
          ),
          Effect.catchTag("CommandFailed", (e) => Effect.succeed(e.result.exitCode)),
          Effect.mapError(
            (e) => new ExitWith({ code: ExitCode.ofError(e), message: `${node}: ${CommandRunner.describeError(e)}` })
          )
        )
      })
    )
    if (result !== 0) return yield* exit(result ?? 1)
  })
).pipe(
  Command.withDescription("Run a command in a node of the current stage; exits with its exit code"),
  Command.withExamples([{ command: "testbed stage exec client1 -- ip addr", description: "Addresses of client1" }])
)

const prune = Command.make(
  "prune",
  {
    all: Flag.Boolean("all").pipe(
      Flag.withDescription("Also resources of any project made by older testbed versions (no owner label)"),
      Flag.withDefault(false)
    )
  },
  Effect.fn(function* ({ all }) {
    const removed = yield* withStages((stages) => stages.prune({ all }))
    yield* Console.log(`removed ${removed.containers} containers and ${removed.networks} networks`)
  })
).pipe(
  Command.withDescription(
    "Remove this project's containers and networks that no recorded stage owns, and those of dead runs of any project"
  )
)

export const stageCommand = stage.pipe(Command.withSubcommands([list, up, down, status, connect, exec, prune]))
