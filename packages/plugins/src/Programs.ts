/**
 * Whether the programs a plugin, an execution environment or a run step needs are installed here: an executable
 * file in one of PATH's directories (a name with a slash: that file). Read from the file system, no shell spawned
 * per program: `plugins list`, `--dry-run`, execution environments and a cluster runner's labels all ask this.
 */
import { accessSync, constants } from "node:fs"
import { join } from "node:path"
import { Result } from "effect"

const executable = (file: string): boolean => Result.isSuccess(Result.try(() => accessSync(file, constants.X_OK)))

/** Whether `program` is an executable file in one of `path`'s directories (default: this process's PATH). */
export const onPath = (program: string, path = process.env.PATH ?? ""): boolean =>
  program.includes("/")
    ? executable(program)
    : path
        .split(":")
        .filter((dir) => dir !== "")
        .some((dir) => executable(join(dir, program)))

/** The programs of `programs` that are not installed here, in their order. */
export const missing = (programs: ReadonlyArray<string>, path?: string): ReadonlyArray<string> =>
  programs.filter((program) => !onPath(program, path))
