/** `testbed stage impair NODE:IFACE`: rate, loss, delay…, down, flaps of a link end, live; `--verify` measures. */
import { Impairment, type Stages } from "@testbed/stages"
import { Console, Effect, Option, type Schema } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { withStages } from "./stageGroup.ts"

const setting = <A>(name: string, schema: Schema.Codec<A, string>, description: string) =>
  Flag.String(name).pipe(Flag.withSchema(schema), Flag.withDescription(description), Flag.optional)
const switchFlag = (name: string, description: string) =>
  Flag.Boolean(name).pipe(Flag.withDescription(description), Flag.withDefault(false))

const some = <K extends string, A>(key: K, value: Option.Option<A>) =>
  (Option.isSome(value) ? { [key]: value.value } : {}) as Partial<Record<K, A>>

export const show = (
  m:
    | Stages.Outcome
    | {
        readonly unit: string
        readonly setting: number
        readonly achieved: number
        readonly tolerance: number
        readonly measure: string
        readonly withinTolerance: boolean
      }
) =>
  "unit" in m
    ? `  ${m.measure}: set ${fmt(m.unit, m.setting)}, measured ${fmt(m.unit, m.achieved)} (±${fmt(m.unit, m.tolerance)}) ${m.withinTolerance ? "ok" : "OFF"}`
    : `  ${m.passed ? "pass" : "FAIL"}  ${m.instance === "default" ? "" : `${m.instance}: `}${m.check} — ${m.detail}`
const fmt = (unit: string, n: number) =>
  unit === "bit/s" ? Impairment.formatRate(Math.round(n)) : `${n.toFixed(1)}${unit}`

export const impair = Command.make(
  "impair",
  {
    target: Argument.String("NODE:IFACE").pipe(Argument.withDescription("A link end or a network the node is on")),
    rate: setting<number>("rate", Impairment.Rate, "Rate limit, e.g. 2mbit (tbf)"),
    loss: setting<number>("loss", Impairment.PercentText, "Random loss of leaving IP packets, e.g. 5% (nftables)"),
    delay: setting<number>("delay", Impairment.Millis, "Delay, e.g. 20ms (needs sch_netem)"),
    jitter: setting<number>("jitter", Impairment.Millis, "Jitter around the delay (needs sch_netem)"),
    reorder: setting<number>("reorder", Impairment.PercentText, "Reordering (needs sch_netem and a delay)"),
    duplicate: setting<number>("duplicate", Impairment.PercentText, "Duplication (needs sch_netem)"),
    corrupt: setting<number>("corrupt", Impairment.PercentText, "Corruption (needs sch_netem)"),
    down: switchFlag("down", "Take the link down"),
    flap: setting<Impairment.Flap>(
      "flap",
      Impairment.FlapSpec,
      "Flap the link: DOWN,UP,COUNT, e.g. 2s,3s,5 (runs until done)"
    ),
    clear: switchFlag("clear", "Remove every impairment of this end"),
    verify: switchFlag("verify", "Measure what was achieved against the peer; fail when off by more than the tolerance")
  },
  Effect.fn(function* (f) {
    if (Option.isSome(f.flap)) {
      const schedule = f.flap.value
      yield* withStages((stages) => stages.flap(f.target, schedule))
      return yield* Console.log(`${f.target}: flapped ${schedule.count} times; the link is up`)
    }
    const settings: Impairment.Settings = f.clear
      ? {}
      : {
          ...some("rate", f.rate),
          ...some("loss", f.loss),
          ...some("delay", f.delay),
          ...some("jitter", f.jitter),
          ...some("reorder", f.reorder),
          ...some("duplicate", f.duplicate),
          ...some("corrupt", f.corrupt),
          ...(f.down ? { down: true } : {})
        }
    const done = yield* withStages((stages) => stages.impair(f.target, settings, { verify: f.verify }))
    yield* Console.log(
      `${done.target}: ${Impairment.describe(done.settings)}${done.peer ? ` (peer ${done.peer})` : ""}`
    )
    for (const m of done.measured) yield* Console.log(show(m))
  })
).pipe(
  Command.withDescription(
    "Impair a link end or network attachment of the current stage, live (replaces its impairment)"
  ),
  Command.withExamples([
    { command: "testbed stage impair client1:eth1 --loss 5% --rate 2mbit --verify", description: "Lossy, slow" },
    { command: "testbed stage impair router:net2 --clear", description: "Back to normal" }
  ])
)
