/**
 * A runner's first attempt cost ~0.5 s more than its later ones (two runners that had just joined started their
 * first attempts that much after a warm one): its code ran for the first time, and a test loads some modules on
 * first use. A runner is long-running, so it pays that at start, before it takes work: it runs one attempt of its
 * own, a one-test experiment of `exec true` on localhost, through the same steps as a coordinator's request
 * (`AttemptRunner.check`, then `execute`: plan, run on a bus of its own, files, `Finished`, every chunk signed),
 * and loads the modules tests load on first use (the docker environment when it offers `docker`, @testbed/replay).
 * Best effort: a warm-up that fails or takes over `deadline` is logged and the runner serves anyway.
 */
import { createHash, randomBytes } from "node:crypto"
import * as Replay from "@testbed/experiments/Replay"
import { Clock, Duration, Effect, FileSystem, Path } from "effect"
import * as AttemptProtocol from "../AttemptProtocol.ts"
import * as AttemptRunner from "../AttemptRunner.ts"
import * as Envelope from "../Envelope.ts"
import * as Plans from "./plans.ts"

/** How long the warm-up may take before the runner serves without it. */
export const deadline = Duration.seconds(30)

const experiment = [
  "name: warm-up",
  "tests:",
  "  - name: warm-up",
  "    services:",
  '      c: { implementation: exec, role: client, parameters: { program: "true", args: [] } }',
  ""
].join("\n")

/** The modules a test loads on first use, for the labels this runner offers. */
const modules = (labels: ReadonlyArray<string>) =>
  Effect.all(
    [
      ...(labels.includes("docker")
        ? [Effect.tryPromise(() => import("@testbed/experiments/DockerEnvironment")).pipe(Effect.asVoid)]
        : []),
      Effect.asVoid(Replay.load)
    ],
    { discard: true, concurrency: "unbounded" }
  )

/** One attempt through the runner's own steps; its status (`passed` when all went well). */
const attempt = Effect.fn("WarmUp.attempt")(function* (identity: AttemptRunner.RunnerIdentity, dir: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const file = path.join(dir, "warm-up.yaml")
  yield* fs.makeDirectory(dir, { recursive: true })
  yield* fs.writeFileString(file, experiment)
  const runId = `warm-up-${randomBytes(6).toString("hex")}`
  const entityId = `default/${runId}/warm-up/1/0#0`
  const unsigned = {
    runId,
    testKey: "warm-up",
    test: "warm-up",
    attempt: 1,
    dispatch: 0,
    file,
    fileSha256: createHash("sha256").update(experiment).digest("hex"),
    pluginDirectories: [],
    timeoutMs: Duration.toMillis(deadline),
    timeoutMessage: "the runner's warm-up attempt took too long",
    notAfter: (yield* Clock.currentTimeMillis) + Duration.toMillis(deadline),
    protocol: AttemptProtocol.protocolVersion
  }
  const request = {
    ...unsigned,
    mac: Envelope.sign(identity.keys.request, AttemptProtocol.requestParts(entityId, unsigned))
  }
  yield* AttemptRunner.check(identity, entityId, request)
  let status = "no result"
  yield* AttemptRunner.execute(
    // Its plan is not one of the runs' (their cache keeps the last few).
    { ...identity, plans: Plans.make(1), workdir: dir },
    request,
    `${identity.name}-warm-up`,
    (chunk) =>
      Effect.sync(() => {
        Envelope.sign(identity.keys.chunk, AttemptProtocol.chunkParts(entityId, chunk))
        if (chunk._tag === "Finished") status = chunk.status
      })
  ).pipe(Effect.scoped)
  return status
})

/** Warms the runner up (see the module's comment); what happened goes to the log, nothing fails. */
export const run = Effect.fn("WarmUp.run")(function* (
  identity: AttemptRunner.RunnerIdentity,
  labels: ReadonlyArray<string>
) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const dir = path.join(identity.workdir, `warm-up-${process.pid}`)
  const started = yield* Clock.currentTimeMillis
  const outcome = yield* Effect.all([attempt(identity, dir), modules(labels)], { concurrency: "unbounded" }).pipe(
    Effect.timeoutOrElse({ duration: deadline, orElse: () => Effect.succeed(["timed out" as const] as const) }),
    Effect.result,
    Effect.ensuring(Effect.ignore(fs.remove(dir, { recursive: true })))
  )
  const status = outcome._tag === "Success" ? outcome.success[0] : `failed (${String(outcome.failure)})`
  const took = (yield* Clock.currentTimeMillis) - started
  if (status !== "passed") yield* Effect.logWarning(`runner warm-up: its attempt ended ${status} (${took} ms)`)
  else yield* Effect.logInfo(`runner warm-up: one attempt and the modules tests load on first use, ${took} ms`)
  return status
})
