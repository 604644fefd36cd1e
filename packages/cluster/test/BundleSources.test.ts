// What goes into a bundle, on real files (no database): references, layout, links, and the round trip through
// pack, open and extract.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Bundle from "../src/Bundle.ts"
import * as BundleSources from "../src/BundleSources.ts"

const tempDir = (prefix: string) =>
  Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), prefix))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )

/** `base/exp/e.yaml` naming a replay script in `../replay` (with a blob), a link out of the tree and one inside it. */
const layout = (base: string) => {
  for (const dir of ["exp/sub", "replay", "outside"]) mkdirSync(join(base, dir), { recursive: true })
  writeFileSync(join(base, "replay", "session.json"), "{}")
  // Its responses, beside it (replay's BlobStore looks there).
  mkdirSync(join(base, "replay", "blobs"))
  writeFileSync(join(base, "replay", "blobs", "0123456789abcdef0123456789abcdef01234567"), "a response")
  writeFileSync(join(base, "outside", "secret.txt"), "not for the bundle")
  writeFileSync(join(base, "exp", "sub", "data.txt"), "inside")
  symlinkSync(join(base, "outside", "secret.txt"), join(base, "exp", "leak.txt"))
  symlinkSync(join(base, "exp", "sub", "data.txt"), join(base, "exp", "alias.txt"))
  symlinkSync(join(base, "exp", "sub"), join(base, "exp", "subdir-link"))
  writeFileSync(
    join(base, "exp", "e.yaml"),
    [
      "tests:",
      "  - name: t",
      "    services:",
      "      s: { implementation: node-echo, role: server }",
      "    steps:",
      "      - replay: { name: r, script: ../replay/session.json, command: ['true'] }",
      ""
    ].join("\n")
  )
  return join(base, "exp", "e.yaml")
}

describe("BundleSources", () => {
  it.effect(
    "bundles the experiment's directory and what it names, in their layout; links out of the tree are left out",
    () =>
      Effect.gen(function* () {
        const base = yield* tempDir("testbed-sources-")
        const file = layout(base)
        const collected = yield* BundleSources.collect({ file, pluginDirectories: [], exclude: [], maxBytes: 1 << 20 })
        assert.strictEqual(collected.header.experiment, "exp/e.yaml")
        assert.deepStrictEqual(
          collected.header.entries.map((entry) => entry.path),
          [
            "exp/alias.txt",
            "exp/e.yaml",
            "exp/sub/data.txt",
            "replay/blobs/0123456789abcdef0123456789abcdef01234567",
            "replay/session.json"
          ]
        )
        assert.deepStrictEqual(collected.skipped.map((at) => at.slice(base.length)).sort(), [
          "/exp/leak.txt",
          "/exp/subdir-link"
        ])
        // Deterministic: the same files give the same sha256.
        const again = yield* BundleSources.collect({ file, pluginDirectories: [], exclude: [], maxBytes: 1 << 20 })
        assert.strictEqual(again.sha256, collected.sha256)
        // The round trip.
        const opened = yield* Bundle.open(collected.sha256, collected.bytes, 1 << 20)
        const target = yield* tempDir("testbed-unpacked-")
        yield* Bundle.extract(collected.sha256, opened, join(target, "files"))
        assert.strictEqual(readFileSync(join(target, "files", "exp", "alias.txt"), "utf8"), "inside")
        assert.strictEqual(readFileSync(join(target, "files", "replay", "session.json"), "utf8"), "{}")
      }).pipe(Effect.provide(NodeServices.layer))
  )

  it("finds references in {{ experiment_dir }} paths and in script / secret_file fields, never absolute ones", () => {
    const config = {
      tests: [
        {
          name: "t",
          services: { s: { parameters: { script: "{{ experiment_dir }}/../replay/a.json", other: "/etc/passwd" } } },
          steps: [
            { replay: { script: "b.json" } },
            { fleet: { secret_file: "keys/fleet.secret" } },
            { run: { shell: "cat {{experiment_dir}}/data/c.txt && cat /abs/d" } }
          ]
        }
      ]
    }
    assert.deepStrictEqual([...BundleSources.references(config)].sort(), [
      "../replay/a.json",
      "b.json",
      "data/c.txt",
      "keys/fleet.secret"
    ])
    // A replay script brings its directory: its blobs/ and the files it includes are there.
    assert.deepStrictEqual([...BundleSources.scriptDirectories(config)].sort(), [".", "../replay"])
  })

  it("names that would leave a directory are unsafe", () => {
    for (const name of ["../x", "a/../../x", "/etc/passwd", "C:/x", "a\\b", "a//b", "./a", "", "a/./b"]) {
      assert.isDefined(Bundle.unsafeName(name), name)
    }
    for (const name of ["a", "a/b.c", "..a/b", "a/..b", ".hidden/x"]) assert.isUndefined(Bundle.unsafeName(name), name)
  })
})
