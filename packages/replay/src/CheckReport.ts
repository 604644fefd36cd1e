/**
 * What `replay check` prints about a loaded script file: the files read, then per entry its shape, its blobs — each
 * marked verified (content matches its sha1 name) or accepted unverified (a legacy CRC name, which cannot be
 * checked) — and its modules, then a count of both kinds of blobs.
 */
import * as Plan from "./Plan.ts"
import type { LoadedScript } from "./ScriptLoader.ts"

const blobLine = (blob: LoadedScript["blobs"][number]): string =>
  `    blob ${blob.name}: ${blob.bytes} bytes, ${
    blob.verified
      ? "verified (sha1 of the content)"
      : "accepted unverified (legacy CRC name: its content is not checked)"
  }`

const entryLine = (script: LoadedScript): string => {
  const s = Plan.stats(script.plan)
  const connections = s.connections === "any" ? "every connection" : `${s.connections} connection(s)`
  return (
    `  ${script.name}: ${connections}, ${s.exchanges} exchange(s), ${s.actions} action(s), ${s.sleeps} sleep(s), ` +
    `${s.commandBytes} byte(s) expected, ${s.responseBytes} byte(s) sent`
  )
}

export const lines = (file: string, scripts: ReadonlyArray<LoadedScript>): ReadonlyArray<string> => {
  const out = [`${file}: OK`]
  const first = scripts[0]
  if (first !== undefined) out.push(`  files: ${first.files.join(", ")}`)
  const blobs = new Map<string, boolean>()
  for (const script of scripts) {
    out.push(entryLine(script))
    for (const blob of script.blobs) {
      blobs.set(blob.name, blob.verified)
      out.push(blobLine(blob))
    }
    if (script.modules.length > 0) out.push(`    modules: ${script.modules.join(", ")}`)
  }
  if (blobs.size > 0) {
    const verified = [...blobs.values()].filter((v) => v).length
    out.push(`  blobs: ${verified} verified, ${blobs.size - verified} accepted unverified`)
  }
  return out
}

/** The same as a JSON value (`replay check --json`): the files read, each entry's figures, its blobs and modules. */
export const summary = (file: string, scripts: ReadonlyArray<LoadedScript>) => ({
  ok: true,
  file,
  files: scripts[0]?.files ?? [],
  entries: scripts.map((script) => ({
    name: script.name,
    ...Plan.stats(script.plan),
    blobs: script.blobs,
    modules: script.modules
  }))
})
