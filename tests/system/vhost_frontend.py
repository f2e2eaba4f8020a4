"""A small vhost-user frontend and virtio driver for tests: guest RAM in a memfd, split
virtqueues built in it by hand, eventfds for kicks and calls, and the vhost-user messages
(QEMU's vhost-user specification) to hand all of it to a backend. Enough to drive
bulkhead's I/O servers (or any vhost-user backend) without a VM, and to corrupt rings
in every way a hostile guest could."""
import json
import mmap
import os
import select
import socket
import struct
import time

# vhost-user requests and flags
GET_FEATURES, SET_FEATURES, SET_OWNER, RESET_OWNER, SET_MEM_TABLE = 1, 2, 3, 4, 5
SET_LOG_BASE = 6
SET_VRING_NUM, SET_VRING_ADDR, SET_VRING_BASE, GET_VRING_BASE = 8, 9, 10, 11
SET_VRING_KICK, SET_VRING_CALL, SET_VRING_ERR = 12, 13, 14
GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES, GET_QUEUE_NUM, SET_VRING_ENABLE = 15, 16, 17, 18
GET_CONFIG, SET_CONFIG, GET_INFLIGHT_FD, SET_INFLIGHT_FD, RESET_DEVICE = 24, 25, 31, 32, 34
VERSION, FLAG_REPLY, FLAG_NEED_REPLY = 0x1, 1 << 2, 1 << 3
VRING_NOFD = 1 << 8
F_PROTOCOL_FEATURES = 30
PROTOCOL_F_MQ, PROTOCOL_F_REPLY_ACK, PROTOCOL_F_CONFIG, PROTOCOL_F_RESET_DEVICE = 0, 3, 9, 13
PROTOCOL_F_INFLIGHT_SHMFD = 12
INFLIGHT_MSG = "<QQHH4x"          # mmap_size, mmap_offset, num_queues, queue_size (24 bytes)

# virtio
F_INDIRECT_DESC, F_EVENT_IDX, F_VERSION_1 = 28, 29, 32
DESC_F_NEXT, DESC_F_WRITE, DESC_F_INDIRECT = 1, 2, 4
AVAIL_F_NO_INTERRUPT, USED_F_NO_NOTIFY = 1, 1

# virtio-blk
BLK_T_IN, BLK_T_OUT, BLK_T_FLUSH, BLK_T_GET_ID = 0, 1, 4, 8
BLK_T_DISCARD, BLK_T_WRITE_ZEROES = 11, 13
BLK_S_OK, BLK_S_IOERR, BLK_S_UNSUPP = 0, 1, 2
BLK_F_SEG_MAX, BLK_F_RO, BLK_F_BLK_SIZE, BLK_F_FLUSH = 2, 5, 6, 9
BLK_F_DISCARD, BLK_F_WRITE_ZEROES = 13, 14
SECTOR = 512

# virtio-net
NET_F_MAC, NET_F_MRG_RXBUF, NET_F_STATUS = 5, 15, 16
NET_HDR = "<BBHHHHH"     # flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, num_buffers
NET_HDR_LEN = 12
NET_HDR_FIELDS = ("flags", "gso_type", "hdr_len", "gso_size", "csum_start", "csum_offset",
                  "num_buffers")

GUEST_BASE = 0x100000           # guest-physical address of the RAM
USER_OFFSET = 0x7F0000000000    # the "frontend virtual address" is guest address + this


class VhostError(Exception):
    pass


class Memory:
    """Guest RAM: a memfd mapped here, at GUEST_BASE in the guest's address space, with a
    bump allocator for rings and buffers."""

    def __init__(self, size=4 << 20, base=GUEST_BASE):
        self.fd = os.memfd_create("guest-ram", os.MFD_CLOEXEC)
        os.ftruncate(self.fd, size)
        self.map = mmap.mmap(self.fd, size)
        self.base, self.size, self.user = base, size, base + USER_OFFSET
        self.next = base

    def alloc(self, size, align=16):
        addr = (self.next + align - 1) & ~(align - 1)
        if addr + size > self.base + self.size:
            raise MemoryError("guest RAM exhausted")
        self.next = addr + size
        self.write(addr, bytes(size))
        return addr

    def _off(self, addr, n):
        off = addr - self.base
        assert 0 <= off and off + n <= self.size, hex(addr)
        return off

    def write(self, addr, data):
        off = self._off(addr, len(data))
        self.map[off:off + len(data)] = data

    def read(self, addr, n):
        off = self._off(addr, n)
        return bytes(self.map[off:off + n])

    def pack(self, addr, fmt, *values):
        self.write(addr, struct.pack(fmt, *values))

    def unpack(self, addr, fmt):
        return struct.unpack(fmt, self.read(addr, struct.calcsize(fmt)))

    def close(self):
        self.map.close()
        os.close(self.fd)


class Ring:
    """The driver side of one split virtqueue in guest memory (virtio 1.2, 2.7)."""

    def __init__(self, mem, num, event_idx=True):
        self.mem, self.num, self.event_idx = mem, num, event_idx
        self.desc = mem.alloc(16 * num, 16)
        self.avail = mem.alloc(6 + 2 * num, 2)
        self.used = mem.alloc(6 + 8 * num, 4)
        self.free = list(range(num))
        self.avail_idx = 0
        self.last_used = 0
        self.chains = {}                  # head -> descriptors it holds

    # raw access, for well-formed and malformed rings alike
    def set_desc(self, i, addr, length, flags=0, next_=0):
        self.mem.pack(self.desc + 16 * i, "<QIHH", addr, length, flags, next_)

    def set_avail_idx(self, idx):
        self.avail_idx = idx & 0xFFFF
        self.mem.pack(self.avail + 2, "<H", self.avail_idx)

    def set_avail_flags(self, flags):
        self.mem.pack(self.avail, "<H", flags)

    def set_used_event(self, v):
        self.mem.pack(self.avail + 4 + 2 * self.num, "<H", v & 0xFFFF)

    def used_flags(self):
        return self.mem.unpack(self.used, "<H")[0]

    def avail_event(self):
        return self.mem.unpack(self.used + 4 + 8 * self.num, "<H")[0]

    def used_idx(self):
        return self.mem.unpack(self.used + 2, "<H")[0]

    def publish(self, head):
        """Puts head in the avail ring and moves the index (the index last)."""
        self.mem.pack(self.avail + 4 + 2 * (self.avail_idx % self.num), "<H", head)
        self.set_avail_idx(self.avail_idx + 1)

    def add(self, bufs, publish=True):
        """A chain of (addr, len, device_writable) buffers from free descriptors."""
        if len(bufs) > len(self.free):
            raise MemoryError("ring full")
        ids = [self.free.pop(0) for _ in bufs]
        for k, (addr, length, write) in enumerate(bufs):
            flags = (DESC_F_WRITE if write else 0) | (DESC_F_NEXT if k + 1 < len(bufs) else 0)
            self.set_desc(ids[k], addr, length, flags, ids[k + 1] if k + 1 < len(bufs) else 0)
        self.chains[ids[0]] = ids
        if publish:
            self.publish(ids[0])
        return ids[0]

    def add_indirect(self, bufs, publish=True):
        """The same chain through one indirect table."""
        table = self.mem.alloc(16 * len(bufs), 16)
        for k, (addr, length, write) in enumerate(bufs):
            flags = (DESC_F_WRITE if write else 0) | (DESC_F_NEXT if k + 1 < len(bufs) else 0)
            self.mem.pack(table + 16 * k, "<QIHH", addr, length, flags, k + 1)
        head = self.free.pop(0)
        self.set_desc(head, table, 16 * len(bufs), DESC_F_INDIRECT, 0)
        self.chains[head] = [head]
        if publish:
            self.publish(head)
        return head

    def take_used(self):
        """New used elements as (id, len); their descriptors become free again."""
        out = []
        idx = self.used_idx()
        while self.last_used != idx:
            slot = self.used + 4 + 8 * (self.last_used % self.num)
            uid, ulen = self.mem.unpack(slot, "<II")
            out.append((uid, ulen))
            self.free.extend(self.chains.pop(uid, []))
            self.last_used = (self.last_used + 1) & 0xFFFF
        if self.event_idx:
            self.set_used_event(self.last_used)   # interrupt me for the next one
        return out


class Frontend:
    """One vhost-user connection, the frontend end."""

    def __init__(self, sock):
        self.sock = sock
        self.sock.settimeout(10)

    def close(self):
        self.sock.close()

    def send(self, request, payload=b"", fds=(), need_reply=False):
        flags = VERSION | (FLAG_NEED_REPLY if need_reply else 0)
        data = struct.pack("<III", request, flags, len(payload)) + payload
        if fds:
            socket.send_fds(self.sock, [data], list(fds))
        else:
            self.sock.sendall(data)

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise VhostError("backend closed the connection")
            buf += chunk
        return buf

    def recv(self, request):
        return self.recv_fds(request)[0]

    def recv_fds(self, request):
        """A reply and the descriptors that came with it."""
        head, fds, _, _ = socket.recv_fds(self.sock, 12, 8)
        if not head:
            raise VhostError("backend closed the connection")
        head += self._recv_exact(12 - len(head))
        req, flags, size = struct.unpack("<III", head)
        if req != request or not flags & FLAG_REPLY or flags & 3 != VERSION:
            for fd in fds:
                os.close(fd)
            raise VhostError(f"unexpected reply {req} flags {flags:#x} to {request}")
        return self._recv_exact(size), fds

    def ack(self, request, payload=b"", fds=()):
        """Sends with NEED_REPLY; returns the backend's u64 status (0 = success)."""
        self.send(request, payload, fds, need_reply=True)
        return struct.unpack("<Q", self.recv(request))[0]

    def must(self, request, payload=b"", fds=()):
        status = self.ack(request, payload, fds)
        if status:
            raise VhostError(f"request {request} failed: {status}")

    def get_u64(self, request):
        self.send(request)
        return struct.unpack("<Q", self.recv(request))[0]

    def get_features(self):
        return self.get_u64(GET_FEATURES)

    def get_protocol_features(self):
        return self.get_u64(GET_PROTOCOL_FEATURES)

    def get_queue_num(self):
        return self.get_u64(GET_QUEUE_NUM)

    def set_features(self, features):
        self.must(SET_FEATURES, struct.pack("<Q", features))

    def set_protocol_features(self, features):
        self.send(SET_PROTOCOL_FEATURES, struct.pack("<Q", features))

    def set_owner(self):
        self.must(SET_OWNER)

    def set_mem_table(self, regions):
        """regions: (guest_addr, size, user_addr, mmap_offset, fd) tuples."""
        payload = struct.pack("<II", len(regions), 0)
        for ga, size, ua, off, _ in regions:
            payload += struct.pack("<QQQQ", ga, size, ua, off)
        self.must(SET_MEM_TABLE, payload, [r[4] for r in regions])

    def set_vring_num(self, index, num):
        self.must(SET_VRING_NUM, struct.pack("<II", index, num))

    def set_vring_base(self, index, base):
        self.must(SET_VRING_BASE, struct.pack("<II", index, base))

    def get_vring_base(self, index):
        self.send(GET_VRING_BASE, struct.pack("<II", index, 0))
        return struct.unpack("<II", self.recv(GET_VRING_BASE))[1]

    def set_vring_addr(self, index, desc, used, avail):
        return self.ack(SET_VRING_ADDR, struct.pack("<IIQQQQ", index, 0, desc, used, avail, 0))

    def _vring_fd(self, request, index, fd):
        if fd is None:
            return self.ack(request, struct.pack("<Q", index | VRING_NOFD))
        return self.ack(request, struct.pack("<Q", index), [fd])

    def set_vring_kick(self, index, fd):
        return self._vring_fd(SET_VRING_KICK, index, fd)

    def set_vring_call(self, index, fd):
        return self._vring_fd(SET_VRING_CALL, index, fd)

    def set_vring_err(self, index, fd):
        return self._vring_fd(SET_VRING_ERR, index, fd)

    def set_vring_enable(self, index, on):
        self.must(SET_VRING_ENABLE, struct.pack("<II", index, 1 if on else 0))

    def get_config(self, size, offset=0):
        self.send(GET_CONFIG, struct.pack("<III", offset, size, 0) + bytes(size))
        reply = self.recv(GET_CONFIG)
        if len(reply) < 12:
            raise VhostError("GET_CONFIG refused")
        return reply[12:12 + size]

    def reset_device(self):
        self.must(RESET_DEVICE)

    def get_inflight_fd(self, num_queues, queue_size):
        """GET_INFLIGHT_FD: (fd, mmap_size, mmap_offset); fd None when refused."""
        self.send(GET_INFLIGHT_FD, struct.pack(INFLIGHT_MSG, 0, 0, num_queues, queue_size))
        payload, fds = self.recv_fds(GET_INFLIGHT_FD)
        if len(payload) != struct.calcsize(INFLIGHT_MSG):
            raise VhostError(f"GET_INFLIGHT_FD reply of {len(payload)} bytes")
        size, offset, _, _ = struct.unpack(INFLIGHT_MSG, payload)
        if not size or not fds:
            for fd in fds:
                os.close(fd)
            return None, 0, 0
        for fd in fds[1:]:
            os.close(fd)
        return fds[0], size, offset

    def set_inflight_fd(self, fd, size, offset, num_queues, queue_size):
        """SET_INFLIGHT_FD; returns the backend's status (0 = accepted)."""
        return self.ack(SET_INFLIGHT_FD,
                        struct.pack(INFLIGHT_MSG, size, offset, num_queues, queue_size), [fd])


class InflightRegion:
    """The inflight region of INFLIGHT_SHMFD (split rings) seen from the frontend: one
    queue region per queue, 64-byte aligned, each a 16-byte header (features, version,
    desc_num, last_batch_head, used_idx) and desc_num 16-byte descriptor states
    (inflight, 5 padding bytes, next, counter)."""

    HEADER, DESC = "<QHHHH", "<B5xHQ"

    def __init__(self, fd, size, offset, num_queues, queue_size):
        self.fd, self.size, self.offset = fd, size, offset
        self.num_queues, self.queue_size = num_queues, queue_size
        self.queue_bytes = (16 + 16 * queue_size + 63) & ~63
        self.map = mmap.mmap(fd, size, offset=offset)

    def _q(self, q):
        assert 0 <= q < self.num_queues
        return q * self.queue_bytes

    def header(self, q=0):
        f, v, n, lbh, used = struct.unpack_from(self.HEADER, self.map, self._q(q))
        return {"features": f, "version": v, "desc_num": n, "last_batch_head": lbh,
                "used_idx": used}

    def set_header(self, q=0, **fields):
        h = self.header(q)
        h.update(fields)
        struct.pack_into(self.HEADER, self.map, self._q(q), h["features"], h["version"],
                         h["desc_num"], h["last_batch_head"], h["used_idx"])

    def desc(self, i, q=0):
        """(inflight, next, counter) of descriptor i."""
        return struct.unpack_from(self.DESC, self.map, self._q(q) + 16 + 16 * i)

    def set_desc(self, i, inflight, next_=0, counter=0, q=0):
        struct.pack_into(self.DESC, self.map, self._q(q) + 16 + 16 * i, inflight, next_,
                         counter)

    def inflight(self, q=0):
        """Heads marked in flight, in counter order."""
        heads = [(self.desc(i, q)[2], i) for i in range(self.queue_size) if self.desc(i, q)[0]]
        return [i for _, i in sorted(heads)]

    def close(self):
        self.map.close()
        os.close(self.fd)


class Queue:
    """A ring with its kick and call eventfds."""

    def __init__(self, mem, index, num, event_idx=True):
        self.index = index
        self.ring = Ring(mem, num, event_idx)
        self.kick_fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self.call_fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self.calls = 0

    def kick(self):
        os.eventfd_write(self.kick_fd, 1)

    def wait(self, count=1, timeout=10.0):
        """Waits for count used elements: sleeps on the call eventfd only, so a backend
        that forgets to notify makes this time out."""
        got, deadline = [], time.monotonic() + timeout
        while True:
            got += self.ring.take_used()
            if len(got) >= count:
                return got
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{len(got)} of {count} completions on queue {self.index}")
            r, _, _ = select.select([self.call_fd], [], [], left)
            if r:
                os.eventfd_read(self.call_fd)
                self.calls += 1

    def idle(self, timeout=0.3):
        """True when nothing completes for timeout seconds."""
        time.sleep(timeout)
        return not self.ring.take_used()

    def close(self):
        os.close(self.kick_fd)
        os.close(self.call_fd)


class Device:
    """A connected, fully set-up vhost-user device: features negotiated, one memory
    region, every queue started and enabled. With inflight=True it also negotiates
    INFLIGHT_SHMFD and asks for a region (self.inflight) before the rings start, and
    reconnect() hands everything, region included, to a restarted backend."""

    def __init__(self, sock, nqueues, num=64, features=None, mem_size=4 << 20,
                 event_idx=True, inflight=False, start=True):
        self.fe = Frontend(sock)
        self.mem = Memory(mem_size)
        self.want_inflight, self.inflight = inflight, None
        offered = self.fe.get_features()
        self.offered = offered
        if features is None:
            features = offered
        if not event_idx:
            features &= ~(1 << F_EVENT_IDX)
        self.features = features
        self._negotiate()
        self.queues = [Queue(self.mem, i, num, bool(features & (1 << F_EVENT_IDX)))
                       for i in range(nqueues)]
        if inflight:
            fd, size, offset = self.fe.get_inflight_fd(nqueues, num)
            if fd is None:
                raise VhostError("GET_INFLIGHT_FD refused")
            self.inflight = InflightRegion(fd, size, offset, nqueues, num)
        self._setup()
        if start:
            for q in self.queues:
                self.start_queue(q)

    def _negotiate(self):
        self.fe.set_owner()
        if self.offered & (1 << F_PROTOCOL_FEATURES):
            self.protocol = self.fe.get_protocol_features()
            want = ((1 << PROTOCOL_F_REPLY_ACK) | (1 << PROTOCOL_F_CONFIG) |
                    (1 << PROTOCOL_F_RESET_DEVICE))
            if self.want_inflight:
                want |= 1 << PROTOCOL_F_INFLIGHT_SHMFD
            self.fe.set_protocol_features(self.protocol & want)

    def _setup(self):
        self.fe.set_features(self.features)
        self.fe.set_mem_table([(self.mem.base, self.mem.size, self.mem.user, 0, self.mem.fd)])

    def reconnect(self, sock, base=None):
        """Hands the device to a new backend on sock, as a frontend does after its backend
        died: the same features, memory and rings, the inflight region back with
        SET_INFLIGHT_FD (before the rings start), and each ring started at base (by
        default the used ring's index, which is what QEMU sends)."""
        self.fe.close()
        self.fe = Frontend(sock)
        if self.fe.get_features() != self.offered:
            raise VhostError("the new backend offers other features")
        self._negotiate()
        if self.inflight:
            r = self.inflight
            if self.fe.set_inflight_fd(r.fd, r.size, r.offset, r.num_queues, r.queue_size):
                raise VhostError("SET_INFLIGHT_FD refused")
        self._setup()
        for q in self.queues:
            self.start_queue(q, q.ring.used_idx() if base is None else base)

    def user(self, guest_addr):
        return guest_addr + USER_OFFSET

    def start_queue(self, q, base=0):
        fe, r = self.fe, q.ring
        fe.set_vring_num(q.index, r.num)
        fe.set_vring_base(q.index, base)
        status = fe.set_vring_addr(q.index, self.user(r.desc), self.user(r.used),
                                   self.user(r.avail))
        if status:
            raise VhostError(f"SET_VRING_ADDR failed: {status}")
        if fe.set_vring_kick(q.index, q.kick_fd):
            raise VhostError("SET_VRING_KICK failed")
        if fe.set_vring_call(q.index, q.call_fd):
            raise VhostError("SET_VRING_CALL failed")
        if self.features & (1 << F_PROTOCOL_FEATURES):
            fe.set_vring_enable(q.index, True)

    def close(self):
        self.fe.close()
        for q in self.queues:
            q.close()
        if self.inflight:
            self.inflight.close()
        self.mem.close()


class BlkDevice(Device):
    """virtio-blk requests: a 16-byte header, data, a status byte."""

    def __init__(self, sock, num=128, **kw):
        super().__init__(sock, 1, num, **kw)
        self.q = self.queues[0]

    def config(self):
        raw = self.fe.get_config(60)
        return {"capacity": struct.unpack_from("<Q", raw, 0)[0],
                "seg_max": struct.unpack_from("<I", raw, 12)[0],
                "blk_size": struct.unpack_from("<I", raw, 20)[0],
                "max_discard_seg": struct.unpack_from("<I", raw, 40)[0]}

    def post(self, rtype, sector=0, out=b"", in_len=0, indirect=False):
        """Posts one request without waiting; returns (head, in_addr, status_addr)."""
        hdr = self.mem.alloc(16)
        self.mem.pack(hdr, "<IIQ", rtype, 0, sector)
        bufs = [(hdr, 16, False)]
        if out:
            a = self.mem.alloc(len(out))
            self.mem.write(a, out)
            bufs.append((a, len(out), False))
        in_addr = None
        if in_len:
            in_addr = self.mem.alloc(in_len)
            bufs.append((in_addr, in_len, True))
        status = self.mem.alloc(1)
        self.mem.write(status, b"\xff")
        bufs.append((status, 1, True))
        add = self.q.ring.add_indirect if indirect else self.q.ring.add
        head = add(bufs)
        return head, in_addr, status

    def request(self, rtype, sector=0, out=b"", in_len=0, indirect=False):
        mark = self.mem.next
        head, in_addr, status = self.post(rtype, sector, out, in_len, indirect)
        self.q.kick()
        (uid, ulen), = self.q.wait(1)
        assert uid == head
        data = self.mem.read(in_addr, in_len) if in_len else b""
        st = self.mem.read(status, 1)[0]
        self.mem.next = mark                # buffers are free again
        return st, data, ulen

    def read(self, sector, count):
        st, data, _ = self.request(BLK_T_IN, sector, in_len=count * SECTOR)
        return st, data

    def write(self, sector, data):
        return self.request(BLK_T_OUT, sector, out=data)[0]

    def flush(self):
        return self.request(BLK_T_FLUSH)[0]

    def ranges(self, rtype, ranges):
        """ranges: (sector, count, flags) tuples."""
        out = b"".join(struct.pack("<QII", s, n, f) for s, n, f in ranges)
        return self.request(rtype, 0, out=out)[0]

    def discard(self, sector, count):
        return self.ranges(BLK_T_DISCARD, [(sector, count, 0)])

    def write_zeroes(self, sector, count, unmap=False):
        return self.ranges(BLK_T_WRITE_ZEROES, [(sector, count, 1 if unmap else 0)])

    def get_id(self):
        st, data, _ = self.request(BLK_T_GET_ID, in_len=20)
        return st, data.rstrip(b"\0").decode()


def mac_bytes(mac):
    return bytes(int(x, 16) for x in mac.split(":"))


def eth_frame(dst, src, payload=b"", ethertype=0x88B5):
    """An Ethernet frame (no FCS): MACs as "xx:xx:..." strings; 0x88B5 is the IEEE's
    ethertype for local experiments."""
    return mac_bytes(dst) + mac_bytes(src) + struct.pack(">H", ethertype) + payload


class NetDevice(Device):
    """virtio-net: queue 0 receives, queue 1 transmits; every frame has a 12-byte
    header before it (VERSION_1)."""

    def __init__(self, sock, num=64, mem_size=8 << 20, **kw):
        super().__init__(sock, 2, num, mem_size=mem_size, **kw)
        self.rxq, self.txq = self.queues
        self.rx_bufs = {}                 # head -> (addr, size)
        self.pending = []                 # used receive elements not read yet

    def config(self):
        raw = self.fe.get_config(10)
        status, pairs = struct.unpack_from("<HH", raw, 6)
        return {"mac": ":".join(f"{b:02x}" for b in raw[:6]), "status": status,
                "max_virtqueue_pairs": pairs}

    def post_rx(self, count=1, size=NET_HDR_LEN + 1514, kick=True):
        """count receive buffers of size bytes, one device-writable descriptor each."""
        for _ in range(count):
            addr = self.mem.alloc(size)
            self.rx_bufs[self.rxq.ring.add([(addr, size, True)])] = (addr, size)
        if kick:
            self.rxq.kick()

    def send(self, frame, hdr=None, split=False, wait=True, timeout=10.0):
        """Transmits header + frame (split: in two descriptors); with wait, returns once
        the device has completed the chain."""
        buf = (hdr if hdr is not None else bytes(NET_HDR_LEN)) + frame
        addr = self.mem.alloc(max(len(buf), 1))
        self.mem.write(addr, buf)
        if split and len(buf) > NET_HDR_LEN:
            bufs = [(addr, NET_HDR_LEN, False), (addr + NET_HDR_LEN, len(buf) - NET_HDR_LEN,
                                                  False)]
        else:
            bufs = [(addr, len(buf), False)]
        head = self.txq.ring.add(bufs)
        self.txq.kick()
        if wait:
            done = self.txq.wait(1, timeout)
            assert [u for u, _ in done] == [head], done
        return head

    def _next_used(self, timeout):
        if not self.pending:
            self.pending += self.rxq.wait(1, timeout)
        return self.pending.pop(0)

    def recv(self, timeout=5.0):
        """The next frame received: (header as a dict, frame bytes), gathering
        num_buffers buffers (MRG_RXBUF)."""
        uid, ulen = self._next_used(timeout)
        addr, _ = self.rx_bufs.pop(uid)
        data = self.mem.read(addr, ulen)
        if len(data) < NET_HDR_LEN:
            return None, data             # a buffer given back unused
        hdr = dict(zip(NET_HDR_FIELDS, struct.unpack(NET_HDR, data[:NET_HDR_LEN])))
        frame = data[NET_HDR_LEN:]
        for _ in range(hdr["num_buffers"] - 1):
            uid, ulen = self._next_used(timeout)
            addr, _ = self.rx_bufs.pop(uid)
            frame += self.mem.read(addr, ulen)
        return hdr, frame

    def quiet(self, timeout=0.3):
        """True when no frame arrives for timeout seconds."""
        time.sleep(timeout)
        self.pending += self.rxq.ring.take_used()
        return not self.pending


class EventReader:
    """JSON event lines from a server's non-blocking event pipe. The class that mixes it
    in sets self.event_fd (the pipe's read end), self.buf = b"" and self.seen = []."""

    def events(self):
        while True:
            try:
                chunk = os.read(self.event_fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            self.buf += chunk
        *lines, self.buf = self.buf.split(b"\n")
        self.seen += [json.loads(line) for line in lines if line]
        return self.seen

    def wait_event(self, event, timeout=10, **fields):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for e in self.events():
                if e["event"] == event and all(e.get(k) == v for k, v in fields.items()):
                    return e
            select.select([self.event_fd], [], [], 0.05)
        raise AssertionError(f"no {event} {fields} in {self.seen}")
