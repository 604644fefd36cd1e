// Long labels broken into lines for SVG (which does not wrap text): at spaces where possible, inside a word when a
// word alone is too long, and cut with "…" only past `maxLines` (the caller then gives the whole label as a title).

/** Lines of at most `width` characters; `cut` when the label did not fit in `maxLines` lines. */
export const wrap = (label: string, width: number, maxLines: number): { lines: Array<string>; cut: boolean } => {
  const lines: Array<string> = []
  let line = ""
  const push = () => {
    lines.push(line)
    line = ""
  }
  for (const word of label.split(" ")) {
    let rest = word
    if (line !== "" && line.length + 1 + rest.length > width) push()
    while (rest.length > width) {
      if (line !== "") push()
      line = rest.slice(0, width)
      rest = rest.slice(width)
      push()
    }
    line = line === "" ? rest : `${line} ${rest}`
  }
  if (line !== "" || lines.length === 0) push()
  if (lines.length <= maxLines) return { lines, cut: false }
  const kept = lines.slice(0, maxLines)
  const last = kept[maxLines - 1] ?? ""
  kept[maxLines - 1] = `${last.slice(0, Math.max(0, width - 1))}…`
  return { lines: kept, cut: true }
}
