/** `testbed stage connect NODE` and `testbed stage exec NODE -- CMD…`: a shell or one command in a node. */
import { Command as Cmd, CommandRunner } from "@testbed/commands"
import { ExitCode } from "@testbed/events"
import { Console, Effect, Stream } from "effect"
import { Argument, Command } from "effect/cli"
import { ExitWith } from "../ExitCode.ts"
import { exit, withStages } from "./stageGroup.ts"

export const connect = Command.make(
  "connect",
  { node: Argument.String("NODE") },
  Effect.fn(function* ({ node }) {
    if (!process.stdin.isTTY) {
      yield* Console.error("stdin is not a terminal: the shell runs without a TTY and reads its commands from stdin")
    }
    const io = { input: process.stdin, output: process.stdout, error: process.stderr }
    const code = yield* withStages((stages) => stages.connect(node, io))
    if (code !== 0) return yield* exit(code ?? 1)
  })
).pipe(Command.withDescription("Open an interactive shell (bash, else sh) in a node of the current stage"))

export const exec = Command.make(
  "exec",
  {
    node: Argument.String("NODE"),
    command: Argument.String("COMMAND").pipe(
      Argument.variadic({ min: 1 }),
      Argument.withDescription("After --: the program and its arguments")
    )
  },
  Effect.fn(function* ({ node, command }) {
    const [program = "", ...args] = command
    const result = yield* withStages((stages) =>
      Effect.gen(function* () {
        const runner = yield* stages.runner(node)
        return yield* runner.stream(Cmd.make(program, args)).pipe(
          Stream.runFoldEffect(
            () => null as number | null,
            (code, chunk) =>
              chunk._tag === "Exit"
                ? Effect.succeed(chunk.result.exitCode)
                : Effect.as(
                    Effect.sync(() => (chunk._tag === "Stdout" ? process.stdout : process.stderr).write(chunk.bytes)),
                    code
                  )
          ),
          Effect.catchTag("CommandFailed", (e) => Effect.succeed(e.result.exitCode)),
          Effect.mapError(
            (e) => new ExitWith({ code: ExitCode.ofError(e), message: `${node}: ${CommandRunner.describeError(e)}` })
          )
        )
      })
    )
    if (result !== 0) return yield* exit(result ?? 1)
  })
).pipe(
  Command.withDescription("Run a command in a node of the current stage; exits with its exit code"),
  Command.withExamples([{ command: "testbed stage exec client1 -- ip addr", description: "Addresses of client1" }])
)
