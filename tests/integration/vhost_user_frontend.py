#!/usr/bin/env python3
"""vhost_user_frontend.py - a small vhost-user front-end (what QEMU does)
for t70-virtiofs.sh: it shares a memfd as guest memory, sets up request
queue 1 of `storefs virtiofs`, and plays a guest that sends both good FUSE
requests and hostile descriptor chains; or it breaks the protocol itself.

Usage: vhost_user_frontend.py SOCKET CASE [STORE_PATH_BASENAME FILE CONTENT]
Prints one line per observation; exits non-zero when one is wrong.
"""
import mmap
import os
import select
import socket
import struct
import sys
import time

# vhost-user requests (QEMU docs/interop/vhost-user.rst)
GET_FEATURES, SET_FEATURES, SET_OWNER = 1, 2, 3
SET_MEM_TABLE, SET_VRING_NUM, SET_VRING_ADDR, SET_VRING_BASE = 5, 8, 9, 10
GET_VRING_BASE, SET_VRING_KICK, SET_VRING_CALL = 11, 12, 13
GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES, GET_QUEUE_NUM = 15, 16, 17
SET_VRING_ENABLE = 18
NEED_REPLY = 1 << 3
F_VERSION_1, F_INDIRECT, F_PROTOCOL = 1 << 32, 1 << 28, 1 << 30
PF_MQ, PF_REPLY_ACK = 1 << 0, 1 << 3

# FUSE
FUSE_LOOKUP, FUSE_FORGET, FUSE_READ, FUSE_INIT, FUSE_READDIR = 1, 2, 15, 26, 28
IN_HDR = struct.Struct("<IIQQIIIHH")  # fuse_in_header, 40 bytes
OUT_HDR = struct.Struct("<IiQ")  # fuse_out_header, 16 bytes

# Guest memory: one region; queue q's rings and buffers at q * QSPAN.
GPA, UVA, MEM = 0x40000000, 0x7F0000000000, 1 << 20
QSPAN, NUM = 0x40000, 8
DESC, AVAIL, USED, DATA, REPLY = 0x0, 0x1000, 0x2000, 0x10000, 0x20000
DESC_NEXT, DESC_WRITE = 1, 2


class Frontend:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.unique = 0

    def send(self, req, payload=b"", fds=(), flags=1):
        msg = struct.pack("<III", req, flags, len(payload)) + payload
        if fds:
            socket.send_fds(self.sock, [msg], list(fds))
        else:
            self.sock.sendall(msg)

    def recv(self):
        hdr = self.recvall(12)
        req, flags, size = struct.unpack("<III", hdr)
        return req, self.recvall(size)

    def recvall(self, n):
        buf = b""
        while len(buf) < n:
            got = self.sock.recv(n - len(buf))
            if not got:
                raise EOFError("the back-end closed the connection")
            buf += got
        return buf

    def u64(self, req):
        self.send(req)
        return struct.unpack("<Q", self.recv()[1])[0]

    def acked(self, req, payload=b"", fds=()):
        self.send(req, payload, fds, flags=1 | NEED_REPLY)
        status = struct.unpack("<Q", self.recv()[1])[0]
        if status != 0:
            raise RuntimeError("request %d failed" % req)

    def setup(self, queues=(1,)):
        """Negotiates, shares guest memory and starts `queues`: returns
        their rings."""
        feats = self.u64(GET_FEATURES)
        want = F_VERSION_1 | F_INDIRECT | F_PROTOCOL
        assert feats & want == want, hex(feats)
        self.send(SET_FEATURES, struct.pack("<Q", want))
        assert self.u64(GET_PROTOCOL_FEATURES) & (PF_MQ | PF_REPLY_ACK)
        self.send(SET_PROTOCOL_FEATURES, struct.pack("<Q", PF_MQ | PF_REPLY_ACK))
        self.queues = self.u64(GET_QUEUE_NUM)
        self.send(SET_OWNER)
        self.memfd = os.memfd_create("guest")
        os.ftruncate(self.memfd, MEM)
        self.mem = mmap.mmap(self.memfd, MEM)
        region = struct.pack("<QQQQ", GPA, MEM, UVA, 0)
        self.acked(SET_MEM_TABLE, struct.pack("<II", 1, 0) + region, [self.memfd])
        return [Ring(self, q) for q in queues]


class Ring:
    """The guest side of queue `q`."""

    def __init__(self, f, q):
        self.f, self.q, self.mem, self.base = f, q, f.mem, q * QSPAN
        b = UVA + self.base
        f.send(SET_VRING_NUM, struct.pack("<II", q, NUM))
        f.send(SET_VRING_BASE, struct.pack("<II", q, 0))
        f.send(SET_VRING_ADDR, struct.pack("<IIQQQQ", q, 0, b + DESC, b + USED, b + AVAIL, 0))
        self.call = os.eventfd(0, os.EFD_NONBLOCK)
        self.kick = os.eventfd(0)
        f.send(SET_VRING_CALL, struct.pack("<Q", q), [self.call])
        f.send(SET_VRING_KICK, struct.pack("<Q", q), [self.kick])
        f.acked(SET_VRING_ENABLE, struct.pack("<II", q, 1))
        self.avail_idx = 0

    def gpa(self, off):
        return GPA + self.base + off

    def desc(self, i, addr, length, flags=0, nxt=0):
        struct.pack_into("<QIHH", self.mem, self.base + DESC + 16 * i, addr, length, flags, nxt)

    def used_idx(self):
        return struct.unpack_from("<H", self.mem, self.base + USED + 2)[0]

    def offer(self, head):
        """Makes chain `head` available, kicks, and waits for it to be used:
        returns the used element's length."""
        before = self.used_idx()
        avail = self.base + AVAIL
        struct.pack_into("<H", self.mem, avail + 4 + 2 * (self.avail_idx % NUM), head)
        self.avail_idx = (self.avail_idx + 1) & 0xFFFF
        struct.pack_into("<H", self.mem, avail + 2, self.avail_idx)
        os.eventfd_write(self.kick, 1)
        deadline = time.monotonic() + 10
        while self.used_idx() == before:
            if time.monotonic() > deadline:
                raise RuntimeError("chain %d was never returned" % head)
            if select.select([self.call], [], [], 0.05)[0]:
                os.eventfd_read(self.call)
        slot = self.base + USED + 4 + 8 * (before % NUM)
        uid, ulen = struct.unpack_from("<II", self.mem, slot)
        assert uid == head, (uid, head)
        return ulen

    def put(self, off, data):
        self.mem[self.base + off:self.base + off + len(data)] = data

    def request(self, opcode, nodeid, arg, reply_room):
        """A FUSE request in chain 0: (reply length, error, reply body)."""
        self.f.unique += 1
        req = IN_HDR.pack(IN_HDR.size + len(arg), opcode, self.f.unique, nodeid, 0, 0, 0, 0, 0)
        req += arg
        self.put(DATA, req)
        self.desc(0, self.gpa(DATA), len(req), DESC_NEXT, 1)
        self.desc(1, self.gpa(REPLY), reply_room, DESC_WRITE if reply_room else 0)
        n = self.offer(0)
        out = bytes(self.mem[self.base + REPLY:self.base + REPLY + n])
        if n < OUT_HDR.size:
            return n, None, b""
        length, error, unique = OUT_HDR.unpack_from(out)
        assert length == n and unique == self.f.unique, (length, n, unique, self.f.unique)
        return n, error, out[OUT_HDR.size:]


def say(ok, what):
    print(("ok - " if ok else "not ok - ") + what)
    return ok


def reset(f, queues):
    """What QEMU does when the guest reboots: stops every ring (the guest
    died without unmounting), then the new guest's driver sets them up
    again from zeroed memory."""
    for q in queues:
        f.send(GET_VRING_BASE, struct.pack("<II", q, 0))
        f.recv()
    for q in queues:
        f.mem[q * QSPAN:q * QSPAN + USED + 4 + 8 * NUM] = bytes(USED + 4 + 8 * NUM)
    return [Ring(f, q) for q in queues]


def case_guest(f, name, child, content):
    """Good requests answered on two request queues and the hiprio queue,
    hostile chains refused, then a broken ring."""
    r1, r2, hiprio = f.setup((1, 2, 0))
    good = say(f.queues >= 3, "GET_QUEUE_NUM counts the hiprio queue and the request queues")
    init = struct.pack("<IIII", 7, 31, 65536, 0) + b"\0" * 48
    n, err, body = r1.request(FUSE_INIT, 0, init, 16 + 64)
    good &= say(err == 0 and n == 80 and struct.unpack_from("<II", body) == (7, 31),
                "FUSE_INIT answered with protocol 7.31")
    n, err, body = r1.request(FUSE_LOOKUP, 1, name.encode() + b"\0", 16 + 128)
    root = struct.unpack_from("<Q", body)[0] if err == 0 and n == 144 else 0
    good &= say(root > 1, "LOOKUP of the store path")
    n, err, body = r2.request(FUSE_LOOKUP, root, child.encode() + b"\0", 16 + 128)
    node = struct.unpack_from("<Q", body)[0] if err == 0 and n == 144 else 0
    good &= say(node > 1, "LOOKUP on the second request queue")
    read = struct.pack("<QQIIQII", 0, 0, 4096, 0, 0, 0, 0)
    n, err, body = r1.request(FUSE_READ, node, read, 16 + 4096)
    good &= say(err == 0 and body == content.encode(), "READ returns the file's bytes")
    n, err, body = hiprio.request(FUSE_FORGET, root, struct.pack("<Q", 1), 0)
    good &= say(n == 0, "FORGET on the hiprio queue is taken without a reply")
    region = struct.pack("<QQQQ", GPA, MEM, UVA, 0)
    f.acked(SET_MEM_TABLE, struct.pack("<II", 1, 0) + region, [f.memfd])
    n, err, body = r1.request(FUSE_READ, node, read, 16 + 4096)
    good &= say(err == 0 and body == content.encode(),
                "a new memory table while the queues run: they go on where they were")
    r1, r2, hiprio = reset(f, (1, 2, 0))
    n, err, body = r1.request(FUSE_INIT, 0, init, 16 + 64)
    good &= say(err == 0 and n == 80, "after a device reset (a reboot) a new INIT is answered")
    n, err, body = r1.request(FUSE_LOOKUP, 1, name.encode() + b"\0", 16 + 128)
    good &= say(err == 0 and n == 144, "and the store path is found again")

    # Hostile chains: each comes back with length 0 and the queue goes on.
    r1.desc(0, GPA + MEM - 8, 64)  # runs off the end of guest memory
    good &= say(r1.offer(0) == 0, "a buffer outside guest memory is refused")
    r1.desc(0, r1.gpa(DATA), 40, DESC_NEXT, 1)
    r1.desc(1, r1.gpa(DATA), 40, DESC_NEXT, 0)
    good &= say(r1.offer(0) == 0, "a descriptor loop is refused")
    r1.desc(0, r1.gpa(DATA), 40, DESC_WRITE | DESC_NEXT, 1)
    r1.desc(1, r1.gpa(DATA), 40, 0)
    good &= say(r1.offer(0) == 0, "a readable buffer after a writable one is refused")
    r1.desc(0, r1.gpa(DATA), 10, DESC_NEXT, 1)
    r1.desc(1, r1.gpa(REPLY), 100, DESC_WRITE)
    good &= say(r1.offer(0) == 0, "a request shorter than a FUSE header gets no reply")
    r1.put(DATA, IN_HDR.pack(1 << 20, FUSE_LOOKUP, 77, 1, 0, 0, 0, 0, 0))
    r1.desc(0, r1.gpa(DATA), 48, DESC_NEXT, 1)
    n = r1.offer(0)
    err = OUT_HDR.unpack_from(f.mem, r1.base + REPLY)[1]
    good &= say(n == 16 and err == -22, "a request claiming 1 MiB in 48 bytes gets EINVAL")
    n, err, body = r1.request(FUSE_READ, node, read, 16 + 4096)
    good &= say(err == 0 and body == content.encode(), "the queue still answers")

    # A broken ring: the available index runs ahead; the queue stops but
    # the daemon, the other queues and the connection live on.
    struct.pack_into("<H", f.mem, r1.base + AVAIL + 2, (r1.avail_idx + 100) & 0xFFFF)
    os.eventfd_write(r1.kick, 1)
    n, err, body = r2.request(FUSE_READ, node, read, 16 + 4096)
    good &= say(err == 0 and body == content.encode(), "the other request queue still answers")
    f.send(GET_VRING_BASE, struct.pack("<II", 1, 0))
    req, payload = f.recv()
    good &= say(req == GET_VRING_BASE and struct.unpack("<II", payload)[0] == 1,
                "GET_VRING_BASE answered after the ring broke")
    return good


def case_root(f, expect):
    """READDIR of the root: EPERM, or (with --list-root) the names."""
    (r1,) = f.setup((1,))
    init = struct.pack("<IIII", 7, 31, 65536, 0) + b"\0" * 48
    r1.request(FUSE_INIT, 0, init, 16 + 64)
    read = struct.pack("<QQIIQII", 0, 0, 4096, 0, 0, 0, 0)
    n, err, body = r1.request(FUSE_READDIR, 1, read, 16 + 4096)
    if expect == "EPERM":
        return say(err == -1, "listing the root is EPERM without --list-root")
    names, off = [], 0
    while off + 24 <= len(body):
        ino, _, namelen, _ = struct.unpack_from("<QQII", body, off)
        names.append(body[off + 24:off + 24 + namelen].decode())
        off += (24 + namelen + 7) & ~7
    # "." and ".." come first (docs/limits.md "Directory listings").
    return say(err == 0 and names[:2] == [".", ".."]
               and sorted(names[2:]) == sorted(expect.split(",")),
               "--list-root lists . and .. and the store paths: %s" % ",".join(names))


def case_protocol(f, what):
    """The front-end itself breaks the protocol: the back-end must close
    the connection (and exit with an error), not crash."""
    if what == "unknown-request":
        f.send(99)
    elif what == "too-many-regions":
        f.send(SET_MEM_TABLE, struct.pack("<II", 9, 0) + b"\0" * 32 * 8)
    elif what == "huge-payload":
        f.send(SET_OWNER, b"\0" * 4096)
    elif what == "bad-queue":
        f.send(SET_VRING_NUM, struct.pack("<II", 200, 8))
    elif what == "region-beyond-file":
        fd = os.memfd_create("small")
        os.ftruncate(fd, 4096)
        region = struct.pack("<QQQQ", GPA, 1 << 20, UVA, 0)
        f.send(SET_MEM_TABLE, struct.pack("<II", 1, 0) + region, [fd])
    elif what == "ring-outside-memory":
        f.setup(())
        f.send(SET_VRING_NUM, struct.pack("<II", 2, 8))
        f.send(SET_VRING_ADDR, struct.pack("<IIQQQQ", 2, 0, UVA + MEM, UVA, UVA, 0))
        f.send(SET_VRING_KICK, struct.pack("<Q", 2), [os.eventfd(0)])
    else:
        raise SystemExit("unknown case " + what)
    try:
        while f.sock.recv(4096):
            pass
    except (ConnectionResetError, EOFError):
        pass
    return say(True, "the back-end closed the connection on " + what)


def main():
    path, case = sys.argv[1], sys.argv[2]
    f = Frontend(path)
    if case == "guest":
        ok = case_guest(f, *sys.argv[3:6])
    elif case == "root":
        ok = case_root(f, sys.argv[3])
    else:
        ok = case_protocol(f, case)
    f.sock.close()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
