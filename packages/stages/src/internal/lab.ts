// The lab side of a running stage: links made and declared impairments applied when it comes up; impairments set,
// cleared, flapped and verified live. Every change is an event (`stage.impaired`, `stage.impairment_cleared`,
// `stage.link_changed`, `stage.impairment_verified`) and the impairments in force are kept in the stage's record.
import { Effect } from "effect"
import * as Impairment from "../Impairment.ts"
import type { Loaded } from "../Stage.ts"
import { ImpairmentOffTarget, TargetNotFound } from "../StageError.ts"
import * as StageState from "../StageState.ts"
import { emit } from "./emit.ts"
import * as Impair from "./impair.ts"
import * as Links from "./links.ts"
import type { Project } from "./project.ts"
import { nodeNamespace, recorded, resolve, type View, viewOf } from "./targets.ts"
import * as Verify from "./verify.ts"

const where = (project: Project, target: string) => ({
  target,
  ...(project.instance === undefined ? {} : { instance: project.instance })
})

const impairedEvent = (project: Project, target: string, s: Impairment.Settings) => ({
  ...where(project, target),
  description: Impairment.describe(s),
  ...(s.rate === undefined ? {} : { rateBits: s.rate }),
  ...(s.loss === undefined ? {} : { lossPercent: s.loss }),
  ...(s.delay === undefined ? {} : { delayMs: s.delay }),
  ...(s.jitter === undefined ? {} : { jitterMs: s.jitter }),
  ...(s.reorder === undefined ? {} : { reorderPercent: s.reorder }),
  ...(s.duplicate === undefined ? {} : { duplicatePercent: s.duplicate }),
  ...(s.corrupt === undefined ? {} : { corruptPercent: s.corrupt }),
  ...(s.down === undefined ? {} : { down: s.down })
})

const settingsOf = (declared: Impairment.Declared): Impairment.Settings => {
  const { target: _target, verify: _verify, ...settings } = declared
  return settings
}

/** Applies one impairment to a resolved end and says so on the bus. */
const applyTo = Effect.fn("Lab.applyTo")(function* (
  project: Project,
  view: View,
  target: string,
  settings: Impairment.Settings,
  previous: Impairment.Settings | undefined
) {
  const resolved = yield* resolve(view, target)
  yield* Impair.apply(resolved.end, settings, previous)
  if (Impairment.isClear(settings)) yield* emit("impairment_cleared", view.name, where(project, target))
  else yield* emit("impaired", view.name, impairedEvent(project, target, settings))
  return resolved
})

/**
 * During `up`, once every container runs: the links, then the declared impairments (measured when they say
 * `verify: true`). Returns the impairments in force, for the record.
 */
export const setUp = Effect.fn("Lab.setUp")(function* (project: Project, loaded: Loaded) {
  const { stage } = loaded
  if ((stage.links ?? []).length === 0 && (stage.impairments ?? []).length === 0) return {}
  const view = yield* viewOf(project, stage.name, loaded)
  for (const link of stage.links ?? []) {
    yield* Links.create(link, yield* nodeNamespace(view, link.a.node), yield* nodeNamespace(view, link.b.node))
  }
  const inForce: Record<string, Impairment.Settings> = {}
  for (const declared of stage.impairments ?? []) {
    const settings = settingsOf(declared)
    const resolved = yield* applyTo(project, view, declared.target, settings, inForce[declared.target])
    inForce[declared.target] = settings
    if (declared.verify === true) yield* verifyEnd(project, view.name, resolved, settings)
  }
  return inForce
})

/** Measures the end against its peer; fails with `ImpairmentOffTarget` on the first measure off by too much. */
const verifyEnd = Effect.fn("Lab.verify")(function* (
  project: Project,
  stage: string,
  resolved: Effect.Success<ReturnType<typeof resolve>>,
  settings: Impairment.Settings
) {
  const target = resolved.end.target
  if (resolved.peer === undefined) {
    return yield* new TargetNotFound({ target, reason: "nothing to measure against: no peer on that link or network" })
  }
  const measured = yield* Verify.measure(resolved.end, resolved.peer, settings)
  for (const m of measured) {
    yield* emit("impairment_verified", stage, { ...where(project, target), peer: resolved.peer.name, ...m })
  }
  const off = measured.find((m) => !m.withinTolerance)
  if (off !== undefined) {
    const show = (n: number) =>
      off.unit === "bit/s" ? Impairment.formatRate(Math.round(n)) : `${n.toFixed(2)}${off.unit}`
    return yield* new ImpairmentOffTarget({
      target,
      measure: off.measure,
      setting: show(off.setting),
      achieved: show(off.achieved),
      tolerance: `±${show(off.tolerance)}`
    })
  }
  return measured
})

export interface ImpairOptions {
  readonly verify?: boolean
}

/** Sets the impairment of `target` (replacing what it had) on the recorded stage; measured with `verify`. */
export const impair = Effect.fn("Lab.impair")(function* (
  project: Project,
  target: string,
  settings: Impairment.Settings,
  options: ImpairOptions = {}
) {
  const rec = yield* recorded(project)
  const previous = rec.current.impairments?.[target]
  const resolved = yield* applyTo(project, rec, target, settings, previous)
  const { [target]: _, ...others } = rec.current.impairments ?? {}
  const impairments = Impairment.isClear(settings) ? others : { ...others, [target]: settings }
  yield* StageState.write(project.recordDir, { ...rec.current, impairments })
  const measured =
    options.verify === true || settings.verify === true ? yield* verifyEnd(project, rec.name, resolved, settings) : []
  return { target, settings, measured, peer: resolved.peer?.name }
})

/** Takes the link of `target` down and up on a schedule, in the foreground; left up at the end. */
export const flap = Effect.fn("Lab.flap")(function* (project: Project, target: string, schedule: Impairment.Flap) {
  const rec = yield* recorded(project)
  const resolved = yield* resolve(rec, target)
  yield* Impair.flap(resolved.end, schedule, (up) =>
    Effect.ignore(emit("link_changed", rec.name, { ...where(project, target), up }))
  )
})
