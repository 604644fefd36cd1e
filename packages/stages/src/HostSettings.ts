/**
 * Host settings a stage needs (sysctls, ARP on its bridges): applied on `up` after reading each earlier value,
 * restored to exactly that value on `down` — never forced to a guessed default.
 */
import { Effect, FileSystem } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import type { Host } from "./Stage.ts"
import { HostSettingFailed } from "./StageError.ts"
import type { Restore } from "./StageState.ts"

const IFF_NOARP = 0x80

const sysctlPath = (key: string) => `/proc/sys/${key.replaceAll(".", "/")}`

/** The hint is for users who are not root; to root it would only mislead (e.g. a read-only /proc/sys). */
const rootHint = (hint: string): string => (process.getuid?.() === 0 ? "" : ` (${hint})`)

export const readSysctl = Effect.fn("HostSettings.readSysctl")(function* (key: string) {
  const fs = yield* FileSystem.FileSystem
  return yield* fs.readFileString(sysctlPath(key)).pipe(
    Effect.map((text) => text.trim()),
    Effect.mapError((e) => new HostSettingFailed({ setting: key, reason: e.message }))
  )
})

const writeSysctl = Effect.fn("HostSettings.writeSysctl")(function* (key: string, value: string) {
  const fs = yield* FileSystem.FileSystem
  yield* fs.writeFileString(sysctlPath(key), `${value}\n`).pipe(
    Effect.mapError(
      (e) =>
        new HostSettingFailed({
          setting: key,
          reason: `${e.message}${rootHint("changing host settings needs root")}`
        })
    )
  )
})

/** Whether ARP is on for an interface, from its flags in sysfs. */
export const readArp = Effect.fn("HostSettings.readArp")(function* (iface: string) {
  const fs = yield* FileSystem.FileSystem
  const text = yield* fs
    .readFileString(`/sys/class/net/${iface}/flags`)
    .pipe(Effect.mapError((e) => new HostSettingFailed({ setting: `${iface} arp`, reason: e.message })))
  return (Number.parseInt(text.trim(), 16) & IFF_NOARP) === 0
})

const setArp = Effect.fn("HostSettings.setArp")(function* (iface: string, on: boolean) {
  const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
  const setting = `${iface} arp ${on ? "on" : "off"}`
  const code = yield* spawner
    .exitCode(ChildProcess.make("ip", ["link", "set", "dev", iface, "arp", on ? "on" : "off"]))
    .pipe(Effect.mapError((e) => new HostSettingFailed({ setting, reason: `${e.message} (needs iproute2)` })))
  if (code !== 0)
    return yield* new HostSettingFailed({ setting, reason: `ip exited with ${code}${rootHint("needs root")}` })
})

/**
 * Applies the settings in order, returning what to restore. If one fails midway, the ones already applied are
 * restored before the failure is reported. `bridgeOf` names the host interface of a stage network.
 */
export const apply = Effect.fn("HostSettings.apply")(function* (host: Host, bridgeOf: (network: string) => string) {
  const applied: Array<Restore> = []
  yield* applyAll(host, bridgeOf, applied).pipe(Effect.onError(() => restore(applied)))
  return applied as ReadonlyArray<Restore>
})

/** Sets one sysctl, recording its earlier value in `applied` once it is changed. */
const setSysctl = Effect.fn("HostSettings.setSysctl")(function* (key: string, value: string, applied: Array<Restore>) {
  const previous = yield* readSysctl(key)
  yield* writeSysctl(key, value)
  applied.push({ kind: "sysctl", key, previous })
})

/** Every setting in order; `applied` grows as each is changed, so a failure midway knows what to put back. */
const applyAll = Effect.fn("HostSettings.applyAll")(function* (
  host: Host,
  bridgeOf: (network: string) => string,
  applied: Array<Restore>
) {
  for (const [key, value] of Object.entries(host.sysctls ?? {})) yield* setSysctl(key, value, applied)
  for (const iface of host.interfaces ?? []) {
    const name = iface.network !== undefined ? bridgeOf(iface.network) : (iface.name ?? "")
    for (const [setting, value] of Object.entries(iface.ipv4 ?? {})) {
      yield* setSysctl(`net.ipv4.conf.${name}.${setting}`, value, applied)
    }
    if (iface.arp !== undefined) {
      const previous = yield* readArp(name)
      yield* setArp(name, iface.arp)
      applied.push({ kind: "arp", interface: name, previous })
    }
  }
})

/**
 * Puts earlier values back, last change first. Best effort: an interface that is gone (its bridge was removed)
 * has nothing left to restore, and one failure does not stop the others.
 */
export const restore = Effect.fn("HostSettings.restore")(function* (
  restores: ReadonlyArray<Restore>
): Effect.fn.Return<void, never, FileSystem.FileSystem | ChildProcessSpawner.ChildProcessSpawner> {
  for (const r of [...restores].reverse()) {
    const undo: Effect.Effect<
      void,
      HostSettingFailed,
      FileSystem.FileSystem | ChildProcessSpawner.ChildProcessSpawner
    > = r.kind === "sysctl" ? writeSysctl(r.key, r.previous) : setArp(r.interface, r.previous)
    yield* undo.pipe(Effect.catch((e) => Effect.logWarning(`could not restore ${e.setting}: ${e.reason}`)))
  }
})
