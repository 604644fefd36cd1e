// Nagle's algorithm off on the sockets mqtt.js opens: used by `MqttConnection` (and the latency bench's raw clients).
import { Socket } from "node:net"
import type { IStream, MqttClient } from "mqtt"

/**
 * Every socket the client opens, first and after each reconnect, with Nagle's algorithm off. MQTT is small packets
 * in both directions: an agent acknowledges a command (PUBACK) and answers it a moment later (PUBLISH); with Nagle
 * on, that answer waits for the broker's delayed ACK of the PUBACK, up to 40 ms on Linux, and the same happens at the
 * operator and at the broker: a QoS 1 request/reply round trip took 88 ms instead of 0.9 ms (bench/fleet.md).
 * mqtt.js passes no such option to `net.createConnection` (only `mqtts://` hands its options on to `tls.connect`),
 * so its stream builder, which it calls for every attempt, is wrapped. WebSocket streams are not sockets (`ws` sets
 * noDelay on its own).
 */
export const withoutNagle = (client: MqttClient): void => {
  // `streamBuilder` is the constructor's argument, kept private in mqtt.js's types but called for every attempt.
  const owner = client as unknown as { streamBuilder: (client: MqttClient) => IStream }
  const build = owner.streamBuilder
  owner.streamBuilder = (c) => {
    const stream = build(c)
    if (stream instanceof Socket) {
      stream.setNoDelay(true)
      coalesceWrites(stream)
    }
    return stream
  }
}

/**
 * With Nagle off, every packet written is a TCP segment of its own, and a burst (a thousand commands in flight)
 * costs the receiver a wake-up per packet. The packets written in one turn of the event loop go out together
 * instead: the socket is corked at the turn's first write and uncorked once the turn's I/O callbacks have run
 * (`setImmediate`), which adds no wait where a turn writes one packet.
 */
export const coalesceWrites = (socket: Socket): void => {
  const write = socket.write
  let corked = false
  const uncork = () => {
    corked = false
    socket.uncork()
  }
  socket.write = function (this: Socket, ...args: Parameters<Socket["write"]>) {
    if (!corked && !socket.destroyed) {
      corked = true
      socket.cork()
      setImmediate(uncork)
    }
    return write.apply(this, args)
  } as Socket["write"]
}
