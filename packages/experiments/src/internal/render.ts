// Template rendering as a value: the call sites branch on `TemplateFailed` to say which service or step it was.
import type { ServiceCommand } from "@testbed/plugins"
import { Effect } from "effect"

export const orFailed = <A>(
  effect: Effect.Effect<A, ServiceCommand.TemplateFailed>
): Effect.Effect<A | ServiceCommand.TemplateFailed> => Effect.catch(effect, (error) => Effect.succeed(error))
