// Reused read buffers for a socket the record proxy reads from (node's `onread`): each read fills a buffer of the
// pool instead of a fresh allocation, and the buffer goes back to the pool once everyone holding it (the forwarding
// write, the recording's file write) let it go; nothing is copied on the way. The size adapts to the traffic: 64 KiB
// to start, four times larger after a read that filled the whole buffer (up to 1 MiB: fewer reads and writes for a
// bulk transfer), back to 64 KiB after a run of small reads (a connection gone quiet does not hold a large buffer).
import type * as Net from "node:net"

const smallest = 64 * 1024
const largest = 1024 * 1024
/** Buffers kept for reuse, at most. */
const keep = 16
/** Consecutive small reads (under an eighth of the buffer) after which the buffers shrink back. */
const shrinkAfter = 64

/** One read's buffer, shared by those who still need its bytes. */
export class Lease {
  private refs = 1
  private readonly pool: ReadPool
  private readonly buffer: Buffer

  constructor(pool: ReadPool, buffer: Buffer) {
    this.pool = pool
    this.buffer = buffer
  }

  /** One more holder; it calls `release` once done with the bytes. */
  retain(): void {
    this.refs++
  }

  readonly release = (): void => {
    if (--this.refs === 0) this.pool.give(this.buffer)
  }
}

export class ReadPool {
  private size = smallest
  private smallReads = 0
  private readonly free: Array<Buffer> = []
  /** Where each read goes: the bytes (a view into the leased buffer) and the lease, held once by the reader. */
  onChunk: (chunk: Buffer, lease: Lease) => void = (_chunk, lease) => lease.release()

  /** The `onread` option of `net.connect`. */
  readonly onread: Net.OnReadOpts = {
    buffer: () => this.free.pop() ?? Buffer.allocUnsafeSlow(this.size),
    callback: (bytes: number, buffer: Uint8Array) => {
      const leased = buffer as Buffer
      this.adapt(bytes, leased.length)
      this.onChunk(leased.subarray(0, bytes), new Lease(this, leased))
      return true
    }
  }

  private adapt(bytes: number, capacity: number): void {
    if (bytes === capacity && capacity === this.size && capacity < largest) {
      this.resize(capacity * 4)
      return
    }
    // A bulk transfer has small reads too (whatever the kernel had at that moment): shrink only after many in a row.
    this.smallReads = bytes < capacity / 8 ? this.smallReads + 1 : 0
    if (this.smallReads >= shrinkAfter && this.size > smallest) this.resize(smallest)
  }

  private resize(size: number): void {
    this.size = size
    this.smallReads = 0
    this.free.length = 0
  }

  give(buffer: Buffer): void {
    if (buffer.length === this.size && this.free.length < keep) this.free.push(buffer)
  }
}
