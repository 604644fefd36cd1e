// Every file a run writes is placed with `inside`: names from the experiment file (services, steps) become
// path segments, and a name that would climb out of its directory (`..`, `/`) is refused here even if it got
// past the checks made when the file was decoded.
import { Effect, Path, Runtime, Schema } from "effect"
import { ExitCode } from "@testbed/events"

export class PathOutsideRun extends Schema.TaggedError<PathOutsideRun>()("PathOutsideRun", {
  root: Schema.String,
  segments: Schema.Array(Schema.String)
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `refused to write outside ${this.root}: ${JSON.stringify(this.segments.join("/"))} leaves it`
  }
}

/** `root/segments…`, or `PathOutsideRun` when the result is not inside `root` (or is `root` itself). */
export const inside = (
  root: string,
  ...segments: ReadonlyArray<string>
): Effect.Effect<string, PathOutsideRun, Path.Path> =>
  Effect.flatMap(Path.Path, (path) => {
    const base = path.resolve(root)
    const full = path.resolve(base, ...segments)
    const relative = path.relative(base, full)
    const outside =
      relative === "" ||
      relative === ".." ||
      relative.startsWith(`..${path.sep}`) ||
      path.isAbsolute(relative) ||
      segments.some((segment) => segment.includes("\0"))
    return outside ? Effect.fail(new PathOutsideRun({ root: base, segments: [...segments] })) : Effect.succeed(full)
  })
