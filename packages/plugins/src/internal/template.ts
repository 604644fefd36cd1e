// A strict `{{ name }}` / `{{ name | shquote }}` renderer for plugin command templates: an unknown name is an
// error, never an empty string, so a typo in a plugin cannot silently drop an argument.
import type { ParameterValue } from "../ServicePlugin.ts"

const placeholder = /\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*(?:\|\s*([A-Za-z_]+)\s*)?\}\}/g

export const shquote = (value: string): string =>
  /^[A-Za-z0-9_./:=@%+,-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`

const show = (value: ParameterValue): string => (Array.isArray(value) ? value.join(" ") : String(value))

export type RenderResult =
  | { readonly ok: true; readonly value: string }
  | { readonly ok: false; readonly reason: string }

export const renderString = (template: string, variables: Readonly<Record<string, ParameterValue>>): RenderResult => {
  let failure: string | undefined
  const value = template.replace(placeholder, (_match, name: string, filter: string | undefined) => {
    const found = variables[name]
    if (found === undefined) {
      failure ??= `unknown variable "${name}" in "${template}"`
      return ""
    }
    if (filter === undefined) return show(found)
    if (filter === "shquote") return Array.isArray(found) ? found.map(shquote).join(" ") : shquote(String(found))
    failure ??= `unknown filter "${filter}" in "${template}"`
    return ""
  })
  return failure === undefined ? { ok: true, value } : { ok: false, reason: failure }
}

/** The names a template refers to. */
export const variablesOf = (template: string): ReadonlyArray<string> =>
  Array.from(template.matchAll(placeholder), (match) => match[1]!)

/** When an argument is exactly one placeholder, the name (so a list can expand to several arguments). */
export const soleVariable = (template: string): string | undefined => {
  const match = /^\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$/.exec(template)
  return match?.[1]
}
