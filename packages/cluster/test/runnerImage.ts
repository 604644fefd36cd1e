// The runner image of docs/cluster.md section 5, built here from this checkout with no registry (no Docker Hub, no
// npm registry for @testbed): the workspace's packages packed as they are published (`pnpm -r pack`: prepack builds
// dist/, workspace:* becomes the version), installed with npm as a user installs them (third-party dependencies
// from npm's cache or registry), and put with the pinned Node binary, its shared libraries and busybox-static into a
// `FROM scratch` image (fixtures/runner-image/Dockerfile). The image carries the test's label: the test's sweep
// removes it.
//
// Why packed tarballs and not Verdaccio (Registry.test.ts): a registry adds a server, a user and a publish to a test
// whose subject is the cluster, and what npm installs is the same tarballs either way.
import { execFile, execFileSync } from "node:child_process"
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync
} from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { Data, Duration, Effect } from "effect"
import { docker } from "./docker.ts"

const repo = decodeURIComponent(new URL("../../../", import.meta.url).pathname)
const dockerfile = decodeURIComponent(new URL("fixtures/runner-image/Dockerfile", import.meta.url).pathname)

/**
 * Held (flock) while the workspace is packed: prepack empties and rebuilds each package's dist/, and a second pack
 * or publish at the same time (Registry.test.ts) would pack a half-built one.
 */
export const packLock = join(tmpdir(), "testbed-workspace-pack.lock")

/** npm's own entry script, run with the pinned Node (the system `npm` starts whatever `node` is first on PATH). */
export const npmCli: string | undefined = (() => {
  const found = execFileSync("sh", ["-c", "command -v npm || true"], { encoding: "utf8" }).trim()
  return found === "" ? undefined : realpathSync(found)
})()

/** What the image needs from this machine, by what is missing. */
export const imagePrerequisites = {
  npm: npmCli !== undefined,
  "busybox-static (/bin/busybox)": existsSync("/bin/busybox"),
  "flock (util-linux)": existsSync("/usr/bin/flock") || existsSync("/bin/flock"),
  ldd: existsSync("/usr/bin/ldd")
}

export class ImageStepFailed extends Data.TaggedError("ImageStepFailed")<{
  readonly step: string
  readonly output: string
}> {
  override get message() {
    return `building the runner image: ${this.step} failed\n${this.output}`
  }
}

const seconds = (elapsed: Duration.Duration) => `${(Duration.toMillis(elapsed) / 1000).toFixed(1)} s`

/** One step of the build, logged with how long it took (the build is most of this test's time in CI). */
const step = (step: string, program: string, args: ReadonlyArray<string>, cwd: string, timeoutMs: number) =>
  Effect.callback<string, ImageStepFailed>((resume) => {
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([key]) => !/^(npm_|pnpm_|VITEST|NODE_OPTIONS$)/i.test(key))
    )
    const child = execFile(
      program,
      [...args],
      { cwd, env, timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) =>
        resume(
          error === null
            ? Effect.succeed(String(stdout))
            : Effect.fail(new ImageStepFailed({ step, output: `${error.message}\n${stdout}${stderr}`.slice(-8000) }))
        )
    )
    return Effect.sync(() => child.kill("SIGKILL"))
  }).pipe(
    Effect.timed,
    Effect.tap(([elapsed]) => Effect.logInfo(`runner image: ${step} took ${seconds(elapsed)}`)),
    Effect.map(([, output]) => output)
  )

/** The shared libraries a binary loads (ldd's absolute paths, the loader included). */
const sharedLibraries = (binary: string): ReadonlyArray<string> =>
  [...execFileSync("ldd", [binary], { encoding: "utf8" }).matchAll(/(\/\S+) \(0x/g)].map((match) => match[1]!)

/**
 * The workspace as a user installs it, under `prefix/node_modules`: every package packed as it is published, every
 * @testbed package from its tarball (so the CLI's @testbed dependencies resolve to them, not to a registry), the rest
 * as npm resolves it; no dev dependencies. `packs` gets the tarballs. The CLI is then
 * `prefix/node_modules/@testbed/cli/dist/bin.js` (`installedCli`).
 */
export const installWorkspace = Effect.fn("RunnerImage.installWorkspace")(function* (prefix: string, packs: string) {
  mkdirSync(packs, { recursive: true })
  yield* step(
    "pnpm -r pack",
    "flock",
    [packLock, "npx", "--yes", "pnpm@10.34.9", "-r", "pack", "--pack-destination", packs],
    repo,
    10 * 60_000
  )
  const tarballs = readdirSync(packs).filter((file) => file.startsWith("testbed-") && !file.includes("monorepo"))
  const dependencies = Object.fromEntries(
    tarballs.map((file) => [
      `@testbed/${file.replace(/^testbed-/, "").replace(/-\d+\.\d+\.\d+.*\.tgz$/, "")}`,
      `file:${join(packs, file)}`
    ])
  )
  mkdirSync(prefix, { recursive: true })
  writeFileSync(
    join(prefix, "package.json"),
    JSON.stringify({ name: "testbed-installed", private: true, dependencies })
  )
  yield* step(
    "npm install",
    process.execPath,
    [npmCli!, "install", "--omit=dev", "--no-audit", "--no-fund", "--prefer-offline", "--no-update-notifier"],
    prefix,
    10 * 60_000
  )
  return installedCli(prefix)
})

/** The installed CLI's entry under `prefix` (`installWorkspace`). */
export const installedCli = (prefix: string) => join(prefix, "node_modules/@testbed/cli/dist/bin.js")

/** Builds the image as `tag`, labelled `label`, in `work` (an empty directory; emptied again once built). */
export const buildRunnerImage = Effect.fn("RunnerImage.build")(function* (tag: string, label: string, work: string) {
  yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(work, { recursive: true, force: true })))
  const rootfs = join(work, "context", "rootfs")
  // testbed under /opt/testbed.
  yield* installWorkspace(join(rootfs, "opt/testbed"), join(work, "packs"))

  for (const dir of ["bin", "usr/local/bin", "tmp", "root", "etc"]) mkdirSync(join(rootfs, dir), { recursive: true })
  chmodSync(join(rootfs, "tmp"), 0o1777)
  copyFileSync(process.execPath, join(rootfs, "usr/local/bin/node"))
  for (const library of sharedLibraries(process.execPath)) {
    mkdirSync(join(rootfs, dirname(library)), { recursive: true })
    copyFileSync(realpathSync(library), join(rootfs, library))
  }
  copyFileSync("/bin/busybox", join(rootfs, "bin/busybox"))
  chmodSync(join(rootfs, "bin/busybox"), 0o755)
  for (const applet of execFileSync("/bin/busybox", ["--list"], { encoding: "utf8" }).split("\n")) {
    if (applet !== "" && applet !== "busybox") symlinkSync("busybox", join(rootfs, "bin", applet))
  }
  // `#!/usr/bin/env node` (the CLI's bin) and scripts that name /usr/bin/…: /usr/bin is /bin, as on merged-/usr.
  symlinkSync("../bin", join(rootfs, "usr/bin"))
  symlinkSync("/opt/testbed/node_modules/.bin/testbed", join(rootfs, "usr/local/bin/testbed"))
  writeFileSync(join(rootfs, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")
  writeFileSync(join(rootfs, "etc/group"), "root:x:0:\n")
  copyFileSync(dockerfile, join(work, "context", "Dockerfile"))

  const [elapsed] = yield* Effect.timed(
    docker(["build", "-q", "--label", label, "-t", tag, join(work, "context")], 10 * 60_000)
  )
  yield* Effect.logInfo(`runner image: docker build took ${seconds(elapsed)}`)
  return tag
})
