/**
 * Channels named before they are registered, found from a connection's loaded steps rather than when a client
 * is already connected: every prepared NDS action says which channels it registers and which it uses, and
 * `check` walks one connection's steps in order. Channels are keys of a connection's own table, so this is
 * exact for every action but handle_start_net_writer_full, whose channel comes from the client.
 */
import { Result } from "effect"
import type { ActionArg, ActionModule, PreparedAction } from "../Action.ts"

/** Channel keys (JSON text of the name or id, as in the tables) an action registers and uses. */
export interface ChannelUse {
  readonly registers: ReadonlyArray<string>
  readonly uses: ReadonlyArray<string>
}

export interface CheckedAction extends PreparedAction {
  readonly channels: ChannelUse
}

export interface ChannelProblem {
  readonly path: string
  readonly reason: string
}

export interface CheckedModule extends ActionModule {
  /**
   * The first of one connection's steps (in the order they run) that names a channel not registered on that
   * connection before it; steps of other modules are skipped.
   */
  readonly check: (
    steps: ReadonlyArray<{ readonly path: string; readonly prepared: PreparedAction }>
  ) => ChannelProblem | undefined
}

export const key = (nameOrId: unknown): string => JSON.stringify(nameOrId)

const isChecked = (prepared: PreparedAction): prepared is CheckedAction => "channels" in prepared

/** `base` whose prepared actions carry their channel use (`useOf` sees arguments `base` accepted). */
export const withChannelCheck = (
  base: ActionModule,
  useOf: (action: string, args: ReadonlyArray<ActionArg>) => ChannelUse
): CheckedModule => ({
  ...base,
  prepare: (action, args) =>
    Result.map(
      base.prepare(action, args),
      (prepared): CheckedAction => ({ ...prepared, channels: useOf(action, args) })
    ),
  check: (steps) => {
    const registered = new Set<string>()
    for (const step of steps) {
      if (step.prepared.module !== base.name || !isChecked(step.prepared)) continue
      for (const channel of step.prepared.channels.uses) {
        if (!registered.has(channel)) {
          const known = [...registered].join(", ") || "none"
          return {
            path: step.path,
            reason: `channel ${channel} is not registered on this connection before this step (registered: ${known})`
          }
        }
      }
      for (const channel of step.prepared.channels.registers) registered.add(channel)
    }
    return undefined
  }
})

export const none: ChannelUse = { registers: [], uses: [] }
export const uses = (channels: ReadonlyArray<unknown>): ChannelUse => ({ registers: [], uses: channels.map(key) })
export const registers = (channel: unknown): ChannelUse => ({ registers: [key(channel)], uses: [] })
