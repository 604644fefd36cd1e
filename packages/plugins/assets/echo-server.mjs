// A TCP echo server for the quickstart: writes back every byte it receives. Ships with testbed, needs only Node.
import * as Net from "node:net"
import { parseArgs } from "node:util"

const { values } = parseArgs({ options: { host: { type: "string", default: "127.0.0.1" }, port: { type: "string" } } })
let connections = 0
const server = Net.createServer((socket) => {
  connections++
  console.log(`connection ${connections} from ${socket.remoteAddress}:${socket.remotePort}`)
  socket.on("error", () => socket.destroy())
  socket.pipe(socket)
})
server.listen(Number(values.port ?? 0), values.host, () => {
  console.log(`echo server listening on ${values.host}:${server.address().port}`)
})
process.on("SIGTERM", () => {
  console.log(`echo server stopping after ${connections} connection(s)`)
  server.close()
  process.exit(0)
})
