// docs/cluster.md section 4's unit file parses as systemd reads it: `systemd-analyze verify` (Debian's systemd; it
// needs no running systemd) prints nothing about it. verify also requires ExecStart's program to exist, so the
// copy checked names an executable of the test's own in place of /usr/local/bin/testbed; nothing else is changed.
// systemd only warns about an unknown key or a bad value (and exits 0): any output is a failure here, and the
// second test shows a misspelt key is caught.
import { spawnSync } from "node:child_process"
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, describe, it } from "@effect/vitest"

const guide = decodeURIComponent(new URL("../../../docs/cluster.md", import.meta.url).pathname)
const isCI = process.env.CI === "true" || process.env.CI === "1"
const analyze = spawnSync("systemd-analyze", ["--version"], { stdio: "ignore" }).status === 0

/** The guide's one `ini` block: the unit file. */
const unitOfGuide = (): string => {
  const blocks = [...readFileSync(guide, "utf8").matchAll(/```ini\n([\s\S]*?)```/g)].map((match) => match[1]!)
  assert.strictEqual(blocks.length, 1, "docs/cluster.md has one ini block, the unit file")
  return blocks[0]!
}

const dir = mkdtempSync(join(tmpdir(), "testbed-systemd-unit-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** What `systemd-analyze verify` says about `unit` saved as testbed-runner.service, and its exit code. */
const verify = (unit: string) => {
  const program = join(dir, "testbed")
  writeFileSync(program, "#!/bin/sh\n")
  chmodSync(program, 0o755)
  assert.include(unit, "ExecStart=/usr/local/bin/testbed ")
  const file = join(dir, "testbed-runner.service")
  writeFileSync(file, unit.replace("ExecStart=/usr/local/bin/testbed ", `ExecStart=${program} `))
  const result = spawnSync("systemd-analyze", ["verify", "--man=no", file], { encoding: "utf8", timeout: 60_000 })
  return { code: result.status, output: `${result.stdout}${result.stderr}`.trim() }
}

describe.skipIf(!analyze && !isCI)("the guide's systemd unit", () => {
  it("has systemd-analyze (Debian's systemd)", () => {
    assert.isTrue(analyze)
  })

  it("passes systemd-analyze verify without a word", () => {
    assert.deepStrictEqual(verify(unitOfGuide()), { code: 0, output: "" })
  })

  it("a misspelt key is caught", () => {
    const result = verify(unitOfGuide().replace("KillSignal=", "KilSignal="))
    assert.include(result.output, "Unknown key 'KilSignal'")
  })
})
