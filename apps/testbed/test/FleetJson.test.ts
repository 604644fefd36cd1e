// `testbed fleet operator --json` and `testbed fleet send --json` (issue 15): one JSON document on stdout, the
// exit code as without it, everything a person reads on stderr. Broker, agent and (for send) operator run in this
// process from the library; the CLI runs as the child process a CI script would start.
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { LocalRunner } from "@testbed/commands"
import { EventBus } from "@testbed/events"
import { Agent, Broker, Operator, Security } from "@testbed/fleet"
import { Effect, Layer, Redacted } from "effect"
import { testbed } from "./support.ts"

const layer = LocalRunner.layer.pipe(
  Layer.provideMerge(EventBus.EventBus.layer),
  Layer.provideMerge(NodeServices.layer)
)

const secretFile = Effect.acquireRelease(
  Effect.sync(() => {
    const dir = mkdtempSync(join(tmpdir(), "testbed-fleet-json-"))
    const secret = randomBytes(24).toString("hex")
    writeFileSync(join(dir, "secret"), secret)
    return { dir, file: join(dir, "secret"), signing: Security.signed(Redacted.make(secret)) }
  }),
  ({ dir }) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

describe("testbed fleet --json", () => {
  it.live(
    "operator: the summary as one JSON document on stdout, the compat warning and answers on stderr, exit 1",
    () =>
      Effect.gen(function* () {
        const broker = yield* Broker.embedded({ port: 0 })
        yield* Agent.start({ ids: ["sut-1"], connection: { url: broker.url }, signing: Security.compat })
        const run = yield* testbed(
          ...["fleet", "operator", "--broker", broker.url, "--compat", "--expect", "1", "--no-realtime"],
          ...["--no-feedback", "--pipeline", "echo hi; false; echo never", "--json"]
        )
        assert.strictEqual(run.code, 1, run.stderr)
        const lines = run.stdout.trim().split("\n")
        assert.strictEqual(lines.length, 1, run.stdout)
        const summary = JSON.parse(lines[0]!)
        assert.isFalse(summary.succeeded)
        assert.deepStrictEqual(summary.agents, ["sut-1"])
        assert.deepInclude(summary.counts, { succeeded: 1, failed: 1, skipped: 1 })
        assert.deepStrictEqual(
          summary.steps.map((s: { command: string; state: string }) => [s.command, s.state]),
          [
            ["echo hi", "succeeded"],
            ["false", "failed"],
            ["echo never", "skipped"]
          ]
        )
        assert.strictEqual(summary.steps[0].response.output, "hi\n")
        assert.strictEqual(summary.steps[1].exitCode, 1)
        assert.isNull(summary.steps[2].response)
        assert.include(run.stderr, "compat mode")
        assert.include(run.stderr, "sut-1: echo hi -> succeeded")
      }).pipe(Effect.scoped, Effect.provide(layer)),
    60_000
  )

  it.live(
    "send: the answers as one JSON document, signatures left out, exit 0",
    () =>
      Effect.gen(function* () {
        const { file, signing } = yield* secretFile
        const broker = yield* Broker.embedded({ port: 0 })
        const operator = yield* Operator.start({ connection: { url: broker.url }, signing, expectAgents: 1 })
        yield* Agent.start({ ids: ["sut-1"], connection: { url: broker.url }, signing })
        yield* operator.awaitRegistrations
        const run = yield* testbed(
          ...["fleet", "send", "--broker", broker.url, "--secret-file", file, "--to", "sut-1", "--json"],
          ...["--", "echo", "there"]
        )
        assert.strictEqual(run.code, 0, run.stderr)
        const result = JSON.parse(run.stdout)
        assert.isTrue(result.succeeded)
        assert.isTrue(result.complete)
        assert.strictEqual(result.to, "sut-1")
        assert.strictEqual(result.responses.length, 1)
        assert.strictEqual(result.responses[0].output, "there\n")
        assert.strictEqual(result.responses[0].status, "succeeded")
        assert.notProperty(result.responses[0], "signature")
        assert.include(run.stderr, "sut-1: echo there -> succeeded")
      }).pipe(Effect.scoped, Effect.provide(layer)),
    60_000
  )
})
