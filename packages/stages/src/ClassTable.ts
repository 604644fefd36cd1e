/**
 * The class table of a check run over several instances (one per student): a row per instance, a column per check,
 * each cell passed or failed, with each instance's score. As CSV (for a gradebook) and as a self-contained HTML page.
 */
export interface Cell {
  readonly instance: string
  readonly check: string
  readonly passed: boolean
  readonly detail: string
}

const order = (cells: ReadonlyArray<Cell>) => ({
  instances: [...new Set(cells.map((c) => c.instance))],
  checks: [...new Set(cells.map((c) => c.check))]
})

/** RFC 4180: every field quoted, quotes doubled; a leading = + - @ is prefixed with ' so no sheet runs it. */
const field = (s: string) => `"${(/^[=+\-@]/.test(s) ? `'${s}` : s).replaceAll('"', '""')}"`

export const csv = (cells: ReadonlyArray<Cell>): string => {
  const { instances, checks } = order(cells)
  const at = new Map(cells.map((c) => [`${c.instance}\u0000${c.check}`, c]))
  const rows = [["instance", ...checks, "passed", "total"].map(field).join(",")]
  for (const instance of instances) {
    const row = checks.map((check) => {
      const cell = at.get(`${instance}\u0000${check}`)
      return cell === undefined ? "" : cell.passed ? "passed" : "failed"
    })
    const passed = row.filter((r) => r === "passed").length
    rows.push([instance, ...row, String(passed), String(checks.length)].map(field).join(","))
  }
  return `${rows.join("\r\n")}\r\n`
}

const html = (s: string) =>
  s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;")

export const page = (title: string, cells: ReadonlyArray<Cell>): string => {
  const { instances, checks } = order(cells)
  const at = new Map(cells.map((c) => [`${c.instance}\u0000${c.check}`, c]))
  const head = `<tr><th>instance</th>${checks.map((c) => `<th>${html(c)}</th>`).join("")}<th>score</th></tr>`
  const body = instances.map((instance) => {
    const tds = checks.map((check) => {
      const cell = at.get(`${instance}\u0000${check}`)
      if (cell === undefined) return "<td>·</td>"
      return `<td class="${cell.passed ? "pass" : "fail"}" title="${html(cell.detail)}">${cell.passed ? "passed" : "failed"}</td>`
    })
    const passed = checks.filter((check) => at.get(`${instance}\u0000${check}`)?.passed === true).length
    return `<tr><th>${html(instance)}</th>${tds.join("")}<td>${passed}/${checks.length}</td></tr>`
  })
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>${html(title)}</title>
<style>body{font:14px system-ui,sans-serif;margin:24px}table{border-collapse:collapse}th,td{border:1px solid #d1d9e0;padding:6px 10px;text-align:center}td.pass{background:#1a7f37;color:#fff}td.fail{background:#cf222e;color:#fff}</style>
</head><body><h1>${html(title)}</h1><table>${head}${body.join("")}</table></body></html>
`
}
