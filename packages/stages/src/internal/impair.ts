// Impairments of one interface inside a node's namespace: the root qdisc (tbf for a rate; netem for delay, jitter,
// reordering, duplication, corruption — and the rate then), an nftables table of its own for random loss
// (`numgen random`, IP packets leaving the interface, forwarded or not), and the link's state for down and flaps.
// All of it is in the node's namespace, so nothing outlives the node. A new setting replaces the old one whole.
import { Duration, Effect } from "effect"
import * as Impairment from "../Impairment.ts"
import { ImpairmentUnsupported, NetworkToolFailed } from "../StageError.ts"
import { type Namespace, run, runOk } from "./netns.ts"

/** One interface in one node's namespace, and its name for people (`client1:eth1`). */
export interface End {
  readonly ns: Namespace
  readonly iface: string
  readonly target: string
}

/** One nftables table per interface, so changing one interface's loss never touches another's. */
const tableOf = (iface: string) => `testbed_${Buffer.from(iface).toString("hex")}`

/** Whether the kernel has netem, tried on the node's own loopback (and removed at once). */
const requireNetem = Effect.fn("Impair.requireNetem")(function* (end: End, settings: Impairment.Settings) {
  const tried = yield* run(end.ns, ["tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "0ms"])
  if (tried.exitCode === 0) {
    yield* run(end.ns, ["tc", "qdisc", "del", "dev", "lo", "root"])
    return
  }
  const output = `${tried.stderr}${tried.stdout}`.trim()
  if (/unknown|not supported|No such file or directory/i.test(output)) {
    return yield* new ImpairmentUnsupported({
      target: end.target,
      settings: Impairment.netemSettings.filter((k) => settings[k] !== undefined),
      module: "sch_netem",
      reason: output.split("\n")[0] ?? output
    })
  }
  return yield* new NetworkToolFailed({
    node: end.ns.node,
    command: ["tc", "qdisc", "add", "dev", "lo", "root", "netem"],
    exitCode: tried.exitCode,
    output
  })
})

const netemArgs = (s: Impairment.Settings): Array<string> => [
  "netem",
  ...(s.delay !== undefined || s.jitter !== undefined
    ? ["delay", `${s.delay ?? 0}ms`, ...(s.jitter === undefined ? [] : [`${s.jitter}ms`])]
    : []),
  ...(s.reorder === undefined ? [] : ["reorder", `${s.reorder}%`]),
  ...(s.duplicate === undefined ? [] : ["duplicate", `${s.duplicate}%`]),
  ...(s.corrupt === undefined ? [] : ["corrupt", `${s.corrupt}%`]),
  ...(s.rate === undefined ? [] : ["rate", `${Math.round(s.rate)}bit`])
]

/** A token bucket whose burst is 10 ms of the rate (at least two full frames): close to the rate from the start. */
const tbfArgs = (rate: number): Array<string> => [
  "tbf",
  "rate",
  `${Math.round(rate)}bit`,
  "burst",
  String(Math.max(3028, Math.ceil(rate / 8 / 100))),
  "latency",
  "100ms"
]

const setQdisc = Effect.fn("Impair.setQdisc")(function* (end: End, s: Impairment.Settings) {
  const args = Impairment.needsNetem(s) ? netemArgs(s) : s.rate !== undefined ? tbfArgs(s.rate) : undefined
  if (args !== undefined) {
    yield* runOk(end.ns, ["tc", "qdisc", "replace", "dev", end.iface, "root", "handle", "1:", ...args])
    return
  }
  const removed = yield* run(end.ns, ["tc", "qdisc", "del", "dev", end.iface, "root"])
  // No qdisc of ours to remove is what "none" means.
  const output = `${removed.stderr}${removed.stdout}`
  if (removed.exitCode !== 0 && !/handle of zero|No such file|Invalid handle/i.test(output)) {
    return yield* new NetworkToolFailed({
      node: end.ns.node,
      command: ["tc", "qdisc", "del", "dev", end.iface, "root"],
      exitCode: removed.exitCode,
      output
    })
  }
})

/** The interface's loss table, replaced in one nftables transaction (created first so the delete always holds). */
const setLoss = Effect.fn("Impair.setLoss")(function* (end: End, loss: number | undefined) {
  const table = `inet ${tableOf(end.iface)}`
  const lines = [`table ${table} {}`, `delete table ${table}`]
  if (loss !== undefined && loss > 0) {
    const below = Math.round(loss * 100)
    lines.push(
      `table ${table} {`,
      "  chain loss {",
      "    type filter hook postrouting priority 0; policy accept;",
      `    oifname ${JSON.stringify(end.iface)} numgen random mod 10000 < ${below} drop`,
      "  }",
      "}"
    )
  }
  yield* runOk(end.ns, ["nft", "-f", "-"], { stdin: `${lines.join("\n")}\n` })
})

export const setLink = Effect.fn("Impair.setLink")(function* (end: End, up: boolean) {
  yield* runOk(end.ns, ["ip", "link", "set", "dev", end.iface, up ? "up" : "down"])
})

/** How long a link brought up may take to be reported up, and how often it is looked at meanwhile. */
const carrierDeadlineMs = 10_000
const carrierPollMs = 100

/**
 * Waits until the kernel reports the link up. A veth has its carrier (`LOWER_UP`) as soon as it is set up with its
 * peer up, but its operational state follows through the kernel's link watch, up to a second later: until then
 * the node's programs see the link down. A link without carrier (its peer is down) has nothing to wait for.
 */
const awaitUp = Effect.fn("Impair.awaitUp")(function* (end: End) {
  const argv = ["ip", "-o", "link", "show", "dev", end.iface]
  for (let waited = 0; ; waited += carrierPollMs) {
    const shown = (yield* runOk(end.ns, argv)).stdout
    const state = /\bstate (\S+)/.exec(shown)?.[1] ?? "UNKNOWN"
    const carrier = /[<,]LOWER_UP[,>]/.test(shown)
    if (!carrier || (state !== "DOWN" && state !== "LOWERLAYERDOWN")) return
    if (waited >= carrierDeadlineMs) {
      return yield* new NetworkToolFailed({
        node: end.ns.node,
        command: argv,
        exitCode: null,
        output: `${end.target} has its carrier but was not reported up within ${carrierDeadlineMs / 1000} s (state ${state})`
      })
    }
    yield* Effect.sleep(Duration.millis(carrierPollMs))
  }
})

/** Sets the link up and returns once the kernel reports it up (see `awaitUp`). */
const bringUp = Effect.fn("Impair.bringUp")(function* (end: End) {
  yield* setLink(end, true)
  yield* awaitUp(end)
})

/**
 * Applies `settings` to the interface, replacing what it had (`previous`). What the kernel cannot do is refused
 * before anything changes.
 */
export const apply = Effect.fn("Impair.apply")(function* (
  end: End,
  settings: Impairment.Settings,
  previous: Impairment.Settings | undefined
) {
  if (Impairment.needsNetem(settings)) yield* requireNetem(end, settings)
  yield* setQdisc(end, settings)
  yield* setLoss(end, settings.loss)
  // The link's state is touched only when this setting or the one it replaces is about it.
  if (settings.down === true) yield* setLink(end, false)
  else if (previous?.down === true || settings.down === false) yield* bringUp(end)
})

/**
 * Down for `flap.down`, up for `flap.up`, `flap.count` times; `changed` is told of every step. Left up, and each
 * up is reported once the kernel says the link is up.
 */
export const flap = Effect.fn("Impair.flap")(function* <R>(
  end: End,
  schedule: Impairment.Flap,
  changed: (up: boolean) => Effect.Effect<void, never, R>
) {
  const cycle = Effect.gen(function* () {
    yield* setLink(end, false)
    yield* changed(false)
    yield* Effect.sleep(Duration.millis(schedule.down))
    yield* bringUp(end)
    yield* changed(true)
    yield* Effect.sleep(Duration.millis(schedule.up))
  })
  yield* Effect.repeat(cycle, { times: schedule.count - 1 }).pipe(
    Effect.onInterrupt(() => Effect.ignore(setLink(end, true)))
  )
})
