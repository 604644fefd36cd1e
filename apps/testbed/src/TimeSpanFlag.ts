/**
 * A flag holding a length of time, read by the same `TimeSpan` schema as every duration in a file: `--timeout 90`,
 * `--timeout 1m30s`, `--timeout "2 minutes"`. A bad value is the CLI's usage error naming the flag and the value.
 */
// A deep import: the events index loads every event family, which `run --help` should not pay for.
import * as TimeSpan from "@testbed/events/TimeSpan"
import type { Duration, Option } from "effect"
import { Flag } from "effect/cli"

/** An optional duration flag: `Option.none()` when it is not given. */
export const optional = (name: string, description: string): Flag.Flag<Option.Option<Duration.Duration>> =>
  Flag.String(name).pipe(
    Flag.withSchema(TimeSpan.TimeSpan),
    Flag.withDescription(`${description} (seconds, or e.g. 2s, 500ms, 1m30s, "2 minutes")`),
    Flag.optional
  )
