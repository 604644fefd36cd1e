// Commands inside containers over the exec API: attached (demultiplexed output, exit code) and interactive (TTY).
import { Effect, Schedule, Schema } from "effect"
import type Dockerode from "dockerode"
import { Writable } from "node:stream"
import { DockerFailed } from "../StageError.ts"
import { call } from "./engine.ts"

export interface ExecSink {
  readonly stdout: (bytes: Uint8Array) => void
  readonly stderr: (bytes: Uint8Array) => void
}

export interface InteractiveIo {
  readonly input: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown }
  readonly output: NodeJS.WritableStream & { columns?: number; rows?: number; on: NodeJS.WritableStream["on"] }
  /** Where the command's stderr goes when there is no TTY (with a TTY both share `output`). Default: `output`. */
  readonly error?: NodeJS.WritableStream
}

const sinkStream = (write: (bytes: Uint8Array) => void) =>
  new Writable({
    write(chunk: Buffer, _encoding, done) {
      write(new Uint8Array(chunk))
      done()
    }
  })

/** What the engine says of an exec: whether it still runs, its exit code, its process on the engine's host. */
const ExecInfo = Schema.Struct({
  Running: Schema.Boolean,
  ExitCode: Schema.NullOr(Schema.Int),
  Pid: Schema.Int
})

const inspectExec = Effect.fn("Docker.inspectExec")(function* (host: string, exec: Dockerode.Exec) {
  const answer = yield* call(host, "exec inspect", () => exec.inspect())
  return yield* Schema.decodeUnknownEffect(ExecInfo)(answer).pipe(
    Effect.mapError(
      (error) =>
        new DockerFailed({ operation: "exec inspect", reason: `unexpected answer from the engine: ${error.message}` })
    )
  )
})

/** The engine may answer "still running" for a moment after the output stream ended. */
const exitCodeOf = (host: string, exec: Dockerode.Exec) =>
  inspectExec(host, exec).pipe(
    Effect.repeat({ schedule: Schedule.spaced("50 millis"), times: 100, while: (info) => info.Running }),
    Effect.map((info) => info.ExitCode)
  )

/** Ends the exec'd process when its caller is interrupted: only possible when the engine runs on this machine. */
const killExec = (host: string, local: boolean, exec: Dockerode.Exec) =>
  local
    ? inspectExec(host, exec).pipe(
        Effect.flatMap((info) =>
          Effect.sync(() => {
            if (info.Running && info.Pid > 0) process.kill(info.Pid, "SIGKILL")
          })
        ),
        Effect.ignore
      )
    : Effect.void

/** Creates and starts an exec with its streams attached; `stdin` and `tty` as the session needs them. */
const startExec = Effect.fn("Docker.startExec")(function* (
  docker: Dockerode,
  host: string,
  id: string,
  options: {
    readonly cmd: ReadonlyArray<string>
    readonly stdin: boolean
    readonly tty: boolean
    readonly env?: ReadonlyArray<string> | undefined
    readonly workingDir?: string | undefined
  }
) {
  const exec = yield* call(host, "exec create", () =>
    docker.getContainer(id).exec({
      Cmd: [...options.cmd],
      AttachStdout: true,
      AttachStderr: true,
      AttachStdin: options.stdin,
      Tty: options.tty,
      ...(options.env ? { Env: [...options.env] } : {}),
      ...(options.workingDir ? { WorkingDir: options.workingDir } : {})
    })
  )
  const stream = yield* call(host, "exec start", () =>
    exec.start({ hijack: true, stdin: options.stdin, Tty: options.tty })
  )
  return { exec, stream }
})

/** Resumes once the exec's stream has ended, closed or failed; `setup` wires it, interruption destroys it. */
const untilEnded = (stream: NodeJS.ReadWriteStream & { destroy: () => void }, setup: () => void, cleanup = () => {}) =>
  Effect.callback<void>((resume) => {
    let finished = false
    const finish = () => {
      if (!finished) {
        finished = true
        resume(Effect.void)
      }
    }
    setup()
    stream.on("end", finish)
    stream.on("close", finish)
    stream.on("error", finish)
    return Effect.sync(() => {
      cleanup()
      stream.destroy()
    })
  })

export const execAttached = Effect.fn("Docker.exec")(function* (
  docker: Dockerode,
  host: string,
  local: boolean,
  id: string,
  spec: {
    readonly cmd: ReadonlyArray<string>
    readonly env?: ReadonlyArray<string> | undefined
    readonly workingDir?: string | undefined
    readonly stdin?: string | undefined
  },
  sink: ExecSink
) {
  const withStdin = spec.stdin !== undefined
  const { exec, stream } = yield* startExec(docker, host, id, {
    cmd: spec.cmd,
    stdin: withStdin,
    tty: false,
    env: spec.env,
    workingDir: spec.workingDir
  })
  yield* untilEnded(stream, () => {
    docker.modem.demuxStream(stream, sinkStream(sink.stdout), sinkStream(sink.stderr))
    if (withStdin) {
      stream.write(spec.stdin ?? "")
      stream.end()
    }
  }).pipe(Effect.onInterrupt(() => killExec(host, local, exec)))
  return yield* exitCodeOf(host, exec)
})

/** Binds the terminal to a TTY exec until the shell exits; the terminal is restored whatever happens. */
export const execInteractive = Effect.fn("Docker.interactive")(function* (
  docker: Dockerode,
  host: string,
  id: string,
  cmd: ReadonlyArray<string>,
  io: InteractiveIo
) {
  const env = [`TERM=${process.env.TERM ?? "xterm"}`]
  const { exec, stream } = yield* startExec(docker, host, id, { cmd, stdin: true, tty: true, env })
  const resize = () => {
    if (io.output.columns && io.output.rows) {
      exec.resize({ h: io.output.rows, w: io.output.columns }).catch(() => undefined)
    }
  }
  yield* Effect.acquireUseRelease(
    Effect.sync(() => {
      const raw = io.input.isTTY === true && typeof io.input.setRawMode === "function"
      if (raw) io.input.setRawMode?.(true)
      io.input.pipe(stream)
      stream.pipe(io.output, { end: false })
      io.input.resume()
      io.output.on("resize", resize)
      resize()
      return raw
    }),
    () =>
      Effect.callback<void>((resume) => {
        stream.on("end", () => resume(Effect.void))
        stream.on("close", () => resume(Effect.void))
        stream.on("error", () => resume(Effect.void))
      }),
    (raw) =>
      Effect.sync(() => {
        io.input.unpipe(stream)
        stream.unpipe(io.output)
        io.output.removeListener("resize", resize)
        if (raw) io.input.setRawMode?.(false)
        io.input.pause()
        stream.destroy()
      })
  )
  return yield* exitCodeOf(host, exec)
})

/**
 * The same session without a TTY, for input that is not a terminal (a pipe, a file, /dev/null): the command reads
 * the input until its end (which closes its stdin), its stdout and stderr are passed through apart, and the exit
 * code is the command's. Nothing is lost when the input ends before the output.
 */
export const execPiped = Effect.fn("Docker.piped")(function* (
  docker: Dockerode,
  host: string,
  id: string,
  cmd: ReadonlyArray<string>,
  io: InteractiveIo
) {
  const { exec, stream } = yield* startExec(docker, host, id, { cmd, stdin: true, tty: false })
  const stdout = passThrough(io.output)
  const stderr = passThrough(io.error ?? io.output)
  const detach = () => {
    io.input.unpipe(stream)
    io.input.pause()
  }
  yield* untilEnded(
    stream,
    () => {
      docker.modem.demuxStream(stream, stdout, stderr)
      // The end of the input half-closes the connection: the command sees the end of its stdin, output goes on.
      io.input.pipe(stream)
      io.input.resume()
    },
    detach
  ).pipe(Effect.ensuring(Effect.sync(detach)))
  return yield* exitCodeOf(host, exec)
})

/** A writable that forwards to a terminal stream without ever ending it (stdout must outlive the session). */
const passThrough = (target: NodeJS.WritableStream) =>
  new Writable({
    write(chunk: Buffer, _encoding, done) {
      target.write(chunk, () => done())
    }
  })

/** Logs of a container without a TTY come framed (8-byte headers); this keeps the payloads. */
export const demuxToString = (bytes: Uint8Array): string => {
  const buffer = Buffer.from(bytes)
  if (buffer.length < 8 || buffer[1] !== 0 || buffer[2] !== 0 || buffer[3] !== 0 || (buffer[0] ?? 9) > 2) {
    return buffer.toString("utf8")
  }
  const parts: Array<Buffer> = []
  let offset = 0
  while (offset + 8 <= buffer.length) {
    const size = buffer.readUInt32BE(offset + 4)
    parts.push(buffer.subarray(offset + 8, offset + 8 + size))
    offset += 8 + size
  }
  return Buffer.concat(parts).toString("utf8")
}
