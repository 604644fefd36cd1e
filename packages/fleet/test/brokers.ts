// The brokers the network scenarios run against, each started by the test on a free port: the embedded Aedes,
// and a real Mosquitto plain, with a password file, and over TLS (a CA and certificate made for the run).
import { rmSync } from "node:fs"
import { Effect, Exit, Redacted, Scope } from "effect"
import { Broker } from "../src/index.ts"
import { freePort, mosquitto, runMosquittoTests, tlsFiles } from "./helpers.ts"
import type { BrokerAccess } from "./scenarios.ts"

export type BrokerKind =
  | "embedded"
  | "embedded with a password"
  | "mosquitto"
  | "mosquitto with a password"
  | "mosquitto over TLS"

/** Every kind; Mosquitto's only where it runs (under CI a missing Mosquitto fails, see helpers). */
export const brokerKinds: ReadonlyArray<BrokerKind> = runMosquittoTests
  ? ["embedded", "mosquitto", "mosquitto with a password", "mosquitto over TLS"]
  : ["embedded"]

export const credentials = { username: "fleet", password: "pa55word-4e1c" }

export interface BrokerUnderTest extends BrokerAccess {
  readonly kind: BrokerKind
  /** SIGTERM makes Mosquitto publish every client's will; SIGKILL does not. The embedded broker just closes. */
  readonly stop: (signal: "SIGTERM" | "SIGKILL") => Effect.Effect<void>
  /** Starts it again on the same port. */
  readonly start: Effect.Effect<void>
}

const embedded = (withPassword: boolean) =>
  Effect.gen(function* () {
    const port = yield* freePort
    const auth = withPassword ? { username: credentials.username, password: Redacted.make(credentials.password) } : {}
    let scope = yield* Scope.make()
    yield* Broker.embedded({ port, ...auth }).pipe(Scope.provide(scope), Effect.orDie)
    yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
    return {
      kind: withPassword ? "embedded with a password" : "embedded",
      url: `mqtt://127.0.0.1:${port}`,
      ...auth,
      stop: () => Scope.close(scope, Exit.void),
      start: Effect.gen(function* () {
        scope = yield* Scope.make()
        yield* Broker.embedded({ port, ...auth }).pipe(Scope.provide(scope), Effect.orDie)
      })
    } satisfies BrokerUnderTest
  })

export const startBroker = (kind: BrokerKind): Effect.Effect<BrokerUnderTest, never, Scope.Scope> =>
  Effect.gen(function* () {
    if (kind === "embedded" || kind === "embedded with a password") return yield* embedded(kind !== "embedded")
    if (kind === "mosquitto") {
      const broker = yield* mosquitto()
      return { kind, url: broker.url, stop: broker.stopWith, start: broker.start }
    }
    if (kind === "mosquitto with a password") {
      const broker = yield* mosquitto(credentials)
      return {
        kind,
        url: broker.url,
        username: credentials.username,
        password: Redacted.make(credentials.password),
        stop: broker.stopWith,
        start: broker.start
      }
    }
    const files = yield* Effect.acquireRelease(Effect.sync(tlsFiles), (f) =>
      Effect.sync(() => rmSync(f.dir, { recursive: true, force: true }))
    )
    const broker = yield* mosquitto(undefined, files)
    return { kind, url: broker.url, tls: { caFile: files.caFile }, stop: broker.stopWith, start: broker.start }
  })
