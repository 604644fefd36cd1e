// One look at a check's condition in a running stage: does it hold now, and if not, why. Reachability, routes and
// listening ports are looked at from inside the node's namespace with this machine's tools (busybox ping, a Node
// TCP probe, ip, ss); commands run in the node (docker exec, output bounded to 64 KiB, matched in linear time);
// files are looked up by the engine.
import { Duration, Effect, Option, Schema } from "effect"
import * as Check from "../Check.ts"
import { Docker } from "../Docker.ts"
import { formatAddress, parseAddress, parseSubnet } from "./ipv4.ts"
import { run } from "./netns.ts"
import * as Probe from "./probe.ts"
import { nodeNamespace, type View } from "./targets.ts"

/** Whether the condition holds, and in words why not (or what was seen). */
export interface Look {
  readonly holds: boolean
  readonly detail: string
}

const holds = (detail: string): Look => ({ holds: true, detail })
const fails = (detail: string): Look => ({ holds: false, detail })

/** The address `to` stands for: a literal address, or the node's address (on `network`, or its first). */
const addressOf = (view: View, to: string, network: string | undefined): string | undefined => {
  if (parseAddress(to) !== undefined) return to
  const addresses = view.addresses.get(to) ?? {}
  if (network !== undefined) return addresses[network] || undefined
  const link = (view.loaded.stage.links ?? []).flatMap((l) => [l.a, l.b]).find((e) => e.node === to && e.address)
  return Object.values(addresses).find((a) => a !== "") ?? link?.address?.split("/")[0]
}

const reach = Effect.fn("Check.reach")(function* (view: View, r: Check.Reach) {
  const ns = yield* nodeNamespace(view, r.from)
  const address = addressOf(view, r.to, r.network)
  if (address === undefined) return fails(`${r.to} has no address${r.network ? ` on ${r.network}` : ""}`)
  if (r.protocol === "tcp") {
    const probe = yield* Probe.start(ns, "tcp-connect", [address, String(r.port ?? 0), "1000"])
    const answer = yield* probe.next(
      Schema.Struct({ open: Schema.Boolean, reason: Schema.optionalKey(Schema.String) }),
      Duration.seconds(20)
    )
    return answer.open
      ? holds(`${address}:${r.port} accepts`)
      : fails(`${address}:${r.port}: ${answer.reason ?? "closed"}`)
  }
  const ping = yield* run(ns, ["busybox", "ping", "-c", "1", "-W", "1", address])
  return ping.exitCode === 0 ? holds(`${address} answers ICMP echo`) : fails(`${address} does not answer ICMP echo`)
}, Effect.scoped)

const RouteAnswer = Schema.fromJsonString(
  Schema.Array(Schema.Struct({ dev: Schema.optionalKey(Schema.String), gateway: Schema.optionalKey(Schema.String) }))
)

const route = Effect.fn("Check.route")(function* (view: View, r: Check.Route) {
  const ns = yield* nodeNamespace(view, r.node)
  const subnet = parseSubnet(r.to)
  const address = typeof subnet === "string" ? r.to : formatAddress(subnet.network + (subnet.prefix >= 31 ? 0 : 1))
  const got = yield* run(ns, ["ip", "-j", "route", "get", address])
  if (got.exitCode !== 0) return fails(`no route to ${r.to}: ${got.stderr.trim()}`)
  const first = Option.getOrUndefined(Schema.decodeUnknownOption(RouteAnswer)(got.stdout))?.[0]
  if (first === undefined) return fails(`no route to ${r.to}`)
  const via = first.gateway === undefined ? `on ${first.dev ?? "?"}` : `via ${first.gateway}`
  if (r.via !== undefined && first.gateway !== r.via) return fails(`${r.to} is routed ${via}, not via ${r.via}`)
  return holds(`${r.to} is routed ${via}`)
})

const listens = Effect.fn("Check.listens")(function* (view: View, l: Check.Listens) {
  const ns = yield* nodeNamespace(view, l.node)
  const flags = l.protocol === "udp" ? "-Hlun" : "-Hltn"
  const got = yield* run(ns, ["ss", flags, `sport = :${l.port}`])
  return got.exitCode === 0 && got.stdout.trim() !== ""
    ? holds(`${l.protocol ?? "tcp"} port ${l.port} listens`)
    : fails(`nothing listens on ${l.protocol ?? "tcp"} port ${l.port}`)
})

/** Output of a checked command kept for matching (and for the report when it does not match). */
const outputLimit = 64 * 1024

const command = Effect.fn("Check.command")(function* (view: View, c: Check.CommandOutput) {
  const docker = yield* Docker
  const container = view.containers.get(c.node)
  if (container === undefined) return fails(`${c.node} does not run`)
  let output = ""
  const keep = (bytes: Uint8Array) => {
    if (output.length < outputLimit)
      output += Buffer.from(bytes)
        .toString("utf8")
        .slice(0, outputLimit - output.length)
  }
  const code = yield* docker
    .exec(container, { cmd: c.run }, { stdout: keep, stderr: keep })
    .pipe(Effect.timeoutOrElse({ duration: Duration.seconds(30), orElse: () => Effect.succeed(null) }))
  const shown = output.trim().slice(0, 400)
  if (code === null) return fails(`\`${c.run.join(" ")}\` did not finish within 30 s`)
  if (c.exitCode !== undefined && code !== c.exitCode) return fails(`exited with ${code}, not ${c.exitCode}: ${shown}`)
  if (c.exitCode === undefined && c.matches === undefined && code !== 0) return fails(`exited with ${code}: ${shown}`)
  if (c.matches !== undefined) {
    const pattern = Check.compile(c.matches)
    const matched = pattern._tag === "Success" && pattern.success.test(output)
    if (!matched) return fails(`output does not match /${c.matches}/: ${shown}`)
  }
  return holds(`\`${c.run.join(" ")}\` exited with ${code}`)
})

const file = Effect.fn("Check.file")(function* (view: View, f: Check.FileExists) {
  const docker = yield* Docker
  const container = view.containers.get(f.node)
  if (container === undefined) return fails(`${f.node} does not run`)
  return (yield* docker.pathExists(container, f.path)) ? holds(`${f.path} exists`) : fails(`no ${f.path} on ${f.node}`)
})

/** One look at the condition of a check (or of a break-fix check's probe). */
export const look = (view: View, probe: Check.Probe) =>
  "reach" in probe
    ? reach(view, probe.reach)
    : "route" in probe
      ? route(view, probe.route)
      : "listens" in probe
        ? listens(view, probe.listens)
        : "command" in probe
          ? command(view, probe.command)
          : file(view, probe.file)
