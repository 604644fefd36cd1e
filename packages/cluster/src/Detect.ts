/**
 * What this host can run, found out rather than declared: `docker` when a Docker engine answers `/_ping` on its
 * socket within 2 s, and each service plugin whose programs are all on PATH.
 */
import { connect } from "node:net"
import { type PluginRegistry, Programs } from "@testbed/plugins"
import { Effect } from "effect"
import * as Labels from "./Labels.ts"

/** The Docker engine's socket: `DOCKER_HOST=unix://…` or the default. */
const dockerSocket = () => {
  const host = process.env.DOCKER_HOST
  return host?.startsWith("unix://") ? host.slice("unix://".length) : "/var/run/docker.sock"
}

/** Whether a Docker engine answers its ping (within 2 s). */
export const dockerAnswers: Effect.Effect<boolean> = Effect.callback<boolean>((resume) => {
  const socket = connect(dockerSocket())
  let answer = ""
  socket.setTimeout(2000, () => socket.destroy())
  socket.on("connect", () => socket.write("GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n"))
  socket.on("data", (data) => {
    // Bounded: the status line is all that is read.
    if (answer.length < 4096) answer += String(data)
  })
  socket.on("error", () => resume(Effect.succeed(false)))
  socket.on("close", () => resume(Effect.succeed(/^HTTP\/1\.[01] 200/.test(answer))))
  return Effect.sync(() => socket.destroy())
}).pipe(Effect.timeoutOrElse({ duration: "3 seconds", orElse: () => Effect.succeed(false) }))

/** The labels found on this host, merged with `declared`. */
export const labels = Effect.fn("Detect.labels")(function* (
  registry: PluginRegistry.PluginRegistry["Service"],
  declared: ReadonlyArray<string>
) {
  const docker = yield* dockerAnswers
  return Labels.normalize([
    ...declared,
    ...(docker ? ["docker"] : []),
    ...Labels.ofPlugins(registry, (p) => Programs.onPath(p))
  ])
})
