// What a definition file must be at its root: a mapping. An empty file or a list says so, instead of decoding as an
// empty stage that "comes up" with nothing in it.

/** Why a parsed YAML document is not a mapping, or undefined when it is one. `keys` names what it should hold. */
export const notAMapping = (doc: unknown, needs: string, keys: string): string | undefined => {
  if (doc === null || doc === undefined) return `the file is empty: ${needs}`
  if (typeof doc === "object" && !Array.isArray(doc)) return undefined
  return `expected a mapping (${keys}), found ${Array.isArray(doc) ? "a list" : `a ${typeof doc}`}`
}
