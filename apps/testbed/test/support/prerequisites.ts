// What a test needs from the machine. Under CI=true a missing prerequisite fails the test that needs it (the
// machine is set up by scripts/setup.sh, so missing is a bug); elsewhere the test is skipped with the reason.
import { spawnSync } from "node:child_process"
import { existsSync } from "node:fs"

export const isCI = process.env.CI === "true" || process.env.CI === "1"

const answers = (program: string, args: ReadonlyArray<string>): boolean =>
  spawnSync(program, [...args], { stdio: "ignore", timeout: 20_000 }).status === 0

export const has = {
  program: (name: string): boolean => answers("sh", ["-c", 'command -v "$1" >/dev/null', "sh", name]),
  docker: (): boolean => answers("docker", ["version", "--format", "{{.Server.Version}}"]),
  file: (path: string): boolean => existsSync(path)
}

/** The reasons this machine cannot run a test, from a list of named checks. */
export const missing = (checks: Readonly<Record<string, boolean>>): ReadonlyArray<string> =>
  Object.entries(checks)
    .filter(([, ok]) => !ok)
    .map(([what]) => what)

/** Skip only outside CI: in CI the test runs and fails on the first missing prerequisite. */
export const skipUnlessCI = (reasons: ReadonlyArray<string>): boolean => reasons.length > 0 && !isCI
