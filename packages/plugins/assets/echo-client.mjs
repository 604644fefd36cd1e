// A TCP echo client for the quickstart: sends numbered lines and checks each comes back unchanged.
// Exit 0 when all came back, 1 on a mismatch, 2 when the connection failed.
import * as Net from "node:net"
import { parseArgs } from "node:util"

const { values } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string" },
    count: { type: "string", default: "3" },
    message: { type: "string", default: "hello testbed" }
  }
})
const count = Number(values.count)
const started = performance.now()
const socket = Net.connect(Number(values.port), values.host)
let received = ""
let sent = 0
const sendNext = () => {
  sent++
  socket.write(`${values.message} ${sent}\n`)
}
socket.on("connect", () => {
  console.log(`connected to ${values.host}:${values.port}`)
  sendNext()
})
socket.on("data", (chunk) => {
  received += chunk.toString("utf8")
  while (received.includes("\n")) {
    const line = received.slice(0, received.indexOf("\n"))
    received = received.slice(received.indexOf("\n") + 1)
    const expected = `${values.message} ${sent}`
    if (line !== expected) {
      console.error(`mismatch: sent "${expected}", received "${line}"`)
      process.exit(1)
    }
    console.log(`echoed: ${line}`)
    if (sent === count) {
      console.log(`echo ok: ${count} messages in ${(performance.now() - started).toFixed(1)} ms`)
      socket.end()
      process.exit(0)
    }
    sendNext()
  }
})
socket.on("error", (error) => {
  console.error(`connection failed: ${error.message}`)
  process.exit(2)
})
