/**
 * `testbed runner [--cluster postgres://…] [--labels a,b] [--slots N] [--advertise HOST:PORT] [--listen HOST]
 * [--workdir DIR] [--secret-file F] [--plugins DIR] [--lock-expiry 15s] [--bundle-limit MIB] [--bundle-cache MIB]
 * [--tls-ca F --tls-cert F --tls-key F] [--no-detect]`: a long-running runner of test attempts for
 * `testbed run --cluster` (the URL from `--cluster`, else `TESTBED_CLUSTER_URL`: ClusterUrl.ts). Stops on SIGTERM/Ctrl-C
 * (its attempts go to other runners). Exit 2 for bad flags, TLS
 * files or a missing secret, 3 when Postgres cannot be reached.
 */
// @testbed/cluster's Postgres client is its peer: the CLI depends on it so installing testbed installs it (type-only
// import: nothing is loaded until a cluster command runs).
import type {} from "@effect/sql-pg"
import { Console, Duration, Effect, Layer, Option } from "effect"
import { Command, Flag } from "effect/cli"
import * as TimeSpanFlag from "../TimeSpanFlag.ts"
import { tlsFlags } from "./tlsFlags.ts"

const library = Effect.promise(() => import("@testbed/cluster"))

/** The stored size of a bundle this runner fetches at most. */
const bundleLimit = Flag.Int("bundle-limit").pipe(
  Flag.withDescription("MiB of a stored experiment bundle this runner fetches at most, default 256"),
  Flag.withDefault(256),
  Flag.filter(
    (mib) => mib >= 1,
    () => "a limit of at least 1 (MiB)"
  )
)

/** Bounds the runner's bundle cache (`WORKDIR/bundles`, see BundleCache.ts). */
const bundleCache = Flag.Int("bundle-cache").pipe(
  Flag.withDescription(
    "MiB of unpacked bundles kept in WORKDIR/bundles, default 2048; past it the least recently used ones no attempt uses are removed"
  ),
  Flag.withDefault(2048),
  Flag.filter(
    (mib) => mib >= 0,
    () => "a bound of 0 (MiB) or more"
  )
)

export const runnerCommand = Command.make(
  "runner",
  {
    cluster: Flag.String("cluster").pipe(
      Flag.withDescription(
        "The cluster's Postgres URL (postgres://user@host:port/db); else TESTBED_CLUSTER_URL, which keeps a password out of the command line"
      ),
      Flag.optional
    ),
    labels: Flag.String("labels").pipe(
      Flag.withDescription("Labels this runner offers, comma separated (added to those detected)"),
      Flag.withDefault("")
    ),
    slots: Flag.Int("slots").pipe(Flag.withDescription("Attempts run side by side at most"), Flag.withDefault(4)),
    advertise: Flag.String("advertise").pipe(
      Flag.withDescription("HOST:PORT other runners and coordinators reach this runner at"),
      Flag.withDefault("127.0.0.1:34431")
    ),
    listen: Flag.String("listen").pipe(
      Flag.withDescription("Host to listen on when not the advertised one (e.g. 0.0.0.0)"),
      Flag.optional
    ),
    name: Flag.String("name").pipe(Flag.withDescription("Unique runner name (default HOSTNAME:PORT)"), Flag.optional),
    workdir: Flag.String("workdir").pipe(
      Flag.withDescription("Where attempts run (their files are sent back, then removed)"),
      Flag.withDefault(".testbed-runner")
    ),
    secretFile: Flag.String("secret-file").pipe(
      Flag.withDescription("File holding the cluster secret (else TESTBED_CLUSTER_SECRET)"),
      Flag.optional
    ),
    plugins: Flag.String("plugins").pipe(
      Flag.withDescription("A directory of plugin modules to load (repeatable)"),
      Flag.atLeast(0)
    ),
    lockExpiry: TimeSpanFlag.optional(
      "lock-expiry",
      "How long a dead runner keeps its work (failover time), default 15s"
    ),
    bundleLimit,
    bundleCache,
    ...tlsFlags,
    noDetect: Flag.Boolean("no-detect").pipe(
      Flag.withDescription("Offer only the --labels given (no Docker or program detection)"),
      Flag.withDefault(false)
    )
  },
  Effect.fn(function* (flags) {
    const { ClusterUnavailable, ClusterUrl, Envelope, Runner, SocketTls } = yield* library
    // Before anything starts a process: neither the URL nor PGPASSWORD may reach a test's services.
    const url = yield* ClusterUrl.load(Option.getOrUndefined(flags.cluster))
    const advertise = yield* ClusterUnavailable.parseAddress("--advertise", flags.advertise)
    const secret = yield* Envelope.loadSecret(Option.getOrUndefined(flags.secretFile))
    const tls = yield* SocketTls.fromFlags({ ca: flags.tlsCa, cert: flags.tlsCert, key: flags.tlsKey })
    const options: Parameters<typeof Runner.layer>[0] = {
      url,
      secret,
      name: Option.getOrUndefined(flags.name),
      advertise,
      listenHost: Option.getOrUndefined(flags.listen),
      labels: flags.labels
        .split(",")
        .map((label) => label.trim())
        .filter((label) => label !== ""),
      detect: !flags.noDetect,
      slots: Math.max(1, flags.slots),
      workdir: flags.workdir,
      pluginDirectories: flags.plugins,
      lockExpiry: Option.getOrElse(flags.lockExpiry, () => Duration.seconds(15)),
      maxBundleBytes: flags.bundleLimit * 1024 * 1024,
      bundleCacheBytes: flags.bundleCache * 1024 * 1024,
      tls: Option.getOrUndefined(tls)
    }
    const profile = yield* Runner.profile(options)
    yield* Console.log(
      `runner ${profile.name}: labels [${profile.labels.join(", ")}], groups [${profile.groups.join(", ")}], ${options.slots} slot(s), at ${advertise.host}:${advertise.port}${Option.isSome(tls) ? " (mutual TLS)" : ""}`
    )
    return yield* Layer.launch(Runner.layer(options, profile)).pipe(
      // Errors that say what is wrong themselves (and carry their exit code) stay; anything else went wrong with
      // the cluster's database or sockets.
      Effect.mapError((error) =>
        error._tag === "ClusterUnavailable" || error._tag === "WorkdirInUse" || error._tag === "WorkdirUnusable"
          ? error
          : new ClusterUnavailable.ClusterUnavailable({ reason: error.message })
      )
    )
  })
).pipe(
  Command.withDescription(
    "Run test attempts for `testbed run --cluster`: an Effect Cluster runner with Postgres storage, serving the labels it has"
  )
)
