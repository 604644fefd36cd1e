import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted, Ref, Semaphore } from "effect"
import * as Protocol from "../src/AttemptProtocol.ts"
import * as AttemptRunner from "../src/AttemptRunner.ts"
import * as BundleCache from "../src/BundleCache.ts"
import * as Envelope from "../src/Envelope.ts"
import * as Plans from "../src/internal/plans.ts"

const request = {
  runId: "run",
  testKey: "t-00000000",
  test: "t",
  attempt: 1,
  dispatch: 0,
  file: "/x.yaml",
  fileSha256: "00",
  pluginDirectories: [],
  timeoutMs: 1000,
  timeoutMessage: "test timed out after 1s",
  notAfter: 1,
  protocol: Protocol.protocolVersion
}

describe("Envelope", () => {
  it.effect("a request signed with the cluster secret checks out; another secret, entity or field does not", () =>
    Effect.sync(() => {
      const keys = Envelope.keys(Redacted.make("the-cluster-secret-1"))
      const other = Envelope.keys(Redacted.make("the-cluster-secret-2"))
      const mac = Envelope.sign(keys.request, Protocol.requestParts("default/run/t#0", request))
      assert.isTrue(Envelope.verify(keys.request, Protocol.requestParts("default/run/t#0", request), mac))
      assert.isFalse(Envelope.verify(other.request, Protocol.requestParts("default/run/t#0", request), mac))
      assert.isFalse(Envelope.verify(keys.request, Protocol.requestParts("default/run/t#1", request), mac))
      assert.isFalse(
        Envelope.verify(keys.request, Protocol.requestParts("default/run/t#0", { ...request, file: "/y.yaml" }), mac)
      )
      // The chunk key is another key: a request signature is no chunk signature.
      assert.isFalse(Envelope.verify(keys.chunk, Protocol.requestParts("default/run/t#0", request), mac))
      assert.isFalse(Envelope.verify(keys.request, Protocol.requestParts("default/run/t#0", request), "zz"))
    })
  )
})

describe("AttemptRunner.check", () => {
  const keys = Envelope.keys(Redacted.make("the-cluster-secret-1"))
  const identity: AttemptRunner.RunnerIdentity = {
    name: "r1",
    host: "h",
    workdir: "/nonexistent",
    pluginDirectories: [],
    keys,
    slots: Semaphore.makeUnsafe(1),
    running: Ref.makeUnsafe<ReadonlyMap<string, string>>(new Map()),
    maxArtifactBytes: 0,
    bundles: BundleCache.make({ workdir: "/nonexistent" }),
    plans: Plans.make()
  }
  const entityId = "default/run/t#0"
  const signedAs = (unsigned: Omit<Protocol.AttemptRequest, "mac">): Protocol.AttemptRequest => ({
    ...unsigned,
    mac: Envelope.sign(keys.request, Protocol.requestParts(entityId, unsigned))
  })
  const live = { ...request, notAfter: Date.now() + 3_600_000 }

  it.effect("accepts a signed request of its protocol; refuses another protocol by name, before the signature", () =>
    Effect.gen(function* () {
      yield* AttemptRunner.check(identity, entityId, signedAs(live))
      // A coordinator of protocol 1 sent no version (and signed other parts).
      const { protocol: _, ...older } = live
      const refused = yield* Effect.flip(AttemptRunner.check(identity, entityId, signedAs(older)))
      assert.strictEqual(
        refused.message,
        "runner r1 refused the attempt: the coordinator speaks cluster protocol 1, this runner 2: run the same testbed version on both"
      )
      const forged = yield* Effect.flip(AttemptRunner.check(identity, entityId, { ...signedAs(live), test: "other" }))
      assert.match(forged.reason, /^bad signature/)
      // An older runner says "bad signature" to a newer coordinator: the coordinator's report names both causes.
      assert.match(Protocol.refusalReason(forged), /bad signature .*; or the runner runs another testbed version/)
    })
  )
})
