// Mapping of dockerode's callback/promise world onto typed Effect failures, shared by the Docker service.
import type Dockerode from "dockerode"
import { Effect } from "effect"
import type { ContainerSpec, NetworkSpec } from "../Docker.ts"
import { DockerFailed, DockerUnavailable } from "../StageError.ts"

export interface EngineError {
  readonly statusCode?: number
  readonly code?: string
  readonly message?: string
  readonly json?: { readonly message?: string } | null
}

export const describeHost = (host: string | undefined): string => host ?? "unix:///var/run/docker.sock"

const unreachableCodes = new Set([
  "ECONNREFUSED",
  "ENOENT",
  "EACCES",
  "ECONNRESET",
  "EHOSTUNREACH",
  "ETIMEDOUT",
  "ENOTFOUND"
])

export const reasonOf = (error: unknown): string => {
  const e = error as EngineError
  return e?.json?.message ?? e?.message ?? String(error)
}

export const isUnreachable = (error: unknown): boolean => {
  const e = error as EngineError
  return typeof e?.code === "string" && unreachableCodes.has(e.code)
}

export const statusOf = (error: unknown): number | undefined => (error as EngineError)?.statusCode

export const unavailable = (host: string, error: unknown): DockerUnavailable =>
  new DockerUnavailable({
    host,
    reason: reasonOf(error),
    hint: host.startsWith("unix://")
      ? "Start the engine (`sudo systemctl start docker`, or `scripts/start-dockerd.sh` in this repository) and check that you may use its socket (group `docker`)."
      : "Check DOCKER_HOST (tcp://HOST:2375, ssh://USER@HOST) and that the remote engine runs and answers."
  })

/**
 * Runs one engine call. Calls that create or remove things are uninterruptible: an interrupted request could
 * still complete inside the engine, and cleanup must see everything that exists.
 */
export const call = <A>(
  host: string,
  operation: string,
  f: () => Promise<A>,
  options: { readonly mutating?: boolean } = {}
): Effect.Effect<A, DockerFailed | DockerUnavailable> => {
  const effect = Effect.tryPromise({ try: f, catch: (error) => error }).pipe(
    Effect.mapError((error) => {
      if (isUnreachable(error)) return unavailable(host, error)
      const statusCode = statusOf(error)
      return new DockerFailed({
        operation,
        reason: reasonOf(error),
        ...(statusCode !== undefined ? { statusCode } : {})
      })
    })
  )
  return options.mutating ? Effect.uninterruptible(effect) : effect
}

/** Treats "no such thing" (404) as success: removal is idempotent. */
export const ignoreMissing = <E extends { readonly _tag: string; readonly statusCode?: number }>(
  effect: Effect.Effect<void, E>
): Effect.Effect<void, E> =>
  Effect.catch(effect, (error) =>
    error._tag === "DockerFailed" && error.statusCode === 404 ? Effect.void : Effect.fail(error)
  )

/** The engine's create options for a container spec (API 1.41: one network at creation). */
export const containerOptions = (spec: ContainerSpec): Dockerode.ContainerCreateOptions => ({
  name: spec.name,
  Image: spec.image,
  Labels: { ...spec.labels },
  ...(spec.env ? { Env: [...spec.env] } : {}),
  ...(spec.cmd ? { Cmd: [...spec.cmd] } : {}),
  ...(spec.workingDir ? { WorkingDir: spec.workingDir } : {}),
  ...(spec.hostname ? { Hostname: spec.hostname } : {}),
  Tty: spec.tty ?? false,
  OpenStdin: spec.tty ?? false,
  ...(spec.healthcheck
    ? {
        Healthcheck: {
          Test: ["CMD", ...spec.healthcheck.test],
          Interval: spec.healthcheck.intervalNs ?? 1_000_000_000,
          Timeout: spec.healthcheck.timeoutNs ?? 5_000_000_000,
          Retries: spec.healthcheck.retries ?? 3
        }
      }
    : {}),
  HostConfig: {
    CapAdd: [...(spec.capAdd ?? [])],
    Sysctls: { ...spec.sysctls },
    Binds: [...(spec.binds ?? [])],
    NetworkMode: spec.network?.name ?? "none"
  },
  ...(spec.network
    ? {
        NetworkingConfig: {
          EndpointsConfig: {
            [spec.network.name]: spec.network.address ? { IPAMConfig: { IPv4Address: spec.network.address } } : {}
          }
        }
      }
    : {})
})

/** The engine's create options for a bridge network. */
export const networkOptions = (spec: NetworkSpec): Dockerode.NetworkCreateOptions => ({
  Name: spec.name,
  Driver: "bridge",
  CheckDuplicate: true,
  Internal: spec.internal ?? false,
  Labels: { ...spec.labels },
  Options: {
    ...spec.options,
    ...(spec.bridgeName ? { "com.docker.network.bridge.name": spec.bridgeName } : {})
  },
  ...(spec.subnet
    ? {
        IPAM: {
          Driver: "default",
          Config: [{ Subnet: spec.subnet, ...(spec.gateway ? { Gateway: spec.gateway } : {}) }]
        }
      }
    : {})
})
