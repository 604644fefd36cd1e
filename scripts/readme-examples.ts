// The runnable code blocks of a Markdown file: fences whose info string says `runnable`, so examples in READMEs
// are run by the tests (apps/testbed/test/ReadmeExamples.test.ts, and Registry.test.ts against installed
// packages) and cannot rot. Forms:
//   ```ts runnable                 a program, run with node (type stripping) in the example's directory
//   ```sh runnable                 a shell script, run with bash -euo pipefail in the example's directory
//   ```yaml runnable file=a.yaml   a file the next blocks use, written there (any language)
// Blocks of one file run in order, in one directory. Other blocks are documentation only.
//   node_modules/.bin/node scripts/readme-examples.ts README.md …   lists them
import { readFileSync } from "node:fs"

export interface Example {
  /** The Markdown file and the line of the opening fence, for messages. */
  readonly source: string
  readonly line: number
  readonly language: string
  readonly kind: "program" | "shell" | "file"
  /** For `file=`: the path to write, relative to the example's directory (never absolute, never `..`). */
  readonly file?: string
  readonly code: string
}

const opening = /^(`{3,})(\w+)\s+(.*)$/
const fileAttribute = /(?:^|\s)file=(\S+)/

const kindOf = (language: string, file: string | undefined): Example["kind"] | undefined => {
  if (file !== undefined) return "file"
  if (language === "ts" || language === "typescript") return "program"
  if (language === "sh" || language === "bash" || language === "shell") return "shell"
  return undefined
}

const safeFile = (file: string): boolean =>
  !file.startsWith("/") && !file.split("/").includes("..") && file.split("/").every((part) => part !== "")

/** The runnable blocks of a Markdown text, in order. A runnable block that cannot be run is an error. */
export const extract = (source: string, text: string): ReadonlyArray<Example> => {
  const lines = text.split("\n")
  const examples: Array<Example> = []
  for (let index = 0; index < lines.length; index++) {
    const match = opening.exec(lines[index] ?? "")
    if (match === null) continue
    const [, fence = "```", language = "", rest = ""] = match
    const closing = lines.findIndex((line, at) => at > index && line.trimEnd() === fence)
    if (closing < 0) throw new Error(`${source}:${index + 1}: code block never closed`)
    const attributes = rest.split(/\s+/)
    if (attributes.includes("runnable")) {
      const file = fileAttribute.exec(rest)?.[1]
      const kind = kindOf(language, file)
      if (kind === undefined)
        throw new Error(`${source}:${index + 1}: a runnable ${language} block needs file=PATH (only ts and sh run)`)
      if (file !== undefined && !safeFile(file))
        throw new Error(`${source}:${index + 1}: file=${file} must be a relative path inside the example directory`)
      examples.push({
        source,
        line: index + 1,
        language,
        kind,
        ...(file === undefined ? {} : { file }),
        code: `${lines.slice(index + 1, closing).join("\n")}\n`
      })
    }
    index = closing
  }
  return examples
}

export const extractFile = (path: string): ReadonlyArray<Example> => extract(path, readFileSync(path, "utf8"))

if (import.meta.main) {
  for (const path of process.argv.slice(2)) {
    for (const example of extractFile(path))
      console.log(`${example.source}:${example.line} ${example.kind}${example.file ? ` ${example.file}` : ""}`)
  }
}
