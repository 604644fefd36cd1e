// Reads TCP_NODELAY back from this process's own TCP sockets, from the kernel, not from Node's bookkeeping: Node has
// no getsockopt, so /proc/self/fd names each socket's inode, /proc/net/tcp{,6} its ports, and perl's getsockopt on an
// inherited copy of the descriptor (the same socket) reads the option itself. Linux only.
import { spawnSync } from "node:child_process"
import { existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs"

export const PERL = "/usr/bin/perl"
/** Under CI a missing perl or /proc must fail the tests that need them, never skip them. */
export const canReadSocketOptions = (existsSync(PERL) && existsSync("/proc/self/fd")) || process.env.CI === "true"

export interface TcpSocket {
  readonly fd: number
  readonly localPort: number
  readonly remotePort: number
  /** TCP_NODELAY as the kernel has it: Nagle's algorithm off. */
  readonly noDelay: boolean
}

/** Established TCP connections by socket inode: `sl local rem st … inode` lines, ports in hex. */
const established = (): ReadonlyMap<string, { readonly localPort: number; readonly remotePort: number }> => {
  const byInode = new Map<string, { readonly localPort: number; readonly remotePort: number }>()
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    if (!existsSync(table)) continue
    for (const line of readFileSync(table, "utf8").split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/)
      // 01: ESTABLISHED.
      if (fields.length < 10 || fields[3] !== "01") continue
      const port = (address: string) => Number.parseInt(address.split(":")[1] ?? "", 16)
      byInode.set(fields[9]!, { localPort: port(fields[1]!), remotePort: port(fields[2]!) })
    }
  }
  return byInode
}

/** Prints one 0/1 per descriptor it inherits at 3, 4, …: TCP_NODELAY of each. */
const perlScript = `
for my $fd (3 .. $#ARGV + 3) {
  open(my $s, "+<&=", $fd) or die "fd $fd: $!";
  my $v = getsockopt($s, IPPROTO_TCP, TCP_NODELAY);
  defined $v or die "getsockopt fd $fd: $!";
  print((unpack("i", $v) ? 1 : 0), "\\n");
}`

/** This process's established TCP sockets with `port` at either end, each with its TCP_NODELAY. */
export const tcpSockets = (port: number): ReadonlyArray<TcpSocket> => {
  const connections = established()
  const found: Array<Omit<TcpSocket, "noDelay">> = []
  for (const name of readdirSync("/proc/self/fd")) {
    const fd = Number(name)
    let target: string
    try {
      target = readlinkSync(`/proc/self/fd/${name}`)
    } catch {
      continue // closed between the listing and the read
    }
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1]
    const connection = inode === undefined ? undefined : connections.get(inode)
    if (connection !== undefined && (connection.localPort === port || connection.remotePort === port)) {
      found.push({ fd, ...connection })
    }
  }
  if (found.length === 0) return []
  const fds = found.map((socket) => socket.fd)
  const result = spawnSync(PERL, ["-MSocket=IPPROTO_TCP,TCP_NODELAY", "-e", perlScript, ...fds.map(String)], {
    stdio: ["ignore", "pipe", "pipe", ...fds],
    timeout: 10_000
  })
  const answers = result.stdout.toString("utf8").trim().split("\n")
  if (result.status !== 0 || answers.length !== found.length) {
    throw new Error(`perl getsockopt failed (${result.status}): ${result.stderr.toString("utf8")}`)
  }
  return found.map((socket, i) => ({ ...socket, noDelay: answers[i] === "1" }))
}
