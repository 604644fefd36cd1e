// The matrices of a run, from the positions its tests declared: one per matrix name, rows and columns in the order
// they were first seen, each cell coloured by the worst status of its tests.
import * as ES from "../ExperimentSummary.ts"

interface CellAcc {
  readonly row: string
  readonly column: string
  readonly tests: Array<string>
  readonly statuses: Array<ES.Status>
}

interface MatrixAcc {
  readonly name: string | null
  // Positions kept in maps: a run of 100,000 tests must not search lists per test.
  readonly rows: Map<string, number>
  readonly columns: Map<string, number>
  readonly cells: Map<string, CellAcc>
  rowsAreServers: boolean
  columnsAreClients: boolean
}

const newMatrix = (name: string | null): MatrixAcc => ({
  name,
  rows: new Map(),
  columns: new Map(),
  cells: new Map(),
  rowsAreServers: true,
  columnsAreClients: true
})

const plays = (t: ES.TestResult, role: "server" | "client", implementation: string) =>
  t.participants.some((p) => p.role === role && p.implementation === implementation)

const place = (m: MatrixAcc, t: ES.TestResult, position: ES.MatrixPosition): void => {
  const { column, row } = position
  if (!m.rows.has(row)) m.rows.set(row, m.rows.size)
  if (!m.columns.has(column)) m.columns.set(column, m.columns.size)
  m.rowsAreServers &&= plays(t, "server", row)
  m.columnsAreClients &&= plays(t, "client", column)
  const key = JSON.stringify([row, column])
  const cell = m.cells.get(key) ?? { row, column, tests: [], statuses: [] }
  cell.tests.push(t.name)
  cell.statuses.push(t.status)
  m.cells.set(key, cell)
}

const finishMatrix = (m: MatrixAcc): ES.Matrix => {
  const order = (c: CellAcc) => (m.rows.get(c.row) ?? 0) * m.columns.size + (m.columns.get(c.column) ?? 0)
  const cells = [...m.cells.values()].sort((a, b) => order(a) - order(b))
  return {
    name: m.name,
    row_axis: m.rowsAreServers ? "server" : null,
    column_axis: m.columnsAreClients ? "client" : null,
    rows: [...m.rows.keys()],
    columns: [...m.columns.keys()],
    cells: cells.map((c) => ({ row: c.row, column: c.column, tests: c.tests, status: ES.worst(c.statuses) }))
  }
}

/** The name of the summary grid drawn after an interop run's per-case grids. */
export const summaryName = "summary: all cases"

const sameAxes = (a: ES.Matrix, b: ES.Matrix) =>
  a.rows.join("\n") === b.rows.join("\n") && a.columns.join("\n") === b.columns.join("\n")

/**
 * A pair's verdict over every case: failed (or timeout, interrupted) when one case is; else passed when one case
 * passed — a case the stack does not support is not held against the pair; else what the cases were.
 */
const pairStatus = (statuses: ReadonlyArray<ES.Status>): ES.Status => {
  const verdict = ES.worst(statuses)
  if (ES.isFailure(verdict)) return verdict
  return statuses.some((status) => status === "passed" || status === "flaky")
    ? ES.worst(statuses.filter((status) => status === "passed" || status === "flaky"))
    : verdict
}

/**
 * The interop runner's overview: when a run has several named server × client grids over the same servers and
 * clients (one per test case), one more grid whose cell holds the pair's tests of every case.
 */
const summaryOf = (
  matrices: ReadonlyArray<ES.Matrix>,
  statusOf: ReadonlyMap<string, ES.Status>
): ES.Matrix | undefined => {
  const [first] = matrices
  if (first === undefined || matrices.length < 2) return undefined
  const grids = matrices.every(
    (m) => m.name !== null && m.row_axis === "server" && m.column_axis === "client" && sameAxes(m, first)
  )
  if (!grids) return undefined
  const cells = first.cells.map((cell) => {
    const tests = matrices.flatMap(
      (m) => m.cells.find((c) => c.row === cell.row && c.column === cell.column)?.tests ?? []
    )
    return {
      row: cell.row,
      column: cell.column,
      tests,
      status: pairStatus(tests.map((t) => statusOf.get(t) ?? "skipped"))
    }
  })
  return { ...first, name: summaryName, cells }
}

/**
 * One matrix per name, in the order their first test appears; none when no test declared a position. Several
 * per-case grids over the same servers and clients get a summary grid after them (`summaryName`).
 */
export const matricesOf = (results: ReadonlyArray<ES.TestResult>): Array<ES.Matrix> => {
  const matrices = namedMatrices(results)
  const summary = summaryOf(matrices, new Map(results.map((t) => [t.name, t.status])))
  return summary === undefined ? matrices : [...matrices, summary]
}

const namedMatrices = (results: ReadonlyArray<ES.TestResult>): Array<ES.Matrix> => {
  const byName = new Map<string | null, MatrixAcc>()
  for (const t of results) {
    if (t.matrix === null) continue
    let m = byName.get(t.matrix.name)
    if (m === undefined) {
      m = newMatrix(t.matrix.name)
      byName.set(t.matrix.name, m)
    }
    place(m, t, t.matrix)
  }
  return [...byName.values()].map(finishMatrix)
}
