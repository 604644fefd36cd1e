/**
 * The `nds2` action module: answers of an NDS2 server generated from channels registered by id, so scripts
 * recorded with the older replay tool's `nds2` module replay byte for byte. Channels are registered per
 * connection.
 *
 * ```json
 * {"type": "command", "action": "import", "args": ["nds2"]}
 * {"type": "command", "action": "nds2.register_chan", "args": [1, "X1:A", "online", 16, "real_4"]}
 * {"type": "command", "action": "nds2.revision", "args": []}
 * {"type": "script", "command": "get-channels 0 online {X1:*};\n", "response": "0000"}
 * {"type": "command", "action": "nds2.get-channels", "args": [1]}
 * ```
 */
import { Effect, Result, Schema } from "effect"
import { type ActionArg, type ActionIO, makeModule } from "../Action.ts"
import {
  action,
  always,
  Count,
  fixed,
  isOnline,
  lookup,
  Name,
  NumberOrText,
  numberOf,
  Online,
  orFail,
  param,
  some,
  Uint32,
  Value
} from "./Args.ts"
import { key, none, registers, uses, withChannelCheck } from "./ChannelCheck.ts"
import * as Format from "./Nds2Format.ts"

export interface State {
  readonly channels: Map<string, Format.Channel>
}

/** Ids are strings or integers, and 1 is not "1" (as in the older module's dictionary). */
const Id = Schema.Union([Schema.String, Schema.Int])
type Id = typeof Id.Type

const idArg = param("id", "a channel id (a string or an integer)", Id)
const idsArg = param("ids", "a list of channel ids", Schema.Array(Id))
const Stride = Schema.Int.check(Schema.isBetween({ minimum: -1, maximum: 0x7fffffff }))
const strideText = "a stride in seconds (an integer, -1 for 1/16 s)"

const byId = (state: State, io: ActionIO, ids: ReadonlyArray<Id>) => lookup(state.channels, io, ids, key)

const actions = makeModule<State>({
  name: "nds2",
  state: () => ({ channels: new Map() }),
  actions: {
    register_chan: action(
      fixed(
        [
          idArg,
          param("name", "a channel name", Name),
          param("channel_type", `one of ${Format.channelTypes.join(", ")}`, Schema.Literals(Format.channelTypes)),
          param("rate", "a rate in Hz (a non-negative number)", NumberOrText),
          param("data_type", `one of ${Format.dataTypes.join(", ")}`, Schema.Literals(Format.dataTypes)),
          param("units", "a string", Schema.String)
        ],
        { optional: 1 }
      ),
      ([id, name, channelType, rate, dataType, units]) =>
        numberOf(rate) < 0
          ? Result.fail(`argument 4 (rate) must be a rate in Hz (a non-negative number); got ${JSON.stringify(rate)}`)
          : Result.succeed({ id, channel: { name, channelType, rate, dataType, units: units ?? Format.defaultUnits } }),
      ({ id, channel }, state) => Effect.sync(() => void state.channels.set(key(id), channel))
    ),
    "get-channels": action(some(idArg), always, (ids, state, io) =>
      Effect.flatMap(byId(state, io, ids), (cs) => io.write(Format.getChannels(cs)))
    ),
    "writer-id": action(
      fixed([idArg, param("online", 'true/false or "online"/"offline"', Online)]),
      ([id, online]) => Result.succeed(Format.writerId(id, isOnline(online))),
      (bytes, _state, io) => io.write(bytes)
    ),
    "reconfigure-block": action(
      fixed([idsArg, param("stride", strideText, Stride)]),
      always,
      ([ids, stride], state, io) =>
        Effect.gen(function* () {
          const cs = yield* byId(state, io, ids)
          yield* io.write(yield* orFail(io, Format.reconfigureBlock(cs, stride)))
        })
    ),
    "data-header": action(
      fixed(
        [
          idsArg,
          param("gps", "a GPS second (an unsigned 32-bit integer)", Uint32),
          param("stride", strideText, Stride),
          param("sequence", "a sequence number (an unsigned 32-bit integer)", Uint32),
          param(
            "cycle",
            "the 1/16 s cycle within the second, 0 to 15",
            Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 15 }))
          )
        ],
        { optional: 1 }
      ),
      always,
      ([ids, gps, stride, sequence, cycle], state, io) =>
        Effect.gen(function* () {
          const cs = yield* byId(state, io, ids)
          yield* io.write(yield* orFail(io, Format.dataHeader(cs, gps, stride, sequence, cycle ?? 0)))
        })
    ),
    "write-data": action(
      fixed([idArg, param("count", "a count of samples", Count), param("value", "a number", Value)]),
      always,
      ([id, count, value], state, io) =>
        Effect.gen(function* () {
          const [c] = yield* byId(state, io, [id])
          yield* io.write(yield* orFail(io, Format.writeData(c!.dataType, count, numberOf(value))))
        })
    ),
    revision: action(fixed([]), always, (_args, _state, io) =>
      Effect.andThen(io.expect(Format.revisionRequest), io.write(Format.revisionAnswer()))
    ),
    translate_nds2_1_5_get_data_block: action(
      fixed([param("recorded", "the recorded answer (the step's response_hex, response_blob…)", Schema.Uint8Array)]),
      ([recorded]) => Format.translateGetDataBlock(recorded),
      (bytes, _state, io) => io.write(bytes)
    )
  }
})

/** The channels each action registers or uses, for the load-time check. */
const channelUse = (action: string, args: ReadonlyArray<ActionArg>) => {
  switch (action) {
    case "register_chan":
      return registers(args[0])
    case "write-data":
      return uses([args[0]])
    case "get-channels":
      return uses(args)
    case "reconfigure-block":
    case "data-header":
      return uses(args[0] as ReadonlyArray<Id>)
    default:
      return none
  }
}

export const module = withChannelCheck(actions, channelUse)
