// Where a bind mount's host side is: `~` and `~/…` are the user's home directory (as compose and shells read them),
// an absolute path is itself, anything else is relative to the directory of the file that wrote it.
import type { Path } from "effect"

/** `~user/…` is not expanded (compose does not either): it is refused when the definition is checked. */
export const isOtherUsersHome = (source: string): boolean => source.startsWith("~") && !/^~(\/|$)/.test(source)

export const mountSource = (path: Path.Path, baseDir: string, source: string, home: string): string =>
  source === "~" ? home : source.startsWith("~/") ? path.join(home, source.slice(2)) : path.resolve(baseDir, source)
