/**
 * Graded checks of a stage, declared in its file (`checks:`) or in a checks file: a node reaches another (ICMP or a
 * TCP port), a route exists, a port listens, a command's output matches, a file exists, and break-fix checks that
 * break a link on purpose and expect recovery. Each waits until it holds (converged) or its bound passes.
 */
import { Result, Schema } from "effect"
import { RE2JS } from "re2js"
import * as Impairment from "./Impairment.ts"

const within = Schema.optionalKey(Schema.DurationFromString)
const Node = Schema.String

/** `to`: a node (its first address, or its address on `network`) or a literal IPv4 address. */
export const Reach = Schema.Struct({
  from: Node,
  to: Schema.String,
  network: Schema.optionalKey(Schema.String),
  protocol: Schema.optionalKey(Schema.Literals(["icmp", "tcp"])),
  port: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 65535 })))
})
export type Reach = typeof Reach.Type

export const Route = Schema.Struct({
  node: Node,
  /** A destination address, or a subnet (its first address is looked up). */
  to: Schema.String,
  via: Schema.optionalKey(Schema.String)
})
export type Route = typeof Route.Type

export const Listens = Schema.Struct({
  node: Node,
  port: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 65535 })),
  protocol: Schema.optionalKey(Schema.Literals(["tcp", "udp"]))
})
export type Listens = typeof Listens.Type

/** A regular expression matched in linear time (RE2 syntax): output of a student's program never runs it away. */
export const Pattern = Schema.String.check(
  Schema.makeFilter((source: string) =>
    Result.isSuccess(compile(source))
      ? undefined
      : "not a linear-time regular expression (RE2 syntax: no backreferences, no lookaround)"
  )
)

export const compile = (source: string): Result.Result<RE2JS, string> =>
  Result.try({ try: () => RE2JS.compile(source, RE2JS.MULTILINE), catch: (e) => String(e) })

export const CommandOutput = Schema.Struct({
  node: Node,
  run: Schema.Array(Schema.String).check(Schema.isMinLength(1)),
  matches: Schema.optionalKey(Pattern),
  exitCode: Schema.optionalKey(Schema.Int)
})
export type CommandOutput = typeof CommandOutput.Type

export const FileExists = Schema.Struct({ node: Node, path: Schema.String.check(Schema.isPattern(/^\//)) })
export type FileExists = typeof FileExists.Type

const common = {
  name: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(200)),
  description: Schema.optionalKey(Schema.String),
  /** How long the check may take to hold (converge); default 10 seconds. */
  within,
  /** `fail`: the check passes when the condition does not hold (isolation, a link that must be cut). */
  expect: Schema.optionalKey(Schema.Literals(["pass", "fail"]))
}

/** The condition a break-fix check watches: any check but another break-fix. */
export const Probe = Schema.Union([
  Schema.Struct({ reach: Reach }),
  Schema.Struct({ route: Route }),
  Schema.Struct({ listens: Listens }),
  Schema.Struct({ command: CommandOutput }),
  Schema.Struct({ file: FileExists })
])
export type Probe = typeof Probe.Type

export const BreakFix = Schema.Struct({
  /** What is broken: an impairment of one link end (typically `down: true` or `loss: 100%`). */
  impair: Impairment.Declared,
  /** Must hold before, stop holding once broken (within `within`), and hold again once repaired. */
  check: Probe,
  /** How long recovery may take once the impairment is lifted; default 30 seconds. */
  recover: within
})
export type BreakFix = typeof BreakFix.Type

export const Check = Schema.Union([
  Schema.Struct({ ...common, reach: Reach }),
  Schema.Struct({ ...common, route: Route }),
  Schema.Struct({ ...common, listens: Listens }),
  Schema.Struct({ ...common, command: CommandOutput }),
  Schema.Struct({ ...common, file: FileExists }),
  Schema.Struct({ ...common, breakFix: BreakFix })
])
export type Check = typeof Check.Type

/** A checks file: checks kept apart from the stage (a teacher's grading sheet). */
export const ChecksFile = Schema.Struct({ checks: Schema.Array(Check) })

/** What kind of check, in one word (reports' assertion kind). */
export const kindOf = (check: Check | Probe): string =>
  "reach" in check
    ? "reach"
    : "route" in check
      ? "route"
      : "listens" in check
        ? "listens"
        : "command" in check
          ? "command"
          : "file" in check
            ? "file"
            : "break-fix"

/** The nodes a check names, for cross-checking against the stage. */
export const nodesOf = (check: Check | Probe): ReadonlyArray<string> => {
  if ("reach" in check) return [check.reach.from]
  if ("route" in check) return [check.route.node]
  if ("listens" in check) return [check.listens.node]
  if ("command" in check) return [check.command.node]
  if ("file" in check) return [check.file.node]
  return [Impairment.splitTarget(check.breakFix.impair.target).node, ...nodesOf(check.breakFix.check)]
}
