/**
 * `testbed stage list|up|down|status|connect|exec|prune|impair|check|graph`: named Docker topologies from a catalog
 * (`stages/`) or a path, and network labs on them. The current stage is recorded in `.testbed/stage.json`, an
 * instance's in `.testbed/instances/NAME/stage.json`.
 */
import { Stages } from "@testbed/stages"
import { Console, Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { stage, withStages } from "./stageGroup.ts"
import { check, graph } from "./stageCheck.ts"
import { impair } from "./stageImpair.ts"
import { connect, exec } from "./stageShell.ts"

const json = Flag.Boolean("json").pipe(Flag.withDefault(false))

const list = Command.make(
  "list",
  { json },
  Effect.fn(function* ({ json }) {
    const [entries, up] = yield* withStages((stages) => Effect.all([stages.list, stages.upNow()]))
    if (json) return yield* Console.log(JSON.stringify({ catalog: entries, up }, null, 2))
    if (entries.length === 0) yield* Console.log("no stages in the catalog (add stages/<name>/stage.yaml)")
    for (const e of entries) yield* Console.log(`${e.name}\t${e.kind}\t${e.file}`)
    for (const c of up)
      yield* Console.log(`up: ${c.name}${c.instance ? ` (instance ${c.instance})` : ""}\tsince ${c.startedAt}`)
  })
).pipe(Command.withDescription("List the stages of the catalog and every stage (and instance) that is up"))

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
  Command.withDescription(
    "Bring a stage up (the one up before is brought down first; --instance: only that instance's)"
  ),
  Command.withExamples([
    { command: "testbed stage up routing-lab --catalog fixtures/stages", description: "The routing lab" },
    { command: "testbed stage up course-lab --instance alice", description: "Alice's copy of the course lab" }
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
  { json },
  Effect.fn(function* ({ json }) {
    const s = yield* withStages((stages) => stages.status())
    if (json) return yield* Console.log(JSON.stringify(s, null, 2))
    if (s.current === null) return yield* Console.log("no stage is up")
    const instance = s.current.instance ? `, instance ${s.current.instance}` : ""
    yield* Console.log(`stage ${s.current.name} (run ${s.current.runId}${instance}, up since ${s.current.startedAt})`)
    for (const n of s.nodes) {
      const addresses = Object.entries(n.addresses)
        .map(([net, ip]) => `${net}=${ip}`)
        .join(" ")
      yield* Console.log(`  ${n.node}\t${n.state}${n.health ? ` (${n.health})` : ""}\t${addresses}\t${n.container}`)
    }
    for (const l of s.links)
      yield* Console.log(`  link ${l.a} ${l.addresses[0] ?? ""} <-> ${l.b} ${l.addresses[1] ?? ""}`)
    for (const [target, what] of Object.entries(s.impairments)) yield* Console.log(`  impaired ${target}: ${what}`)
  })
).pipe(Command.withDescription("Show the current stage: nodes, state, addresses, health, links, impairments"))

const prune = Command.make(
  "prune",
  {
    all: Flag.Boolean("all").pipe(
      Flag.withDescription("Also resources of older testbed versions (no owner label)"),
      Flag.withDefault(false)
    )
  },
  Effect.fn(function* ({ all }) {
    const removed = yield* withStages((stages) => stages.prune({ all }))
    yield* Console.log(`removed ${removed.containers} containers and ${removed.networks} networks`)
  })
).pipe(
  Command.withDescription("Remove what no recorded stage of this project owns, and what dead runs of any project left")
)

export const stageCommand = stage.pipe(
  Command.withSubcommands([list, up, down, status, connect, exec, prune, impair, check, graph])
)
