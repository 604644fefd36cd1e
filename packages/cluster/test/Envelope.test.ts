import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import * as Protocol from "../src/AttemptProtocol.ts"
import * as Envelope from "../src/Envelope.ts"

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
  notAfter: 1
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
