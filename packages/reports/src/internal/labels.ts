// How each status is shown to people: a mark for text reports and a colour pair for the HTML report.
import type { Matrix, MatrixCell, RunStatus, Status } from "../ExperimentSummary.ts"

export const mark: Record<Status, string> = {
  passed: "✅",
  flaky: "🟡",
  failed: "❌",
  timeout: "⏱️",
  interrupted: "⛔",
  unsupported: "➖",
  skipped: "⏭️",
  runner_lost: "🔌",
  unschedulable: "🚫"
}

export const runMark: Record<RunStatus, string> = {
  completed: "✅",
  failed: "❌",
  finished_early: "⚠️",
  interrupted: "⛔"
}

/** Background and text colours, readable on white, distinguishable without relying on red/green alone. */
export const colour: Record<Status, { readonly bg: string; readonly fg: string }> = {
  passed: { bg: "#1a7f37", fg: "#ffffff" },
  flaky: { bg: "#d4a72c", fg: "#1f2328" },
  failed: { bg: "#cf222e", fg: "#ffffff" },
  timeout: { bg: "#bc4c00", fg: "#ffffff" },
  interrupted: { bg: "#8250df", fg: "#ffffff" },
  unsupported: { bg: "#8c959f", fg: "#ffffff" },
  skipped: { bg: "#d0d7de", fg: "#1f2328" },
  runner_lost: { bg: "#57606a", fg: "#ffffff" },
  unschedulable: { bg: "#953800", fg: "#ffffff" }
}

/** The cell at a row and column, found in constant time (a run may declare thousands of cells). */
export const cellAt = (matrix: Matrix): ((row: string, column: string) => MatrixCell | undefined) => {
  const byPosition = new Map<string, MatrixCell>()
  for (const cell of matrix.cells) byPosition.set(JSON.stringify([cell.row, cell.column]), cell)
  return (row, column) => byPosition.get(JSON.stringify([row, column]))
}

/** The heading of a matrix: its name, or what the run's one unnamed matrix is. */
export const matrixTitle = (matrix: Matrix): string => matrix.name ?? "Interop matrix"

/** What the rows and the columns of a matrix are, for its corner cell: `server ↓ · client →`. */
export const axisCorner = (matrix: Matrix): string =>
  `${matrix.row_axis ?? "row"} ↓ · ${matrix.column_axis ?? "column"} →`
