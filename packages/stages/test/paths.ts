// Where the repository and its fixtures are, for tests.
import { join, resolve } from "node:path"

export const repo = resolve(import.meta.dirname, "../../..")
export const fixtures = join(repo, "fixtures")
