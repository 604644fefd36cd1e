// Every workspace package publishes right (scripts/check-packages.ts): it declares what it imports, takes effect
// as a peer (libraries), and builds dist/ before it is packed. (That the published declarations name no
// internal type left unexported is checked on the packages as installed: Registry.test.ts.)
import { assert, describe, it } from "@effect/vitest"
import { dependencyProblems, packageOf, packingProblems, workspaces } from "../../../scripts/check-packages.ts"

describe("packages", () => {
  it("the import scanner names the package of a specifier", () => {
    assert.strictEqual(packageOf("effect/cli"), "effect")
    assert.strictEqual(packageOf("@effect/platform-node"), "@effect/platform-node")
    assert.strictEqual(packageOf("@testbed/replay/Script"), "@testbed/replay")
    assert.strictEqual(packageOf("node:fs"), undefined)
    assert.strictEqual(packageOf("fs"), undefined)
    assert.strictEqual(packageOf("./internal/Tcp.ts"), undefined)
  })

  it("every package declares each package it imports, and nothing else; libraries take effect as a peer", () => {
    assert.deepStrictEqual(workspaces().flatMap(dependencyProblems), [])
  })

  it("every package builds dist/ when packed, ships it, and points its exports or bin there", () => {
    assert.deepStrictEqual(workspaces().flatMap(packingProblems), [])
  })
})
