// The peers of bench/replay.ts, each run as a child process so the replay server or proxy under test has the main
// process to itself: `servers` (a bulk source and an echo server, their ports printed as JSON) and `load` (a client:
// `bulk PORT BYTES` downloads and times it; `pingpong PORT COUNT` times COUNT round trips of 64-byte messages).
// Each prints one JSON line. Run by bench/replay.ts only.
import * as Net from "node:net"

export const messageSize = 64
/**
 * The exchanges cycle through this many distinct messages: mountebank validates a new imposter's responses in
 * quadratic time (1,000 take 15 s, 3,000 a minute), so its stub holds one cycle and plays it over and over.
 */
export const distinctMessages = 100

const messages = Array.from({ length: distinctMessages }, (_, i) =>
  Buffer.from(`ping ${String(i).padStart(8, "0")} `.padEnd(messageSize, "."))
)

/** The i-th message of the ping-pong exchanges (the Python client sends the same bytes); made once, not per send. */
export const message = (i: number): Buffer => messages[i % distinctMessages]!

const print = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`)

const servers = () => {
  const source = Buffer.alloc(4 * 1024 * 1024, 0).map((_, i) => i % 251)
  const bulk = Net.createServer((socket) => {
    socket.once("data", (line) => {
      let left = Number(line.toString().trim())
      const pump = () => {
        while (left > 0) {
          const piece = source.subarray(0, Math.min(left, source.length))
          left -= piece.length
          if (!socket.write(piece)) return void socket.once("drain", pump)
        }
        socket.end()
      }
      pump()
    })
    socket.on("error", () => socket.destroy())
  })
  const echo = Net.createServer({ noDelay: true }, (socket) => {
    socket.on("data", (chunk) => socket.write(chunk))
    socket.on("error", () => socket.destroy())
  })
  bulk.listen(0, "127.0.0.1", () =>
    echo.listen(0, "127.0.0.1", () =>
      print({ bulk: (bulk.address() as Net.AddressInfo).port, echo: (echo.address() as Net.AddressInfo).port })
    )
  )
}

const bulkClient = (socket: Net.Socket, count: number, started: bigint) => {
  let received = 0
  socket.on("connect", () => socket.write(`${count}\n`))
  socket.on("data", (chunk) => {
    received += chunk.length
  })
  socket.on("end", () => {
    print({ bytes: received, seconds: Number(process.hrtime.bigint() - started) / 1e9 })
    socket.end()
  })
}

const pingPongClient = (socket: Net.Socket, count: number, started: bigint) => {
  const latencies = new Float64Array(count)
  let i = 0
  let got = 0
  let sentAt = 0n
  const send = () => {
    sentAt = process.hrtime.bigint()
    socket.write(message(i))
  }
  socket.on("connect", send)
  socket.on("data", (chunk) => {
    got += chunk.length
    while (got >= messageSize) {
      got -= messageSize
      latencies[i] = Number(process.hrtime.bigint() - sentAt) / 1000
      i++
      if (i === count) {
        const seconds = Number(process.hrtime.bigint() - started) / 1e9
        const sorted = Array.from(latencies).sort((a, b) => a - b)
        const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
        print({ p50: at(0.5), p99: at(0.99), perSecond: count / seconds })
        socket.end()
        return
      }
      send()
    }
  })
}

const load = (kind: string, port: number, count: number) => {
  const socket = Net.connect({ host: "127.0.0.1", port, noDelay: true })
  const started = process.hrtime.bigint()
  if (kind === "bulk") bulkClient(socket, count, started)
  else pingPongClient(socket, count, started)
  socket.on("error", (error) => {
    console.error(error.message)
    process.exit(1)
  })
}

if (import.meta.main) {
  const [role, kind = "", port = "0", count = "0"] = process.argv.slice(2)
  if (role === "servers") servers()
  else if (role === "load") load(kind, Number(port), Number(count))
}
