// `--verify`: what an impairment achieves, measured between the two ends of the link (the impaired end sends, its
// peer receives) and set beside the setting. Rate: TCP goodput over 3 s, within 20%. Loss: 500 UDP probes, within
// four standard deviations of the binomial (plus one probe). RTT where a delay is set: the median of 20 UDP echoes,
// within 20% or 2 ms. Rate is not measured when loss is set on the same end (TCP's figure would be about the loss).
import { Duration, Effect, Schema } from "effect"
import type * as Impairment from "../Impairment.ts"
import type { Resolved } from "./targets.ts"
import * as Probe from "./probe.ts"

export interface Measured {
  readonly measure: "rate" | "loss" | "rtt"
  readonly unit: "bit/s" | "%" | "ms"
  readonly setting: number
  readonly achieved: number
  readonly tolerance: number
  readonly withinTolerance: boolean
  readonly samples: number
}

/** Listening probes bind port 0: the kernel picks a port nothing else in the node's namespace uses. */
const anyPort = "0"

const SinkResult = Schema.Struct({ bytes: Schema.Number, ms: Schema.Number })
const CountResult = Schema.Struct({ received: Schema.Number })
const SendResult = Schema.Struct({ sent: Schema.Number })
const RttResult = Schema.Struct({ rtts: Schema.Array(Schema.Number), lost: Schema.Number })

type Peer = NonNullable<Resolved["peer"]>

const rate = Effect.fn("Verify.rate")(function* (from: Resolved["end"], peer: Peer, setting: number) {
  const seconds = 3
  const sink = yield* Probe.start(peer.ns, "tcp-sink", [peer.address, anyPort, String(seconds + 5)])
  const { port } = yield* sink.next(Probe.Ready, Duration.seconds(20))
  const sender = yield* Probe.start(from.ns, "tcp-send", [peer.address, String(port), String(seconds)])
  const got = yield* sink.next(SinkResult, Duration.seconds(seconds + 30))
  yield* Effect.ignore(sender.next(Schema.Unknown, Duration.seconds(5)))
  const achieved = got.ms > 0 ? (got.bytes * 8) / (got.ms / 1000) : 0
  const tolerance = 0.2 * setting
  return {
    measure: "rate",
    unit: "bit/s",
    setting,
    achieved,
    tolerance,
    withinTolerance: Math.abs(achieved - setting) <= tolerance,
    samples: got.bytes
  } satisfies Measured
}, Effect.scoped)

/** Four standard deviations of a binomial count of `n` probes at loss `percent`, plus one probe, in percent. */
export const lossTolerance = (percent: number, n: number): number => {
  const p = percent / 100
  return (4 * Math.sqrt((p * (1 - p)) / n) + 1 / n) * 100
}

const loss = Effect.fn("Verify.loss")(function* (from: Resolved["end"], peer: Peer, setting: number) {
  const probes = 500
  const intervalMs = 2
  const counter = yield* Probe.start(peer.ns, "udp-count", [
    peer.address,
    anyPort,
    String((probes * intervalMs) / 1000 + 3)
  ])
  const { port } = yield* counter.next(Probe.Ready, Duration.seconds(20))
  const sender = yield* Probe.start(from.ns, "udp-send", [
    peer.address,
    String(port),
    String(probes),
    String(intervalMs)
  ])
  const sent = yield* sender.next(SendResult, Duration.seconds(60))
  const { received } = yield* counter.next(CountResult, Duration.seconds(60))
  const achieved = sent.sent === 0 ? 100 : 100 * (1 - received / sent.sent)
  const tolerance = lossTolerance(setting, sent.sent)
  return {
    measure: "loss",
    unit: "%",
    setting,
    achieved,
    tolerance,
    withinTolerance: Math.abs(achieved - setting) <= tolerance,
    samples: sent.sent
  } satisfies Measured
}, Effect.scoped)

const rtt = Effect.fn("Verify.rtt")(function* (from: Resolved["end"], peer: Peer, setting: number) {
  const echo = yield* Probe.start(peer.ns, "udp-echo", [peer.address, anyPort, "30"])
  const { port } = yield* echo.next(Probe.Ready, Duration.seconds(20))
  const pinger = yield* Probe.start(from.ns, "udp-rtt", [peer.address, String(port), "20", "50"])
  const got = yield* pinger.next(RttResult, Duration.seconds(30))
  const sorted = [...got.rtts].sort((x, y) => x - y)
  const achieved = sorted[Math.floor(sorted.length / 2)] ?? Number.POSITIVE_INFINITY
  const tolerance = Math.max(2, 0.2 * setting)
  return {
    measure: "rtt",
    unit: "ms",
    setting,
    achieved,
    tolerance,
    withinTolerance: Math.abs(achieved - setting) <= tolerance,
    samples: got.rtts.length
  } satisfies Measured
}, Effect.scoped)

/** Every measure the settings call for, one after the other (they would disturb each other). */
export const measure = Effect.fn("Verify.measure")(function* (
  from: Resolved["end"],
  peer: Peer,
  settings: Impairment.Settings
) {
  const out: Array<Measured> = []
  if (settings.rate !== undefined && (settings.loss ?? 0) === 0) out.push(yield* rate(from, peer, settings.rate))
  if (settings.loss !== undefined) out.push(yield* loss(from, peer, settings.loss))
  if (settings.delay !== undefined) out.push(yield* rtt(from, peer, settings.delay))
  return out as ReadonlyArray<Measured>
})
