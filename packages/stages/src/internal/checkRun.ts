// A check run over one or more instances of the project: which records to check, the event log in the output
// directory (subscribed before the first event), the graph of each instance, the checks one after the other
// (break-fix checks change links: two at once would disturb each other), and the class table when there are
// several instances.
import { EventBus, Observers, type TestbedEvent } from "@testbed/events"
import { Clock, Effect, FileSystem, Layer, Path } from "effect"
import * as Catalog from "../Catalog.ts"
import * as ClassTable from "../ClassTable.ts"
import type * as Check from "../Check.ts"
import * as Stage from "../Stage.ts"
import { NoStageUp, StateFileFailed } from "../StageError.ts"
import { type Outcome, graphEvent, runCheck } from "./grading.ts"
import { records } from "./instance.ts"
import type { Project } from "./project.ts"
import { recorded } from "./targets.ts"

export interface CheckOptions {
  /** Only instances of this stage. */
  readonly stage?: string | undefined
  /** Only these instances (`default` is the project's own stage). Default: every instance of `stage`, or the own. */
  readonly instances?: ReadonlyArray<string> | undefined
  /** A checks file used instead of the stage's own checks. */
  readonly checksFile?: string | undefined
  /** Where the event log (and the class table) go. */
  readonly output: string
}

export interface CheckRun {
  readonly output: string
  readonly eventLog: string
  readonly outcomes: ReadonlyArray<Outcome>
  readonly instances: ReadonlyArray<string>
  /** Written when several instances were checked. */
  readonly classTable?: { readonly csv: string; readonly html: string } | undefined
}

const instanceName = (instance: string | undefined) => instance ?? "default"

const chosen = Effect.fn("CheckRun.chosen")(function* (project: Project, options: CheckOptions) {
  const all = yield* records(project.stateDir)
  const picked = all.filter((r) =>
    options.instances !== undefined
      ? options.instances.includes(instanceName(r.current.instance))
      : options.stage !== undefined
        ? r.current.name === options.stage
        : r.dir === project.recordDir
  )
  if (picked.length === 0) return yield* new NoStageUp()
  return picked
})

const otherChecks = Effect.fn("CheckRun.otherChecks")(function* (file: string, source: string) {
  const fs = yield* FileSystem.FileSystem
  const text = yield* fs
    .readFileString(file)
    .pipe(Effect.mapError((e) => new StateFileFailed({ path: file, reason: e.message })))
  const { stage } = yield* Catalog.loadFile(source)
  return yield* Stage.decodeChecks(text, file, stage)
})

// A check run is written as an experiment run (a test per check), so every report renders it.
const emitExperiment = <T extends TestbedEvent.TestbedEventType>(
  type: T,
  entityId: string,
  data: TestbedEvent.DataOf<T>
) => EventBus.emit({ type, entityId, data } as TestbedEvent.Input<T>)

/** One instance: its graph, then each check as a test. */
const checkInstance = Effect.fn("CheckRun.instance")(function* (
  project: Project,
  record: { readonly dir: string; readonly current: { readonly instance?: string | undefined } },
  checks: ReadonlyArray<Check.Check> | undefined,
  several: boolean
) {
  const own: Project = { ...project, instance: record.current.instance, recordDir: record.dir }
  const rec = yield* recorded(own, (stage) => (checks === undefined ? stage : { ...stage, checks }))
  const instance = instanceName(record.current.instance)
  yield* graphEvent(rec, record.current.instance)
  const outcomes: Array<Outcome> = []
  for (const check of rec.loaded.stage.checks ?? []) {
    const name = several ? `${instance}/${check.name}` : check.name
    yield* emitExperiment("test.registered", name, {
      name,
      participants: [],
      ...(check.description === undefined ? {} : { description: check.description }),
      ...(several ? { matrix: { row: instance, column: check.name } } : {})
    })
    yield* emitExperiment("test.started", name, { name, attempt: 1 })
    const outcome = yield* runCheck(rec, instance, check)
    yield* emitExperiment("assertion.checked", `${name}/assertion/0`, {
      test: name,
      index: 0,
      kind: outcome.kind,
      passed: outcome.passed,
      message: outcome.detail
    })
    yield* emitExperiment("test.finished", name, {
      name,
      attempt: 1,
      status: outcome.passed ? "passed" : "failed",
      durationMs: outcome.durationMs,
      ...(outcome.passed ? {} : { errorMessage: outcome.detail })
    })
    outcomes.push(outcome)
  }
  return outcomes
})

const writeClassTable = Effect.fn("CheckRun.classTable")(function* (
  output: string,
  title: string,
  outcomes: ReadonlyArray<Outcome>
) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const cells = outcomes.map((o) => ({ instance: o.instance, check: o.check, passed: o.passed, detail: o.detail }))
  const files = { csv: path.join(output, "class.csv"), html: path.join(output, "class.html") }
  const fail = (e: { readonly message: string }) => new StateFileFailed({ path: output, reason: e.message })
  yield* fs.writeFileString(files.csv, ClassTable.csv(cells)).pipe(Effect.mapError(fail))
  yield* fs.writeFileString(files.html, ClassTable.page(title, cells)).pipe(Effect.mapError(fail))
  return files
})

export const check = Effect.fn("Stages.check")(function* (project: Project, options: CheckOptions) {
  const path = yield* Path.Path
  const picked = yield* chosen(project, options)
  const first = picked[0]?.current
  const checks =
    options.checksFile === undefined || first === undefined
      ? undefined
      : yield* otherChecks(options.checksFile, first.source)
  const output = path.resolve(options.output)
  const eventLog = path.join(output, "events.jsonl")
  const several = picked.length > 1
  const runId = `check-${new Date(yield* Clock.currentTimeMillis).toISOString()}`
  const outcomes = yield* Effect.gen(function* () {
    yield* Layer.build(Observers.storage(eventLog))
    yield* emitExperiment("experiment.started", runId, {
      name: `stage check ${first?.name ?? ""}`,
      configurationFile: options.checksFile ?? first?.source ?? "",
      outputDir: output,
      settings: { stage: first?.name ?? "", instances: picked.map((r) => instanceName(r.current.instance)) }
    })
    const all: Array<Outcome> = []
    for (const record of picked) all.push(...(yield* checkInstance(project, record, checks, several)))
    yield* emitExperiment("experiment.finished", runId, { status: all.every((o) => o.passed) ? "completed" : "failed" })
    return all
  }).pipe(
    Effect.scoped,
    Effect.catchTag("EventLogUnavailable", (e) =>
      Effect.fail(new StateFileFailed({ path: eventLog, reason: e.message }))
    )
  )
  const classTable = several ? yield* writeClassTable(output, `stage check ${first?.name ?? ""}`, outcomes) : undefined
  return {
    output,
    eventLog,
    outcomes,
    instances: picked.map((r) => instanceName(r.current.instance)),
    classTable
  } satisfies CheckRun
})
