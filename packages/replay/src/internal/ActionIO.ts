// What an action step gets to talk to its client: the connection's matcher and writer, with the step's deadline.
import { Effect } from "effect"
import type { ActionIO } from "../Action.ts"
import type { Step } from "../Plan.ts"
import { ActionFailed } from "../ReplayError.ts"
import type * as Input from "./Input.ts"
import type { Session } from "./Session.ts"

const bytesOf = (bytes: Uint8Array | string): Uint8Array => (typeof bytes === "string" ? Buffer.from(bytes) : bytes)

export const actionIO = (session: Session, step: Extract<Step, { _tag: "Action" }>, at: Input.Position): ActionIO => {
  const { conn, input, index, state } = session
  return {
    connection: index,
    step: step.path,
    expect: (bytes) => input.expect(bytesOf(bytes), at),
    readLine: input.readLine(at),
    readBytes: (n) => input.readBytes(n, at),
    write: (bytes) =>
      conn.write(bytesOf(bytes)).pipe(
        Effect.mapError((e) => session.lost(e.reason)),
        // The server spoke: the client's turn, and its deadline, start again.
        Effect.tap(() => Effect.sync(() => (at.deadline = state.now() + state.settings.timeoutMs)))
      ),
    fail: (reason) => Effect.fail(new ActionFailed({ connection: index, step: step.path, action: step.action, reason }))
  }
}
