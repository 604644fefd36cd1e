// What a name in an experiment file may be. Service keys and step names become file names in the run directory
// (`<service>/stdout.log`, `steps/<step>.stdout.log`), so they must stay one plain path segment; every name is
// also printed on a terminal, so none may carry control characters (an escape sequence would redraw the screen).

/** Longest name kept as a file name (well under every file system's 255-byte limit, with room for suffixes). */
export const maxNameLength = 100

// C0 controls, DEL and the C1 controls (ESC-less escape sequences on some terminals).
const controlCharacters = /[\u0000-\u001f\u007f-\u009f]/

/** Why `name` cannot be shown as it is, or undefined. */
export const displayProblem = (name: string): string | undefined =>
  controlCharacters.test(name)
    ? `${JSON.stringify(name)} contains control characters (escape sequences would reach the terminal)`
    : undefined

/** Why `name` cannot be a file name inside its directory, or undefined. */
export const fileNameProblem = (name: string): string | undefined => {
  const display = displayProblem(name)
  if (display !== undefined) return display
  if (name === "") return "an empty name"
  if (name === "." || name === "..") return `${JSON.stringify(name)} is not a name (it names a directory)`
  if (name.includes("/") || name.includes("\\"))
    return `${JSON.stringify(name)} contains a path separator (it is used as a file name)`
  if (name.length > maxNameLength) return `longer than ${maxNameLength} characters`
  return undefined
}
