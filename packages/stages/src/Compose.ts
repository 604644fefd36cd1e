/**
 * docker-compose.yml → stage. The subset a network lab uses is translated (services with image/build/command/
 * environment/networks+ipv4_address/volumes/cap_add/sysctls/stdin_open/tty/hostname/working_dir/extends;
 * networks with ipam subnets and driver_opts); every other key is reported by its path instead of being ignored.
 * Variables are substituted as compose does (`$VAR`, `${VAR:-default}`, `.env` beside the file), except that an
 * unset variable without a default is an error.
 */
import { homedir } from "node:os"
import { Effect, FileSystem, Path } from "effect"
import * as Yaml from "yaml"
import { notAMapping } from "./internal/document.ts"
import * as DotEnv from "./internal/dotenv.ts"
import { interpolateTree, type Lookup, type Problem } from "./internal/interpolate.ts"
import { isOtherUsersHome, mountSource } from "./internal/mountSource.ts"
import { shellWords } from "./internal/shellWords.ts"
import * as Stage from "./Stage.ts"
import { ComposeUnsupported, StageInvalid, StageNotFound } from "./StageError.ts"

type Json = Record<string, unknown>
const isRecord = (u: unknown): u is Json => typeof u === "object" && u !== null && !Array.isArray(u)

const topKeys = new Set(["version", "name", "services", "networks"])
const serviceKeys = new Set([
  "image",
  "build",
  "command",
  "environment",
  "networks",
  "volumes",
  "cap_add",
  "sysctls",
  "stdin_open",
  "tty",
  "hostname",
  "working_dir",
  "extends"
])
const networkKeys = new Set(["driver", "driver_opts", "ipam", "internal"])

/** `x-` keys are compose's own extension fields: free for users, meaningless to the engine. */
const unknownKeys = (value: unknown, allowed: ReadonlySet<string>, at: string): Array<string> =>
  isRecord(value)
    ? Object.keys(value)
        .filter((k) => !allowed.has(k) && !k.startsWith("x-"))
        .map((k) => `${at}${k}`)
    : []

const keyValues = (value: unknown): Record<string, string> => {
  if (Array.isArray(value)) {
    return Object.fromEntries(
      value.map((entry) => {
        const text = String(entry)
        const eq = text.indexOf("=")
        return eq < 0 ? [text, ""] : [text.slice(0, eq), text.slice(eq + 1)]
      })
    )
  }
  return isRecord(value)
    ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, v === null ? "" : String(v)]))
    : {}
}

export interface LoadOptions {
  /** Variables for substitution; default: this process's environment. They override the `.env` file's. */
  readonly environment?: Readonly<Record<string, string | undefined>>
  /** What `~` in a volume stands for; default: the user's home directory. */
  readonly home?: string
}

interface Ctx {
  readonly fs: FileSystem.FileSystem
  readonly path: Path.Path
  readonly unsupported: Array<string>
  readonly lookup: Lookup
  readonly home: string
}

const invalid = (file: string, problems: ReadonlyArray<{ readonly path: string; readonly message: string }>) =>
  new StageInvalid({ source: file, problems })

/** A YAML mapping, with every variable substituted; an empty file or a list is an error, not an empty stage. */
const readYaml = (ctx: Ctx, file: string) =>
  ctx.fs.readFileString(file).pipe(
    Effect.mapError(() => new StageNotFound({ name: file, looked: [file] })),
    Effect.flatMap((text) =>
      Effect.try({
        try: () => Yaml.parse(text) as unknown,
        catch: (e) => invalid(file, [{ path: "", message: `not YAML: ${String(e)}` }])
      })
    ),
    Effect.flatMap((doc) => {
      const problem = notAMapping(doc, "a compose file needs services", "services:, networks:")
      if (problem !== undefined || !isRecord(doc))
        return Effect.fail(invalid(file, [{ path: "", message: `${problem}` }]))
      const problems: Array<Problem> = []
      const substituted = interpolateTree(doc, ctx.lookup, problems) as Json
      return problems.length === 0 ? Effect.succeed(substituted) : Effect.fail(invalid(file, problems))
    })
  )

/** The environment first, then `<dir>/.env` (as compose reads it) when there is one. */
const variables = Effect.fn("Compose.variables")(function* (
  ctx: { readonly fs: FileSystem.FileSystem; readonly path: Path.Path },
  dir: string,
  environment: Readonly<Record<string, string | undefined>>
) {
  const outer: Lookup = (name) => environment[name]
  const file = ctx.path.join(dir, ".env")
  if (!(yield* ctx.fs.exists(file).pipe(Effect.orElseSucceed(() => false)))) return outer
  const text = yield* ctx.fs
    .readFileString(file)
    .pipe(Effect.mapError((e) => invalid(file, [{ path: "", message: `cannot read: ${e.message}` }])))
  const problems: Array<Problem> = []
  const vars = DotEnv.parse(text, ".env", outer, problems)
  if (problems.length > 0) return yield* invalid(file, problems)
  return ((name: string) => outer(name) ?? vars.get(name)) satisfies Lookup
})

/** Resolves one service, following `extends` (paths made absolute against the file that wrote them). */
const service: (
  ctx: Ctx,
  file: string,
  doc: Json,
  name: string,
  depth: number
) => Effect.Effect<Json, StageNotFound | StageInvalid> = Effect.fn("Compose.service")(function* (
  ctx: Ctx,
  file: string,
  doc: Json,
  name: string,
  depth: number
) {
  const services = isRecord(doc.services) ? doc.services : {}
  const raw = services[name]
  const at = depth === 0 ? `services.${name}.` : `${ctx.path.basename(file)}:services.${name}.`
  if (!isRecord(raw)) {
    return yield* new StageInvalid({
      source: file,
      problems: [{ path: `services.${name}`, message: "no such service" }]
    })
  }
  ctx.unsupported.push(...unknownKeys(raw, serviceKeys, at))
  const dir = ctx.path.dirname(file)
  const own: Json = { ...raw }
  if (typeof own.build === "string") own.build = { context: ctx.path.resolve(dir, own.build) }
  else if (isRecord(own.build)) {
    ctx.unsupported.push(...unknownKeys(own.build, new Set(["context", "dockerfile"]), `${at}build.`))
    own.build = { ...own.build, context: ctx.path.resolve(dir, String(own.build.context ?? ".")) }
  }
  if (Array.isArray(own.volumes)) {
    own.volumes = own.volumes.flatMap((volume, i) => {
      const bind = bindOf(volume)
      if (bind === undefined) {
        ctx.unsupported.push(`${at}volumes[${i}] (only bind mounts of host paths)`)
        return []
      }
      if (isOtherUsersHome(bind.source)) {
        ctx.unsupported.push(`${at}volumes[${i}] (only ~ and ~/… are expanded)`)
        return []
      }
      return [{ ...bind, source: mountSource(ctx.path, dir, bind.source, ctx.home) }]
    })
  }
  if (own.extends === undefined || depth > 8) return own
  const ext = typeof own.extends === "string" ? { service: own.extends } : isRecord(own.extends) ? own.extends : {}
  const baseFile = typeof ext.file === "string" ? ctx.path.resolve(dir, ext.file) : file
  const baseDoc = baseFile === file ? doc : yield* readYaml(ctx, baseFile)
  const base = yield* service(ctx, baseFile, baseDoc, String(ext.service ?? name), depth + 1)
  return merge(base, own)
})

const bindOf = (volume: unknown): { source: string; target: string; readOnly: boolean } | undefined => {
  if (typeof volume === "string") {
    const [source, target, mode] = volume.split(":")
    if (source === undefined || target === undefined || !/^[./~]/.test(source)) return undefined
    return { source, target, readOnly: mode === "ro" }
  }
  if (
    isRecord(volume) &&
    volume.type === "bind" &&
    typeof volume.source === "string" &&
    typeof volume.target === "string"
  ) {
    return { source: volume.source, target: volume.target, readOnly: volume.read_only === true }
  }
  return undefined
}

/** Compose's merge for `extends`: mappings merge, sequences concatenate, scalars are overridden. */
const merge = (base: Json, own: Json): Json => {
  const out: Json = { ...base }
  for (const [key, value] of Object.entries(own)) {
    if (key === "extends") continue
    const prior = out[key]
    if (key === "environment" || key === "sysctls") out[key] = { ...keyValues(prior), ...keyValues(value) }
    else if (Array.isArray(prior) && Array.isArray(value)) out[key] = [...prior, ...value]
    else out[key] = value
  }
  delete out.extends
  return out
}

const node = (svc: Json, ctx: Ctx, at: string): Json => {
  const out: Json = {}
  if (svc.image !== undefined) out.image = svc.image
  if (svc.build !== undefined) out.build = svc.build
  if (typeof svc.command === "string") out.command = shellWords(svc.command)
  else if (svc.command !== undefined) out.command = svc.command
  if (svc.environment !== undefined) out.env = keyValues(svc.environment)
  if (svc.sysctls !== undefined) out.sysctls = keyValues(svc.sysctls)
  if (svc.cap_add !== undefined) out.capabilities = svc.cap_add
  if (svc.hostname !== undefined) out.hostname = svc.hostname
  if (svc.working_dir !== undefined) out.workingDir = svc.working_dir
  if (svc.stdin_open === true || svc.tty === true) out.tty = true
  if (Array.isArray(svc.volumes)) out.mounts = svc.volumes
  if (Array.isArray(svc.networks)) out.networks = svc.networks.map((network) => ({ network }))
  else if (isRecord(svc.networks)) {
    out.networks = Object.entries(svc.networks).map(([network, opts]) => {
      ctx.unsupported.push(...unknownKeys(opts, new Set(["ipv4_address"]), `${at}networks.${network}.`))
      return isRecord(opts) && opts.ipv4_address !== undefined ? { network, address: opts.ipv4_address } : { network }
    })
  } else out.networks = [{ network: "default" }]
  return out
}

const network = (value: unknown, ctx: Ctx, at: string): Json => {
  ctx.unsupported.push(...unknownKeys(value, networkKeys, at))
  if (!isRecord(value)) return {}
  if (value.driver !== undefined && value.driver !== "bridge") ctx.unsupported.push(`${at}driver (only bridge)`)
  const out: Json = {}
  if (value.internal !== undefined) out.internal = value.internal
  // Checked by the stage schema: bridge options only, and a bridge name the host can take.
  if (value.driver_opts !== undefined) out.driverOptions = keyValues(value.driver_opts)
  if (isRecord(value.ipam)) {
    ctx.unsupported.push(...unknownKeys(value.ipam, new Set(["driver", "config"]), `${at}ipam.`))
    const configs = Array.isArray(value.ipam.config) ? value.ipam.config : []
    if (configs.length > 1) ctx.unsupported.push(`${at}ipam.config[1] (one subnet per network)`)
    const first: unknown = configs[0]
    if (isRecord(first)) {
      ctx.unsupported.push(...unknownKeys(first, new Set(["subnet", "gateway"]), `${at}ipam.config[0].`))
      if (first.subnet !== undefined) out.subnet = first.subnet
      if (first.gateway !== undefined) out.gateway = first.gateway
    }
  }
  return out
}

/** Reads a compose file as a stage named `defaultName` unless the file names itself (top-level `name`). */
export const load = Effect.fn("Compose.load")(function* (file: string, defaultName: string, options: LoadOptions = {}) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const lookup = yield* variables({ fs, path }, path.dirname(file), options.environment ?? process.env)
  const ctx: Ctx = { fs, path, unsupported: [], lookup, home: options.home ?? homedir() }
  const doc = yield* readYaml(ctx, file)
  ctx.unsupported.push(...unknownKeys(doc, topKeys, ""))
  const services = isRecord(doc.services) ? Object.keys(doc.services) : []
  if (services.length === 0)
    return yield* invalid(file, [{ path: "services", message: "no services: nothing to bring up" }])
  const nodes: Json = {}
  for (const name of services) nodes[name] = node(yield* service(ctx, file, doc, name, 0), ctx, `services.${name}.`)
  const networks: Json = {}
  for (const [name, value] of Object.entries(isRecord(doc.networks) ? doc.networks : {})) {
    networks[name] = network(value, ctx, `networks.${name}.`)
  }
  // Compose puts services that name no network on an implicit "default" one.
  const usesDefault = Object.values(nodes).some(
    (n) => isRecord(n) && Array.isArray(n.networks) && n.networks.some((a) => isRecord(a) && a.network === "default")
  )
  if (usesDefault) {
    networks.default ??= {}
  }
  if (ctx.unsupported.length > 0) return yield* new ComposeUnsupported({ source: file, keys: ctx.unsupported })
  const stage = yield* Stage.decode(
    { name: typeof doc.name === "string" ? doc.name : defaultName, networks, nodes },
    file
  )
  return { stage, source: file, baseDir: path.dirname(file) } satisfies Stage.Loaded
})

export type LoadError = ComposeUnsupported | StageInvalid | StageNotFound
