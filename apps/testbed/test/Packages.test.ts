// Every workspace package publishes right (scripts/check-packages.ts): it declares what it imports, takes effect
// as a peer (libraries), builds dist/ before it is packed, and exports the types its public API names.
import { existsSync } from "node:fs"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import {
  dependencyProblems,
  hiddenTypeProblems,
  packageOf,
  packingProblems,
  workspaces
} from "../../../scripts/check-packages.ts"
import { isCI } from "./support/prerequisites.ts"

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

  // Needs the declarations: CI builds before the tests.
  const built = workspaces().every((workspace) => existsSync(join(workspace.dir, "dist")))
  it.skipIf(!built && !isCI)("no public declaration names an internal type that no public module exports", () => {
    assert.isTrue(built, "dist/ of every package (pnpm build)")
    assert.deepStrictEqual(workspaces().flatMap(hiddenTypeProblems), [])
  })
})
