// One holder at a time of a lock file, across processes (a stage project's `up`/`down`/`prune`, a runner's work
// directory): the file names its holder (owner identity, a token, the operation, since when). It is created whole
// and atomically (written under a unique temporary name, then hard-linked into place, which fails if a lock
// exists), so nobody ever reads half a lock. A lock whose holder is dead (SIGKILL, power loss) is broken — but only
// by the one process holding `<lock>.break`, which checks again that the same dead lock is still there before
// removing it. Waiting is bounded: past the deadline the caller gets `LockBusy`, naming the holder.
import { randomUUID } from "node:crypto"
import { ExitCode } from "@testbed/events"
import { Clock, Duration, Effect, FileSystem, Ref, Runtime, Schedule, Schema, type Scope } from "effect"
import * as Owner from "./ProcessOwner.ts"

/** The lock or its temporary file could not be written or read. */
export class LockFileFailed extends Schema.TaggedError<LockFileFailed>()("LockFileFailed", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.infrastructure
  }
  override get message(): string {
    return `lock file ${this.path}: ${this.reason}`
  }
}

/** A live process holds the lock and did not let go in time. */
export class LockBusy extends Schema.TaggedError<LockBusy>()("LockBusy", {
  file: Schema.String,
  operation: Schema.String,
  pid: Schema.NullOr(Schema.Int),
  host: Schema.NullOr(Schema.String),
  since: Schema.NullOr(Schema.String),
  waitedMs: Schema.Finite
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.busy
  }
  override get message(): string {
    const who = this.pid === null ? "another process" : `pid ${this.pid}${this.host ? ` on ${this.host}` : ""}`
    return `${this.file} is held by ${who} (${this.operation}${this.since ? ` since ${this.since}` : ""}); waited ${Math.round(this.waitedMs / 1000)} s`
  }
}

const Holder = Schema.Struct({
  owner: Schema.String,
  token: Schema.String,
  operation: Schema.String,
  since: Schema.String
})
type Holder = typeof Holder.Type
const HolderJson = Schema.fromJsonString(Holder)

/** A breaker older than this belongs to a process that died in the middle of breaking (it takes milliseconds). */
const breakerStaleMs = 10_000

type Attempt = { readonly _tag: "Acquired" } | { readonly _tag: "Held"; readonly holder: Holder | undefined }

export interface LockOptions {
  /** The lock file; its directory must exist. */
  readonly file: string
  /** What the holder does, for whoever finds it held (`stage up`, `runner r1`). */
  readonly operation: string
  /** How long to wait for another holder; default 2 minutes. */
  readonly timeout?: Duration.Duration
}

const readHolder = (fs: FileSystem.FileSystem, file: string) =>
  fs.readFileString(file).pipe(
    Effect.flatMap(Schema.decodeUnknownEffect(HolderJson)),
    Effect.map((holder): Holder | undefined => holder),
    Effect.orElseSucceed(() => undefined)
  )

/** One try: link a complete lock file into place. */
const tryCreate = Effect.fn("FileLock.tryCreate")(function* (lock: string, holder: Holder) {
  const fs = yield* FileSystem.FileSystem
  const fail = (e: { readonly message: string }) => new LockFileFailed({ path: lock, reason: e.message })
  const temp = `${lock}.${holder.token}.tmp`
  // Uninterruptible from writing the temporary file to removing it (a few local file operations): interrupted while
  // the write was under way, the file appeared after the interruption and stayed beside the lock.
  const linked = yield* fs.writeFileString(temp, `${JSON.stringify(holder)}\n`, { flag: "wx" }).pipe(
    Effect.mapError(fail),
    Effect.andThen(
      fs.link(temp, lock).pipe(
        Effect.as(true),
        Effect.catchReason("PlatformError", "AlreadyExists", () => Effect.succeed(false)),
        Effect.mapError(fail)
      )
    ),
    Effect.ensuring(Effect.ignore(fs.remove(temp))),
    Effect.uninterruptible
  )
  return linked ? ({ _tag: "Acquired" } as Attempt) : ({ _tag: "Held", holder: yield* readHolder(fs, lock) } as Attempt)
})

/** Removes `lock` if it still holds `dead`, under the breaker so two processes never break at once. */
const breakDead = Effect.fn("FileLock.breakDead")(function* (lock: string, breaker: string, dead: Holder | undefined) {
  const fs = yield* FileSystem.FileSystem
  const mine = yield* fs.writeFileString(breaker, `${process.pid}\n`, { flag: "wx" }).pipe(
    Effect.as(true),
    Effect.orElseSucceed(() => false)
  )
  if (!mine) {
    const info = yield* Effect.option(fs.stat(breaker))
    const now = yield* Clock.currentTimeMillis
    const modified = info._tag === "Some" && info.value.mtime._tag === "Some" ? info.value.mtime.value.getTime() : now
    if (now - modified > breakerStaleMs) yield* Effect.ignore(fs.remove(breaker))
    return
  }
  const still = yield* readHolder(fs, lock)
  if (still?.token === dead?.token) yield* Effect.ignore(fs.remove(lock))
  yield* Effect.ignore(fs.remove(breaker))
})

const isDead = (holder: Holder | undefined) =>
  holder === undefined
    ? // A lock file that does not decode cannot be anyone's: links are whole, so it is not being written.
      Effect.succeed(true)
    : Effect.flatMap(Effect.succeed(Owner.parse(holder.owner)), (owner) =>
        owner === undefined ? Effect.succeed(true) : Effect.map(Owner.liveness(owner), (l) => l === "dead")
      )

const busy = (file: string, holder: Holder | undefined, waited: Duration.Duration) => {
  const owner = holder === undefined ? undefined : Owner.parse(holder.owner)
  return new LockBusy({
    file,
    operation: holder?.operation ?? "unknown",
    pid: owner?.pid ?? null,
    host: owner?.host ?? null,
    since: holder?.since ?? null,
    waitedMs: Duration.toMillis(waited)
  })
}

/** Tries every 100 ms until the lock is ours, breaking a dead holder's; `LockBusy` past the deadline. */
const tryUntil = Effect.fn("FileLock.tryUntil")(function* (
  files: { readonly lock: string; readonly breaker: string },
  holder: Holder,
  timeout: Duration.Duration
) {
  const last = yield* Ref.make<Holder | undefined>(undefined)
  const once = Effect.gen(function* () {
    const attempt = yield* tryCreate(files.lock, holder)
    if (attempt._tag === "Acquired") return true
    yield* Ref.set(last, attempt.holder)
    if (yield* isDead(attempt.holder)) yield* breakDead(files.lock, files.breaker, attempt.holder)
    return false
  })
  yield* once.pipe(
    Effect.repeat({ until: (acquired) => acquired, schedule: Schedule.spaced("100 millis") }),
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () => Effect.flatMap(Ref.get(last), (holder) => Effect.fail(busy(files.lock, holder, timeout)))
    })
  )
})

/** Who we are, in the lock file: owner identity, a token only this holder has, the operation, since when. */
const holderFor = Effect.fn("FileLock.holder")(function* (operation: string) {
  return {
    owner: Owner.format(yield* Owner.of()),
    token: randomUUID(),
    operation,
    since: new Date(yield* Clock.currentTimeMillis).toISOString()
  } satisfies Holder
})

/** Removes the lock if it is still ours (our token): a lock a dead holder's breaker gave to another is not. */
const releaseOf = (fs: FileSystem.FileSystem, lock: string, holder: Holder) =>
  readHolder(fs, lock).pipe(
    Effect.flatMap((now) => (now?.token === holder.token ? Effect.ignore(fs.remove(lock)) : Effect.void))
  )

const filesOf = (options: LockOptions) => ({ lock: options.file, breaker: `${options.file}.break` })

/**
 * Holds the lock until the scope closes, however it closes. Waiting stays interruptible (Ctrl-C); the release runs
 * from before the first try and removes only a lock with our token, so an interrupt landing just after the lock was
 * linked cannot leave it behind.
 */
export const acquire = Effect.fn("FileLock.acquire")(function* (
  options: LockOptions
): Effect.fn.Return<void, LockBusy | LockFileFailed, FileSystem.FileSystem | Scope.Scope> {
  const fs = yield* FileSystem.FileSystem
  const holder = yield* holderFor(options.operation)
  yield* Effect.addFinalizer(() => releaseOf(fs, options.file, holder))
  yield* tryUntil(filesOf(options), holder, options.timeout ?? Duration.minutes(2))
})

/** Runs `effect` holding the lock; the lock is released when it ends, however it ends. */
export const withLock = Effect.fn("FileLock.withLock")(function* <A, E, R>(
  options: LockOptions,
  effect: Effect.Effect<A, E, R>
): Effect.fn.Return<A, E | LockBusy | LockFileFailed, R | FileSystem.FileSystem> {
  const fs = yield* FileSystem.FileSystem
  const holder = yield* holderFor(options.operation)
  return yield* Effect.andThen(tryUntil(filesOf(options), holder, options.timeout ?? Duration.minutes(2)), effect).pipe(
    Effect.ensuring(releaseOf(fs, options.file, holder))
  )
})
