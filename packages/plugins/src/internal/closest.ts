/**
 * The known name nearest to a misspelt one (`runn` → `run`, `exit_codes` → `exit_code`), for "did you mean"
 * hints. Names are short (keys, literals), so the quadratic edit distance is bounded by `maxLength`.
 */

/** Longer names are not compared: a key from a file could be a megabyte long. */
const maxLength = 64

/** Levenshtein distance (insert, delete, substitute: 1 each). */
export const editDistance = (a: string, b: string): number => {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1)
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution))
    }
    previous = current
  }
  return previous[b.length] ?? 0
}

/** The candidate within a third of the name's length in edits (at least 1), the nearest first; else undefined. */
export const closest = (name: string, candidates: ReadonlyArray<string>): string | undefined => {
  if (name.length > maxLength) return undefined
  const limit = Math.max(1, Math.floor(name.length / 3))
  let best: { readonly name: string; readonly distance: number } | undefined
  for (const candidate of candidates) {
    if (candidate.length > maxLength) continue
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase())
    if (distance <= limit && (best === undefined || distance < best.distance)) best = { name: candidate, distance }
  }
  return best?.name
}
