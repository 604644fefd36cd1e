// The parts every HTML page of this package is made of: the document head (style, Content-Security-Policy), the
// status pill, the summary cards and links that never leave the run directory.
import type { Status } from "../../ExperimentSummary.ts"
import { attr, href, insideRun, text } from "../escape.ts"
import { colour } from "../labels.ts"
import { css } from "./style.ts"

/**
 * The start of a page up to `<main>`. No network, no script but the one whose hash is given (`script`), no frames:
 * the policy forbids the rest, so even a name from the run that slipped through escaping could not run anything.
 */
export const head = (title: string, script?: { readonly source: string }): string => {
  const scripts = script === undefined ? "" : ` script-src ${script.source};`
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:;${scripts}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${text(title)}</title>
<style>${css}</style>
</head>
<body>
<main>
`
}

export const foot = (script?: { readonly code: string }): string =>
  `</main>\n${script === undefined ? "" : `<script>${script.code}</script>\n`}</body>\n</html>\n`

export const pill = (s: Status) =>
  `<span class="pill" style="background:${colour[s].bg};color:${colour[s].fg}">${s}</span>`

export const card = (label: string, value: string, c: string) =>
  `<div class="card" style="--c:${c}"><b>${text(value)}</b><span>${text(label)}</span></div>`

/** A link only to a path inside the run directory; anything else is shown as text, never followed. */
export const link = (label: string, path: string) =>
  insideRun(path)
    ? `<a href="${attr(href(path))}">${text(label)}</a>`
    : `${text(label === path ? path : `${label} (${path})`)} <i>(outside the run directory, not linked)</i>`

export const legend = (present: ReadonlyArray<Status>, extra = "") =>
  `<div class="legend">${present.map((st) => `<span><i style="background:${colour[st].bg}"></i>${st}</span>`).join("")}${extra}</div>`
