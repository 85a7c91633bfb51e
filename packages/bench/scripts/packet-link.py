#!/usr/bin/env python3
"""A network link at the packet level, for the bench's packet-link measure (src/lib/packetLink.ts starts it).

The machine's kernel has no netem, so delay is made here: two TUN devices, one in this network namespace and one in
another, and every IP packet between them held for the one-way delay after it has been serialized at the link's rate,
tail-dropped past a queue of one bandwidth-delay product. TCP runs end to end through it, so its handshake, slow start,
window and acknowledgements pay the link as they would on a real one, which a server that waits before its answer
(the simulator's own link model) does not show.

    packet-link.py NETNS_PATH TUN_HERE TUN_THERE DELAY_MS MBIT

TUN_HERE is opened in this process's namespace, TUN_THERE in the namespace at NETNS_PATH (both made beforehand with
`ip tuntap add`). Prints "ready" once both are open, then forwards until stdin closes or a signal ends it.
"""
import ctypes
import fcntl
import heapq
import os
import select
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
CLONE_NEWNET = 0x40000000


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def enter(netns_path):
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(netns_path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + netns_path)
    finally:
        os.close(fd)


def main():
    netns_path, tun_here, tun_there, delay_ms, mbit = sys.argv[1:6]
    delay = float(delay_ms) / 1000
    bytes_per_second = float(mbit) * 1_000_000 / 8
    # One bandwidth-delay product of the round trip, as a router's buffer is commonly sized.
    queue_limit = max(64 * 1024, int(bytes_per_second * 2 * delay))

    own_netns = os.open("/proc/self/ns/net", os.O_RDONLY)
    here = open_tun(tun_here)
    enter(netns_path)
    there = open_tun(tun_there)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.setns(own_netns, CLONE_NEWNET)
    os.close(own_netns)

    # A direction: where its packets go, when its serializer is next free, and the bytes it has yet to serialize.
    directions = {here: {"to": there, "free_at": 0.0, "queued": []}, there: {"to": here, "free_at": 0.0, "queued": []}}
    in_flight = []  # (arrival time, sequence, fd to write to, packet)
    sequence = 0
    dropped = 0  # by a full queue
    unwritten = 0  # a TUN device that would have blocked
    print("ready", flush=True)

    while True:
        now = time.monotonic()
        while in_flight and in_flight[0][0] <= now:
            _, _, fd, packet = heapq.heappop(in_flight)
            try:
                os.write(fd, packet)
            except BlockingIOError:
                unwritten += 1
        timeout = max(0.0, in_flight[0][0] - time.monotonic()) if in_flight else 1.0
        readable, _, _ = select.select([here, there, sys.stdin], [], [], timeout)
        if sys.stdin in readable and not sys.stdin.buffer.read1(4096):
            break
        now = time.monotonic()
        for fd in readable:
            if fd is sys.stdin:
                continue
            direction = directions[fd]
            while True:
                try:
                    packet = os.read(fd, 65536)
                except BlockingIOError:
                    break
                # The bytes still waiting for the serializer: those whose serialization ends after now.
                queued = direction["queued"]
                while queued and queued[0][0] <= now:
                    queued.pop(0)
                if sum(size for _, size in queued) + len(packet) > queue_limit:
                    dropped += 1
                    continue
                start = max(now, direction["free_at"])
                done = start + len(packet) / bytes_per_second
                direction["free_at"] = done
                queued.append((done, len(packet)))
                sequence += 1
                heapq.heappush(in_flight, (done + delay, sequence, direction["to"], packet))
    print(f"packet-link: {dropped} packets dropped by a full queue (tail drop, as a router's), {unwritten} by a full device",
          file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
