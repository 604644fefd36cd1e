// A root file system assembled from this machine's files, for implementations run in the docker environment with
// no registry at hand: the programs, the shared libraries `ldd` lists for them, busybox-static as /bin/sh and the
// shell's tools, and the extra files a plugin names. Its manifest (every file's path and content hash, the Debian
// packages' versions, the Dockerfile) hashes into the image's tag, so an image is rebuilt only when an input changed.
import { createHash } from "node:crypto"
import { Builtins, type ServicePlugin } from "@testbed/plugins"
import { Duration, Effect, FileSystem, Path, Schema } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"

export class RootfsFailed extends Schema.TaggedError<RootfsFailed>()("RootfsFailed", {
  implementation: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `image of ${this.implementation}: ${this.reason}`
  }
}

/** One file of the image: where it goes, and the real file on this machine it is copied from. */
export interface Entry {
  readonly target: string
  readonly source: string
  readonly sha256: string
}

export interface Manifest {
  readonly implementation: string
  readonly entries: ReadonlyArray<Entry>
  /** Busybox's applets, as links to /bin/busybox (where no copied program has the same path). */
  readonly applets: ReadonlyArray<string>
  /** `package=version` of every file's Debian package, sorted. */
  readonly packages: ReadonlyArray<string>
  readonly dockerfile: string
  readonly hash: string
}

/** The shell and its tools: a static binary, so it needs no library of its own. */
export const busybox = "/bin/busybox"

/** Bounds what one `ldd` or `dpkg` answer may hold (lines): a program with more is refused, not truncated. */
const maxLines = 10_000

const dockerfileOf = (env: Readonly<Record<string, string>>): string =>
  [
    "FROM scratch",
    "COPY rootfs/ /",
    `ENV PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin`,
    ...Object.entries(env).map(([name, value]) => `ENV ${name}=${JSON.stringify(value)}`),
    `CMD ["/bin/sh"]`,
    ""
  ].join("\n")

const linesOf = Effect.fnUntraced(function* (implementation: string, program: string, args: ReadonlyArray<string>) {
  const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
  const lines = yield* spawner
    .lines(ChildProcess.make(program, [...args]))
    .pipe(
      Effect.mapError(
        (error) => new RootfsFailed({ implementation, reason: `${program} ${args.join(" ")}: ${error.message}` })
      )
    )
  if (lines.length > maxLines) {
    return yield* new RootfsFailed({ implementation, reason: `${program} answered more than ${maxLines} lines` })
  }
  return lines
})

/** Where a program is: an absolute path as given, else the first PATH directory that has it. */
const locate = Effect.fnUntraced(function* (implementation: string, program: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const candidates = program.includes("/")
    ? [program]
    : (process.env.PATH ?? "")
        .split(":")
        .filter((dir) => dir !== "")
        .map((dir) => path.join(dir, program))
  for (const candidate of candidates) {
    if (yield* fs.exists(candidate).pipe(Effect.orElseSucceed(() => false))) return candidate
  }
  return yield* new RootfsFailed({ implementation, reason: `${program} is not installed on this machine` })
})

/** The libraries a program loads, as `ldd` names them (the dynamic loader included); none for a static one. */
const librariesOf = Effect.fnUntraced(function* (implementation: string, file: string) {
  const lines = yield* linesOf(implementation, "ldd", [file])
  return lines.flatMap((line) => {
    const found = /=>\s+(\/\S+)\s+\(/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line)
    return found?.[1] === undefined ? [] : [found[1]]
  })
})

/** `package=version` of the Debian packages the files belong to (files of no package are hashed all the same). */
const packagesOf = Effect.fnUntraced(function* (implementation: string, files: ReadonlyArray<string>) {
  const owners = yield* linesOf(implementation, "dpkg", ["-S", ...files])
  const names = [...new Set(owners.flatMap((line) => /^([^\s,:]+(?::[a-z0-9]+)?):\s/.exec(line)?.[1] ?? []))]
  if (names.length === 0) return []
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format, not a JavaScript template
  const format = "${binary:Package}=${Version}\\n"
  const versions = yield* linesOf(implementation, "dpkg-query", ["-W", "-f", format, ...names])
  return versions.filter((line) => line.includes("=")).sort()
})

const hashFile = Effect.fnUntraced(function* (implementation: string, file: string) {
  const fs = yield* FileSystem.FileSystem
  const bytes = yield* fs
    .readFile(file)
    .pipe(Effect.mapError((error) => new RootfsFailed({ implementation, reason: `${file}: ${error.message}` })))
  return createHash("sha256").update(bytes).digest("hex")
})

/** How long a plugin's build on this machine may take (a cold `go build` on a loaded machine takes a minute). */
const prebuildTimeout = Duration.minutes(10)

// The script's stdout is captured apart so that only its last line names the directory; its stderr joins the
// answer so that a failed build says why.
const prebuildWrapper = 'out=$(sh -c "$1") && printf "testbed.prebuilt=%s\\n" "$(printf "%s\\n" "$out" | tail -n 1)"'

/** Runs a plugin's `prebuild` on this machine; the directory it printed, copied to `into/<its name>`. */
const prebuilt = Effect.fnUntraced(function* (
  implementation: string,
  prebuild: NonNullable<ServicePlugin.RootfsSpec["prebuild"]>
) {
  const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const command = ChildProcess.make("sh", ["-c", prebuildWrapper, "testbed-prebuild", prebuild.script], {
    env: { ASSETS: Builtins.assetsDirectory },
    extendEnv: true
  })
  const lines = yield* spawner.lines(command, { includeStderr: true }).pipe(
    Effect.mapError((error) => new RootfsFailed({ implementation, reason: `prebuild: ${error.message}` })),
    Effect.timeoutOrElse({
      duration: prebuildTimeout,
      orElse: () =>
        Effect.fail(new RootfsFailed({ implementation, reason: "prebuild: still running after 10 minutes" }))
    })
  )
  const dir = lines.findLast((line) => line.startsWith("testbed.prebuilt="))?.slice("testbed.prebuilt=".length)
  const name = dir === undefined ? undefined : path.basename(dir)
  if (dir === undefined || name === undefined || !path.isAbsolute(dir) || !/^[A-Za-z0-9_][A-Za-z0-9._-]*$/.test(name)) {
    const said = lines.slice(-5).join(" | ")
    return yield* new RootfsFailed({ implementation, reason: `prebuild printed no absolute directory (${said})` })
  }
  const files = yield* fs
    .readDirectory(dir, { recursive: true })
    .pipe(Effect.mapError((error) => new RootfsFailed({ implementation, reason: `prebuild: ${error.message}` })))
  const targets: Array<[string, string]> = []
  for (const file of files.sort()) {
    const source = path.join(dir, file)
    const info = yield* fs.stat(source).pipe(Effect.orElseSucceed(() => undefined))
    if (info?.type === "File") targets.push([path.join(prebuild.into, name, file), source])
  }
  return targets
})

/** Every file of the image (busybox, programs, their libraries, extra files), each once, with its real source. */
const entriesOf = Effect.fnUntraced(function* (implementation: string, spec: ServicePlugin.RootfsSpec) {
  const fs = yield* FileSystem.FileSystem
  const programs: Array<string> = [busybox]
  for (const program of spec.programs) programs.push(yield* locate(implementation, program))
  const targets = new Set<string>(programs)
  for (const program of programs)
    for (const library of yield* librariesOf(implementation, program)) targets.add(library)
  for (const file of spec.files ?? []) targets.add(file)
  const entries: Array<Entry> = []
  for (const target of [...targets].sort()) {
    const source = yield* fs
      .realPath(target)
      .pipe(Effect.mapError((error) => new RootfsFailed({ implementation, reason: `${target}: ${error.message}` })))
    entries.push({ target, source, sha256: yield* hashFile(implementation, source) })
  }
  const built = spec.prebuild === undefined ? [] : yield* prebuilt(implementation, spec.prebuild)
  for (const [target, source] of built)
    entries.push({ target, source, sha256: yield* hashFile(implementation, source) })
  return entries
})

/** The manifest of a plugin's root file system, hashed: same inputs, same hash, same image. */
export const manifest = Effect.fn("Rootfs.manifest")(function* (
  implementation: string,
  spec: ServicePlugin.RootfsSpec
) {
  const entries = yield* entriesOf(implementation, spec)
  const taken = new Set(entries.map((entry) => entry.target))
  const applets = (yield* linesOf(implementation, busybox, ["--list-full"]))
    .map((applet) => `/${applet.trim()}`)
    .filter((applet) => applet !== "/" && !taken.has(applet))
    .sort()
  const packages = yield* packagesOf(
    implementation,
    entries.map((entry) => entry.target)
  )
  const dockerfile = dockerfileOf(spec.env ?? {})
  const hash = createHash("sha256")
    .update(JSON.stringify({ dockerfile, entries: entries.map((e) => [e.target, e.sha256]), applets, packages }))
    .digest("hex")
  return { implementation, entries, applets, packages, dockerfile, hash } satisfies Manifest
})

/** Writes the build context of a manifest into `dir`: `Dockerfile` and `rootfs/` (files copied, applets linked). */
export const writeContext = Effect.fn("Rootfs.writeContext")(function* (manifest: Manifest, dir: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const failed = (error: { readonly message: string }) =>
    new RootfsFailed({ implementation: manifest.implementation, reason: error.message })
  const root = path.join(dir, "rootfs")
  const place = (target: string) =>
    Effect.as(fs.makeDirectory(path.join(root, path.dirname(target)), { recursive: true }), path.join(root, target))
  for (const entry of manifest.entries) {
    yield* Effect.flatMap(place(entry.target), (to) => fs.copyFile(entry.source, to)).pipe(Effect.mapError(failed))
  }
  for (const applet of manifest.applets) {
    yield* Effect.flatMap(place(applet), (to) => fs.symlink(busybox, to)).pipe(Effect.mapError(failed))
  }
  // Scripts make FIFOs and temporary files; /tmp is world-writable with the sticky bit, as on any system.
  const tmp = path.join(root, "tmp")
  yield* fs.makeDirectory(tmp, { recursive: true }).pipe(Effect.mapError(failed))
  yield* fs.chmod(tmp, 0o1777).pipe(Effect.mapError(failed))
  yield* fs.writeFileString(path.join(dir, "Dockerfile"), manifest.dockerfile).pipe(Effect.mapError(failed))
})
