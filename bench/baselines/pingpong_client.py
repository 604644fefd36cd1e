#!/usr/bin/env python3
"""Bench-only load client for bench/replay.ts: COUNT round trips of SIZE-byte messages (`ping <i> ....`, as the
node client sends them) to 127.0.0.1:PORT, each waiting for its SIZE-byte answer. Prints one JSON line:
{"p50": µs, "p99": µs, "perSecond": round trips per second}.
"""
import json
import socket
import sys
import time


DISTINCT = 100  # as bench/_replay-peers.ts: the exchanges cycle through 100 distinct messages


def message(i, size):
    return ("ping %08d " % (i % DISTINCT)).ljust(size, ".").encode("ascii")


def main():
    port, count, size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    messages = [message(i, size) for i in range(DISTINCT)]
    latencies = []
    started = time.perf_counter()
    for i in range(count):
        sent = time.perf_counter()
        sock.sendall(messages[i % DISTINCT])
        got = 0
        while got < size:
            chunk = sock.recv(65536)
            if not chunk:
                sys.exit("the server closed after %d round trips" % i)
            got += len(chunk)
        latencies.append((time.perf_counter() - sent) * 1e6)
    seconds = time.perf_counter() - started
    sock.close()
    latencies.sort()
    at = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
    print(json.dumps({"p50": at(0.5), "p99": at(0.99), "perSecond": count / seconds}), flush=True)


if __name__ == "__main__":
    main()
