// A TCP echo client for the quickstart: sends numbered lines, each carrying a random nonce, and checks each comes
// back unchanged. It passes only on the echo it claims: a server that answers something else, answers nothing,
// or closes the connection early fails it.
// Exit 0 when every line came back, 1 on a mismatch, a close before the end or no answer in time, 2 when the
// connection failed.
import { randomBytes } from "node:crypto"
import * as Net from "node:net"
import { parseArgs } from "node:util"

const { values } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string" },
    count: { type: "string", default: "3" },
    message: { type: "string", default: "hello testbed" },
    // Seconds to wait for each echo.
    timeout: { type: "string", default: "10" }
  }
})
const count = Number(values.count)
const nonce = randomBytes(8).toString("hex")
const started = performance.now()
const socket = Net.connect(Number(values.port), values.host)
let received = ""
let sent = 0
let echoed = 0
let done = false

const fail = (reason, code = 1) => {
  if (done) return
  done = true
  console.error(reason)
  socket.destroy()
  process.exit(code)
}
let connected = false
let timer
const expected = () => `${values.message} ${sent} ${nonce}`
const sendNext = () => {
  sent++
  socket.write(`${expected()}\n`)
  clearTimeout(timer)
  timer = setTimeout(
    () => fail(`no echo of line ${sent} within ${values.timeout} s (${echoed} of ${count} echoed)`),
    Number(values.timeout) * 1000
  )
}
socket.on("connect", () => {
  connected = true
  console.log(`connected to ${values.host}:${values.port}`)
  sendNext()
})
socket.on("data", (chunk) => {
  received += chunk.toString("utf8")
  // A peer that never sends a newline cannot make this grow without bound.
  if (received.length > 1024 * 1024) fail(`mismatch: 1 MiB without a line break after line ${sent}`)
  while (!done && received.includes("\n")) {
    const line = received.slice(0, received.indexOf("\n"))
    received = received.slice(received.indexOf("\n") + 1)
    if (line !== expected()) fail(`mismatch: sent "${expected()}", received "${line}"`)
    if (done) return
    echoed++
    console.log(`echoed: ${line}`)
    if (sent === count) {
      done = true
      clearTimeout(timer)
      console.log(`echo ok: ${count} messages in ${(performance.now() - started).toFixed(1)} ms`)
      socket.end()
      process.exit(0)
    }
    sendNext()
  }
})
socket.on("close", () => fail(`connection closed after ${echoed} of ${count} echoes`))
socket.on("error", (error) => fail(`connection failed: ${error.message}`, connected ? 1 : 2))
