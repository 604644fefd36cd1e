export * as Command from "./Command.ts"
export * as CommandError from "./CommandError.ts"
export * as CommandResult from "./CommandResult.ts"
export * as CommandRunner from "./CommandRunner.ts"
