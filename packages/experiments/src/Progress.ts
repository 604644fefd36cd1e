/**
 * What a person watching `testbed run` sees, folded from the bus: on a terminal a live table of tests and their
 * current state, redrawn as events arrive; elsewhere (CI, pipes) one plain line per thing that happened.
 */
import { EventBus, type TestbedEvent } from "@testbed/events"
import { Problems } from "@testbed/plugins"
import { Effect, Layer } from "effect"

/** `events`: the event log itself on stdout, one JSON line per event, as `events.jsonl` gets it (`--events -`). */
export type Mode = "live" | "plain" | "none" | "events"

interface Row {
  state: string
  status: string | undefined
  attempt: number
  detail: string | undefined
}

const symbols: Record<string, string> = {
  passed: "✓",
  failed: "✗",
  timeout: "⏱",
  skipped: "-",
  unsupported: "∅",
  interrupted: "!"
}

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
      return `  ${symbols[d.status] ?? "?"} ${d.status} ${d.name} ${seconds(d.durationMs)}${reason}${retry}`
    }
    case "experiment.finished":
      return `■ ${event.data.status}${event.data.reason !== undefined ? `: ${event.data.reason}` : ""}`
    default:
      return undefined
  }
}

const write = (text: string) => Effect.sync(() => void process.stdout.write(text))

const live = Effect.gen(function* () {
  const bus = yield* EventBus.EventBus
  const rows = new Map<string, Row>()
  let drawn = 0
  const header: Array<string> = []
  const footer: Array<string> = []
  const draw = () => {
    const lines = [
      ...header,
      ...[...rows].map(([name, row]) => {
        const mark = row.status === undefined ? "…" : (symbols[row.status] ?? "?")
        const what = row.status ?? row.state.toLowerCase()
        const attempt = row.attempt > 1 ? ` (attempt ${row.attempt})` : ""
        return `  ${mark} ${what.padEnd(24)} ${name}${attempt}${row.detail === undefined ? "" : ` — ${row.detail}`}`
      }),
      ...footer
    ]
    const up = drawn > 0 ? `\x1b[${drawn}F` : ""
    drawn = lines.length
    // Only the table's own escape sequences reach the terminal; its text is sanitized (one row per line).
    return write(`${up}${lines.map((text) => `\x1b[2K${Problems.sanitize(text).replaceAll("\n", " ")}`).join("\n")}\n`)
  }
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
    for (const event of batch) {
      if (event.type === "experiment.started") header.push(`▶ ${event.data.name} → ${event.data.outputDir}`)
      else if (event.type === "test.registered")
        rows.set(event.data.name, { state: "registered", status: undefined, attempt: 1, detail: undefined })
      else if (event.type === "test.started") {
        const row = rows.get(event.data.name)
        if (row !== undefined) Object.assign(row, { attempt: event.data.attempt, status: undefined, detail: undefined })
      } else if (event.type === "test.state_changed") {
        const row = rows.get(event.entityId)
        if (row !== undefined && row.status === undefined) row.state = event.data.to
      } else if (event.type === "test.finished") {
        const d = event.data
        const row = rows.get(d.name)
        if (row !== undefined) {
          row.status = d.willRetry === true ? `${d.status}, retrying` : d.status
          row.detail = d.errorMessage !== undefined ? d.errorMessage.slice(0, 120) : seconds(d.durationMs)
        }
      } else if (event.type === "experiment.finished") footer.push(line(event)!)
    }
    return draw()
  })
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
