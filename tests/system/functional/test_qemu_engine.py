"""`engine: qemu` partitions under `bulkhead run`: Linux (the image `make guest` builds) in
qemu-system-x86_64 with the partition's memfd as RAM, its serial console relayed with
the partition's name, its command's exit status read from the init's
'bh: exit status N' line, and its blk, rng and net devices served by bulkhead's own I/O
servers over vhost-user. A Linux partition runs beside a bare-metal one, pings one and
another Linux partition through the net server; blk and net devices survive a
`kill -9` of their server; SIGTERM stops QEMU cleanly and a killed supervisor takes
QEMU with it. See docs/guest.md."""
import base64
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from conftest import ROOT
from linuxsys import partition

PYTHON = "/usr/bin/python3"
BUILDER = ROOT / "guest" / "build.py"
GUEST = ROOT / "build" / "guest"
MiB = 1 << 20


@pytest.fixture(scope="module")
def image():
    r = subprocess.run([PYTHON, str(BUILDER), "--out", str(GUEST)], capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, f"guest image build failed:\n{r.stdout}{r.stderr}"
    return GUEST


@pytest.fixture
def kernel(image, tmp_path):
    """A private copy of the kernel: its path in QEMU's arguments identifies this test's
    QEMU among other tests' processes."""
    dst = tmp_path / "vmlinuz"
    shutil.copy(image / "vmlinuz", dst)
    return dst


def linux(name, kernel, command, cpus="[0]", devices=(), more="", params=""):
    """A Linux partition's YAML entry running COMMAND (through bh.run64), with more init
    parameters (bh.ip=...) in front."""
    run64 = base64.b64encode(command.encode()).decode()
    return partition(name, GUEST, f"{params + ' ' if params else ''}bh.run64={run64}",
                     cpus=cpus, devices=devices, more=more, engine="qemu", kernel=kernel)


def write_system(tmp_path, partitions, servers=""):
    path = tmp_path / "system.yaml"
    path.write_text(f"system: {{name: lx, cpus: [0, 1], log_dir: {tmp_path}/log}}\n"
                    f"{servers}partitions:\n" + "".join(partitions))
    return path


def run(bulkhead, path, timeout=90, env=None):
    return subprocess.run([bulkhead, "run", str(path)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def events(tmp_path):
    with open(tmp_path / "log" / "events.jsonl") as f:
        return [json.loads(line) for line in f]


def console(r, name):
    """The lines a partition printed, without the name prefix."""
    prefix = f"{name:<8} | "
    return [l[len(prefix):] for l in r.stdout.splitlines() if l.startswith(prefix)]


def alive(pid):
    """True while pid runs (a zombie left to init counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def qemus_of(tmp_path):
    r = subprocess.run(["pgrep", "-f", f"qemu-system-x86_64.*{tmp_path}/"],
                       capture_output=True, text=True)
    return r.stdout.split()


def md5(data):
    return hashlib.md5(data).hexdigest()


# ---- console and exit status ----------------------------------------------------------

@pytest.mark.parametrize("status", [0, 7])
def test_console_and_exit_status(bulkhead, kernel, tmp_path, status):
    path = write_system(tmp_path, [linux("lx", kernel, "echo \"hello from $(hostname)\"; "
                                         f"cat /proc/cmdline; exit {status}")])
    r = run(bulkhead, path)
    assert r.returncode == (0 if status == 0 else 1), r.stdout + r.stderr
    lines = console(r, "lx")
    assert "hello from bh-guest" in lines, r.stdout
    assert any(l.startswith("console=ttyS0 panic=-1 quiet bh.run64=") for l in lines), r.stdout
    assert f"bh: exit status {status}" in lines
    assert re.search(rf"^  lx +exited with status {status}$", r.stderr, re.M), r.stderr
    log = (tmp_path / "log" / "lx.console.log").read_text()
    assert "hello from bh-guest" in log
    ev = events(tmp_path)
    start = [e for e in ev if e["event"] == "start" and e.get("partition") == "lx"]
    assert start and start[0]["engine"] == "qemu" and start[0]["accel"] == "tcg", ev
    assert [e["ok"] for e in ev if e["event"] == "partition_stop"] == [status == 0]


def test_guest_ending_without_a_status_is_not_success(bulkhead, kernel, tmp_path):
    """The command powers the guest off itself: QEMU exits 0, but no status line came."""
    path = write_system(tmp_path, [linux("lx", kernel, "poweroff -f; sleep 10")])
    r = run(bulkhead, path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "exited with status" not in r.stderr
    assert [e["ok"] for e in events(tmp_path) if e["event"] == "partition_stop"] == [False]


def start_events(tmp_path, name="lx"):
    return [e for e in events(tmp_path) if e["event"] == "start" and e.get("partition") == name]


def test_accelerator_probe_says_tcg_here(bulkhead, kernel, tmp_path):
    """Without BH_QEMU_ACCEL the probe chooses, and the start event says what and why.
    This machine's KVM is PVM (or absent, or not hardware-assisted): TCG."""
    env = {k: v for k, v in os.environ.items() if k != "BH_QEMU_ACCEL"}
    if os.path.isdir("/sys/module/kvm_pvm"):
        why = "the host's KVM is PVM (kvm_pvm), which boots no unmodified Linux"
    elif not os.path.exists("/dev/kvm"):
        why = "no /dev/kvm"
    else:
        pytest.skip("a host whose KVM may boot Linux: the probe's TCG answer is not expected")
    path = write_system(tmp_path, [linux("lx", kernel, "true")])
    r = run(bulkhead, path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    start = start_events(tmp_path)
    assert len(start) == 1 and start[0]["accel"] == "tcg", start
    assert start[0]["accel_reason"] == why, start


@pytest.mark.parametrize("value", ["tcg", "auto"])
def test_accelerator_override(bulkhead, kernel, tmp_path, value):
    """BH_QEMU_ACCEL=tcg is taken as it is (and said to be the reason); auto is the
    probe's choice, as with no BH_QEMU_ACCEL."""
    path = write_system(tmp_path, [linux("lx", kernel, "true")])
    r = run(bulkhead, path, env={**os.environ, "BH_QEMU_ACCEL": value})
    assert r.returncode == 0, r.stdout + r.stderr
    start = start_events(tmp_path)
    assert len(start) == 1 and start[0]["accel"] == "tcg", start
    if value == "tcg":
        assert start[0]["accel_reason"] == "BH_QEMU_ACCEL=tcg", start
    else:
        assert start[0]["accel_reason"] and "BH_QEMU_ACCEL" not in start[0]["accel_reason"]


@pytest.mark.parametrize("value", ["hvf", "KVM", "tcg,thread=multi"])
def test_bad_accelerator_is_refused(bulkhead, kernel, tmp_path, value):
    path = write_system(tmp_path, [linux("lx", kernel, "true")])
    r = run(bulkhead, path, timeout=30, env={**os.environ, "BH_QEMU_ACCEL": value})
    assert r.returncode == 1, r.stderr
    assert (f"could not start: BH_QEMU_ACCEL='{value}': the accelerator must be kvm, tcg "
            "or auto") in r.stderr
    assert not start_events(tmp_path)


# ---- devices on bulkhead's I/O servers ------------------------------------------------

# The slice starts at 4 MiB of the file. The guest reads the first 1 MiB of its disk
# (written by the host), writes 4 MiB at 4 MiB with O_DIRECT and reads it back; then
# reads the rng server's entropy.
DEVICE_SCRIPT = (
    "echo N $(nproc); "
    "echo S $(cat /sys/block/vda/size); "
    "echo R $(dd if=/dev/vda bs=64k count=16 iflag=direct | md5sum); "
    "dd if=/dev/urandom of=/tmp/w bs=64k count=64; "
    "echo W $(md5sum </tmp/w); "
    "dd if=/tmp/w of=/dev/vda bs=64k seek=64 oflag=direct conv=fsync || exit 1; "
    "echo V $(dd if=/dev/vda bs=64k skip=64 count=64 iflag=direct | md5sum); "
    "echo C $(cat /sys/class/misc/hw_random/rng_current); "
    "echo Z $(head -c 8192 /dev/hwrng | gzip -c | wc -c); "
    "echo A $(head -c 32 /dev/hwrng | md5sum); "
    "echo B $(head -c 32 /dev/hwrng | md5sum)")

SERVERS = """io_servers:
  - name: blkio
    class: blk
    disks:
      - {{name: d0, file: {disk}, size: 16M}}
  - {{name: rngio, class: rng}}
"""
DEVICES = ("{type: blk, server: blkio, disk: d0, offset: 4M, size: 8M}",
           "{type: rng, server: rngio}")


def test_blk_and_rng_on_bulkhead_servers(bulkhead, kernel, tmp_path):
    disk = tmp_path / "disk.img"
    before, head = os.urandom(4 * MiB), os.urandom(MiB)
    with open(disk, "wb") as f:
        f.write(before)
        f.write(head)
        f.truncate(16 * MiB)
    path = write_system(tmp_path, [linux("lx", kernel, DEVICE_SCRIPT, cpus="[0, 1]",
                                         devices=DEVICES)],
                        servers=SERVERS.format(disk=disk))
    r = run(bulkhead, path)
    assert r.returncode == 0, r.stdout + r.stderr
    out = "\n".join(console(r, "lx"))
    lines = dict(re.findall(r"^([NSRWVCZAB]) (\S+)", out, re.M))
    assert set(lines) == set("NSRWVCZAB"), out
    assert lines["N"] == "2", "-smp is not the partition's CPU count"
    assert int(lines["S"]) * 512 == 8 * MiB, out
    assert lines["R"] == md5(head), "the guest read other bytes than the host wrote"
    assert lines["V"] == lines["W"], "the guest read back other bytes than it wrote"
    data = disk.read_bytes()
    assert md5(data[8 * MiB:12 * MiB]) == lines["W"], \
        "the guest's write did not reach the disk file"
    assert data[:4 * MiB] == before and data[12 * MiB:] == bytes(4 * MiB), \
        "bytes outside the partition's slice changed"
    assert lines["C"] == "virtio_rng.0", out
    assert int(lines["Z"]) > 8192, "8 KiB from the rng server compress: not random"
    assert lines["A"] != lines["B"], out
    ev = events(tmp_path)
    assert sorted(e["server"] for e in ev if e["event"] == "server_exit" and e["expected"]) \
        == ["blkio", "rngio"], ev


def test_linux_beside_bare_metal(bulkhead, kernel, inmates, tmp_path):
    path = write_system(tmp_path, [
        linux("lx", kernel, "echo linux here; exit 0"),
        f"  - {{name: bare, image: {inmates / 'hello.elf'}, cmdline: \"next to linux\", "
        f"cpus: [1], memory: 16M}}\n"])
    r = run(bulkhead, path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "linux here" in console(r, "lx")
    assert "hello: goodbye" in console(r, "bare"), r.stdout
    assert re.search(r"^  lx +exited with status 0$", r.stderr, re.M), r.stderr
    assert re.search(r"^  bare +exited with status 0$", r.stderr, re.M), r.stderr


# ---- stopping -------------------------------------------------------------------------

def wait_ready(proc, tmp_path, times=1):
    """Waits until the guest has said 'ready' TIMES times on its console."""
    log = tmp_path / "log" / "lx.console.log"
    deadline = time.monotonic() + 60
    while not (log.exists() and log.read_text().count("ready") >= times):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the guest never got ready: {proc.communicate()[1]}")
        time.sleep(0.1)


def start_long(bulkhead, kernel, tmp_path, devices=True):
    """A Linux partition (with blk and rng devices) that says 'ready' and sleeps; returns
    the running supervisor once the guest is ready."""
    disk = tmp_path / "disk.img"
    with open(disk, "wb") as f:
        f.truncate(16 * MiB)
    path = write_system(tmp_path, [linux("lx", kernel, "echo ready; sleep 60",
                                         devices=DEVICES if devices else ())],
                        servers=SERVERS.format(disk=disk) if devices else "")
    proc = subprocess.Popen([bulkhead, "run", "--quiet", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_ready(proc, tmp_path)
    assert len(qemus_of(tmp_path)) == 1
    return proc


def pids(tmp_path):
    return [e["pid"] for e in events(tmp_path)
            if e["event"] in ("partition_start", "server_start")]


def test_sigterm_stops_qemu_cleanly(bulkhead, kernel, tmp_path):
    proc = start_long(bulkhead, kernel, tmp_path)
    started = pids(tmp_path)
    assert len(started) == 3
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert re.search(r"^  lx +stopped by Terminated$", err, re.M), err
    assert "monitor crash" not in err
    assert qemus_of(tmp_path) == []
    assert [p for p in started if alive(p)] == []
    ev = events(tmp_path)
    assert not [e for e in ev if e["event"] == "monitor_crash"], ev


def test_qemu_never_outlives_a_killed_supervisor(bulkhead, kernel, tmp_path):
    proc = start_long(bulkhead, kernel, tmp_path)
    started = pids(tmp_path)
    proc.kill()
    proc.communicate(timeout=10)
    deadline = time.monotonic() + 5
    while [p for p in started if alive(p)] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p for p in started if alive(p)] == []
    assert qemus_of(tmp_path) == []


def test_ctl_restart_and_stop(bulkhead, kernel, tmp_path):
    """`bulkhead ctl` restarts a Linux partition (a new QEMU on zeroed memory) and stops
    it, as it does a bare-metal one."""
    proc = start_long(bulkhead, kernel, tmp_path, devices=False)
    sock = tmp_path / "log" / "control.sock"

    def ctl(*args):
        return subprocess.run([bulkhead, "ctl", "--socket", str(sock), *args],
                              capture_output=True, text=True, timeout=20)

    status = json.loads(ctl("--json", "status").stdout)
    lx = status["partitions"][0]
    first = lx["pid"]
    assert lx["state"] == "running" and qemus_of(tmp_path) == [str(first)], status
    r = ctl("restart", "lx")
    assert r.returncode == 0, r.stdout + r.stderr
    wait_ready(proc, tmp_path, times=2)
    assert not alive(first)
    second = json.loads(ctl("--json", "status").stdout)["partitions"][0]["pid"]
    assert second != first and qemus_of(tmp_path) == [str(second)]
    r = ctl("stop", "lx")
    assert r.returncode == 0, r.stdout + r.stderr
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 1, err
    assert re.search(r"^  lx +stopped by the operator$", err, re.M), err
    assert qemus_of(tmp_path) == [] and not alive(second)
    assert [e["reason"] for e in events(tmp_path) if e["event"] == "partition_restart"] \
        == ["operator"]


# ---- what is refused ------------------------------------------------------------------

def test_check_refuses_window_isolation_with_qemu(bulkhead, kernel, tmp_path):
    path = write_system(tmp_path, [linux("lx", kernel, "true",
                                         more="    isolation: window\n")])
    r = subprocess.run([bulkhead, "check", str(path)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "partition 'lx': 'isolation: window' needs bulkhead's own monitor" in r.stderr


def test_run_refuses_console_devices_for_qemu(bulkhead, kernel, tmp_path):
    path = write_system(tmp_path, [linux("lx", kernel, "true",
                                         devices=["{type: console, server: con}"])],
                        servers="io_servers:\n  - {name: con, class: console}\n")
    r = run(bulkhead, path, timeout=30)
    assert r.returncode == 2, r.stderr
    assert "partition 'lx': console devices cannot be served to 'engine: qemu' partitions" \
        in r.stderr
    assert r.stdout == ""


# ---- networks -------------------------------------------------------------------------

NET_SERVER = ("io_servers: [{name: netio, class: net}]\n"
              "networks:\n  - {name: lan0, server: netio}\n")
NET = "{type: net, network: lan0}"
PING_RE = re.compile(r"(\d+) packets transmitted, (\d+) packets received")


def netecho(inmates, args, cpus="[1]"):
    return (f"  - {{name: echo, image: {inmates / 'netecho.elf'}, cpus: {cpus}, "
            f"memory: 16M, cmdline: \"ip=10.0.0.2/24 {args}\", devices: [{NET}]}}\n")


def pings(lines):
    """(transmitted, received) of every ping summary in the lines."""
    return [tuple(map(int, m.groups())) for l in lines for m in [PING_RE.search(l)] if m]


def test_linux_pings_bare_metal(bulkhead, kernel, inmates, tmp_path):
    """A Linux partition pings a bare-metal netecho through bulkhead's net server, with
    the MAC the switch enforces (the system file's, derived here)."""
    path = write_system(tmp_path, [
        linux("lx", kernel, "cat /sys/class/net/eth0/address; "
              "ping -c 20 -i 0.2 -s 1000 10.0.0.2", devices=[NET], params="bh.ip=10.0.0.1/24"),
        netecho(inmates, "exit-after=20 idle-exit=60000")], servers=NET_SERVER)
    plan = json.loads(subprocess.run([bulkhead, "check", "--print", str(path)],
                                     capture_output=True, text=True, timeout=30).stdout)
    mac = [d["mac"] for p in plan["partitions"] if p["name"] == "lx" for d in p["devices"]]
    r = run(bulkhead, path)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = console(r, "lx")
    assert lines[0] == mac[0], f"eth0 has another MAC than the switch enforces: {lines[0]}"
    assert pings(lines) == [(20, 20)], r.stdout
    assert sum("bytes from 10.0.0.2" in l for l in lines) == 20
    assert "netecho: answered 20 echo requests" in "\n".join(console(r, "echo")), r.stdout
    ev = events(tmp_path)
    port = [e for e in ev if e["event"] == "counters" and e.get("partition") == "lx"]
    assert port and port[0]["drop_spoof"] == 0 and port[0]["tx_frames"] >= 21, port


def test_two_linux_partitions_ping_each_other(bulkhead, kernel, tmp_path):
    """Two Linux guests (TCG, one CPU each) ping each other with 56, 1000 and 1900 bytes
    (the last in two IP fragments), without a loss. Each waits until its peer answers;
    the second then waits for the first's 'done' over TCP, so neither stops while the
    other still pings."""
    def script(peer, last):
        return (f"until ping -c 1 -W 1 {peer} >/dev/null; do :; done; "
                f"for s in 56 1000 1900; do ping -q -c 10 -i 0.2 -s $s {peer} | tail -2; "
                f"done; {last}")
    path = write_system(tmp_path, [
        linux("lx1", kernel, script("10.0.0.2", "until echo done | nc 10.0.0.2 7777; "
                                    "do sleep 0.2; done"),
              devices=[NET], params="bh.ip=10.0.0.1/24"),
        linux("lx2", kernel, script("10.0.0.1", "nc -l -p 7777"), cpus="[1]",
              devices=[NET], params="bh.ip=10.0.0.2/24")], servers=NET_SERVER)
    r = run(bulkhead, path)
    assert r.returncode == 0, r.stdout + r.stderr
    for name in ("lx1", "lx2"):
        assert pings(console(r, name)) == [(10, 10)] * 3, r.stdout
    assert "done" in console(r, "lx2")
    ev = events(tmp_path)
    ports = {e["partition"]: e for e in ev if e["event"] == "counters"}
    assert set(ports) == {"lx1", "lx2"}, ev
    assert all(p["drop_spoof"] == 0 and p["drop_malformed"] == 0 for p in ports.values())


# ---- I/O server restarts --------------------------------------------------------------

def wait_console(proc, tmp_path, name, pattern, count=1, timeout=90):
    """Waits until the partition's console log matches pattern count times; returns the
    log."""
    log = tmp_path / "log" / f"{name}.console.log"
    deadline = time.monotonic() + timeout
    while True:
        text = log.read_text() if log.exists() else ""
        if len(re.findall(pattern, text, re.M)) >= count:
            return text
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"{name} never printed {pattern!r} {count} times:\n{text}\n"
                        f"{proc.communicate()[1]}")
        time.sleep(0.05)


def server_pids(tmp_path, server):
    return [e["pid"] for e in events(tmp_path)
            if e["event"] == "server_start" and e["server"] == server]


def kill_server(proc, tmp_path, server):
    """kill -9 of the server's current process; returns once its successor started."""
    before = server_pids(tmp_path, server)
    os.kill(before[-1], signal.SIGKILL)
    deadline = time.monotonic() + 20
    while len(server_pids(tmp_path, server)) == len(before):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"{server} was not restarted: {proc.communicate()[1]}")
        time.sleep(0.02)
    return time.monotonic()


# The guest writes 1 MiB of fresh random bytes at a rotating offset with O_DIRECT and
# reads it back, 'round N' after each; any I/O error or mismatch ends the command with
# an error. At the end it prints the md5 of the disk's first 8 MiB, which the host
# compares with the file, and the kernel's messages about vda.
BLK_LOOP = (
    "i=0; while [ $i -lt {rounds} ]; do i=$((i+1)); o=$((i % 8 * 16)); "
    "dd if=/dev/urandom of=/tmp/w bs=64k count=16 2>/dev/null; "
    "dd if=/tmp/w of=/dev/vda bs=64k seek=$o oflag=direct conv=fsync 2>/tmp/e "
    "|| {{ echo WRITE FAILED $i; cat /tmp/e; exit 1; }}; "
    "dd if=/dev/vda bs=64k skip=$o count=16 iflag=direct 2>/tmp/e | cmp - /tmp/w "
    "|| {{ echo VERIFY FAILED $i; cat /tmp/e; exit 2; }}; "
    "echo round $i; done; "
    "echo F $(dd if=/dev/vda bs=64k count=128 iflag=direct 2>/dev/null | md5sum); "
    "dmesg | grep -i 'vda\\|virtio_blk\\|I/O error' | sed 's/^/K /'; echo end")


def test_blk_survives_server_kills(bulkhead, kernel, tmp_path):
    """The blk server is killed (-9) three times while the guest writes and verifies:
    the supervisor reconnects QEMU's socket to each new server, QEMU hands it the
    inflight region, and the guest sees neither an I/O error nor a wrong byte."""
    disk = tmp_path / "disk.img"
    with open(disk, "wb") as f:
        f.truncate(16 * MiB)
    servers = ("io_servers:\n  - name: blkio\n    class: blk\n    disks:\n"
               f"      - {{name: d0, file: {disk}, size: 16M}}\n")
    path = write_system(tmp_path, [linux("lx", kernel, BLK_LOOP.format(rounds=40),
                                         devices=["{type: blk, server: blkio, disk: d0, "
                                                  "offset: 0, size: 8M}"])],
                        servers=servers)
    rt = tmp_path / "rt"        # where the supervisor makes its socket directory
    rt.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    proc = subprocess.Popen([bulkhead, "run", "--quiet", str(path)], env={**env, "TMPDIR": str(rt)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for k in range(3):
        wait_console(proc, tmp_path, "lx", r"^round \d+", count=5 + 10 * k)
        if k == 0:
            # every socket connected once: its name and the directory are gone
            assert list(rt.iterdir()) == []
        kill_server(proc, tmp_path, "blkio")
    out, err = proc.communicate(timeout=120)
    log = (tmp_path / "log" / "lx.console.log").read_text()
    assert proc.returncode == 0, log + err
    assert "FAILED" not in log and len(re.findall(r"^round \d+", log, re.M)) == 40, log
    assert re.search(r"^F (\w+)", log, re.M).group(1) == md5(disk.read_bytes()[:8 * MiB])
    assert not re.search(r"^K .*(error|fail)", log, re.M | re.I), log
    ev = events(tmp_path)
    assert [e["restarts"] for e in ev if e["event"] == "server_restart"] == [1, 2, 3], ev
    assert [e["connections"] for e in ev if e["event"] == "server_start"] == [1] * 4, ev
    assert list(rt.iterdir()) == [], "the socket directory is left behind"



def test_net_survives_server_kill(bulkhead, kernel, inmates, tmp_path):
    """A ping flood (every 20 ms) from a Linux partition to netecho goes on across a
    `kill -9` of the net server: QEMU's netdev sees its socket close (and takes the link
    down), the supervisor connects the socket to the new server, and the link is up at
    the end; only the frames of the gap are lost."""
    path = write_system(tmp_path, [
        linux("lx", kernel, "until ping -c 1 -W 1 10.0.0.2 >/dev/null; do :; done; "
              "echo up $(cat /sys/class/net/eth0/carrier_changes); "
              "ping -c 300 -i 0.02 -W 2 10.0.0.2 | tail -3; "
              "echo carrier $(cat /sys/class/net/eth0/carrier) "
              "$(cat /sys/class/net/eth0/carrier_changes)", devices=[NET],
              params="bh.ip=10.0.0.1/24"),
        # netecho outlives any boot time; the test stops the system once lx is done
        netecho(inmates, "idle-exit=120000")], servers=NET_SERVER)
    proc = subprocess.Popen([bulkhead, "run", "--quiet", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_console(proc, tmp_path, "lx", r"^up \d+$")
    time.sleep(1.5)             # a second and a half of pings
    kill_server(proc, tmp_path, "netio")
    log = wait_console(proc, tmp_path, "lx", r"^bh: exit status \d+$")
    proc.terminate()
    out, err = proc.communicate(timeout=60)
    assert re.search(r"^bh: exit status 0$", log, re.M), log + err
    (sent, received), = pings(log.splitlines())
    assert sent == 300 and received >= 280, log
    # the link is up at the end (whether the guest saw it flap depends on timing)
    up, changes = re.search(r"^up (\d+)$", log, re.M), re.search(r"^carrier 1 (\d+)$", log, re.M)
    assert up and changes, log
    print(f"lost {sent - received} of {sent}; carrier changes {up.group(1)} -> "
          f"{changes.group(1)}")
    ev = events(tmp_path)
    assert [e["restarts"] for e in ev if e["event"] == "server_restart"] == [1], ev
    assert [e["connections"] for e in ev if e["event"] == "server_start"] == [2, 2], ev


# ---- iperf3 ---------------------------------------------------------------------------

IPERF_SUM_RE = re.compile(r"^\[ *\d+\] +[\d.]+-[\d.]+ +sec +[\d.]+ \w?Bytes +([\d.]+) "
                          r"(\w?)bits/sec.* (sender|receiver)$")


def iperf_sums(lines):
    """[(role, Mbit/s)] of the iperf3 summary lines, in order: a client prints a sender
    and a receiver line per test, a server only its own side's."""
    scale = {"": 1e-6, "K": 1e-3, "M": 1.0, "G": 1e3}
    return [(m.group(3), float(m.group(1)) * scale[m.group(2)])
            for l in lines for m in [IPERF_SUM_RE.search(l)] if m]


def test_two_linux_partitions_iperf3(bulkhead, kernel, tmp_path):
    """iperf3 between two Linux partitions through the net server, 2 s each way:
    lx1 sends to lx2, then lx2 sends to lx1 (-R). Both ends print their summaries and
    exit 0, a throughput came through each way (its figure is printed, not asserted),
    and the switch dropped nothing as spoofed or malformed."""
    client = ("until ping -c 1 -W 1 10.0.0.2 >/dev/null; do :; done; "
              "for dir in '' -R; do "
              "until iperf3 -c 10.0.0.2 -t 2 $dir >/tmp/o 2>&1; do "
              "grep -q 'unable to connect' /tmp/o || { cat /tmp/o; exit 1; }; sleep 0.2; done; "
              "echo \"run ${dir:-fwd}\"; cat /tmp/o; done")
    server = "iperf3 -s -1 && iperf3 -s -1"
    path = write_system(tmp_path, [
        linux("lx1", kernel, client, devices=[NET], params="bh.ip=10.0.0.1/24"),
        linux("lx2", kernel, server, cpus="[1]", devices=[NET], params="bh.ip=10.0.0.2/24")],
        servers=NET_SERVER)
    r = run(bulkhead, path, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    c, s = console(r, "lx1"), console(r, "lx2")
    assert c.count("iperf Done.") == 2, r.stdout
    csums, ssums = iperf_sums(c), iperf_sums(s)
    # lx1: sender and receiver of the forward test, then of the reverse one; lx2 (the
    # server) received the first and sent the second
    assert [role for role, _ in csums] == ["sender", "receiver"] * 2, r.stdout
    assert [role for role, _ in ssums] == ["receiver", "sender"], r.stdout
    assert all(mbps > 0 for _, mbps in csums + ssums), r.stdout
    for name in ("lx1", "lx2"):
        assert re.search(rf"^  {name} +exited with status 0$", r.stderr, re.M), r.stderr
    print(f"lx1 -> lx2 {csums[1][1]:.1f} Mbit/s, lx2 -> lx1 {csums[3][1]:.1f} Mbit/s")
    ports = {e["partition"]: e for e in events(tmp_path) if e["event"] == "counters"}
    assert set(ports) == {"lx1", "lx2"}, ports
    for p in ports.values():
        assert p["drop_spoof"] == 0 and p["drop_malformed"] == 0, ports
        assert p["rx_frames"] > 100 and p["tx_frames"] > 100, ports


# ---- partitions with devices starting again ---------------------------------------------

def test_restart_partition_with_devices(bulkhead, kernel, inmates, tmp_path):
    """`ctl restart` of a Linux partition with a disk: the new QEMU listens on new
    sockets, the supervisor connects them and replaces the server, and the second life
    finds on the disk what the first wrote. A bare-metal partition on the same server
    verifies its own slice throughout without an error."""
    disk = tmp_path / "disk.img"
    with open(disk, "wb") as f:
        f.truncate(16 * MiB)
    servers = ("io_servers:\n  - name: blkio\n    class: blk\n    disks:\n"
               f"      - {{name: d0, file: {disk}, size: 16M}}\n")
    command = ("if [ \"$(dd if=/dev/vda bs=5 count=1 2>/dev/null)\" = life1 ]; then "
               "echo second life; else printf life1 | dd of=/dev/vda conv=fsync 2>/dev/null; "
               "echo first life; sleep 600; fi")
    path = write_system(tmp_path, [
        linux("lx", kernel, command,
              devices=["{type: blk, server: blkio, disk: d0, offset: 0, size: 4M}"]),
        f"  - {{name: bm, image: {inmates / 'blkcheck.elf'}, cmdline: \"seed=3 loops=60\", "
        f"cpus: [1], memory: 16M, devices: [{{type: blk, server: blkio, disk: d0, "
        f"offset: 8M, size: 2M}}]}}\n"], servers=servers)
    proc = subprocess.Popen([bulkhead, "run", "--quiet", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_console(proc, tmp_path, "lx", r"^first life$")
    r = subprocess.run([bulkhead, "ctl", "--socket", str(tmp_path / "log" / "control.sock"),
                        "restart", "lx"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    log = wait_console(proc, tmp_path, "lx", r"^bh: exit status \d+$")
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, log + err
    assert "second life" in log and "bh: exit status 0" in log, log
    bm = (tmp_path / "log" / "bm.console.log").read_text()
    assert "inmate-test: " in bm and ", 0 failures" in bm, bm
    ev = events(tmp_path)
    assert [e["start"] for e in ev if e["event"] == "partition_start"
            and e["partition"] == "lx"] == [1, 2]
    exits = [e for e in ev if e["event"] == "server_exit"]
    assert exits and exits[0].get("reason") == "partition_restart", exits
    assert [e["connections"] for e in ev if e["event"] == "server_start"] == [2, 2], ev
    assert not [e for e in ev if e.get("state") == "needs_reset"]


def test_console_input_reaches_the_serial_port(bulkhead, kernel, tmp_path):
    """`ctl console --send` writes to QEMU's stdin, which its serial port reads: the
    guest's command reads the lines from its console. Lines sent before the guest reads
    may be lost (a real UART's input before anyone listens), so the test repeats the
    first until the guest answers."""
    path = write_system(tmp_path, [linux(
        "lx", kernel, "while read line; do echo \"got [$line]\"; "
        "[ \"$line\" = stop ] && break; done")])
    proc = subprocess.Popen([bulkhead, "run", "--quiet", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sock, log = tmp_path / "log" / "control.sock", tmp_path / "log" / "lx.console.log"

    def send(text):
        return subprocess.run([bulkhead, "ctl", "--socket", str(sock), "console", "lx",
                               "--send", text], capture_output=True, text=True, timeout=30)
    deadline = time.monotonic() + 90
    while "got [hello qemu]" not in (log.read_text() if log.exists() else ""):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        if sock.exists():
            r = send("hello qemu")
            assert r.returncode == 0, r.stderr
        time.sleep(0.5)
    assert send("stop").returncode == 0
    out, err = proc.communicate(timeout=60)
    text = log.read_text()
    assert proc.returncode == 0, text + err
    assert "got [stop]" in text and "bh: exit status 0" in text, text
