// The context every step of one replayed connection works with: the run's state, the socket, its matcher, and
// where in the script it is.
import { ScriptNotExhausted } from "../ReplayError.ts"
import * as Input from "./Input.ts"
import type * as ServeState from "./ServeState.ts"
import type { Connection } from "./Connection.ts"

/** What the steps of one connection work with. */
export interface Session {
  readonly state: ServeState.ServeState
  readonly conn: Connection
  readonly index: number
  readonly input: Input.Input
  readonly position: ServeState.Position
  /** The connection is lost: ScriptNotExhausted at the current step. */
  readonly lost: (reason: string) => ScriptNotExhausted
}

export const make = (
  state: ServeState.ServeState,
  conn: Connection,
  index: number,
  position: ServeState.Position
): Session => ({
  state,
  conn,
  index,
  input: new Input.Input(conn, index, state.settings.timeoutMs, state.now),
  position,
  lost: (reason) =>
    new ScriptNotExhausted({
      connection: index,
      step: position.step,
      offset: 0,
      remainingSteps: position.remaining,
      reason: `the connection was lost (${reason})`
    })
})
