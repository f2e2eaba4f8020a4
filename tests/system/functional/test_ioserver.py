"""`bulkhead ioserver` end to end, driven by a vhost-user frontend written in Python
(tests/system/vhost_frontend.py): block requests against a real disk file (contents
checked byte for byte), slices and read-only slices, many requests in flight, fairness
between connections, console and entropy devices, every kind of corrupt ring (the
device breaks, its neighbour keeps working), notification suppression, disconnects,
standalone mode and the command line."""
import hashlib
import json
import os
import pathlib
import select
import signal
import socket
import struct
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from vhost_frontend import (  # noqa: E402
    BLK_F_RO, BLK_S_IOERR, BLK_S_OK, BLK_S_UNSUPP, BLK_T_DISCARD, BLK_T_IN, BLK_T_OUT,
    BLK_T_WRITE_ZEROES, DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE, F_EVENT_IDX,
    F_INDIRECT_DESC, F_PROTOCOL_FEATURES, F_VERSION_1, GET_CONFIG, PROTOCOL_F_CONFIG,
    PROTOCOL_F_MQ, PROTOCOL_F_REPLY_ACK, SECTOR, USED_F_NO_NOTIFY, BlkDevice, Device,
    EventReader, Frontend, Memory)

MiB = 1 << 20


class IoServer(EventReader):
    """A supervised server: one socketpair per connection, its other end passed as
    fd=N in --conn, events on a pipe."""

    def __init__(self, bulkhead, cls, conns, name="io0", extra=(), pass_fds=()):
        self.ours = []
        theirs = []
        r, w = os.pipe()
        args = [bulkhead, "ioserver", cls, "--name", name, "--event-fd", str(w), *extra]
        for spec in conns:
            a, b = socket.socketpair()
            self.ours.append(a)
            theirs.append(b)
            items = [f"fd={b.fileno()}"] + [f"{k}={v}" for k, v in spec.items()]
            args += ["--conn", ",".join(items)]
        self.proc = subprocess.Popen(args, stderr=subprocess.PIPE,
                                     pass_fds=(w, *[b.fileno() for b in theirs], *pass_fds))
        for b in theirs:
            b.close()
        os.close(w)
        os.set_blocking(r, False)
        self.event_fd, self.buf, self.seen = r, b"", []

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=10)
        finally:
            os.close(self.event_fd)
            for a in self.ours:
                a.close()
        return self.proc.returncode, err.decode(errors="replace")


@pytest.fixture
def disk(tmp_path):
    """An 8 MiB disk file full of a known pattern."""
    path = tmp_path / "disk.img"
    path.write_bytes(os.urandom(8 * MiB))
    return path


def open_disk(path, readonly=False):
    return os.open(path, os.O_RDONLY if readonly else os.O_RDWR)


def blk_server(bulkhead, disk, slices, **kw):
    """slices: (partition, offset, size, readonly) per connection, all on one disk fd."""
    fd = open_disk(disk)
    conns = [{"partition": p, "device": 0, "disk-fd": fd, "offset": off, "size": size,
              "readonly": int(ro)} for p, off, size, ro in slices]
    try:
        return IoServer(bulkhead, "blk", conns, pass_fds=(fd, *kw.pop("pass_fds", ())), **kw)
    finally:
        os.close(fd)


def file_range(path, off, n):
    with open(path, "rb") as f:
        f.seek(off)
        return f.read(n)


def digest(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


# ---------------------------------------------------------------------------- blk

def test_blk_negotiation_and_config(bulkhead, disk):
    srv = blk_server(bulkhead, disk, [("p1", MiB, 2 * MiB, False), ("p2", 0, MiB, True)])
    try:
        srv.wait_event("ready", connections=2, **{"class": "blk"})
        fe = Frontend(srv.ours[0])
        feats = fe.get_features()
        for bit in (F_VERSION_1, F_EVENT_IDX, F_INDIRECT_DESC, F_PROTOCOL_FEATURES, 2, 6, 9,
                    13, 14):
            assert feats & (1 << bit), bit
        assert not feats & (1 << BLK_F_RO)
        proto = fe.get_protocol_features()
        assert proto & (1 << PROTOCOL_F_REPLY_ACK) and proto & (1 << PROTOCOL_F_CONFIG)
        assert not proto & (1 << PROTOCOL_F_MQ)
        assert fe.get_queue_num() == 1
        # features the server did not offer are refused
        assert fe.ack(2, struct.pack("<Q", 1 << 40)) != 0
        assert Frontend(srv.ours[1]).get_features() & (1 << BLK_F_RO)
        d = BlkDevice(srv.ours[0])
        cfg = d.config()
        assert cfg == {"capacity": 2 * MiB // SECTOR, "seg_max": 254, "blk_size": 512,
                       "max_discard_seg": 16}
        # a frontend may ask for more configuration than the class has: zeroes
        assert d.fe.get_config(16, offset=240) == bytes(16)
        d.fe.send(GET_CONFIG, struct.pack("<III", 250, 16, 0) + bytes(16))
        assert d.fe.recv(GET_CONFIG) == b""          # past the 256 bytes: refused
        assert d.fe.ack(25, struct.pack("<III", 0, 4, 0) + bytes(4)) != 0   # SET_CONFIG
    finally:
        assert srv.stop()[0] == 0


def test_blk_round_trips_hit_the_slice(bulkhead, disk):
    before = disk.read_bytes()
    srv = blk_server(bulkhead, disk, [("p1", 2 * MiB, 2 * MiB, False)])
    try:
        d = BlkDevice(srv.ours[0])
        data = os.urandom(8 * SECTOR)
        assert d.write(10, data) == BLK_S_OK
        assert file_range(disk, 2 * MiB + 10 * SECTOR, len(data)) == data
        st, back = d.read(10, 8)
        assert st == BLK_S_OK and back == data
        # the request through an indirect table, and a read of what was on the disk
        st, back, ulen = d.request(BLK_T_IN, 0, in_len=4 * SECTOR, indirect=True)
        assert st == BLK_S_OK and ulen == 4 * SECTOR + 1
        assert back == before[2 * MiB:2 * MiB + 4 * SECTOR]
        assert d.flush() == BLK_S_OK
        assert d.get_id() == (BLK_S_OK, "p1-0")
        # discard and write-zeroes (with and without unmap) read back as zeroes
        assert d.discard(100, 16) == BLK_S_OK
        assert d.write_zeroes(200, 9) == BLK_S_OK
        assert d.write_zeroes(300, 8, unmap=True) == BLK_S_OK
        for sector, n in ((100, 16), (200, 9), (300, 8)):
            assert file_range(disk, 2 * MiB + sector * SECTOR, n * SECTOR) == bytes(n * SECTOR)
            assert d.read(sector, n) == (BLK_S_OK, bytes(n * SECTOR))
        # several ranges in one request
        assert d.ranges(BLK_T_WRITE_ZEROES, [(400, 1, 0), (410, 2, 1)]) == BLK_S_OK
        assert file_range(disk, 2 * MiB + 410 * SECTOR, 2 * SECTOR) == bytes(2 * SECTOR)
        # reserved flags and unknown requests: UNSUPP
        assert d.ranges(BLK_T_DISCARD, [(0, 1, 1)]) == BLK_S_UNSUPP
        assert d.request(99)[0] == BLK_S_UNSUPP
    finally:
        assert srv.stop()[0] == 0
    after = disk.read_bytes()
    # nothing outside the slice changed
    assert after[:2 * MiB] == before[:2 * MiB] and after[4 * MiB:] == before[4 * MiB:]


def test_blk_outside_the_slice_and_readonly_fail(bulkhead, disk):
    srv = blk_server(bulkhead, disk, [("rw", MiB, MiB, False), ("ro", 3 * MiB, MiB, True)])
    try:
        rw, ro = BlkDevice(srv.ours[0]), BlkDevice(srv.ours[1])
        before = digest(disk)
        last = MiB // SECTOR
        assert rw.write(last, b"x" * SECTOR) == BLK_S_IOERR            # just past the end
        assert rw.write(last - 1, b"x" * 2 * SECTOR) == BLK_S_IOERR    # across the end
        assert rw.write(2 ** 63, b"x" * SECTOR) == BLK_S_IOERR         # sector * 512 wraps
        assert rw.read(last, 1)[0] == BLK_S_IOERR
        assert rw.discard(last - 1, 2) == BLK_S_IOERR
        assert rw.write_zeroes(0xFFFFFFFFFFFFFFF0, 0x20) == BLK_S_IOERR
        assert rw.write(0, b"x" * 100) == BLK_S_IOERR                  # not whole sectors
        assert ro.write(0, b"x" * SECTOR) == BLK_S_IOERR
        assert ro.discard(0, 1) == BLK_S_IOERR
        assert ro.write_zeroes(0, 1) == BLK_S_IOERR
        assert digest(disk) == before                                   # file untouched
        # the read-only slice still reads, and the last sector of a slice works
        assert ro.read(last - 1, 1) == (BLK_S_OK, file_range(disk, 4 * MiB - SECTOR, SECTOR))
        assert rw.write(last - 1, b"y" * SECTOR) == BLK_S_OK
        assert file_range(disk, 2 * MiB - SECTOR, SECTOR) == b"y" * SECTOR
    finally:
        assert srv.stop()[0] == 0


def test_blk_many_requests_in_flight(bulkhead, disk):
    srv = blk_server(bulkhead, disk, [("p1", 0, 4 * MiB, False)])
    try:
        d = BlkDevice(srv.ours[0], num=256, mem_size=16 * MiB)
        blocks = {i: os.urandom(4096) for i in range(200)}
        heads = {d.post(BLK_T_OUT, i * 8, out=blocks[i], indirect=True)[0]: i
                 for i in range(200)}
        d.q.kick()
        done = d.q.wait(200)
        assert sorted(h for h, _ in done) == sorted(heads)
        for i, data in blocks.items():
            assert file_range(disk, i * 4096, 4096) == data
        d.mem.next = d.mem.base + 256 * 1024   # free the buffers (rings stay)
        reads = [d.post(BLK_T_IN, i * 8, in_len=4096, indirect=True) for i in range(200)]
        d.q.kick()
        assert len(d.q.wait(200)) == 200
        for i, (_, addr, status) in enumerate(reads):
            assert d.mem.read(status, 1) == b"\0"
            assert d.mem.read(addr, 4096) == blocks[i]
    finally:
        assert srv.stop()[0] == 0


def test_blk_two_connections_share_fairly(bulkhead, tmp_path):
    """Two connections flood their queues at the same moment; their slices overlap at
    two blocks X and Y. X is written by A's last request and B's 64th, Y by B's last and
    A's 64th. With round-robin batches of 32 both 64ths go out in the second round and
    both lasts in the 32nd, so X ends up A's and Y B's, whichever device goes first. A
    server that drained one queue before the other would leave one of them wrong."""
    path = tmp_path / "big.img"
    with open(path, "wb") as f:
        f.truncate(24 * MiB)
    blk, x, y = 4096, 12 * MiB, 10 * MiB
    srv = blk_server(bulkhead, path, [("a", 0, 16 * MiB, False), ("b", 8 * MiB, 16 * MiB, False)],
                     extra=("--poll-us", "0"))
    try:
        a = BlkDevice(srv.ours[0], num=1024, mem_size=8 * MiB)
        b = BlkDevice(srv.ours[1], num=1024, mem_size=8 * MiB)
        time.sleep(0.2)                                # the server sleeps: no kick yet
        targets = {
            a: {1023: (x, b"A"), 63: (y, b"a")},
            b: {63: (x - 8 * MiB, b"b"), 1023: (y - 8 * MiB, b"B")},
        }
        for dev, scratch in ((a, 0), (b, 8 * MiB)):
            for i in range(1024):
                off, fill = targets[dev].get(i, (scratch + (i % 512) * blk, b"."))
                dev.post(BLK_T_OUT, off // SECTOR, out=fill * blk, indirect=True)
        a.q.kick()
        b.q.kick()
        assert len(a.q.wait(1024, timeout=60)) == 1024
        assert len(b.q.wait(1024, timeout=60)) == 1024
        assert file_range(path, x, blk) == b"A" * blk
        assert file_range(path, y, blk) == b"B" * blk
    finally:
        assert srv.stop()[0] == 0


# ---------------------------------------------------------------------------- console

def test_console_bytes_reach_the_output(bulkhead):
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    srv = IoServer(bulkhead, "console", [{"partition": "p1", "out": w1},
                                         {"partition": "p2", "device": 3, "out": w2}],
                   pass_fds=(w1, w2))
    os.close(w1)
    os.close(w2)
    try:
        d1, d2 = Device(srv.ours[0], 2), Device(srv.ours[1], 2)
        assert d1.fe.get_queue_num() == 2
        cfg = d1.fe.get_config(12)
        assert struct.unpack("<HHII", cfg) == (0, 0, 1, 0)
        for dev, text in ((d1, b"hello, "), (d2, b"other\n"), (d1, b"world\n")):
            tx = dev.queues[1]
            half = len(text) // 2
            a, b = dev.mem.alloc(half), dev.mem.alloc(len(text) - half)
            dev.mem.write(a, text[:half])
            dev.mem.write(b, text[half:])
            tx.ring.add([(a, half, False), (b, len(text) - half, False)])
            tx.kick()
            assert tx.wait(1)[0][1] == 0
        assert os.read(r1, 100) == b"hello, world\n"
        assert os.read(r2, 100) == b"other\n"
        assert dev.queues[0].idle()          # nothing ever arrives on the receive queue
    finally:
        assert srv.stop()[0] == 0
        os.close(r1)
        os.close(r2)


def test_console_full_output_holds_back_only_its_device(bulkhead):
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    srv = IoServer(bulkhead, "console", [{"partition": "slow", "out": w1},
                                         {"partition": "fast", "out": w2}], pass_fds=(w1, w2))
    os.close(w1)
    os.close(w2)
    try:
        slow, fast = Device(srv.ours[0], 2, mem_size=8 * MiB), Device(srv.ours[1], 2)
        payload = bytes(range(256)) * 1024            # 256 KiB: more than a pipe holds
        tx = slow.queues[1]
        for i in range(8):
            a = slow.mem.alloc(32768)
            slow.mem.write(a, payload[i * 32768:(i + 1) * 32768])
            tx.ring.add([(a, 32768, False)])
        tx.kick()
        time.sleep(0.3)
        assert tx.ring.used_idx() < 8                 # stuck on the full pipe...
        a = fast.mem.alloc(5)
        fast.mem.write(a, b"ping\n")
        fast.queues[1].ring.add([(a, 5, False)])
        fast.queues[1].kick()
        fast.queues[1].wait(1)                        # ...while the other one goes on
        assert os.read(r2, 100) == b"ping\n"
        got = b""
        while len(got) < len(payload):
            got += os.read(r1, 65536)
        assert got == payload
        tx.wait(8)
    finally:
        assert srv.stop()[0] == 0
        os.close(r1)
        os.close(r2)


# ---------------------------------------------------------------------------- rng

def test_rng_fills_buffers(bulkhead):
    srv = IoServer(bulkhead, "rng", [{"partition": "p1"}])
    try:
        d = Device(srv.ours[0], 1)
        q = d.queues[0]
        assert d.fe.get_config(8) == bytes(8)
        bufs = [d.mem.alloc(64), d.mem.alloc(64), d.mem.alloc(128 * 1024)]
        q.ring.add([(bufs[0], 64, True)])
        q.ring.add([(bufs[1], 32, True), (bufs[1] + 32, 32, True)])
        q.ring.add([(bufs[2], 128 * 1024, True)])
        q.kick()
        lens = [n for _, n in q.wait(3)]
        assert lens == [64, 64, 65536]                # at most 64 KiB per request
        one, two = d.mem.read(bufs[0], 64), d.mem.read(bufs[1], 64)
        assert one != two and one != bytes(64) and two != bytes(64)
        big = d.mem.read(bufs[2], 128 * 1024)
        assert big[:65536].count(0) < 1024 and big[65536:] == bytes(65536)
    finally:
        assert srv.stop()[0] == 0


# ------------------------------------------------------------------ corrupt rings

def corrupt_loop(d, r):
    r.set_desc(0, d.mem.alloc(16), 16, DESC_F_NEXT, 1)
    r.set_desc(1, d.mem.alloc(16), 16, DESC_F_NEXT, 0)
    r.publish(0)


def corrupt_too_long(d, r):
    buf = d.mem.alloc(16)
    for i in range(300):                      # a queue of 512: no loop, just too many
        r.set_desc(i, buf, 16, DESC_F_NEXT, i + 1)
    r.set_desc(300, buf, 1, DESC_F_WRITE, 0)
    r.publish(0)


def corrupt_outside_memory(d, r):
    r.set_desc(0, d.mem.base + d.mem.size - 8, 16, DESC_F_NEXT, 1)   # runs past the end
    r.set_desc(1, d.mem.alloc(1), 1, DESC_F_WRITE, 0)
    r.publish(0)


def corrupt_write_order(d, r):
    r.set_desc(0, d.mem.alloc(1), 1, DESC_F_WRITE | DESC_F_NEXT, 1)
    r.set_desc(1, d.mem.alloc(16), 16, 0, 0)
    r.publish(0)


def corrupt_head(d, r):
    r.publish(r.num)


def corrupt_next(d, r):
    r.set_desc(0, d.mem.alloc(16), 16, DESC_F_NEXT, r.num + 5)
    r.publish(0)


def corrupt_avail_idx(d, r):
    r.set_avail_idx(r.avail_idx + r.num + 1)


def corrupt_indirect_size(d, r):
    r.set_desc(0, d.mem.alloc(48), 24, DESC_F_INDIRECT, 0)
    r.publish(0)


def corrupt_indirect_nested(d, r):
    table = d.mem.alloc(32)
    d.mem.pack(table, "<QIHH", table, 32, DESC_F_INDIRECT, 0)
    r.set_desc(0, table, 32, DESC_F_INDIRECT, 0)
    r.publish(0)


def corrupt_indirect_with_next(d, r):
    table = d.mem.alloc(16)
    d.mem.pack(table, "<QIHH", d.mem.alloc(16), 16, 0, 0)
    r.set_desc(0, table, 16, DESC_F_INDIRECT | DESC_F_NEXT, 1)
    r.publish(0)


def corrupt_length_overflow(d, r):
    r.set_desc(0, 0xFFFFFFFFFFFFF000, 0x2000, 0, 0)
    r.publish(0)


def corrupt_empty_indirect(d, r):
    r.set_desc(0, d.mem.alloc(16), 0, DESC_F_INDIRECT, 0)
    r.publish(0)


def corrupt_status_not_writable(d, r):
    # a well-formed OUT request whose status byte the driver marked device-readable
    hdr = d.mem.alloc(16)
    d.mem.pack(hdr, "<IIQ", 1, 0, 0)
    r.set_desc(0, hdr, 16, DESC_F_NEXT, 1)
    r.set_desc(1, d.mem.alloc(SECTOR), SECTOR, DESC_F_NEXT, 2)
    r.set_desc(2, d.mem.alloc(1), 1, 0, 0)
    r.publish(0)


CORRUPTIONS = [
    (corrupt_status_not_writable, "bad_layout"),
    (corrupt_loop, "loop"),
    (corrupt_too_long, "too_long"),
    (corrupt_outside_memory, "bad_addr"),
    (corrupt_write_order, "write_order"),
    (corrupt_head, "bad_head"),
    (corrupt_next, "bad_head"),
    (corrupt_avail_idx, "bad_avail_idx"),
    (corrupt_indirect_size, "bad_indirect"),
    (corrupt_indirect_nested, "bad_indirect"),
    (corrupt_indirect_with_next, "bad_indirect"),
    (corrupt_length_overflow, "bad_len"),
    (corrupt_empty_indirect, "bad_len"),
]


@pytest.mark.parametrize("corrupt,reason", CORRUPTIONS,
                         ids=[c.__name__[8:] for c, _ in CORRUPTIONS])
def test_corrupt_ring_breaks_only_that_device(bulkhead, disk, corrupt, reason):
    srv = blk_server(bulkhead, disk, [("hostile", 0, MiB, False), ("victim", MiB, MiB, False)])
    try:
        hostile = BlkDevice(srv.ours[0], num=512)
        victim = BlkDevice(srv.ours[1])
        err_fd = os.eventfd(0, os.EFD_NONBLOCK)
        assert hostile.fe.set_vring_err(0, err_fd) == 0
        assert hostile.write(0, b"h" * SECTOR) == BLK_S_OK
        hostile_slice = file_range(disk, 0, MiB)
        corrupt(hostile, hostile.q.ring)
        hostile.q.kick()
        e = srv.wait_event("device_error", partition="hostile")
        assert e == {"event": "device_error", "server": "io0", "partition": "hostile",
                     "device": 0, "reason": reason, "queue": 0}
        assert os.eventfd_read(err_fd) == 1          # the frontend's error eventfd too
        os.close(err_fd)
        # the neighbour goes on
        data = os.urandom(4 * SECTOR)
        assert victim.write(3, data) == BLK_S_OK
        assert victim.read(3, 4) == (BLK_S_OK, data)
        # the broken device takes nothing more, and nothing reached the disk from it
        hostile.post(BLK_T_OUT, 1, out=b"z" * SECTOR)
        hostile.q.kick()
        assert hostile.q.idle()
        assert file_range(disk, 0, MiB) == hostile_slice
        assert srv.alive()
        assert [e["partition"] for e in srv.events() if e["event"] == "device_error"] == \
            ["hostile"]
    finally:
        rc, err = srv.stop()
        assert rc == 0, err
    assert "corrupt ring (" + reason + ")" in err


def test_indirect_not_negotiated_is_corrupt(bulkhead):
    srv = IoServer(bulkhead, "rng", [{"partition": "p1"}, {"partition": "p2"}])
    try:
        feats = Frontend(srv.ours[0]).get_features() & ~(1 << F_INDIRECT_DESC)
        d = Device(srv.ours[0], 1, features=feats)
        other = Device(srv.ours[1], 1)
        d.queues[0].ring.add_indirect([(d.mem.alloc(16), 16, True)])
        d.queues[0].kick()
        assert srv.wait_event("device_error", partition="p1")["reason"] == "bad_indirect"
        other.queues[0].ring.add([(other.mem.alloc(16), 16, True)])
        other.queues[0].kick()
        assert other.queues[0].wait(1) == [(0, 16)]
    finally:
        assert srv.stop()[0] == 0


def test_reset_device_clears_needs_reset(bulkhead):
    srv = IoServer(bulkhead, "rng", [{"partition": "p1"}])
    try:
        d = Device(srv.ours[0], 1)
        d.queues[0].ring.publish(999)
        d.queues[0].kick()
        srv.wait_event("device_error", reason="bad_head")
        d.fe.reset_device()
        srv.wait_event("device_reset", partition="p1")
        # set up again from scratch, on fresh rings
        d.fe.set_features(d.features)
        d.fe.set_mem_table([(d.mem.base, d.mem.size, d.mem.user, 0, d.mem.fd)])
        q = type(d.queues[0])(d.mem, 0, 64)
        d.start_queue(q)
        q.ring.add([(d.mem.alloc(32), 32, True)])
        q.kick()
        assert q.wait(1) == [(0, 32)]
    finally:
        assert srv.stop()[0] == 0


def test_restart_from_stopped_clears_needs_reset(bulkhead):
    """What a frontend does when its guest resets the device: stop every ring, set
    them up again on fresh rings, start them."""
    r, w = os.pipe()
    srv = IoServer(bulkhead, "console", [{"partition": "p1", "out": w}], pass_fds=(w,))
    os.close(w)
    try:
        d = Device(srv.ours[0], 2)
        d.queues[1].ring.publish(7777)
        d.queues[1].kick()
        srv.wait_event("device_error", reason="bad_head", queue=1)
        assert d.fe.get_vring_base(0) == 0 and d.fe.get_vring_base(1) == 0
        fresh = [type(q)(d.mem, q.index, 64) for q in d.queues]
        for q in fresh:
            d.start_queue(q)
        srv.wait_event("device_reset", partition="p1")
        a = d.mem.alloc(4)
        d.mem.write(a, b"ok!\n")
        fresh[1].ring.add([(a, 4, False)])
        fresh[1].kick()
        assert fresh[1].wait(1) == [(0, 0)]
        assert os.read(r, 10) == b"ok!\n"
    finally:
        assert srv.stop()[0] == 0
        os.close(r)


def test_ring_outside_memory_breaks_the_device(bulkhead):
    srv = IoServer(bulkhead, "rng", [{"partition": "p1"}])
    try:
        d = Device(srv.ours[0], 1)
        fe, r = d.fe, d.queues[0].ring
        assert fe.set_vring_addr(0, d.user(r.desc), d.user(d.mem.base + d.mem.size - 16),
                                 d.user(r.avail)) != 0
        assert srv.wait_event("device_error", partition="p1")["reason"] == "bad_addr"
        assert srv.alive()
    finally:
        assert srv.stop()[0] == 0


# ------------------------------------------------------------ protocol behaviour

def test_event_idx_suppression_both_ways(bulkhead):
    srv = IoServer(bulkhead, "rng", [{"partition": "p1"}, {"partition": "p2"}],
                   extra=("--poll-us", "0"))
    try:
        d = Device(srv.ours[0], 1)
        q, r = d.queues[0], d.queues[0].ring
        buf = d.mem.alloc(16)
        for _ in range(3):
            r.add([(buf, 16, True)])
            q.kick()
            q.wait(1)
        time.sleep(0.2)
        assert r.avail_event() == 3                 # "kick me when you add entry 3"
        try:
            os.eventfd_read(q.call_fd)              # a call wait() did not need
        except BlockingIOError:
            pass
        # the driver asks for an interrupt only after 3 more completions
        r.set_used_event(r.last_used + 2)
        for _ in range(2):
            r.add([(buf, 16, True)])
        q.kick()
        deadline = time.monotonic() + 5
        while r.used_idx() != 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert r.used_idx() == 5
        assert not select.select([q.call_fd], [], [], 0.3)[0]      # no interrupt yet
        r.add([(buf, 16, True)])
        q.kick()
        assert select.select([q.call_fd], [], [], 5)[0]            # now it comes
        # without EVENT_IDX: the used ring's NO_NOTIFY flag, cleared before sleeping
        feats = Frontend(srv.ours[1]).get_features() & ~(1 << F_EVENT_IDX)
        d2 = Device(srv.ours[1], 1, features=feats)
        q2 = d2.queues[0]
        q2.ring.add([(d2.mem.alloc(8), 8, True)])
        q2.kick()
        q2.wait(1)
        time.sleep(0.2)
        assert not q2.ring.used_flags() & USED_F_NO_NOTIFY
    finally:
        assert srv.stop()[0] == 0


def test_polled_ring_without_kick_fd(bulkhead):
    srv = IoServer(bulkhead, "rng", [{"partition": "p1"}])
    try:
        d = Device(srv.ours[0], 1)
        q = d.queues[0]
        assert d.fe.set_vring_kick(0, None) == 0       # NOFD: the server polls
        q.ring.add([(d.mem.alloc(8), 8, True)])         # no kick at all
        assert q.wait(1) == [(0, 8)]
        assert d.fe.set_vring_call(0, None) == 0       # NOFD: no interrupts either
        try:
            os.eventfd_read(q.call_fd)                  # a call wait() did not need
        except BlockingIOError:
            pass
        q.ring.add([(d.mem.alloc(8), 8, True)])
        deadline = time.monotonic() + 10
        while q.ring.used_idx() != 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert q.ring.take_used() == [(1, 8)]
        assert not select.select([q.call_fd], [], [], 0.2)[0]
    finally:
        assert srv.stop()[0] == 0


def test_get_vring_base_stops_and_resumes(bulkhead):
    srv = IoServer(bulkhead, "rng", [{"partition": "p1"}])
    try:
        d = Device(srv.ours[0], 1)
        q = d.queues[0]
        for _ in range(5):
            q.ring.add([(d.mem.alloc(8), 8, True)])
        q.kick()
        q.wait(5)
        assert d.fe.get_vring_base(0) == 5
        q.ring.add([(d.mem.alloc(8), 8, True)])        # stopped: not served
        q.kick()
        assert q.idle()
        d.fe.set_vring_base(0, 5)                       # restart where it stopped
        assert d.fe.set_vring_kick(0, q.kick_fd) == 0
        assert q.wait(1)[0][1] == 8
        assert d.fe.get_vring_base(0) == 6
    finally:
        assert srv.stop()[0] == 0


def test_unknown_requests_and_bad_tables(bulkhead):
    srv = IoServer(bulkhead, "rng", [{"partition": "p1"}])
    try:
        fe = Frontend(srv.ours[0])
        assert fe.ack(99) != 0                           # NEED_REPLY: refused
        fe.send(6, struct.pack("<Q", 0))                 # SET_LOG_BASE: ignored
        mem = Memory(MiB)
        # a region larger than its fd would SIGBUS the server: refused
        assert fe.ack(5, struct.pack("<IIQQQQ", 1, 0, mem.base, 2 * MiB, mem.user, 0),
                      [mem.fd]) != 0
        assert fe.ack(5, struct.pack("<IIQQQQ", 1, 0, mem.base, MiB, mem.user, 0), []) != 0
        assert fe.ack(8, struct.pack("<II", 0, 3)) != 0      # SET_VRING_NUM not 2^n
        assert fe.ack(8, struct.pack("<II", 5, 64)) != 0     # no queue 5
        assert fe.ack(8, struct.pack("<II", 0, 2048)) != 0   # above the class's maximum
        assert fe.get_features()                             # still talking
        d = Device(srv.ours[0], 1)
        d.queues[0].ring.add([(d.mem.alloc(8), 8, True)])
        d.queues[0].kick()
        d.queues[0].wait(1)
        mem.close()
    finally:
        rc, err = srv.stop()
        assert rc == 0
    assert "not supported: refused" in err and "SET_LOG_BASE" in err


def test_frontend_disconnect_removes_only_that_connection(bulkhead, disk):
    srv = blk_server(bulkhead, disk, [("p1", 0, MiB, False), ("p2", MiB, MiB, False)])
    try:
        d1, d2 = BlkDevice(srv.ours[0]), BlkDevice(srv.ours[1])
        d1.post(BLK_T_OUT, 0, out=b"q" * SECTOR)
        d1.q.kick()
        srv.ours[0].close()
        srv.wait_event("disconnect", partition="p1", device=0)
        assert d2.write(0, b"w" * SECTOR) == BLK_S_OK
        srv.ours[1].close()
        srv.wait_event("disconnect", partition="p2")
        assert srv.proc.wait(10) == 0                    # nobody left to serve
    finally:
        srv.stop()


def test_frontend_stuck_mid_message_loses_its_connection(bulkhead):
    srv = IoServer(bulkhead, "rng", [{"partition": "stuck"}, {"partition": "fine"}])
    try:
        fine = Device(srv.ours[1], 1)
        srv.ours[0].sendall(struct.pack("<I", 1))        # 4 bytes of a 12-byte header
        srv.wait_event("disconnect", partition="stuck")
        fine.queues[0].ring.add([(fine.mem.alloc(8), 8, True)])
        fine.queues[0].kick()
        assert fine.queues[0].wait(1) == [(0, 8)]
    finally:
        rc, err = srv.stop()
        assert rc == 0
    assert "stuck device 0: vhost-user connection dropped" in err


def test_server_is_sandboxed(bulkhead):
    srv = IoServer(bulkhead, "rng", [{"partition": "p1"}])
    try:
        srv.wait_event("ready")
        status = pathlib.Path(f"/proc/{srv.proc.pid}/status").read_text()
        assert "Seccomp:\t2" in status
    finally:
        assert srv.stop()[0] == 0


# ------------------------------------------------------------------ standalone

def connect(path, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(str(path))
            return s
        except (FileNotFoundError, ConnectionRefusedError):
            s.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_standalone_blk(bulkhead, disk, tmp_path):
    sock = tmp_path / "blk.sock"
    proc = subprocess.Popen([bulkhead, "ioserver", "blk", "--socket", str(sock), "--disk",
                             f"{disk},offset=1M,size=2M"], stderr=subprocess.PIPE)
    try:
        d1 = BlkDevice(connect(sock))
        d2 = BlkDevice(connect(sock))                    # any number of frontends
        assert d1.config()["capacity"] == 2 * MiB // SECTOR
        assert d1.write(0, b"1" * SECTOR) == BLK_S_OK
        assert d2.read(0, 1) == (BLK_S_OK, b"1" * SECTOR)
        assert file_range(disk, MiB, SECTOR) == b"1" * SECTOR
        assert d2.get_id() == (BLK_S_OK, "client2-0")
        d1.close()
        d3 = BlkDevice(connect(sock))
        assert d3.flush() == BLK_S_OK
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert not sock.exists()                             # removed on exit


def test_standalone_readonly_console_and_rng(bulkhead, disk, tmp_path):
    before = digest(disk)
    procs = []
    try:
        for cls, extra in (("blk", ["--disk", f"{disk},readonly"]),
                           ("console", ["--output", str(tmp_path / "out.log")]),
                           ("rng", [])):
            sock = tmp_path / f"{cls}.sock"
            procs.append((subprocess.Popen([bulkhead, "ioserver", cls, "--socket", str(sock),
                                            *extra], stderr=subprocess.PIPE), sock))
        blk = BlkDevice(connect(procs[0][1]))
        assert blk.offered & (1 << BLK_F_RO)
        assert blk.config()["capacity"] == 8 * MiB // SECTOR
        assert blk.write(0, b"x" * SECTOR) == BLK_S_IOERR
        con = Device(connect(procs[1][1]), 2)
        a = con.mem.alloc(3)
        con.mem.write(a, b"hi\n")
        con.queues[1].ring.add([(a, 3, False)])
        con.queues[1].kick()
        con.queues[1].wait(1)
        assert (tmp_path / "out.log").read_bytes() == b"hi\n"
        rng = Device(connect(procs[2][1]), 1)
        rng.queues[0].ring.add([(rng.mem.alloc(8), 8, True)])
        rng.queues[0].kick()
        assert rng.queues[0].wait(1) == [(0, 8)]
    finally:
        for p, _ in procs:
            p.send_signal(signal.SIGTERM)
            p.communicate(timeout=10)
    assert all(p.returncode == 0 for p, _ in procs)
    assert digest(disk) == before


# A boot sector: read LBA 1 with int 13h (SeaBIOS's virtio-blk driver does the I/O) and
# copy it to COM1 up to its NUL; 'F' if the read fails.
#   cli; xor ax,ax; mov ds/es/ss,ax; mov sp,0x7c00
#   mov ax,0x0201; mov cx,2; mov dx,0x80; mov bx,0x8000; int 0x13; jc fail
#   mov si,0x8000; l: lodsb; test al,al; jz done; mov dx,0x3f8; out dx,al; jmp l
#   fail: mov al,'F'; mov dx,0x3f8; out dx,al;  done: hlt; jmp done
BOOT_CODE = bytes.fromhex(
    "fa31c08ed88ec08ed0bc007cb80102b90200ba8000bb0080cd13720ebe00"
    "80ac84c0740cbaf803eeebf5b046baf803eef4ebfd")


def test_qemu_boots_from_the_blk_server(bulkhead, tmp_path):
    """QEMU's own vhost-user-blk-pci is the frontend, SeaBIOS's virtio-blk driver the
    guest: the firmware reads the boot sector and the next one through the server."""
    message = b"HELLO FROM BULKHEAD VHOST-USER-BLK"
    image = tmp_path / "boot.img"
    sector0 = BOOT_CODE + bytes(510 - len(BOOT_CODE)) + b"\x55\xaa"
    image.write_bytes(sector0 + message + b"\r\n" + bytes(512 - len(message) - 2) + bytes(MiB))
    sock = tmp_path / "vb.sock"
    srv = subprocess.Popen([bulkhead, "ioserver", "blk", "--socket", str(sock), "--disk",
                            str(image)], stderr=subprocess.PIPE)
    connect(sock).close()                              # listening
    qemu = subprocess.Popen(
        ["qemu-system-x86_64", "-accel", "tcg", "-M", "pc", "-m", "64", "-nographic",
         "-nodefaults", "-serial", "stdio",
         "-object", "memory-backend-memfd,id=mem,size=64M,share=on", "-numa", "node,memdev=mem",
         "-chardev", f"socket,id=c0,path={sock}",
         "-device", "vhost-user-blk-pci,chardev=c0,bootindex=1", "-boot", "strict=on"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = b""
    try:
        deadline = time.monotonic() + 60
        while message not in out and time.monotonic() < deadline:
            if select.select([qemu.stdout], [], [], 1)[0]:
                chunk = os.read(qemu.stdout.fileno(), 4096)
                if not chunk:
                    break
                out += chunk
    finally:
        qemu.kill()
        qemu.communicate()
        srv.send_signal(signal.SIGTERM)
        _, err = srv.communicate(timeout=10)
    assert message in out, out.decode(errors="replace")
    assert srv.returncode == 0, err


# ------------------------------------------------------------------ command line

HELP_WORDS = ["--socket", "--disk", "offset=", "size=", "readonly", "--output", "--conn",
              "fd=", "partition=", "device=", "disk-fd=", "readonly=0|1", "out=", "--name",
              "--event-fd", "--poll-us", "--help", "blk", "console", "rng"]


def test_help(bulkhead):
    for argv in (["ioserver", "--help"], ["ioserver", "blk", "--help"]):
        p = subprocess.run([bulkhead, *argv], capture_output=True, text=True)
        assert p.returncode == 0 and p.stderr == ""
        for word in HELP_WORDS:
            assert word in p.stdout, word
    p = subprocess.run([bulkhead, "--help"], capture_output=True, text=True)
    assert "ioserver" in p.stdout


@pytest.mark.parametrize("args,message", [
    (["gpu", "--socket", "/tmp/x"], "unknown class 'gpu'"),
    (["rng"], "either --socket"),
    (["rng", "--socket", "/tmp/x", "--conn", "fd=0,partition=p"], "either --socket"),
    (["rng", "--conn", "fd=0"], "fd= and partition= are required"),
    (["rng", "--conn", "fd=0,partition=p,colour=red"], "unknown key 'colour'"),
    (["rng", "--conn", "fd=0,partition=a b"], "bad value"),
    (["rng", "--conn", "fd=0,partition=p"], "not a connected unix stream socket"),
    (["rng", "--socket", "/tmp/x", "--poll-us", "abc"], "--poll-us"),
    (["rng", "--socket", "/tmp/x", "--bogus"], "unknown or incomplete option"),
    (["blk", "--socket", "/tmp/x"], "blk needs --disk"),
    (["blk", "--socket", "/tmp/x", "--disk", "/nonexistent/disk"], "No such file"),
    (["rng", "--socket", "/tmp/x", "--disk", "/dev/null"], "--disk is for blk only"),
])
def test_bad_command_lines(bulkhead, args, message):
    p = subprocess.run([bulkhead, "ioserver", *args], capture_output=True, text=True,
                       timeout=10)
    assert p.returncode == 2
    assert message in p.stderr, p.stderr


@pytest.mark.parametrize("spec,readonly_fd,message", [
    ("offset=100,size=4096", False, "offset is not a multiple of 512"),
    ("offset=0,size=1000", False, "size is not a positive multiple of 512"),
    ("offset=8388096,size=1024", False, "the slice runs past the end of the disk"),
    ("offset=9437184,size=512", False, "offset is past the end"),
    ("offset=0,size=512,readonly=0", True,
     "the disk is open read-only but the slice is not readonly"),
])
def test_bad_slices_are_refused(bulkhead, disk, spec, readonly_fd, message):
    fd = open_disk(disk, readonly_fd)
    a, b = socket.socketpair()
    try:
        p = subprocess.run([bulkhead, "ioserver", "blk", "--conn",
                            f"fd={b.fileno()},partition=p,disk-fd={fd},{spec}"],
                           capture_output=True, text=True, pass_fds=(fd, b.fileno()),
                           timeout=10)
    finally:
        os.close(fd)
        a.close()
        b.close()
    assert p.returncode == 2
    assert "p device 0: " + message in p.stderr, p.stderr


def test_bad_socket_path(bulkhead, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    p = subprocess.run([bulkhead, "ioserver", "rng", "--socket", str(f)], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 2 and "exists and is not a socket" in p.stderr
    assert f.read_text() == "x"


# ---------------------------------------------------------------- control channel

IOSCTL_MAGIC, IOSCTL_REPLACE, IOSCTL_REPLY = 0x42484943, 1, 2


def ctl(chan, conn, fds=(), raw=None):
    """One message on a server's control channel; returns the reply's (conn, status)."""
    msg = raw if raw is not None else struct.pack("<IIIi", IOSCTL_MAGIC, IOSCTL_REPLACE,
                                                  conn, 0)
    socket.send_fds(chan, [msg], [f.fileno() if hasattr(f, "fileno") else f for f in fds])
    chan.settimeout(5)
    magic, rtype, rconn, status = struct.unpack("<IIIi", chan.recv(64))
    assert (magic, rtype) == (IOSCTL_MAGIC, IOSCTL_REPLY)
    return rconn, status


def test_control_replaces_one_connection_and_refuses_bad_messages(bulkhead, disk):
    """A REPLACE gives connection 0 a new socket: the old one is hung up, the same slice
    is served on the new one, connection 1 goes on untouched. Bad messages are refused
    with an event and change nothing."""
    chan, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    srv = blk_server(bulkhead, disk, [("p1", 0, MiB, False), ("p2", MiB, MiB, False)],
                     extra=("--control-fd", str(theirs.fileno())),
                     pass_fds=(theirs.fileno(),))
    theirs.close()
    spare = []
    try:
        srv.wait_event("ready", connections=2)
        d1, d2 = BlkDevice(srv.ours[0]), BlkDevice(srv.ours[1])
        one, two = os.urandom(4 * SECTOR), os.urandom(4 * SECTOR)
        assert d1.write(8, one) == BLK_S_OK and d2.write(8, two) == BLK_S_OK
        a, b = socket.socketpair()
        r, w = os.pipe()
        spare += [a, b, r, w]
        bad = [  # (conn, fds, raw, status, reason)
            (2, [b], None, -34, "bad_conn"),                       # ERANGE
            (0, [], None, -9, "no_fd"),                            # EBADF
            (0, [b, a], None, -9, "too_many_fds"),
            (0, [r], None, -88, "not_a_stream_socket"),            # ENOTSOCK
            (0, [b], b"short", -22, "bad_length"),                 # EINVAL
            (0, [b], struct.pack("<IIIi", 0xdead, IOSCTL_REPLACE, 0, 0), -22, "bad_type"),
            (0, [b], struct.pack("<IIIi", IOSCTL_MAGIC, 7, 0, 0), -22, "bad_type"),
        ]
        for conn, fds, raw, status, reason in bad:
            assert ctl(chan, conn, fds, raw)[1] == status, reason
            srv.wait_event("control_refused", reason=reason)
            assert d1.read(8, 4) == (BLK_S_OK, one) and d2.read(8, 4) == (BLK_S_OK, two)
        assert srv.alive()
        assert not [e for e in srv.events() if e["event"] == "disconnect"]
        # the real thing: connection 0 on a new socket
        assert ctl(chan, 0, [b]) == (0, 0)
        e = srv.wait_event("conn_replaced", conn=0)
        assert e["partition"] == "p1" and e["device"] == 0
        srv.wait_event("disconnect", partition="p1")
        srv.ours[0].settimeout(5)
        assert srv.ours[0].recv(1) == b""                    # the old one is hung up
        assert d2.read(8, 4) == (BLK_S_OK, two)             # untouched, no set-up again
        d1 = BlkDevice(a)
        assert d1.read(8, 4) == (BLK_S_OK, one)             # the same slice
        assert d1.get_id() == (BLK_S_OK, "p1-0")
        assert not [e for e in srv.events() if e["event"] == "disconnect" and
                    e["partition"] == "p2"]
    finally:
        for f in spare:
            f.close() if hasattr(f, "close") else os.close(f)
        rc, err = srv.stop()
        chan.close()
        assert rc == 0, err
