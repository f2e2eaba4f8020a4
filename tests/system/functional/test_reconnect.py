"""I/O-server restart survival in the monitor (`--control-fd`, include/bulkhead/control.h),
driven without a supervisor: the test holds the other end of the SOCK_SEQPACKET control
socket, kills the block server with SIGKILL again and again while blkcheck writes, reads
back and verifies, starts a new server each time and hands the monitor a connection to
it (RECONNECT). blkcheck must finish with zero failures and the disk must hold its
pattern, in window and in shared isolation; requests in flight at a kill are replayed
(the server is stopped before some kills so that there are some). Also: FAILED, a
closed control socket, no control socket at all (the old behaviour: NEEDS_RESET at
once), bad control messages, a reconnect to a live server, qemu-storage-daemon as the
restarted server, and shared mode's fallback when a server cannot track requests in
flight. Nothing here skips."""
import json
import mmap
import os
import queue
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

import pytest

QSD = "/usr/bin/qemu-storage-daemon"
CTL = struct.Struct("=IIII")
CTL_MAGIC = 0x42484354
RECONNECT, FAILED = 1, 2
SECTOR = 512
MiB = 1 << 20
KILLS = 12                      # at least 10 required; a few spare
STOP_S = 0.2                    # a stopped server holds the guest's requests in flight
WAIT = 30                       # seconds for one event

# --- blkcheck's pattern (inmates/programs/blkcheck.c) ----------------------------------

M64 = (1 << 64) - 1


def _mix(x):
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def pattern_sector(seed, sector):
    v = _mix(((seed * 0x100000001B3) & M64) ^ _mix(sector))
    return struct.pack("<Q", sector) + struct.pack("<Q", v) * 63


def bad_sectors(img, nsect, seed):
    data = open(img, "rb").read(nsect * SECTOR)
    return [s for s in range(nsect)
            if data[s * SECTOR:(s + 1) * SECTOR] != pattern_sector(seed, s)]


# --- processes -------------------------------------------------------------------------

class Partition:
    """`bulkhead monitor` running blkcheck on one blk device, with the test holding the
    other end of its control socket; UART output and events are collected as they come."""

    def __init__(self, bulkhead, image, device, cmdline, control=True):
        r, w = os.pipe()
        argv = [bulkhead, "monitor", "--name", "p", "--image", str(image), "--memory",
                "16M", "--event-fd", str(w), "--device", device, "--cmdline", cmdline]
        fds = [w]
        self.ctl = None
        if control:
            self.ctl, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            argv += ["--control-fd", str(theirs.fileno())]
            fds.append(theirs.fileno())
        try:
            self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         pass_fds=fds)
        finally:
            os.close(w)
            if control:
                theirs.close()
        self.events, self.out, self.err = [], [], []
        self.evq = queue.Queue()
        self.threads = [threading.Thread(target=self._events, args=(r,), daemon=True),
                        threading.Thread(target=self._lines, args=(self.proc.stdout, self.out),
                                         daemon=True),
                        threading.Thread(target=self._lines, args=(self.proc.stderr, self.err),
                                         daemon=True)]
        for t in self.threads:
            t.start()

    def _events(self, r):
        with os.fdopen(r, "rb") as f:
            for line in f:
                e = json.loads(line)
                self.events.append(e)
                self.evq.put(e)

    @staticmethod
    def _lines(pipe, into):
        for line in pipe:
            into.append(line.decode(errors="replace"))

    def running(self):
        return self.proc.poll() is None

    def output(self):
        return "".join(self.out)

    def send(self, kind, device=0, fd=None, raw=None):
        data = raw if raw is not None else CTL.pack(CTL_MAGIC, kind, device, 0)
        if fd is None:
            self.ctl.send(data)
        else:
            socket.send_fds(self.ctl, [data], [fd] if isinstance(fd, int) else fd)

    def next_device_event(self, timeout=WAIT):
        """The next `device` (or `control`) event; other events are only recorded."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                e = self.evq.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no device event within {timeout} s; events "
                                     f"{self.events}\n{self.output()}\n{''.join(self.err)}")
            if e["event"] in ("device", "control"):
                return e

    def of(self, state):
        return [e for e in self.events if e["event"] == "device" and e.get("state") == state]

    def finish(self, timeout=240):
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"monitor timed out:\n{self.output()}")
        for t in self.threads:
            t.join(timeout=10)
        if self.ctl:
            self.ctl.close()
        return self

    def passed(self):
        exits = [e for e in self.events if e["event"] == "exit"]
        return (self.proc.returncode == 0 and exits and exits[-1]["status"] == 0 and
                ", 0 failures" in self.output())

    def __repr__(self):
        return (f"rc {self.proc.returncode}\n{self.output()}\n{''.join(self.err)}\n"
                f"{self.events}")


class Server:
    """A standalone block server on a unix socket path, restartable: `bulkhead ioserver
    blk` or qemu-storage-daemon."""

    def __init__(self, bulkhead, kind, sock, img):
        self.bulkhead, self.kind, self.sock, self.img = bulkhead, kind, sock, img
        self.proc = None
        self.start()

    def start(self):
        if os.path.exists(self.sock):
            os.unlink(self.sock)          # a killed server leaves its socket behind
        if self.kind == "qsd":
            argv = [QSD, "--blockdev", f"driver=file,node-name=d,filename={self.img}",
                    "--export", "type=vhost-user-blk,id=e,node-name=d,addr.type=unix,"
                    f"addr.path={self.sock},writable=on"]
        else:
            argv = [self.bulkhead, "ioserver", "blk", "--socket", self.sock, "--disk", self.img]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.sock):
            assert self.proc.poll() is None, f"{self.kind} died: {self.proc.stderr.read()!r}"
            assert time.monotonic() < deadline, f"{self.kind} did not create {self.sock}"
            time.sleep(0.005)

    def connect(self):
        """A new connection (the socket may exist a moment before it listens)."""
        deadline = time.monotonic() + 10
        while True:
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                c.connect(self.sock)
                return c
            except (ConnectionRefusedError, FileNotFoundError):
                c.close()
                assert time.monotonic() < deadline, f"cannot connect to {self.sock}"
                time.sleep(0.005)

    def kill(self, stop_first=False):
        """SIGKILL; first SIGSTOP for a while, so that requests pile up at it."""
        if stop_first:
            self.proc.send_signal(signal.SIGSTOP)
            time.sleep(STOP_S)
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# --- fixtures --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def blkcheck(bulkhead, inmates):
    help_text = subprocess.run([bulkhead, "monitor", "--help"], capture_output=True,
                               text=True).stdout
    assert "--control-fd" in help_text, "bulkhead monitor has no --control-fd option"
    elf = inmates / "blkcheck.elf"
    assert elf.exists(), "inmate blkcheck is not built"
    return elf


@pytest.fixture
def work():
    d = tempfile.mkdtemp(prefix="bhr")     # unix socket paths are limited to 107 bytes
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def servers():
    made = []
    yield made
    for s in made:
        s.stop()


def disk(work, size):
    img = os.path.join(work, "disk.img")
    with open(img, "wb") as f:
        f.write(b"\xee" * size)
    return img


def start(bulkhead, blkcheck, servers, work, kind, isolation, cmdline, size=1 * MiB,
          control=True):
    img = disk(work, size)
    srv = Server(bulkhead, kind, os.path.join(work, "blk.sock"), img)
    servers.append(srv)
    part = Partition(bulkhead, blkcheck, f"blk,slot=3,socket={srv.sock},isolation={isolation}",
                     cmdline, control=control)
    return srv, part, img


def wait_running(part, seconds=30, line="blkcheck: range"):
    """Until blkcheck streams (its range line is out): kills then hit I/O."""
    deadline = time.monotonic() + seconds
    while line not in part.output():
        assert part.running(), f"blkcheck ended early: {part!r}"
        assert time.monotonic() < deadline, f"blkcheck did not start: {part!r}"
        time.sleep(0.02)


def restart(srv, part, stop_first):
    """Kills the server, starts a new one and hands the monitor a connection to it;
    returns the paused and reconnected (or needs_reset) events."""
    srv.kill(stop_first)
    srv.start()
    c = srv.connect()
    part.send(RECONNECT, fd=c.fileno())
    c.close()
    got = []
    while not got or got[-1].get("state") not in ("reconnected", "needs_reset"):
        got.append(part.next_device_event())
    return got


def kill_loop(srv, part, kills=KILLS):
    """Kills and reconnects while blkcheck runs; every second kill stops the server
    first. Returns the kills that hit a running partition and the requests replayed."""
    survived, replayed = 0, 0
    for i in range(kills):
        time.sleep(0.3 + 0.1 * (i % 3))
        if not part.running():
            break
        got = restart(srv, part, stop_first=i % 2 == 1)
        states = [e["state"] for e in got]
        assert states[-1] == "reconnected", f"kill {i}: {got}\n{part.output()}"
        assert "paused" in states, f"kill {i}: the hang-up did not pause the device: {got}"
        replayed += got[-1]["replayed"]
        survived += 1
    return survived, replayed


# --- kill -9 while blkcheck runs -------------------------------------------------------

@pytest.mark.parametrize("isolation", ["window", "shared"])
def test_server_killed_repeatedly(bulkhead, blkcheck, servers, work, isolation):
    """At least 10 kills of `bulkhead ioserver blk` in one blkcheck run: every request
    completes once with the right data (blkcheck verifies every sector it reads) and the
    device never goes NEEDS_RESET. Window mode replays the chains the monitor had
    posted and not seen completed (a stopped server holds some); shared mode replays
    only chains the server had taken from the ring and not completed, which page-cache
    I/O makes a microsecond window (test_shared_replays_what_a_dead_server_took makes
    one)."""
    srv, part, img = start(bulkhead, blkcheck, servers, work, "blk", isolation,
                           "seed=41 loops=16 req=4 depth=32")
    wait_running(part)
    survived, replayed = kill_loop(srv, part)
    part.finish()
    print(f"{isolation}: {survived} kills survived, {replayed} requests replayed")
    assert not part.of("needs_reset"), (part.of("needs_reset"), part)
    assert part.passed(), part
    assert survived >= 10, f"only {survived} kills hit the running partition: {part!r}"
    if isolation == "window":
        assert replayed > 0, "no kill caught a request in flight"
    assert bad_sectors(img, 1 * MiB // SECTOR, 41) == []


def test_qemu_storage_daemon_restarted(bulkhead, blkcheck, servers, work):
    """A third-party backend as the restarted server (window mode: the monitor replays
    from its shadow rings, the server needs nothing special)."""
    srv, part, img = start(bulkhead, blkcheck, servers, work, "qsd", "window",
                           "seed=43 loops=16 req=4 depth=32")
    wait_running(part)
    survived, replayed = kill_loop(srv, part, kills=10)
    part.finish()
    assert not part.of("needs_reset"), part
    assert part.passed(), part
    assert survived == 10, part
    assert bad_sectors(img, 1 * MiB // SECTOR, 43) == []


def test_reconnect_to_live_server(bulkhead, blkcheck, servers, work):
    """RECONNECT while the old connection is still up (the supervisor replaced it): the
    monitor drops the old one (its completions can no longer count) and replays on the
    new one."""
    srv, part, img = start(bulkhead, blkcheck, servers, work, "blk", "window",
                           "seed=45 loops=6 req=4 depth=32")
    wait_running(part)
    for i in range(3):
        time.sleep(0.4)
        c = srv.connect()
        part.send(RECONNECT, fd=c.fileno())
        c.close()
        got = [part.next_device_event(), part.next_device_event()]
        assert [e["state"] for e in got] == ["paused", "reconnected"], got
        assert got[0]["reason"] == "replaced by a new connection", got
    part.finish()
    assert part.passed(), part
    assert bad_sectors(img, 1 * MiB // SECTOR, 45) == []


# --- a server that takes chains and dies (shared mode's inflight region) ---------------

VU_HDR = struct.Struct("=III")
VU_REPLY = 0x1 | 0x4                       # version 1, reply
VU_GET_FEATURES, VU_GET_PROTOCOL_FEATURES = 1, 15
VU_SET_MEM_TABLE, VU_SET_VRING_NUM, VU_SET_VRING_ADDR, VU_SET_VRING_BASE = 5, 8, 9, 10
VU_SET_VRING_ENABLE, VU_SET_INFLIGHT_FD = 18, 32
PF_CONFIG, PF_INFLIGHT = 1 << 9, 1 << 12


class TakingServer(threading.Thread):
    """Just enough of a vhost-user blk backend to take over a shared device: it accepts
    the monitor's hand-over (with the inflight region), then takes up to `take` chains
    from the guest's avail ring the way a server records them (in flight, with a
    counter) and dies without completing any. The next server must resubmit them."""

    def __init__(self, sock, take):
        super().__init__(daemon=True)
        self.sock, self.take = sock, take
        self.maps, self.regions, self.ring = [], [], {}
        self.infl = None
        self.taken, self.error = None, None

    def recv(self):
        data, fds, _, _ = socket.recv_fds(self.sock, VU_HDR.size, 8)
        if not data:
            return None
        while len(data) < VU_HDR.size:
            data += self.sock.recv(VU_HDR.size - len(data))
        req, _, size = VU_HDR.unpack(data)
        payload = b""
        while len(payload) < size:
            payload += self.sock.recv(size - len(payload))
        return req, payload, fds

    def reply_u64(self, req, v):
        self.sock.sendall(VU_HDR.pack(req, VU_REPLY, 8) + struct.pack("=Q", v))

    def guest(self, user_addr, length):
        for mm, user, size in self.regions:
            if user <= user_addr and user_addr + length <= user + size:
                return mm, user_addr - user
        raise AssertionError(f"address {user_addr:#x} is not in the memory table")

    def u16(self, user_addr):
        mm, off = self.guest(user_addr, 2)
        return struct.unpack_from("=H", mm, off)[0]

    def handshake(self):
        while True:
            m = self.recv()
            assert m is not None, "the monitor hung up during the hand-over"
            req, payload, fds = m
            if req == VU_GET_FEATURES:
                self.reply_u64(req, (1 << 64) - 1)     # everything the first one had
            elif req == VU_GET_PROTOCOL_FEATURES:
                self.reply_u64(req, PF_CONFIG | PF_INFLIGHT)
            elif req == VU_SET_INFLIGHT_FD:
                size, offset, nq, qsize = struct.unpack_from("=QQHH", payload)
                self.infl = (mmap.mmap(fds[0], size, offset=offset), size // nq, qsize)
            elif req == VU_SET_MEM_TABLE:
                n = struct.unpack_from("=I", payload)[0]
                for i in range(n):
                    _, size, user, off = struct.unpack_from("=QQQQ", payload, 8 + 32 * i)
                    mm = mmap.mmap(fds[i], size, offset=off)
                    self.regions.append((mm, user, size))
            elif req in (VU_SET_VRING_NUM, VU_SET_VRING_BASE):
                index, num = struct.unpack_from("=II", payload)
                self.ring["num" if req == VU_SET_VRING_NUM else "base"] = num
            elif req == VU_SET_VRING_ADDR:
                self.ring["avail"] = struct.unpack_from("=IIQQQ", payload)[4]
            elif req == VU_SET_VRING_ENABLE:
                return                                  # blk: the one ring is set up
            for fd in fds:
                if req != VU_SET_MEM_TABLE and req != VU_SET_INFLIGHT_FD:
                    os.close(fd)

    def run(self):
        try:
            self.handshake()
            assert self.infl, "the monitor gave no inflight region"
            region, stride, qsize = self.infl
            avail, num, base = self.ring["avail"], self.ring["num"], self.ring["base"]
            # Quickly: the guest's driver gives up on a request after 5 s.
            deadline = time.monotonic() + 1
            while (self.u16(avail + 2) - base) & 0xffff == 0:
                assert time.monotonic() < deadline, "the guest posted nothing"
                time.sleep(0.005)
            k = min((self.u16(avail + 2) - base) & 0xffff, self.take)
            for i in range(k):
                head = self.u16(avail + 4 + 2 * ((base + i) % num))
                e = 16 + 16 * head                      # queue 0's DescStateSplit[head]
                struct.pack_into("=Q", region, e + 8, (1 << 40) + i)
                region[e] = 1
            self.taken = k
        except Exception as exc:                      # reported by the test
            self.error = exc
        finally:
            self.sock.close()                          # dies holding the chains


def test_shared_replays_what_a_dead_server_took(bulkhead, blkcheck, servers, work):
    """Shared mode: a server takes chains (recorded in the inflight region) and dies
    without completing them. The monitor tells the next server to resume after them
    (the guest's used index plus those in flight) and that server resubmits them:
    `replayed` counts them exactly, and blkcheck finds every request completed once."""
    srv, part, img = start(bulkhead, blkcheck, servers, work, "blk", "shared",
                           "seed=57 loops=6 req=4 depth=32")
    # Streaming, 32 in flight: the guest posts while the server is stopped, so there
    # are chains to take (before, one synchronous request could leave none).
    wait_running(part, line="blkcheck: discard")
    time.sleep(0.3)
    srv.kill(stop_first=True)
    assert part.next_device_event()["state"] == "paused"
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    taker = TakingServer(ours, take=5)
    taker.start()
    part.send(RECONNECT, fd=theirs.fileno())
    theirs.close()
    got = [part.next_device_event(), part.next_device_event()]
    taker.join(timeout=20)
    assert taker.error is None, taker.error
    assert [e["state"] for e in got] == ["reconnected", "paused"], got
    before = got[0]["replayed"]
    assert taker.taken, "the fake server took nothing"
    srv.start()
    c = srv.connect()
    part.send(RECONNECT, fd=c.fileno())
    c.close()
    e = part.next_device_event()
    assert e["state"] == "reconnected", e
    assert e["replayed"] == before + taker.taken, (e, before, taker.taken)
    part.finish()
    assert part.passed(), part
    assert bad_sectors(img, 1 * MiB // SECTOR, 57) == []


# --- when the server does not come back ------------------------------------------------

def assert_failed_cleanly(part):
    """blkcheck saw I/O errors and said so; the monitor did not crash."""
    assert part.proc.returncode == 0, part
    exits = [e for e in part.events if e["event"] == "exit"]
    assert exits and exits[-1]["status"] != 0, part
    assert "inmate-test:" in part.output() and ", 0 failures" not in part.output(), part


@pytest.mark.parametrize("isolation", ["window", "shared"])
def test_failed_needs_reset(bulkhead, blkcheck, servers, work, isolation):
    srv, part, _ = start(bulkhead, blkcheck, servers, work, "blk", isolation,
                         "seed=47 loops=1 req=4 depth=32")
    wait_running(part)
    srv.kill(stop_first=True)
    assert part.next_device_event()["state"] == "paused"
    part.send(FAILED)
    e = part.next_device_event()
    assert e["state"] == "needs_reset" and e["cause"] == "server", e
    assert "will not come back" in e["reason"], e
    part.finish()
    assert_failed_cleanly(part)


def test_control_socket_closed_while_paused(bulkhead, blkcheck, servers, work):
    """The supervisor went away: nobody will reconnect, the device needs a reset."""
    srv, part, _ = start(bulkhead, blkcheck, servers, work, "blk", "window",
                         "seed=49 loops=1 req=4 depth=32")
    wait_running(part)
    srv.kill()
    assert part.next_device_event()["state"] == "paused"
    part.ctl.close()
    part.ctl = None
    e = part.next_device_event()
    assert e["state"] == "needs_reset", e
    part.finish()
    assert_failed_cleanly(part)


def test_without_control_fd_needs_reset_at_once(bulkhead, blkcheck, servers, work):
    """The old behaviour: no control socket, no pause."""
    srv, part, _ = start(bulkhead, blkcheck, servers, work, "blk", "window",
                         "seed=51 loops=1 req=4 depth=32", control=False)
    wait_running(part)
    srv.kill()
    e = part.next_device_event()
    assert e["state"] == "needs_reset" and e["reason"] == "server disconnected", e
    part.finish()
    assert not part.of("paused"), part
    assert_failed_cleanly(part)


def test_shared_without_inflight_tracking_falls_back(bulkhead, blkcheck, servers, work):
    """qemu-storage-daemon (7.2) does not offer VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD:
    what was in flight in shared mode cannot be recovered, so the reconnect ends in
    NEEDS_RESET, and says why."""
    srv, part, _ = start(bulkhead, blkcheck, servers, work, "qsd", "shared",
                         "seed=53 loops=1 req=4 depth=32")
    wait_running(part)
    got = restart(srv, part, stop_first=True)
    assert got[-1]["state"] == "needs_reset", got
    assert "INFLIGHT_SHMFD" in got[-1]["reason"], got
    part.finish()
    assert_failed_cleanly(part)


# --- the control socket itself ---------------------------------------------------------

def test_bad_control_messages(bulkhead, blkcheck, servers, work):
    """Malformed messages are reported and ignored, and every descriptor the monitor did
    not want is closed at once (the pipe's write end it was sent reaches EOF); the
    device then reconnects normally, with an extra descriptor closed as well."""
    srv, part, img = start(bulkhead, blkcheck, servers, work, "blk", "window",
                           "seed=55 loops=4 req=4 depth=32")
    wait_running(part)
    r, w = os.pipe()
    try:
        part.send(0, raw=b"short")
        part.send(RECONNECT, raw=CTL.pack(0x12345678, RECONNECT, 0, 0), fd=w)
        part.send(RECONNECT, device=7, fd=w)
        part.send(9, fd=[w, w])
        part.send(RECONNECT)                       # no socket
        errors = [part.next_device_event() for _ in range(5)]
        assert all(e["event"] == "control" for e in errors), errors
        assert [e["error"] for e in errors] == [
            "not a control message", "not a control message", "no such device",
            "unknown message type", "RECONNECT without a socket"], errors
        srv.kill(stop_first=True)
        srv.start()
        c = srv.connect()
        part.send(RECONNECT, fd=[c.fileno(), w])   # the extra one is closed
        c.close()
        os.close(w)
        w = -1
        got = [part.next_device_event(), part.next_device_event()]
        assert [e["state"] for e in got] == ["paused", "reconnected"], got
        os.set_blocking(r, False)
        deadline = time.monotonic() + 5
        while True:                                # EOF: no copy of w is left open
            try:
                assert os.read(r, 1) == b""
                break
            except BlockingIOError:
                assert time.monotonic() < deadline, "the monitor kept a descriptor"
                time.sleep(0.02)
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    part.finish()
    assert part.passed(), part
    assert bad_sectors(img, 1 * MiB // SECTOR, 55) == []


def test_control_fd_must_be_seqpacket(bulkhead, blkcheck):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        r = subprocess.run([bulkhead, "monitor", "--image", str(blkcheck), "--memory", "16M",
                            "--control-fd", str(b.fileno())], pass_fds=(b.fileno(),),
                           capture_output=True, text=True)
    finally:
        a.close()
        b.close()
    assert r.returncode == 2, r
    assert "--control-fd: not a SOCK_SEQPACKET socket" in r.stderr, r.stderr
