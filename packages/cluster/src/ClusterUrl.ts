/**
 * The cluster's Postgres URL for every command that reaches it (`runner`, `run --cluster`, `cluster status|prune`),
 * and the credentials kept from what a runner runs. A runner's environment is its operator's,
 * and every service and step of a test inherited it: `TESTBED_CLUSTER_URL` (the docs' systemd unit keeps the URL
 * there) and libpq's `PGPASSWORD` reached every test's processes with the database's password. And
 * `--cluster postgres://user:PASSWORD@…` put it in the runner's command line, which `ps` shows every local user.
 * So: the URL comes from `--cluster` or else `TESTBED_CLUSTER_URL`; both variables leave this process's environment
 * once read (as the cluster secret does, Envelope.ts); a `PGPASSWORD` goes into the URL when it names none (the
 * Postgres client reads neither PGPASSWORD nor ~/.pgpass itself: "No password configured"). `run --cluster` keeps
 * `--cluster` as its only switch: there the flag is required, and only the password may come from PGPASSWORD.
 */
import { ExitCode } from "@testbed/events"
import { Effect, Redacted, Runtime, Schema } from "effect"

/** Neither `--cluster` nor `TESTBED_CLUSTER_URL`. */
export class ClusterUrlMissing extends Schema.TaggedError<ClusterUrlMissing>()("ClusterUrlMissing", {}) {
  override get message(): string {
    return "no cluster database: pass --cluster postgres://… or set TESTBED_CLUSTER_URL (kept out of the command line)"
  }
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
}

/** The URL with `password` in it, unless it names one already or is not a URL `new URL` reads. */
const withPassword = (url: string, password: string | undefined): string => {
  if (password === undefined || password === "") return url
  try {
    const parsed = new URL(url)
    if (parsed.password !== "") return url
    parsed.password = encodeURIComponent(password)
    return parsed.toString()
  } catch {
    return url
  }
}

/** Reads the URL (`flag`, else `TESTBED_CLUSTER_URL`) and takes it and `PGPASSWORD` out of the environment. */
export const load = Effect.fn("ClusterUrl.load")(function* (flag: string | undefined) {
  const fromEnv = process.env.TESTBED_CLUSTER_URL
  const password = process.env.PGPASSWORD
  delete process.env.TESTBED_CLUSTER_URL
  delete process.env.PGPASSWORD
  const url = flag ?? (fromEnv === "" ? undefined : fromEnv)
  if (url === undefined) return yield* new ClusterUrlMissing()
  return Redacted.make(withPassword(url, password))
})
