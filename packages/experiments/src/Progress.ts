/**
 * What a person watching `testbed run` sees, folded from the bus: on a terminal a live view that stays within the
 * terminal (finished tests printed once, then a frame with the total, the latest failures and the running tests
 * with their state and elapsed time; see internal/liveView.ts); elsewhere (CI, pipes) one plain line per thing that
 * happened.
 */
import { EventBus, type TestbedEvent } from "@testbed/events"
import { Problems } from "@testbed/plugins"
import { Clock, Duration, Effect, Layer, Schedule } from "effect"
import * as LiveView from "./internal/liveView.ts"

/** `events`: the event log itself on stdout, one JSON line per event, as `events.jsonl` gets it (`--events -`). */
export type Mode = "live" | "plain" | "none" | "events"

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`

/**
 * One plain line for an event, or undefined when it is not worth a line. Names and messages come from files and
 * from programs under test: control characters are shown escaped, never sent to the terminal as they are.
 */
export const line = (event: TestbedEvent.TestbedEvent): string | undefined => {
  const text = rawLine(event)
  return text === undefined ? undefined : Problems.sanitize(text)
}

const rawLine = (event: TestbedEvent.TestbedEvent): string | undefined => {
  switch (event.type) {
    case "experiment.started":
      return `▶ ${event.data.name} → ${event.data.outputDir}`
    case "test.started": {
      const { name, attempt } = event.data
      return `  … ${name}${attempt > 1 ? ` (attempt ${attempt})` : ""}`
    }
    case "test.finished": {
      const d = event.data
      const retry = d.willRetry === true ? " — will retry" : ""
      const reason = d.errorMessage !== undefined ? ` — ${d.errorMessage}` : ""
      return `  ${LiveView.symbolOf(d.status)} ${d.status} ${d.name} ${seconds(d.durationMs)}${reason}${retry}`
    }
    case "experiment.finished":
      return `■ ${event.data.status}${event.data.reason !== undefined ? `: ${event.data.reason}` : ""}`
    default:
      return undefined
  }
}

const write = (text: string) => Effect.sync(() => void process.stdout.write(text))

/** The terminal's size now (it may be resized during a run); a default when the stream does not say. */
const terminalSize = (): LiveView.Size => ({
  rows: process.stdout.rows ?? 24,
  columns: process.stdout.columns ?? 80
})

/** Colour unless NO_COLOR is set (https://no-color.org) or the terminal is dumb. */
export const colorWanted = (env: NodeJS.ProcessEnv = process.env): boolean =>
  (env.NO_COLOR === undefined || env.NO_COLOR === "") && env.TERM !== "dumb"

/** How often the elapsed times of running tests are refreshed. */
const tick = Duration.seconds(1)

/** Folds one event into the view; returns the lines to print once above the frame (a finished test). */
const fold = (state: LiveView.ViewState, event: TestbedEvent.TestbedEvent, now: number, p: LiveView.Paint) => {
  const rows = state.rows
  if (event.type === "experiment.started") state.header = `▶ ${event.data.name} → ${event.data.outputDir}`
  else if (event.type === "test.registered")
    rows.set(event.data.name, {
      state: "registered",
      status: undefined,
      attempt: 1,
      detail: undefined,
      startedAt: undefined
    })
  else if (event.type === "test.started") {
    const row = rows.get(event.data.name)
    if (row !== undefined)
      Object.assign(row, { attempt: event.data.attempt, status: undefined, detail: undefined, startedAt: now })
  } else if (event.type === "test.state_changed") {
    const row = rows.get(event.entityId)
    if (row !== undefined && row.status === undefined) row.state = event.data.to
  } else if (event.type === "test.finished") {
    const d = event.data
    const row = rows.get(d.name)
    if (row === undefined) return []
    row.status = d.willRetry === true ? `${d.status}, retrying` : d.status
    row.detail = d.errorMessage !== undefined ? d.errorMessage.slice(0, 200) : seconds(d.durationMs)
    if (LiveView.isFailing(d.status) && d.willRetry !== true && !state.failures.includes(d.name))
      state.failures.push(d.name)
    const printed = [LiveView.finishedLine(d.name, row, terminalSize().columns, p)]
    // A test that will be retried runs again: back to running for its next attempt.
    if (d.willRetry === true) Object.assign(row, { status: undefined, startedAt: undefined })
    return printed
  } else if (event.type === "experiment.finished") state.footer = line(event)
  return []
}

const live = Effect.gen(function* () {
  const bus = yield* EventBus.EventBus
  const p = LiveView.paint(colorWanted())
  const state = LiveView.emptyState()
  let drawn = 0
  // Up to the frame's first line, clear to the end of the screen, print what is final, then the new frame. The
  // frame is never taller than the terminal, so going up never reaches the scrollback.
  const draw = (once: ReadonlyArray<string>) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const lines = LiveView.frame(state, now, terminalSize(), p)
      const up = drawn > 0 ? `\x1b[${drawn}F` : ""
      drawn = lines.length
      return write(`${up}\x1b[J${[...once, ...lines].map((text) => `${text}\n`).join("")}`)
    })
  const shown = new Set([
    "experiment.started",
    "test.registered",
    "test.started",
    "test.state_changed",
    "test.finished",
    "experiment.finished"
  ])
  yield* bus.observe((batch) => {
    if (!batch.some((event) => shown.has(event.type))) return Effect.void
    return Effect.flatMap(Clock.currentTimeMillis, (now) => draw(batch.flatMap((event) => fold(state, event, now, p))))
  })
  const running = () => [...state.rows.values()].some((row) => row.status === undefined && row.startedAt !== undefined)
  yield* Effect.forkScoped(
    Effect.repeat(
      Effect.suspend(() => (running() && state.footer === undefined ? draw([]) : Effect.void)),
      Schedule.spaced(tick)
    )
  )
})

const plain = Effect.gen(function* () {
  const bus = yield* EventBus.EventBus
  yield* bus.observe((batch) => {
    const text = batch.flatMap((event) => {
      const shown = line(event)
      return shown === undefined ? [] : [shown]
    })
    return text.length === 0 ? Effect.void : write(`${text.join("\n")}\n`)
  })
})

const events = Effect.gen(function* () {
  const bus = yield* EventBus.EventBus
  yield* bus.observe((batch) => write(batch.map((event) => `${JSON.stringify(event)}\n`).join("")))
})

/** Shows progress for the life of the layer's scope. */
export const layer = (mode: Mode): Layer.Layer<never, never, EventBus.EventBus> =>
  mode === "none" ? Layer.empty : Layer.effectDiscard(mode === "live" ? live : mode === "events" ? events : plain)

/** `live` on a terminal, `plain` in CI or when output is piped. */
export const detect = (): Mode => (process.stdout.isTTY === true && process.env.CI === undefined ? "live" : "plain")
