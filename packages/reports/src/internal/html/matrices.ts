// The matrices of the run report: one grid per matrix, its axes labelled (server ↓, client →), each cell coloured
// by the worst status of its tests and linked to that test's details.
import { type ExperimentSummary, type Matrix, type MatrixCell, statuses } from "../../ExperimentSummary.ts"
import { attr, text } from "../escape.ts"
import { axisCorner, cellAt, colour, matrixTitle } from "../labels.ts"
import { legend } from "./page.ts"
import { peaksByTest } from "./resources.ts"

/** The anchor of a test's details on the page, when the page details it. */
export type Anchor = (test: string) => string | undefined

/** The test a cell stands for: the first of its tests with the cell's (worst) status. */
const shownTest = (c: MatrixCell, statusOf: (test: string) => string | undefined) =>
  c.tests.find((t) => statusOf(t) === c.status) ?? c.tests[0]

const cellHtml = (
  c: MatrixCell | undefined,
  anchor: Anchor,
  statusOf: (test: string) => string | undefined,
  peaks: ReadonlyMap<string, string>
) => {
  if (c === undefined) return '<td class="empty">·</td>'
  const count = c.tests.length > 1 ? ` ×${c.tests.length}` : ""
  const test = shownTest(c, statusOf)
  const id = test === undefined ? undefined : anchor(test)
  const label = `${c.status}${count}`
  const inner = id === undefined ? `<span>${label}</span>` : `<a href="#${attr(id)}">${label}</a>`
  return `<td class="cell" style="background:${colour[c.status].bg};color:${colour[c.status].fg}" title="${attr(c.tests.map((t) => (peaks.has(t) ? `${t} — ${peaks.get(t)}` : t)).join("\n"))}">${inner}</td>`
}

const grid = (
  m: Matrix,
  anchor: Anchor,
  statusOf: (test: string) => string | undefined,
  peaks: ReadonlyMap<string, string>
): string => {
  const at = cellAt(m)
  const head = `<tr><th class="corner">${text(axisCorner(m))}</th>${m.columns.map((c) => `<th scope="col">${text(c)}</th>`).join("")}</tr>`
  const body = m.rows.map(
    (r) =>
      `<tr><th class="row" scope="row">${text(r)}</th>${m.columns.map((c) => cellHtml(at(r, c), anchor, statusOf, peaks)).join("")}</tr>`
  )
  return `<table class="matrix" aria-label="${attr(matrixTitle(m))}">${head}${body.join("")}</table>`
}

export const section = (s: ExperimentSummary, anchor: Anchor): string => {
  if (s.matrices.length === 0) return ""
  const status = new Map(s.tests.results.map((t) => [t.name, t.status]))
  const statusOf = (test: string) => status.get(test)
  const titled = s.matrices.length > 1 || s.matrices.some((m) => m.name !== null)
  const peaks = peaksByTest(s)
  const grids = s.matrices.map(
    (m) => `${titled ? `<h3>${text(matrixTitle(m))}</h3>` : ""}${grid(m, anchor, statusOf, peaks)}`
  )
  const present = statuses.filter((st) => s.matrices.some((m) => m.cells.some((c) => c.status === st)))
  return [
    `<h2>${s.matrices.length === 1 ? "Interop matrix" : "Interop matrices"}</h2>`,
    `<div class="panel">${grids.join("\n")}${legend(present)}</div>`
  ].join("\n")
}
