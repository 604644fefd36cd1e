/**
 * The live view's frame: what fits in the terminal, never more. A frame is at most `rows - 1` lines of at most
 * `columns - 1` characters, so redrawing it (cursor up by its height) never reaches the scrollback and no line
 * wraps. Finished tests are printed once above it (they scroll like plain output); the frame keeps the header, a
 * running total, the latest failures and the running tests with their current state and elapsed time.
 */
import { Problems } from "@testbed/plugins"

export interface TestRow {
  state: string
  status: string | undefined
  attempt: number
  detail: string | undefined
  /** When the current attempt started (ms), for its elapsed time. */
  startedAt: number | undefined
}

export interface ViewState {
  header: string | undefined
  footer: string | undefined
  readonly rows: Map<string, TestRow>
  /** Names of failed (or timed-out, interrupted) tests, latest last. */
  readonly failures: Array<string>
}

export interface Size {
  readonly rows: number
  readonly columns: number
}

export const emptyState = (): ViewState => ({ header: undefined, footer: undefined, rows: new Map(), failures: [] })

const symbols: Record<string, string> = {
  passed: "✓",
  failed: "✗",
  timeout: "⏱",
  skipped: "-",
  unsupported: "∅",
  interrupted: "!"
}

const failing = new Set(["failed", "timeout", "interrupted"])

export const symbolOf = (status: string): string => symbols[status] ?? "?"

export const isFailing = (status: string): boolean => failing.has(status)

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`

/** SGR colours, or none (NO_COLOR, or a terminal that is not one). */
export interface Paint {
  readonly red: (text: string) => string
  readonly green: (text: string) => string
  readonly dim: (text: string) => string
}

export const paint = (color: boolean): Paint =>
  color
    ? {
        red: (text) => `\x1b[31m${text}\x1b[39m`,
        green: (text) => `\x1b[32m${text}\x1b[39m`,
        dim: (text) => `\x1b[2m${text}\x1b[22m`
      }
    : { red: (text) => text, green: (text) => text, dim: (text) => text }

/** One line of text from files and programs: escaped, on one line, cut to the width (no wrapping). */
export const fit = (text: string, columns: number): string => {
  const clean = Problems.sanitize(text).replaceAll("\n", " ")
  const chars = Array.from(clean)
  const width = Math.max(10, columns - 1)
  return chars.length <= width ? clean : `${chars.slice(0, width - 1).join("")}…`
}

/** `12/40 done · 9 passed · 2 failed · 3 running · 25 waiting`, cut to the width (then without colours). */
const total = (state: ViewState, columns: number, p: Paint): string => {
  const counts = new Map<string, number>()
  let running = 0
  let waiting = 0
  for (const row of state.rows.values()) {
    if (row.status !== undefined) counts.set(row.status, (counts.get(row.status) ?? 0) + 1)
    else if (row.startedAt !== undefined) running++
    else waiting++
  }
  const done = [...counts.values()].reduce((a, b) => a + b, 0)
  const parts: Array<readonly [string, (text: string) => string]> = [...counts].map(([status, n]) => [
    `${n} ${status}`,
    status === "passed" ? p.green : isFailing(status) ? p.red : (text: string) => text
  ])
  if (running > 0) parts.push([`${running} running`, (text) => text])
  if (waiting > 0) parts.push([`${waiting} waiting`, p.dim])
  const head = `  ${done}/${state.rows.size} done`
  const plain = [head, ...parts.map(([text]) => text)].join(" · ")
  if (Array.from(plain).length > columns - 1) return fit(plain, columns)
  return [head, ...parts.map(([text, colour]) => colour(text))].join(" · ")
}

/**
 * The frame for `now` in a terminal of `size`: header, total, the latest failures (at most a third of the
 * room), then the running tests; what does not fit is counted ("… and 12 more running").
 */
export const frame = (state: ViewState, now: number, size: Size, p: Paint): ReadonlyArray<string> => {
  const height = Math.max(3, size.rows - 1)
  const top = [...(state.header === undefined ? [] : [fit(state.header, size.columns)]), total(state, size.columns, p)]
  const bottom = state.footer === undefined ? [] : [fit(state.footer, size.columns)]
  let room = height - top.length - bottom.length
  const failures = state.failures.map((name) => {
    const row = state.rows.get(name)
    const status = row?.status ?? "failed"
    return p.red(
      fit(`  ${symbolOf(status)} ${status} ${name}${row?.detail === undefined ? "" : ` — ${row.detail}`}`, size.columns)
    )
  })
  const failureRoom = Math.min(failures.length, Math.max(1, Math.floor(room / 3)))
  // The latest failures; older ones are counted above them (the total counts them all anyway).
  const shownFailures =
    failures.length <= failureRoom
      ? failures
      : failureRoom === 1
        ? failures.slice(-1)
        : [
            p.red(fit(`  … and ${failures.length - failureRoom + 1} more failed`, size.columns)),
            ...failures.slice(-(failureRoom - 1))
          ]
  room -= shownFailures.length
  const running = [...state.rows].filter(([, row]) => row.status === undefined && row.startedAt !== undefined)
  const runningLines = running.map(([name, row]) => {
    const attempt = row.attempt > 1 ? ` (attempt ${row.attempt})` : ""
    const elapsed = seconds(now - (row.startedAt ?? now))
    return fit(`  … ${name}${attempt} — ${row.state.toLowerCase()} ${elapsed}`, size.columns)
  })
  const shownRunning =
    runningLines.length <= room
      ? runningLines
      : room <= 0
        ? []
        : [
            ...runningLines.slice(0, room - 1),
            fit(`  … and ${runningLines.length - room + 1} more running`, size.columns)
          ]
  return [...top, ...shownFailures, ...shownRunning, ...bottom]
}

/** The line printed once, above the frame, when a test finishes. */
export const finishedLine = (name: string, row: TestRow, columns: number, p: Paint): string => {
  const status = row.status ?? "?"
  const text = fit(
    `  ${symbolOf(status.split(",")[0] ?? status)} ${status} ${name}${row.detail === undefined ? "" : ` — ${row.detail}`}`,
    columns
  )
  return isFailing(status.split(",")[0] ?? status) ? p.red(text) : status === "passed" ? p.green(text) : text
}
