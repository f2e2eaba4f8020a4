"""The Linux guest image (make guest) and its runner (guest/run-qemu.py): the image builds
incrementally from Debian packages, boots under QEMU TCG, keeps its command-line contract
(bh.run, bh.run64, bh.ip, 'bh: exit status N'), and real Linux virtio drivers work on
vhost-user backends: qemu-storage-daemon, and bulkhead's own blk and rng I/O servers.
The bulkhead server tests are the proof that those servers work with QEMU as the
frontend: they fail, never skip, when the server does not work."""
import hashlib
import os
import pathlib
import re
import signal
import subprocess
import time
from contextlib import contextmanager

import pytest

from conftest import ROOT

PYTHON = "/usr/bin/python3"
BUILDER = ROOT / "guest" / "build.py"
RUNNER = ROOT / "guest" / "run-qemu.py"
GUEST = ROOT / "build" / "guest"
QSD = "/usr/bin/qemu-storage-daemon"
MiB = 1 << 20


@pytest.fixture(scope="module")
def image():
    r = subprocess.run([PYTHON, str(BUILDER), "--out", str(GUEST)], capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, f"guest image build failed:\n{r.stdout}{r.stderr}"
    for f in ("vmlinuz", "initramfs.cpio.gz"):
        assert (GUEST / f).stat().st_size > 1 * MiB
    return GUEST


def boot(*args, timeout=40):
    """Boots the image with the runner's ARGS; returns (exit status, console text)."""
    r = subprocess.run([PYTHON, str(RUNNER), "--timeout", str(timeout), *args],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout + 30)
    return r.returncode, r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


@contextmanager
def backend(cmd, sock, what):
    """Runs a vhost-user backend listening on sock; fails if it never listens or if it
    does not stop cleanly on SIGTERM afterwards."""
    log = open(sock.with_suffix(".log"), "w+b")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"{what} never listened on {sock} (exit {proc.poll()}): "
                            f"{log.read().decode(errors='replace')}")
            time.sleep(0.02)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        log.seek(0)
        text = log.read().decode(errors="replace")
        log.close()
    assert rc == 0, f"{what} exited with {rc}:\n{text}"


def md5(data):
    return hashlib.md5(data).hexdigest()


# The guest reads the first 1 MiB (written by the host), writes 4 MiB of random data at
# 4 MiB with O_DIRECT and reads it back with O_DIRECT; the host then checks the file.
DISK_SCRIPT = ("echo S $(cat /sys/block/vda/size); "
               "echo R $(dd if=/dev/vda bs=64k count=16 iflag=direct | md5sum); "
               "dd if=/dev/urandom of=/tmp/w bs=64k count=64; "
               "echo W $(md5sum </tmp/w); "
               "dd if=/tmp/w of=/dev/vda bs=64k seek=64 oflag=direct conv=fsync || exit 1; "
               "echo V $(dd if=/dev/vda bs=64k skip=64 count=64 iflag=direct | md5sum)")


def disk_image(path, size):
    head = os.urandom(MiB)
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(size)
    return head


def check_disk_run(status, out, disk, head, size, offset=0):
    """The guest saw a SIZE-byte disk starting at OFFSET of the file, read the host's
    bytes, and its write reached the file."""
    assert status == 0, out
    lines = dict(re.findall(r"^([SRWV]) (\S+)", out, re.M))
    assert set(lines) == set("SRWV"), out
    assert int(lines["S"]) * 512 == size, out
    assert lines["R"] == md5(head), "the guest read other bytes than the host wrote"
    assert lines["V"] == lines["W"], "the guest read back other bytes than it wrote"
    data = pathlib.Path(disk).read_bytes()
    assert md5(data[offset + 4 * MiB:offset + 8 * MiB]) == lines["W"], \
        "the guest's write did not reach the disk file"
    return data


# ---- the image and the init's contract ----------------------------------------------

def test_build_is_incremental(image):
    r = subprocess.run([PYTHON, str(BUILDER), "--out", str(image)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "up to date" in r.stdout
    manifest = (image / "manifest.txt").read_text()
    assert re.search(r"^package linux-image-\S+-cloud-amd64 ", manifest, re.M)
    assert re.search(r"^package busybox-static ", manifest, re.M)
    assert re.search(r"^package iperf3 ", manifest, re.M)


def test_echo_hello(image):
    status, out = boot("--", "echo", "hello")
    assert status == 0, out
    assert re.search(r"^hello\r?$", out, re.M), out
    assert "bh: exit status 0" in out


def test_exit_status(image):
    status, out = boot("--", "exit 3")
    assert status == 3, out
    assert "bh: exit status 3" in out


def test_command_needs_no_quoting(image):
    """The runner passes any command through bh.run64: quotes, $, ;, newlines."""
    status, out = boot("--", "printf '<%s|%s>\\n' \"a  b\" 'c\"d';\necho $((6 * 7)); exit 9")
    assert status == 9, out
    assert '<a  b|c"d>' in out and "\n42" in out.replace("\r", "")


def test_bh_run_double_quoted(image):
    status, out = boot("--append", 'bh.run="echo one two; exit 5"')
    assert status == 5, out
    assert "one two" in out


def test_bad_base64_is_refused(image):
    status, out = boot("--append", "bh.run64=ZWNobyBoaQ=")
    assert status == 126, out
    assert "bh: bh.run64 is not base64" in out


def test_modules_and_iperf3(image):
    status, out = boot("--", "lsmod; iperf3 -s -D -1; for i in 1 2 3 4 5 6; do "
                       "iperf3 -c 127.0.0.1 -t 1 -f m && break; sleep 0.5; done")
    assert status == 0, out
    loaded = set(re.findall(r"^(\S+) +\d+ +\d+", out, re.M))
    want = {"virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev",
            "virtio_pci", "virtio_blk", "failover", "net_failover", "virtio_net",
            "virtio_console", "virtio_rng"}
    assert want <= loaded, f"missing modules: {want - loaded}\n{out}"
    assert re.search(r"Mbits/sec +receiver", out), out


def test_bh_ip_configures_eth0(image):
    status, out = boot("--user-net", "--ip", "10.0.2.15/24", "--gw", "10.0.2.2", "--",
                       "ip -4 addr show eth0; ip route; ping -c 2 -W 5 10.0.2.2")
    assert status == 0, out
    assert "inet 10.0.2.15/24" in out
    assert "default via 10.0.2.2" in out


# ---- vhost-user backends --------------------------------------------------------------

def test_blk_qemu_storage_daemon(image, tmp_path):
    disk, sock = tmp_path / "disk.img", tmp_path / "blk.sock"
    head = disk_image(disk, 16 * MiB)
    cmd = [QSD, "--blockdev", f"driver=file,node-name=disk,filename={disk},cache.direct=on",
           "--export", f"type=vhost-user-blk,id=exp,node-name=disk,writable=on,"
           f"addr.type=unix,addr.path={sock}"]
    with backend(cmd, sock, "qemu-storage-daemon"):
        status, out = boot("--blk", str(sock), "--", DISK_SCRIPT)
    check_disk_run(status, out, disk, head, 16 * MiB)


def test_blk_bulkhead_ioserver(image, bulkhead, tmp_path):
    disk, sock = tmp_path / "disk.img", tmp_path / "blk.sock"
    head = disk_image(disk, 16 * MiB)
    cmd = [bulkhead, "ioserver", "blk", "--socket", str(sock), "--disk", str(disk)]
    with backend(cmd, sock, "bulkhead ioserver blk"):
        status, out = boot("--blk", str(sock), "--", DISK_SCRIPT)
    check_disk_run(status, out, disk, head, 16 * MiB)


def test_blk_bulkhead_ioserver_slice(image, bulkhead, tmp_path):
    """A slice of the file: the guest sees exactly it, and bytes outside stay untouched."""
    disk, sock = tmp_path / "disk.img", tmp_path / "blk.sock"
    outside = os.urandom(MiB)
    with open(disk, "wb") as f:
        f.write(outside)                 # 0..1 MiB: not the guest's
        head = os.urandom(MiB)
        f.write(head)                    # the slice starts at 1 MiB
        f.truncate(1 * MiB + 8 * MiB + MiB)
    cmd = [bulkhead, "ioserver", "blk", "--socket", str(sock),
           "--disk", f"{disk},offset=1M,size=8M"]
    with backend(cmd, sock, "bulkhead ioserver blk"):
        status, out = boot("--blk", str(sock), "--", DISK_SCRIPT)
    data = check_disk_run(status, out, disk, head, 8 * MiB, offset=MiB)
    assert data[:MiB] == outside
    assert data[9 * MiB:] == bytes(MiB)


def test_rng_bulkhead_ioserver(image, bulkhead, tmp_path):
    sock = tmp_path / "rng.sock"
    cmd = [bulkhead, "ioserver", "rng", "--socket", str(sock)]
    with backend(cmd, sock, "bulkhead ioserver rng"):
        status, out = boot("--rng", str(sock), "--",
                           "echo C $(cat /sys/class/misc/hw_random/rng_current); "
                           "echo Z $(head -c 8192 /dev/hwrng | gzip -c | wc -c); "
                           "echo A $(head -c 32 /dev/hwrng | md5sum); "
                           "echo B $(head -c 32 /dev/hwrng | md5sum)")
    assert status == 0, out
    lines = dict(re.findall(r"^([CZAB]) (\S+)", out, re.M))
    assert lines.get("C") == "virtio_rng.0", out
    assert int(lines["Z"]) > 8192, "8 KiB from the rng server compress: not random"
    assert lines["A"] != lines["B"], out


# ---- the command line proposed for engine: qemu (docs/guest.md) ------------------------

def test_qemu_engine_command_line(image, bulkhead):
    """RAM memfd, serial, QMP and vhost-user listening sockets all passed by fd; bulkhead's
    blk and rng servers on --conn fds; the blk server killed and restarted while the guest
    writes and verifies: every round verified, no I/O error, exit status 0."""
    r = subprocess.run([PYTHON, str(ROOT / "guest" / "qemu-engine-check.py"),
                        "--bulkhead", bulkhead], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "qemu-engine-check: ok" in r.stdout
