// Measurements between two nodes with nothing needed in their images: this machine's Node runs a tiny probe inside
// each node's network namespace (`nsenter … node -e`). Listening probes bind port 0 and say which port they got. Every probe has a deadline of its own, so none outlives its
// measurement even if testbed is killed; each prints one JSON line per fact (`{"ready":true}`, then its result).
import { type Duration, Effect, Option, Queue, Schema, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import { NetworkToolFailed } from "../StageError.ts"
import { cleanEnvironment, enter, type Namespace } from "./netns.ts"

/** The probe, as CommonJS for `node -e`: tcp sink/send, udp count/send/echo/rtt, tcp connect. */
export const script = String.raw`
const net = require("node:net"), dgram = require("node:dgram")
const [mode, ...a] = process.argv.slice(1)
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n")
const stopAt = (ms, f) => setTimeout(() => { f(); process.exit(0) }, ms)
const hardStop = (ms) => setTimeout(() => process.exit(3), ms + 5000).unref()
if (mode === "tcp-sink") {
  const [host, port, secs] = a; let bytes = 0, first = 0, last = 0
  const done = () => out({ bytes, ms: last - first })
  net.createServer((s) => {
    s.on("data", (d) => { const t = performance.now(); if (!first) first = t; last = t; bytes += d.length })
    s.on("end", () => { done(); process.exit(0) })
    s.on("error", () => {})
  }).listen(Number(port), host, function () { out({ ready: true, port: this.address().port }) })
  stopAt(Number(secs) * 1000, done); hardStop(Number(secs) * 1000)
} else if (mode === "tcp-send") {
  const [host, port, secs] = a; const chunk = Buffer.alloc(65536, 120); let sent = 0
  const end = performance.now() + Number(secs) * 1000
  const s = net.connect(Number(port), host)
  const pump = () => { while (performance.now() < end) { sent += chunk.length; if (!s.write(chunk)) return } s.end() }
  s.on("connect", pump); s.on("drain", pump)
  s.on("close", () => { out({ sent }); process.exit(0) }); s.on("error", (e) => { out({ error: e.message }); process.exit(1) })
  hardStop(Number(secs) * 1000)
} else if (mode === "udp-count") {
  const [host, port, secs] = a; let received = 0
  const u = dgram.createSocket("udp4")
  u.on("message", (m) => { if (m.toString().startsWith("tbprobe")) received++ })
  u.bind(Number(port), host, () => out({ ready: true, port: u.address().port }))
  stopAt(Number(secs) * 1000, () => out({ received })); hardStop(Number(secs) * 1000)
} else if (mode === "udp-send") {
  const [host, port, count, interval] = a.map((x, i) => (i === 0 ? x : Number(x))); let i = 0, failed = 0
  const u = dgram.createSocket("udp4")
  const tick = setInterval(() => {
    if (i >= count) { clearInterval(tick); u.close(); out({ sent: i, failed }); return }
    u.send("tbprobe " + i++, port, host, (e) => { if (e) failed++ })
  }, interval)
  hardStop(count * interval)
} else if (mode === "udp-echo") {
  const [host, port, secs] = a
  const u = dgram.createSocket("udp4")
  u.on("message", (m, r) => u.send(m, r.port, r.address))
  u.bind(Number(port), host, () => out({ ready: true, port: u.address().port }))
  stopAt(Number(secs) * 1000, () => {}); hardStop(Number(secs) * 1000)
} else if (mode === "udp-rtt") {
  const [host, port, count, interval] = a.map((x, i) => (i === 0 ? x : Number(x))); const sentAt = new Map(), rtts = []
  const u = dgram.createSocket("udp4"); let i = 0
  u.on("message", (m) => { const t = sentAt.get(m.toString()); if (t !== undefined) { rtts.push(performance.now() - t); sentAt.delete(m.toString()) } })
  const tick = setInterval(() => {
    if (i >= count) { clearInterval(tick); setTimeout(() => { out({ rtts, lost: sentAt.size }); process.exit(0) }, 1000); return }
    const k = "tbprobe " + i++; sentAt.set(k, performance.now()); u.send(k, port, host)
  }, interval)
  hardStop(count * interval + 1000)
} else if (mode === "tcp-connect") {
  const [host, port, ms] = a
  const s = net.connect({ host, port: Number(port) })
  const t = setTimeout(() => { out({ open: false, reason: "no answer within " + ms + " ms" }); process.exit(1) }, Number(ms))
  s.on("connect", () => { clearTimeout(t); out({ open: true }); s.destroy(); process.exit(0) })
  s.on("error", (e) => { clearTimeout(t); out({ open: false, reason: e.message }); process.exit(1) })
} else { out({ error: "unknown mode " + mode }); process.exit(2) }
`

/** One probe running in a namespace: its lines as they come. */
export interface Running {
  /** The next JSON line the probe prints, decoded with `schema`; fails if the probe ends or says nothing in time. */
  readonly next: <A>(schema: Schema.Codec<A, unknown>, within: Duration.Duration) => Effect.Effect<A, NetworkToolFailed>
}

const Line = Schema.fromJsonString(Schema.Unknown)

/** Starts the probe in `mode` (its process ends with the enclosing scope at the latest). */
export const start = Effect.fn("Probe.start")(function* (ns: Namespace, mode: string, args: ReadonlyArray<string>) {
  const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
  const argv = [process.execPath, "-e", script, "--", mode, ...args]
  const [program = "nsenter", ...rest] = enter(ns, argv)
  const failed = (output: string) =>
    new NetworkToolFailed({ node: ns.node, command: ["node (probe)", mode, ...args], exitCode: null, output })
  const handle = yield* spawner
    .spawn(ChildProcess.make(program, rest, { env: cleanEnvironment, extendEnv: false, stdin: "ignore" }))
    .pipe(Effect.mapError((e) => failed(e.message)))
  const lines = yield* Queue.unbounded<string, unknown>()
  yield* Effect.forkScoped(
    handle.stdout.pipe(
      Stream.decodeText,
      Stream.splitLines,
      Stream.take(64),
      Stream.runForEach((line) => Queue.offer(lines, line)),
      Effect.ensuring(Queue.end(lines))
    )
  )
  const next = <A>(schema: Schema.Codec<A, unknown>, within: Duration.Duration) =>
    Queue.take(lines).pipe(
      Effect.mapError(() => failed("the probe ended without an answer")),
      Effect.flatMap((line) =>
        Schema.decodeUnknownOption(Line)(line).pipe(
          Option.flatMap(Schema.decodeUnknownOption(schema)),
          Option.match({ onNone: () => Effect.fail(failed(`unexpected answer: ${line}`)), onSome: Effect.succeed })
        )
      ),
      Effect.timeoutOrElse({ duration: within, orElse: () => Effect.fail(failed("no answer in time")) })
    )
  return { next } satisfies Running
})

/** A listening probe is ready: it bound `port` (it is given port 0, so the kernel picks a free one). */
export const Ready = Schema.Struct({ ready: Schema.Literal(true), port: Schema.Int })
