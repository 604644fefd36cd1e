#!/usr/bin/env python3
"""Bench-only baseline: the older NDS replay server (sock_test.py + replay.py) as it worked, for bench/replay.ts.

Rebuilt from its description (/work/shared/COMPAT.md, seed 002), not from its source: a JSON script of
`{name: script}`, `compound` and `script` steps; `-l HOST:PORT` (default 127.0.0.1:0), `-i FILE`, `-t NAME`
(default recorded_script); prints `Test server listening on HOST:PORT`; serves one connection at a time. As the older
tool did, it reads the client through a file object one byte at a time, decoding each byte as UTF-8 and comparing
the text so far with the recorded command, and writes each response through a file object it flushes. Only what
the bench needs is here (no blobs, externals, named scripts, actions or timeouts): it is a speed baseline, not a
replacement.
"""
import argparse
import json
import socket
import sys


def flatten(node, out):
    if node["type"] == "compound":
        for child in node["scripts"]:
            flatten(child, out)
    elif node["type"] == "script":
        response = node.get("response")
        if response is None:
            response = "".join(node.get("responses", []))
        out.append((node["command"], response.encode("latin-1")))
    return out


def expect(inp, command):
    """Reads the command one byte at a time (the older tool's loop); False on a close or a difference."""
    got = ""
    while len(got) < len(command):
        byte = inp.read(1)
        if not byte:
            return False
        got += byte.decode("utf-8")
        if not command.startswith(got):
            sys.stderr.write("mismatch: expected %r, got %r\n" % (command, got))
            return False
    return True


def serve(conn, steps):
    inp = conn.makefile("rb")
    outp = conn.makefile("wb")
    try:
        for command, response in steps:
            if not expect(inp, command):
                return
            outp.write(response)
            outp.flush()
    finally:
        inp.close()
        outp.close()
        conn.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-l", default="127.0.0.1:0")
    parser.add_argument("-i", required=True)
    parser.add_argument("-t", default="recorded_script")
    args = parser.parse_args()
    with open(args.i) as f:
        steps = flatten(json.load(f)[args.t], [])
    host, port = args.l.rsplit(":", 1)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, int(port)))
    listener.listen(1)
    bound = listener.getsockname()
    print("Test server listening on %s:%d" % (bound[0], bound[1]), flush=True)
    while True:
        conn, _ = listener.accept()
        serve(conn, steps)


if __name__ == "__main__":
    main()
