// `stage check`: every check of a stage, on every instance asked for, each waited on until it converges (holds, or
// stops holding when `expect: fail`) or its bound passes. Break-fix checks break one link end on purpose, expect
// the check to notice, repair it, and expect recovery. The run is an event log in the output directory — an
// experiment of tests (one per instance and check, placed in a matrix of instances × checks when there are several
// instances) — which the reports package renders; the graph of each instance goes in it too.
import { Clock, Duration, Effect, Schedule } from "effect"
import type * as Check from "../Check.ts"
import * as Graph from "../Graph.ts"
import type * as Impairment from "../Impairment.ts"
import { look, type Look } from "./conditions.ts"
import { emit } from "./emit.ts"
import * as Impair from "./impair.ts"
import type { Recorded } from "./targets.ts"
import { resolve } from "./targets.ts"

export interface Outcome {
  readonly instance: string
  readonly check: string
  readonly kind: string
  readonly passed: boolean
  readonly detail: string
  readonly durationMs: number
}

const defaultWithin = Duration.seconds(10)
const defaultRecover = Duration.seconds(30)

/** Looks every 500 ms until the condition's holding is `wanted`, or `within` passes; engine trouble is "no". */
const converge = (rec: Recorded, probe: Check.Probe, wanted: boolean, within: Duration.Duration) => {
  let last: Look = { holds: !wanted, detail: "not looked at yet" }
  const once = look(rec, probe).pipe(
    Effect.catch((e: { readonly message: string }) => Effect.succeed({ holds: false, detail: e.message })),
    Effect.tap((seen) => Effect.sync(() => (last = seen)))
  )
  return once.pipe(
    Effect.repeat({ until: (seen) => seen.holds === wanted, schedule: Schedule.spaced("500 millis") }),
    Effect.timeoutOrElse({ duration: within, orElse: () => Effect.succeed(last) }),
    Effect.map((seen) => ({ converged: seen.holds === wanted, detail: seen.detail }))
  )
}

/** The break: the end's settings replaced by the check's; the repair: the settings it had put back. */
const breakFix = Effect.fn("Grading.breakFix")(function* (
  rec: Recorded,
  check: Check.Check & { breakFix: Check.BreakFix }
) {
  const { impair, check: probe } = check.breakFix
  const within = check.within ?? defaultWithin
  const before = yield* converge(rec, probe, true, within)
  if (!before.converged) return { passed: false, detail: `did not hold before the break: ${before.detail}` }
  const { target, verify: _verify, ...broken } = impair
  const previous: Impairment.Settings = rec.current.impairments?.[target] ?? {}
  const { end } = yield* resolve(rec, target)
  const repaired = yield* Effect.gen(function* () {
    yield* Impair.apply(end, broken, previous)
    yield* emit("impaired", rec.name, { target, description: `break: ${JSON.stringify(broken)}` })
    return yield* converge(rec, probe, false, within)
  }).pipe(
    Effect.ensuring(
      Effect.ignore(
        Effect.andThen(Impair.apply(end, previous, broken), emit("impairment_cleared", rec.name, { target }))
      )
    )
  )
  if (!repaired.converged) return { passed: false, detail: `still held once ${target} was broken: ${repaired.detail}` }
  const after = yield* converge(rec, probe, true, check.breakFix.recover ?? defaultRecover)
  return after.converged
    ? { passed: true, detail: `broken and recovered: ${after.detail}` }
    : { passed: false, detail: `did not recover once ${target} was repaired: ${after.detail}` }
})

const kindOf = (check: Check.Check) =>
  Object.keys(check).find((k) => ["reach", "route", "listens", "command", "file", "breakFix"].includes(k)) ?? "check"

/** One check on one instance. */
export const runCheck = Effect.fn("Grading.runCheck")(function* (rec: Recorded, instance: string, check: Check.Check) {
  const started = yield* Clock.currentTimeMillis
  const result =
    "breakFix" in check
      ? yield* breakFix(rec, check)
      : yield* Effect.map(
          converge(rec, check, check.expect !== "fail", check.within ?? defaultWithin),
          ({ converged, detail }) => ({
            passed: converged,
            detail: check.expect === "fail" && converged ? `does not hold, as expected: ${detail}` : detail
          })
        )
  const durationMs = (yield* Clock.currentTimeMillis) - started
  return { instance, check: check.name, kind: kindOf(check), ...result, durationMs } satisfies Outcome
})

/** The picture of an instance as it runs, as an event for the report. */
export const graphEvent = Effect.fn("Grading.graph")(function* (rec: Recorded, instance: string | undefined) {
  const topology = Graph.fromStage(rec.loaded.stage, { addresses: rec.addresses }, rec.current.impairments ?? {})
  yield* emit("graph", rec.name, {
    ...(instance === undefined ? {} : { instance }),
    mermaid: Graph.mermaid(topology),
    dot: Graph.dot(topology),
    svg: Graph.svg(topology)
  })
  return topology
})
