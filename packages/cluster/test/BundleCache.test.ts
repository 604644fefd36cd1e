// A runner's bundle cache against a real, throwaway Postgres: a fetch rides out a Postgres restart (the fetch is held
// on a table lock, so the restart lands while it is in flight, with no timing), gives up after the outage budget
// naming the bundle, and the cache stays within `--bundle-cache` by evicting the least recently used bundles no
// attempt uses; a runner process at its start removes what a killed runner left (an unpack, attempts, its warm-up)
// and applies its own bound.
import { randomBytes } from "node:crypto"
import { spawn } from "node:child_process"
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, layer } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, FileSystem, Layer, Redacted, Schedule } from "effect"
import { SqlClient } from "effect/sql"
import * as Bundle from "../src/Bundle.ts"
import * as BundleCache from "../src/BundleCache.ts"
import * as ClusterLayers from "../src/ClusterLayers.ts"
import * as BundleStore from "../src/internal/bundleStore.ts"
import { freePort, Postgres, skipWithoutPostgres, startPostgres, stopPostgres } from "./postgres.ts"
import { cli, lockExpiry, secret, stop, waitForRunner } from "./processes.ts"

const mib = 1024 * 1024

/** A bundle of one experiment file and a data file of `size` random bytes, stored as `runId`'s. */
const storeBundle = (runId: string, size: number) =>
  Effect.gen(function* () {
    const data = new Uint8Array(randomBytes(size))
    const experiment = new TextEncoder().encode(`name: ${runId}\n`)
    const header: Bundle.Header = {
      version: 1,
      experiment: "e.yaml",
      plugins: [],
      entries: [
        { path: "data.bin", size, executable: false, kind: "file" },
        { path: "e.yaml", size: experiment.length, executable: false, kind: "file" }
      ]
    }
    const bytes = Bundle.pack(header, [data, experiment])
    const sha = Bundle.sha256(bytes)
    yield* BundleStore.put(runId, sha, bytes)
    return { sha, data }
  })

/** A fresh runner work directory, removed with the test's scope. */
const workdir = Effect.flatMap(FileSystem.FileSystem, (fs) =>
  fs.makeTempDirectoryScoped({ prefix: "testbed-bundle-cache-" })
)

/** A runner process on `dir` (which the test seeded), stopped when the scope closes; live when this returns. */
const startRunnerIn = (url: string, dir: string, args: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.gen(function* () {
      const port = yield* freePort
      const name = `start-${port}`
      const argv = [cli, "runner", "--cluster", url, "--name", name, "--advertise", `127.0.0.1:${port}`]
      const child = spawn(process.execPath, [...argv, "--workdir", dir, "--lock-expiry", lockExpiry, ...args], {
        env: { ...process.env, TESTBED_CLUSTER_SECRET: secret },
        stdio: ["ignore", "pipe", "pipe"]
      })
      let output = ""
      child.stdout?.on("data", (data) => (output = (output + String(data)).slice(-20_000)))
      child.stderr?.on("data", (data) => (output = (output + String(data)).slice(-20_000)))
      const runner = { name, workdir: dir, child, output: () => output }
      yield* waitForRunner(url, name, true).pipe(Effect.onError(() => stop(runner)))
      return runner
    }),
    stop
  )

/** Until Postgres shows a statement on the pieces waiting for a lock (the fetch is in flight), within 30 s. */
const fetchWaitingOnLock = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql`SELECT count(*)::int AS n FROM pg_stat_activity
    WHERE wait_event_type = 'Lock' AND query LIKE 'SELECT bytes FROM testbed_bundle_pieces%'`
  if (Number(rows[0]?.n) === 0) return yield* Effect.fail("not waiting yet")
}).pipe(Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo({ duration: "30 seconds" }))))

/** Postgres stopped for the scope (started again when it closes, whatever happened). */
const outage = Effect.flatMap(Postgres, (postgres) =>
  Effect.acquireRelease(stopPostgres(postgres), () => startPostgres(postgres))
)

/** The runner's pool, made while Postgres is up (as a runner's is, at its start). */
const testLayer = Layer.provideMerge(
  Layer.unwrap(Effect.map(Postgres, ({ url }) => ClusterLayers.postgres(Redacted.make(url)))),
  Layer.merge(Postgres.layer, NodeServices.layer)
)

describe.skipIf(skipWithoutPostgres)("BundleCache", () => {
  layer(testLayer, { timeout: "120 seconds", excludeTestServices: true })((it) => {
    it.effect("a fetch rides out a Postgres restart and unpacks the whole bundle", () =>
      Effect.gen(function* () {
        const { url } = yield* Postgres
        const sql = yield* SqlClient.SqlClient
        yield* BundleStore.migrate()
        const { sha, data } = yield* storeBundle("restart-run", 3 * mib)
        const cache = BundleCache.make({ workdir: yield* workdir, outageBudget: Duration.seconds(30) })
        // Another connection holds the pieces' table: the fetch reads the bundle's row, then waits on its first piece.
        yield* sql
          .withTransaction(Effect.andThen(sql`LOCK TABLE testbed_bundle_pieces IN ACCESS EXCLUSIVE MODE`, Effect.never))
          .pipe(Effect.provide(ClusterLayers.postgres(Redacted.make(url))), Effect.ignore, Effect.forkScoped)
        const fetch = yield* Effect.forkChild(Effect.scoped(BundleCache.unpacked(cache, sha)))
        yield* fetchWaitingOnLock
        // The restart cuts the fetch's connection (and the lock's) in the middle of the fetch.
        yield* Effect.scoped(Effect.andThen(outage, Effect.sleep("1 second")))
        const exit = yield* Fiber.await(fetch)
        assert.isTrue(Exit.isSuccess(exit), String(exit))
        if (Exit.isSuccess(exit)) {
          assert.deepStrictEqual(new Uint8Array(readFileSync(join(exit.value.dir, "data.bin"))), data)
        }
      })
    )

    it.effect("a fetch gives up after the outage budget with an error naming the bundle", () =>
      Effect.gen(function* () {
        const { sha } = yield* storeBundle("outage-run", 1024)
        const dir = yield* workdir
        const cache = BundleCache.make({ workdir: dir, outageBudget: Duration.seconds(1) })
        const error = yield* Effect.scoped(Effect.andThen(outage, Effect.flip(BundleCache.unpacked(cache, sha))))
        assert.strictEqual(error._tag, "BundleUnreachable")
        if (error._tag === "BundleUnreachable") assert.strictEqual(error.sha256, sha)
        assert.include(error.message, sha.slice(0, 12))
        assert.isFalse(existsSync(join(dir, "bundles", sha)))
      })
    )

    it.effect("a bundle over the runner's limit is refused naming the limit and --bundle-limit", () =>
      Effect.gen(function* () {
        const { sha } = yield* storeBundle("limit-run", 2 * mib)
        const cache = BundleCache.make({ workdir: yield* workdir, maxBytes: mib })
        const error = yield* Effect.flip(Effect.scoped(BundleCache.unpacked(cache, sha)))
        assert.strictEqual(error._tag, "BundleTooLarge")
        assert.match(error.message, /over this runner's limit of 1\.0 MiB.*testbed runner --bundle-limit/)
      })
    )

    it.effect("past the cache bound the least recently used bundles no attempt uses are evicted", () =>
      Effect.gen(function* () {
        const dir = yield* workdir
        const cache = BundleCache.make({ workdir: dir, maxCacheBytes: 2.5 * mib })
        const [a, b, c, d] = yield* Effect.forEach(["a", "b", "c", "d"], (name) => storeBundle(`lru-${name}`, mib))
        const cached = () =>
          [a, b, c, d].flatMap((bundle, i) => (existsSync(join(dir, "bundles", bundle!.sha)) ? ["abcd"[i]] : []))
        // Distinct times of use (milliseconds apart): eviction goes by the directories' mtimes.
        const use = (sha: string) => Effect.andThen(Effect.scoped(BundleCache.unpacked(cache, sha)), Effect.sleep(20))
        yield* use(a!.sha)
        yield* use(b!.sha)
        yield* use(a!.sha)
        assert.deepStrictEqual(cached(), ["a", "b"])
        yield* use(c!.sha)
        // 3 MiB > 2.5 MiB: b, the least recently used, goes.
        assert.deepStrictEqual(cached(), ["a", "c"])
        // An attempt uses a (the least recently used now): c goes instead.
        yield* Effect.scoped(
          Effect.gen(function* () {
            yield* BundleCache.unpacked(cache, a!.sha)
            yield* Effect.sleep(20)
            yield* BundleCache.unpacked(cache, d!.sha)
            assert.deepStrictEqual(cached(), ["a", "d"])
          })
        )
        // Nothing is left half-removed or half-unpacked.
        assert.deepStrictEqual(
          readdirSync(join(dir, "bundles")).filter((name) => name.startsWith(".")),
          []
        )
      })
    )

    it.effect(
      "a runner at its start removes what a killed runner left and evicts down to a smaller --bundle-cache",
      () =>
        Effect.gen(function* () {
          const { url } = yield* Postgres
          const dir = yield* workdir
          // Cached by a runner whose cache was larger: 1.2 MiB, b used last (b alone fits 1 MiB).
          const large = BundleCache.make({ workdir: dir })
          const [a, b] = yield* Effect.forEach(["a", "b"], (name) => storeBundle(`start-${name}`, 600 * 1024))
          yield* Effect.scoped(BundleCache.unpacked(large, a!.sha))
          yield* Effect.sleep(20)
          yield* Effect.scoped(BundleCache.unpacked(large, b!.sha))
          // What a runner SIGKILLed in the middle of an unpack, of an attempt and of its warm-up leaves.
          const leftovers = [
            join(dir, "bundles", ".unpacking-0123456789ab", "files", "data.bin"),
            join(dir, "runs", "run-1", "tests", "echo", "attempt-1", "server", "stdout.log"),
            join(dir, "warm-up-4242", "runs", "warm-up-1", "tests", "warm-up", "attempt-1", "c", "stdout.log")
          ]
          for (const file of leftovers) {
            mkdirSync(dirname(file), { recursive: true })
            writeFileSync(file, randomBytes(1024))
          }
          const runner = yield* startRunnerIn(url, dir, ["--bundle-cache", "1", "--no-detect", "--slots", "1"])
          // Live in testbed_runners: its start, before it took work, is over.
          assert.deepStrictEqual(readdirSync(dir).sort(), ["bundles", "runner.lock"], runner.output())
          assert.deepStrictEqual(readdirSync(join(dir, "bundles")).sort(), [b!.sha], runner.output())
          assert.include(runner.output(), `bundle cache: evicted ${a!.sha.slice(0, 12)}`)
        }),
      // A runner process's start: a few seconds, a minute and more on a loaded machine.
      180_000
    )
  })
})
