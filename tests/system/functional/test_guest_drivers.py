"""The inmate runtime's virtio drivers end to end, on bulkhead's monitor: blkcheck
against qemu-storage-daemon and against `bulkhead ioserver blk` in both isolation
modes (driver variants: EVENT_IDX and indirect descriptors on and off, MSI-X, INTx,
polling, a tiny queue), read-only slices and slice bounds checked from the host side,
two partitions on one server, rngcheck and vconsole on their servers, and the hostile
guest in each corruption mode while the server and a neighbour partition keep working.
Nothing here skips: a missing --device option, I/O server, qemu-storage-daemon or
inmate is a failure."""
import hashlib
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time

import pytest

QSD = "/usr/bin/qemu-storage-daemon"
ISOLATIONS = ["shared", "window"]
SECTOR = 512
MiB = 1 << 20
MARKER = 0xEE                  # fills the image where no slice is, to catch stray writes
HOSTILE_MODES = ["loop", "long", "oob", "rdonly", "order", "head", "idx", "indirect",
                 "overflow"]
TIMEOUT = 180


# --- the pattern blkcheck writes (programs/blkcheck.c) ----------------------------------

M64 = (1 << 64) - 1


def _mix(x):
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def pattern_sector(seed, sector):
    """Sector `sector` (numbered as the guest sees its device) of seed `seed`."""
    v = _mix(((seed * 0x100000001B3) & M64) ^ _mix(sector))
    return struct.pack("<Q", sector) + struct.pack("<Q", v) * 63


def bad_sectors(img, offset, nsect, seed):
    """Sectors of the slice at byte `offset` that do not hold blkcheck's pattern."""
    with open(img, "rb") as f:
        f.seek(offset)
        data = f.read(nsect * SECTOR)
    return [s for s in range(nsect)
            if data[s * SECTOR:(s + 1) * SECTOR] != pattern_sector(seed, s)]


def make_image(path, size):
    with open(path, "wb") as f:
        f.write(bytes([MARKER]) * size)


def untouched(img, ranges):
    """Whether every byte outside the (offset, size) ranges is still MARKER."""
    data = open(img, "rb").read()
    pos, outside = 0, bytearray()
    for off, size in sorted(ranges):
        outside += data[pos:off]
        pos = off + size
    outside += data[pos:]
    return outside.count(MARKER) == len(outside)


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


# --- processes -------------------------------------------------------------------------

class Run:
    """A monitor that has exited: status, UART output, events."""
    def __init__(self, rc, out, err, events):
        self.rc, self.out, self.err, self.events = rc, out, err, events

    @property
    def status(self):
        exits = [e for e in self.events if e["event"] == "exit"]
        return exits[-1]["status"] if exits else None

    def passed(self):
        return self.rc == 0 and self.status == 0 and "inmate-test:" in self.out and \
            ", 0 failures" in self.out

    def __repr__(self):
        return f"rc {self.rc}, exit status {self.status}\n{self.out}\n{self.err}\n{self.events}"


class Monitor:
    """`bulkhead monitor` started in the background, events on a pipe."""
    def __init__(self, bulkhead, image, devices, cmdline="", name="p", memory="16M",
                 pass_fds=()):
        r, w = os.pipe()
        argv = [bulkhead, "monitor", "--name", name, "--image", str(image), "--memory",
                memory, "--event-fd", str(w), "--cmdline", cmdline]
        for d in devices:
            argv += ["--device", d]
        try:
            self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, pass_fds=(w, *pass_fds))
        finally:
            os.close(w)
        self.event_r = r

    def wait(self, timeout=TIMEOUT):
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            os.close(self.event_r)
            raise AssertionError(f"monitor timed out:\n{out.decode(errors='replace')}")
        with os.fdopen(self.event_r, "rb") as f:
            events = [json.loads(line) for line in f.read().decode().splitlines() if line]
        return Run(self.proc.returncode, out.decode(errors="replace"),
                   err.decode(errors="replace"), events)


def run_monitor(bulkhead, image, devices, cmdline="", **kw):
    return Monitor(bulkhead, image, devices, cmdline, **kw).wait()


def wait_for_socket(path, proc, what, seconds=10):
    deadline = time.monotonic() + seconds
    while not os.path.exists(path):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out = proc.communicate()[0]
            raise AssertionError(f"{what} did not create {path}: {out!r}")
        time.sleep(0.02)


class Daemon:
    """A standalone vhost-user server listening on a unix socket."""
    def __init__(self, argv, sock, what):
        self.sock, self.what = sock, what
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        wait_for_socket(sock, self.proc, what)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.alive():
            self.proc.terminate()
        try:
            out = self.proc.communicate(timeout=10)[0]
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out = self.proc.communicate()[0]
        return out.decode(errors="replace")


class Supervised:
    """`bulkhead ioserver blk` with connected sockets, as `bulkhead run` starts it: one
    process, one device per connection, each on its own slice of one disk file."""
    def __init__(self, bulkhead, img, slices):
        self.ours, theirs = {}, []
        self.disk_fd = os.open(img, os.O_RDWR)
        r, w = os.pipe()
        argv = [bulkhead, "ioserver", "blk", "--name", "shared-blk", "--event-fd", str(w)]
        for name, off, size, ro in slices:
            a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            self.ours[name] = a
            theirs.append(b)
            argv += ["--conn", f"fd={b.fileno()},partition={name},device=0,"
                     f"disk-fd={self.disk_fd},offset={off},size={size},readonly={int(ro)}"]
        self.proc = subprocess.Popen(argv, stderr=subprocess.PIPE,
                                     pass_fds=(w, self.disk_fd, *[b.fileno() for b in theirs]))
        for b in theirs:
            b.close()
        os.close(w)
        self.event_r = r

    def fd(self, name):
        """The monitor's end of connection `name`."""
        return self.ours[name].fileno()

    def release(self, name):
        """Closes our copy once a monitor holds the connection (or to drop it)."""
        self.ours.pop(name).close()

    def alive(self):
        return self.proc.poll() is None

    def finish(self, timeout=15):
        """Closes every connection left; the server must then exit on its own."""
        for name in list(self.ours):
            self.release(name)
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
            raise AssertionError("the I/O server did not exit after its last connection")
        finally:
            os.close(self.disk_fd)
        with os.fdopen(self.event_r, "rb") as f:
            events = [json.loads(line) for line in f.read().decode().splitlines() if line]
        return self.proc.returncode, err.decode(errors="replace"), events


# --- fixtures --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def virtio_ready(bulkhead, inmates):
    """Everything these tests need, or a failure saying what is missing."""
    help_text = subprocess.run([bulkhead, "monitor", "--help"], capture_output=True,
                               text=True).stdout
    assert "--device" in help_text, "bulkhead monitor has no --device option"
    io = subprocess.run([bulkhead, "ioserver", "--help"], capture_output=True, text=True)
    assert io.returncode == 0, f"bulkhead ioserver --help failed: {io.stderr}"
    for cls in ("blk", "console", "rng"):
        assert cls in io.stdout, f"bulkhead ioserver lacks the {cls} class"
    assert os.path.exists(QSD), f"{QSD} is missing"
    for prog in ("blkcheck", "rngcheck", "vconsole", "hostile"):
        assert (inmates / f"{prog}.elf").exists(), f"inmate {prog} is not built"
    return inmates


@pytest.fixture
def work():
    """A short directory (unix socket paths are limited to 107 bytes)."""
    d = tempfile.mkdtemp(prefix="bhg")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def servers(bulkhead, work):
    """Starts standalone servers; stops them at the end and checks they were alive."""
    made = []

    def start(kind, *args):
        sock = os.path.join(work, f"{kind}{len(made)}.sock")
        if kind == "qsd":
            argv = [QSD, *args[0], "--export", "type=vhost-user-blk,id=e,node-name=d,"
                    f"addr.type=unix,addr.path={sock},writable={args[1]}"]
        else:
            argv = [bulkhead, "ioserver", kind, "--socket", sock, *args]
        d = Daemon(argv, sock, kind)
        made.append(d)
        return d
    yield start
    for d in made:
        d.stop()


def blk(slot, sock, isolation):
    return f"blk,slot={slot},socket={sock},isolation={isolation}"


# --- blkcheck --------------------------------------------------------------------------

@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_blkcheck_on_qemu_storage_daemon(bulkhead, virtio_ready, servers, work, isolation):
    """The third-party backend: the whole 4 MiB export written and verified."""
    img = os.path.join(work, "qsd.img")
    make_image(img, 4 * MiB)
    d = servers("qsd", ["--blockdev", f"driver=file,node-name=d,filename={img}"], "on")
    r = run_monitor(bulkhead, virtio_ready / "blkcheck.elf", [blk(3, d.sock, isolation)],
                    f"seed=21 expect-size={4 * MiB}")
    assert r.passed(), r
    assert "event-idx indirect" in r.out, r.out
    assert bad_sectors(img, 0, 4 * MiB // SECTOR, 21) == []
    assert d.alive()


# (cmdline, what the features/interrupt line must say, what it must not)
VARIANTS = {
    "default": ("", ["event-idx", "indirect", "MSI-X"], []),
    "no-event-idx": ("no-event-idx", ["indirect"], ["event-idx"]),
    "no-indirect": ("no-indirect", ["event-idx"], ["indirect"]),
    "intx": ("irq=intx", ["INTx"], ["MSI-X"]),
    "poll": ("irq=poll", ["polling"], ["MSI-X"]),
    "small-queue": ("qsize=8 depth=2 no-indirect seg=16384 req=32", ["queue 8 entries"], []),
}


def features_line(out):
    return next((l for l in out.splitlines() if l.startswith("blkcheck: features")), "")


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_blkcheck_on_ioserver_slice(bulkhead, virtio_ready, servers, work, isolation,
                                    variant):
    """A 2 MiB slice at 1 MiB of a 4 MiB file: the pattern lands exactly there."""
    args, must, must_not = VARIANTS[variant]
    img = os.path.join(work, "disk.img")
    make_image(img, 4 * MiB)
    d = servers("blk", "--disk", f"{img},offset=1M,size=2M")
    r = run_monitor(bulkhead, virtio_ready / "blkcheck.elf", [blk(3, d.sock, isolation)],
                    f"seed=7 expect-size={2 * MiB} {args}")
    assert r.passed(), r
    line = features_line(r.out)
    for word in must:
        assert word in line, line
    for word in must_not:
        assert word not in line, line
    assert bad_sectors(img, 1 * MiB, 2 * MiB // SECTOR, 7) == []
    assert untouched(img, [(1 * MiB, 2 * MiB)]), "bytes outside the slice changed"
    assert d.alive()


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_blkcheck_read_only_slice(bulkhead, virtio_ready, servers, work, isolation):
    """Written through a read-write server, then served read-only: RO is offered, writes
    (and write-zeroes, discards) fail with IOERR, reads return the pattern, and the file
    does not change by a byte."""
    img = os.path.join(work, "disk.img")
    make_image(img, 4 * MiB)
    rw = servers("blk", "--disk", f"{img},offset=2M,size=1M")
    r = run_monitor(bulkhead, virtio_ready / "blkcheck.elf", [blk(3, rw.sock, isolation)],
                    "seed=33")
    assert r.passed(), r
    rw.stop()
    before = sha256(img)
    ro = servers("blk", "--disk", f"{img},offset=2M,size=1M,readonly")
    r = run_monitor(bulkhead, virtio_ready / "blkcheck.elf", [blk(3, ro.sock, isolation)],
                    f"seed=33 expect-readonly verify-only expect-size={1 * MiB}")
    assert r.passed(), r
    assert "read-only" in r.out
    assert sha256(img) == before
    assert ro.alive()


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_two_partitions_on_one_server(bulkhead, virtio_ready, work, isolation):
    """One supervised server, two partitions on adjacent slices, running together: each
    verifies its own pattern, requests past a slice fail (blkcheck checks), and on the
    host each slice holds its own seed with nothing written beside them."""
    img = os.path.join(work, "disk.img")
    make_image(img, 6 * MiB)
    srv = Supervised(bulkhead, img, [("left", 1 * MiB, 2 * MiB, False),
                                     ("right", 3 * MiB, 2 * MiB, False)])
    mons = {}
    for name, seed in (("left", 41), ("right", 42)):
        mons[name] = Monitor(bulkhead, virtio_ready / "blkcheck.elf",
                             [f"blk,slot=3,fd={srv.fd(name)},isolation={isolation}"],
                             f"seed={seed} expect-size={2 * MiB} loops=2", name=name,
                             pass_fds=(srv.fd(name),))
        srv.release(name)
    runs = {name: m.wait() for name, m in mons.items()}
    for r in runs.values():
        assert r.passed(), r
    rc, err, _ = srv.finish()
    assert rc == 0, err
    assert bad_sectors(img, 1 * MiB, 2 * MiB // SECTOR, 41) == []
    assert bad_sectors(img, 3 * MiB, 2 * MiB // SECTOR, 42) == []
    assert untouched(img, [(1 * MiB, 4 * MiB)])


# --- entropy and console ---------------------------------------------------------------

@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_rngcheck(bulkhead, virtio_ready, servers, isolation):
    d = servers("rng")
    r = run_monitor(bulkhead, virtio_ready / "rngcheck.elf",
                    [f"rng,slot=4,socket={d.sock},isolation={isolation}"], "bytes=65536")
    assert r.passed(), r
    assert "rngcheck: 65536 bytes" in r.out
    assert d.alive()


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_vconsole(bulkhead, virtio_ready, servers, work, isolation):
    out = os.path.join(work, "console.out")
    d = servers("console", "--output", out)
    r = run_monitor(bulkhead, virtio_ready / "vconsole.elf",
                    [f"console,slot=6,socket={d.sock},isolation={isolation}"], "lines=7",
                    name="vc")
    assert r.passed(), r
    assert "vconsole: writing 8 lines through virtio-console" in r.out
    assert "all consumed by the device" in r.out
    longline = "".join(chr(ord("a") + i % 26) for i in range(1300))
    want = "".join(f"vc: virtio-console line {i} of 7\n" for i in range(1, 8))
    want += f"vc: long line {longline} end\n"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and \
            (not os.path.exists(out) or len(open(out).read()) < len(want)):
        time.sleep(0.05)
    assert open(out).read() == want
    assert d.alive()


# --- hostile guests --------------------------------------------------------------------

def hostile_result(out, mode):
    line = next((l for l in out.splitlines() if l.startswith("hostile: result")), None)
    assert line, out
    fields = dict(kv.split("=") for kv in line.split()[2:])
    assert fields["mode"] == mode
    return {k: int(v) for k, v in fields.items() if k != "mode"}


@pytest.mark.parametrize("mode", HOSTILE_MODES)
@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_hostile_guest_spares_server_and_neighbour(bulkhead, virtio_ready, work, isolation,
                                                   mode):
    """A partition corrupts its own ring while its neighbour, on another slice of the
    same server process, writes and verifies. The server stays up, the neighbour's
    data is intact, the hostile partition's device serves again after a reset, and the
    server exits cleanly once its connections are gone."""
    img = os.path.join(work, "disk.img")
    make_image(img, 6 * MiB)
    srv = Supervised(bulkhead, img, [("hostile", 1 * MiB, 1 * MiB, False),
                                     ("neighbour", 3 * MiB, 2 * MiB, False),
                                     ("keeper", 5 * MiB, 1 * MiB, False)])
    neighbour = Monitor(bulkhead, virtio_ready / "blkcheck.elf",
                        [f"blk,slot=3,fd={srv.fd('neighbour')},isolation={isolation}"],
                        "seed=77 loops=3", name="neighbour", pass_fds=(srv.fd("neighbour"),))
    srv.release("neighbour")
    hostile = Monitor(bulkhead, virtio_ready / "hostile.elf",
                      [f"blk,slot=3,fd={srv.fd('hostile')},isolation={isolation}"], mode,
                      name="hostile", pass_fds=(srv.fd("hostile"),))
    srv.release("hostile")
    h = hostile.wait()
    assert h.rc == 0 and h.status == 0, h
    res = hostile_result(h.out, mode)
    assert srv.alive(), "the I/O server died"
    n = neighbour.wait()
    assert n.passed(), n
    assert srv.alive(), "the I/O server died"
    assert res["recovered"] == 1, h
    assert bad_sectors(img, 3 * MiB, 2 * MiB // SECTOR, 77) == []
    assert untouched(img, [(1 * MiB, 1 * MiB), (3 * MiB, 2 * MiB)])
    rc, err, events = srv.finish()   # closes the keeper: the last connection
    assert rc == 0, err
    assert not [e for e in events if e.get("partition") == "neighbour" and
                e["event"] == "device_error"], events


@pytest.mark.parametrize("mode", HOSTILE_MODES)
@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_hostile_ring_marks_device_needs_reset(bulkhead, virtio_ready, servers, work,
                                               isolation, mode):
    """Each corruption is malformed (issue 4: loops, too-long chains, addresses outside
    the memory table, writes into read-only descriptors, indices beyond the queue size,
    lengths that overflow): the guest must see DEVICE_NEEDS_RESET in device_status and
    the monitor must report it, whichever side (monitor or server) detects it."""
    img = os.path.join(work, "disk.img")
    make_image(img, 2 * MiB)
    d = servers("blk", "--disk", img)
    h = run_monitor(bulkhead, virtio_ready / "hostile.elf", [blk(3, d.sock, isolation)],
                    mode, name="hostile")
    assert h.rc == 0 and h.status == 0, h
    res = hostile_result(h.out, mode)
    assert res["needs_reset"] == 1, h
    assert res["completed"] == 0, h
    assert [e for e in h.events if e["event"] == "device" and
            e.get("state") == "needs_reset"], h.events
    assert d.alive()
