// One recorded exchange of a replayed connection: match the client's command, then send the response (with its
// fault, if any). On the path of every replayed step: a plain function, no span of its own.
import { Effect } from "effect"
import * as Fault from "../Fault.ts"
import type { Step } from "../Plan.ts"
import { ResponseUnreadable } from "../ReplayError.ts"
import type * as Input from "./Input.ts"
import { respond } from "./Respond.ts"
import type { Session } from "./Session.ts"

/** Whether the response ended the connection (a truncate or reset fault). */
export const runExchange = (
  session: Session,
  step: Extract<Step, { _tag: "Exchange" }>,
  at: Input.Position,
  ordinal: { responses: number }
) =>
  Effect.flatMap(session.input.expect(step.command, at), () => {
    const { counters, settings } = session.state
    counters.stepsMatched++
    ordinal.responses++
    const fault = Fault.forStep(step.fault, settings.rules, ordinal.responses)
    if (fault !== undefined) counters.faultsInjected++
    return respond(session.conn, step.response, fault).pipe(
      Effect.mapError((e) =>
        e._tag === "BlobCorrupt"
          ? new ResponseUnreadable({ connection: session.index, step: step.path, reason: e.message })
          : session.lost(e.reason)
      )
    )
  })
