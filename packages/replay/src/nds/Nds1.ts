/**
 * The `nds1` action module: answers of an NDS1 server generated from registered channels instead of stored,
 * so scripts recorded against real servers with the older replay tool's `nds1` module replay byte for byte.
 * Channels are registered per connection: two clients replaying at once never see each other's.
 *
 * ```json
 * {"type": "command", "action": "import", "args": ["nds1"]}
 * {"type": "command", "action": "nds1.register_chan", "args": ["X1:A", 16, 4, 0, 0, "counts", 1.0, 1.0, 0.0]}
 * {"type": "script", "command": "status channels 3 {\"X1:A\"};\n", "response": "0000"}
 * {"type": "command", "action": "nds1.gen_sc3_12_1", "args": ["X1:A"]}
 * ```
 */
import { Effect, Result, Schema } from "effect"
import { type ActionArg, type ActionIO, makeModule } from "../Action.ts"
import { ScriptMismatch } from "../ReplayError.ts"
import {
  action,
  always,
  Count,
  fixed,
  isOnline,
  Name,
  NumberOrText,
  numberOf,
  lookup,
  Online,
  orFail,
  param,
  some,
  Uint16,
  Uint32,
  Value
} from "./Args.ts"
import { key, none, registers, uses, withChannelCheck } from "./ChannelCheck.ts"
import * as Format from "./Nds1Format.ts"
import { concat, text } from "./Wire.ts"

export interface State {
  readonly channels: Map<string, Format.Channel>
}

const DataTypeCode = Schema.Literals(Format.dataTypes)
const channelArg = param("channel", "a channel name", Name)
const channelsArg = param("channels", "a list of channel names", Schema.Array(Name))

const named = (state: State, io: ActionIO, names: ReadonlyArray<string>) => lookup(state.channels, io, names, key)

/** Block after block of `write-data CHANNEL rate j` for seconds j of the request, as the older module wrote them. */
const netWriter = Effect.fn("Nds1.netWriter")(function* (state: State, io: ActionIO, writer: number) {
  yield* io.expect(Format.netWriterPrefix)
  const rest = yield* io.readLine
  const request = Format.parseNetWriter(rest)
  if (Result.isFailure(request)) {
    const prefix = text(Format.netWriterPrefix)
    const { offset, wanted } = request.failure
    return yield* new ScriptMismatch({
      connection: io.connection,
      step: io.step,
      offset: prefix.length + offset,
      expected: concat([prefix, rest.subarray(0, offset), text(wanted)]),
      received: concat([prefix, rest])
    })
  }
  const { start, duration, channel: name } = request.success
  const [channel] = yield* named(state, io, [name])
  if (start + Math.max(duration - 1, 0) > 0xffffffff) {
    return yield* io.fail(`start ${start} + duration ${duration} goes past the 32-bit GPS times of data headers`)
  }
  yield* io.write(concat([text("0000"), Format.writerId(writer, false), Format.reconfigureBlock([channel!])]))
  for (let j = 0; j < duration; j++) {
    const header = yield* orFail(io, Format.dataHeader([channel!], start + j, 1, j))
    const data = yield* orFail(io, Format.writeData(channel!.type, channel!.rate, j))
    yield* io.write(concat([header, data]))
  }
  yield* io.write(Format.terminationBlock())
})

const actions = makeModule<State>({
  name: "nds1",
  state: () => ({ channels: new Map() }),
  actions: {
    register_chan: action(
      fixed([
        param("name", "a channel name", Name),
        param("rate", "a rate in Hz (an unsigned 32-bit integer)", Uint32),
        param("type", "a data type code 1 to 7", DataTypeCode),
        param("tp_num", "a test point number (an unsigned 32-bit integer)", Uint32),
        param("group", "a group number (an unsigned 16-bit integer)", Uint16),
        param("unit", "a string", Schema.String),
        param("gain", "a number", NumberOrText),
        param("slope", "a number", NumberOrText),
        param("offset", "a number", NumberOrText)
      ]),
      ([name, rate, type, tpNum, group, unit, gain, slope, offset]) =>
        Result.succeed<Format.Channel>({ name, rate, type, tpNum, group, unit, gain, slope, offset }),
      (channel, state) => Effect.sync(() => void state.channels.set(key(channel.name), channel))
    ),
    gen_sc3_12_1: action(fixed([channelArg]), always, ([name], state, io) =>
      Effect.flatMap(named(state, io, [name]), ([c]) => io.write(Format.statusChannels3(c!)))
    ),
    gen_sc2_12_1: action(some(channelArg), always, (names, state, io) =>
      Effect.flatMap(named(state, io, names), (cs) => io.write(concat(cs.map(Format.statusChannels2))))
    ),
    "writer-id": action(
      fixed([
        param(
          "id",
          "a non-negative integer",
          Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }))
        ),
        param("online", 'true/false or "online"/"offline"', Online)
      ]),
      ([id, online]) => Result.succeed(Format.writerId(id, isOnline(online))),
      (bytes, _state, io) => io.write(bytes)
    ),
    "reconfigure-block": action(fixed([channelsArg]), always, ([names], state, io) =>
      Effect.flatMap(named(state, io, names), (cs) => io.write(Format.reconfigureBlock(cs)))
    ),
    "data-header": action(
      fixed([
        channelsArg,
        param("gps", "a GPS second (an unsigned 32-bit integer)", Uint32),
        param("stride", "a stride in seconds (an unsigned 32-bit integer)", Uint32),
        param("sequence", "a sequence number (an unsigned 32-bit integer)", Uint32)
      ]),
      always,
      ([names, gps, stride, sequence], state, io) =>
        Effect.gen(function* () {
          const cs = yield* named(state, io, names)
          yield* io.write(yield* orFail(io, Format.dataHeader(cs, gps, stride, sequence)))
        })
    ),
    "write-data": action(
      fixed([channelArg, param("count", "a count of samples", Count), param("value", "a number", Value)]),
      always,
      ([name, count, value], state, io) =>
        Effect.gen(function* () {
          const [c] = yield* named(state, io, [name])
          yield* io.write(yield* orFail(io, Format.writeData(c!.type, count, numberOf(value))))
        })
    ),
    "termination-block": action(
      fixed([]),
      () => Result.succeed(Format.terminationBlock()),
      (bytes, _state, io) => io.write(bytes)
    ),
    handle_start_net_writer_full: action(
      fixed([param("count", "a count of requests", Count)]),
      always,
      ([count], state, io) =>
        Effect.gen(function* () {
          // The writer id counts the requests of this step, from 1, as the older module did.
          for (let writer = 1; writer <= count; writer++) yield* netWriter(state, io, writer)
        })
    )
  }
})

/** The channels each action registers or uses, for the load-time check. */
const channelUse = (action: string, args: ReadonlyArray<ActionArg>) => {
  switch (action) {
    case "register_chan":
      return registers(args[0])
    case "gen_sc3_12_1":
    case "write-data":
      return uses([args[0]])
    case "gen_sc2_12_1":
      return uses(args)
    case "reconfigure-block":
    case "data-header":
      return uses(args[0] as ReadonlyArray<string>)
    default:
      return none
  }
}

export const module = withChannelCheck(actions, channelUse)
