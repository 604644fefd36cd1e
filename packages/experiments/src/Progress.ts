/**
 * What a person watching `testbed run` sees, folded from the bus: on a terminal a live table of tests and their
 * current state, redrawn as events arrive; elsewhere (CI, pipes) one plain line per thing that happened.
 */
import { EventBus, type Event } from "@testbed/events"
import { Problems } from "@testbed/plugins"
import { Effect, Layer } from "effect"

export type Mode = "live" | "plain" | "none"

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

const seconds = (ms: unknown) => (typeof ms === "number" ? `${(ms / 1000).toFixed(1)}s` : "")

const data = (event: Event.Event): Record<string, unknown> =>
  typeof event.data === "object" && event.data !== null ? (event.data as Record<string, unknown>) : {}

/**
 * One plain line for an event, or undefined when it is not worth a line. Names and messages come from files and
 * from programs under test: control characters are shown escaped, never sent to the terminal as they are.
 */
export const line = (event: Event.Event): string | undefined => {
  const text = rawLine(event)
  return text === undefined ? undefined : Problems.sanitize(text)
}

const rawLine = (event: Event.Event): string | undefined => {
  const d = data(event)
  switch (event.type) {
    case "experiment.started":
      return `▶ ${d.name} → ${d.outputDir}`
    case "test.started":
      return `  … ${d.name}${Number(d.attempt) > 1 ? ` (attempt ${d.attempt})` : ""}`
    case "test.finished": {
      const retry = d.willRetry === true ? " — will retry" : ""
      const reason = typeof d.errorMessage === "string" ? ` — ${d.errorMessage}` : ""
      return `  ${symbols[String(d.status)] ?? "?"} ${d.status} ${d.name} ${seconds(d.durationMs)}${reason}${retry}`
    }
    case "experiment.finished":
      return `■ ${d.status}${typeof d.reason === "string" ? `: ${d.reason}` : ""}`
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
      const d = data(event)
      const name = String(d.name ?? event.entityId)
      if (event.type === "experiment.started") header.push(`▶ ${d.name} → ${d.outputDir}`)
      else if (event.type === "test.registered")
        rows.set(name, { state: "registered", status: undefined, attempt: 1, detail: undefined })
      else if (event.type === "test.started") {
        const row = rows.get(name)
        if (row !== undefined) Object.assign(row, { attempt: Number(d.attempt), status: undefined, detail: undefined })
      } else if (event.type === "test.state_changed") {
        const row = rows.get(event.entityId)
        if (row !== undefined && row.status === undefined) row.state = String(d.to)
      } else if (event.type === "test.finished") {
        const row = rows.get(name)
        if (row !== undefined) {
          row.status = d.willRetry === true ? `${d.status}, retrying` : String(d.status)
          row.detail = typeof d.errorMessage === "string" ? d.errorMessage.slice(0, 120) : seconds(d.durationMs)
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

/** Shows progress for the life of the layer's scope. */
export const layer = (mode: Mode): Layer.Layer<never, never, EventBus.EventBus> =>
  mode === "none" ? Layer.empty : Layer.effectDiscard(mode === "live" ? live : plain)

/** `live` on a terminal, `plain` in CI or when output is piped. */
export const detect = (): Mode => (process.stdout.isTTY === true && process.env.CI === undefined ? "live" : "plain")
