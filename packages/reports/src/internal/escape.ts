// Escaping for every text that comes from a run (test names, error messages, paths): XML, HTML, Markdown.
// Names and messages are written by the implementations under test, so they are hostile input.

// Characters XML 1.0 cannot carry at all (not even as references): C0 controls other than tab/newline/return,
// lone surrogates, U+FFFE/U+FFFF. They are shown as `\xNN` / `\uNNNN` so nothing is silently lost.
const notXmlChar =
  /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

const visible = (c: string): string => {
  const code = c.charCodeAt(0)
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`
}

/** Text fit for an XML 1.0 document: invalid characters made visible. */
export const xmlSafe = (s: string): string => s.replace(notXmlChar, visible)

/** Element text content (XML and HTML). */
export const text = (s: string): string => xmlSafe(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")

/** A double- or single-quoted attribute value; newlines and tabs kept as references so parsers do not fold them. */
export const attr = (s: string): string =>
  text(s)
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;")
    .replace(/\n/g, "&#10;")
    .replace(/\r/g, "&#13;")
    .replace(/\t/g, "&#9;")

/**
 * Whether a path from the run (an artifact, a logs folder) stays inside the run directory the report is written
 * to: relative, and never above its root once `.` and `..` are resolved. Only such paths become links, so a
 * report never points its reader at `/etc/…`, `../../elsewhere` or `//host/…`.
 */
export const insideRun = (path: string): boolean => {
  if (path === "" || path.startsWith("/") || path.includes("\\") || /^[a-zA-Z]:/.test(path)) return false
  let depth = 0
  for (const part of path.split("/")) {
    if (part === "..") depth--
    else if (part !== "." && part !== "") depth++
    if (depth < 0) return false
  }
  return true
}

/** A relative or absolute file path as a URL reference (href, Markdown link target). */
export const href = (path: string): string => {
  // A path that looks like a URL scheme (`javascript:…`) must stay a relative path.
  const safe = /^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(path) ? `./${path}` : path
  return encodeURI(xmlSafe(safe)).replace(/[()'#?]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
}

/** Inline Markdown (a table cell, a heading): no HTML, no links, no emphasis, no table breaks, one line. */
export const md = (s: string): string =>
  xmlSafe(s)
    .replace(/\r?\n|\r/g, " ")
    .replace(/[\\`*_[\]|~]/g, (c) => `\\${c}`)
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")

/** A fenced Markdown code block that no content can close early. */
export const mdFence = (s: string, info = "text"): string => {
  // A loop, not `Math.max(...runs)`: a message with a hundred thousand backtick runs must not overflow the stack.
  let longest = 2
  for (const m of s.matchAll(/`+/g)) if (m[0].length > longest) longest = m[0].length
  const fence = "`".repeat(longest + 1)
  return `${fence}${info}\n${xmlSafe(s)}\n${fence}`
}

/** Seconds with three decimals, the way JUnit and people read durations. */
export const seconds = (s: number): string => (Number.isFinite(s) && s > 0 ? s : 0).toFixed(3)

/** A short human duration: 850 ms, 12.3 s, 4 min 05 s. */
export const human = (ms: number): string => {
  if (!Number.isFinite(ms) || ms < 0) return "0 ms"
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`
  const total = Math.round(ms / 1000)
  return `${Math.floor(total / 60)} min ${String(total % 60).padStart(2, "0")} s`
}
