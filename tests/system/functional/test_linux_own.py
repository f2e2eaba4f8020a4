"""Linux on bulkhead's own monitor (engine: kvm): Debian's cloud kernel and the guest
image's initramfs (make guest) boot through the 64-bit boot protocol, print through the
8250 UART, run the command given on the kernel command line, and end the partition with
that command's status through the system-control device (bh.sysctl=, docs/guest.md).

Where this host's /dev/kvm cannot boot Linux (PVM, this machine) the system runs inside
the rig (rig/run.py, docs/rig.md); elsewhere directly. rig/run.py's kvm_mode() decides,
and the test prints which mode it used. Nothing is skipped."""
import base64
import hashlib
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import ROOT
from linuxsys import blk_server, load_runner, partition, write_system

PYTHON = "/usr/bin/python3"
RUNNER = ROOT / "rig" / "run.py"
GUEST = ROOT / "build" / "guest"
TIMEOUT = 600



@pytest.fixture(scope="module")
def images(bulkhead, inmates):
    """The guest image, and in rig mode the rig; both builders do nothing when up to
    date."""
    mode, why = load_runner().kvm_mode()
    builders = [ROOT / "guest" / "build.py"]
    if mode == "rig":
        builders.append(ROOT / "rig" / "build.py")
    for b in builders:
        r = subprocess.run([PYTHON, str(b)], capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, f"{b} failed:\n{r.stdout}{r.stderr}"
    print(f"Linux on bulkhead's monitor: mode {mode} ({why})")
    return mode


def run_system(mode, bulkhead, system, helper=None):
    """bulkhead run SYSTEM, directly or inside the rig: (status, stdout, stderr).
    HELPER, a shell script, runs alongside it (inside the rig: rig/run.py --helper); its
    output joins bulkhead's, and 'rig: helper exit status N' follows in both modes."""
    if mode == "rig":
        cmd = [PYTHON, str(RUNNER), "--timeout", str(TIMEOUT), str(system)]
        if helper:
            cmd[2:2] = ["--helper", str(helper)]
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=TIMEOUT + 120)
        return r.returncode, r.stdout, r.stderr
    aside = helper and subprocess.Popen(["sh", str(helper)], cwd=system.parent,
                                        env=dict(os.environ, RIG_SYSTEM=str(system)),
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, start_new_session=True)
    r = subprocess.run([str(bulkhead), "run", str(system)], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=TIMEOUT + 120)
    out = r.stdout
    if aside:
        try:
            aside.wait(timeout=5)           # the grace the rig's /init gives too
        except subprocess.TimeoutExpired:
            os.killpg(aside.pid, signal.SIGKILL)
        status = aside.wait()
        out += aside.stdout.read() + ("rig: helper stopped: still running when bulkhead "
                                      "run ended\n" if status < 0 else
                                      f"rig: helper exit status {status}\n")
    return r.returncode, out, r.stderr


def test_linux_boots_to_init_and_exits_with_its_status(images, bulkhead, tmp_path):
    """Two Linux partitions at once: one runs a command and exits 0, the other exits 3.
    Each partition's summary carries its command's status, so 'bulkhead run' ends 1.
    Linux's clock is the host's, from the monitor's CMOS real-time clock."""
    system = tmp_path / "linux-own.yaml"
    write_system(system, "linux-own", tmp_path / "log", [
        partition("good", GUEST, 'bh.run="echo hello from $(uname -s) $(uname -r); '
                  'cat /proc/cmdline; date -u +year=%Y"'),
        partition("bad", GUEST, 'bh.run="echo failing on purpose; exit 3"', cpus="[1]")])
    start = time.monotonic()
    status, out, err = run_system(images, bulkhead, system)
    secs = time.monotonic() - start
    assert status == 1, out + err
    good = "good     | "
    assert re.search(rf"^{re.escape(good)}hello from Linux \S+-cloud-amd64$", out, re.M), out
    # The monitor told the init where the system-control device is.
    assert re.search(rf"^{re.escape(good)}.* bh\.sysctl=0x600$", out, re.M), out
    assert f"{good}bh: exit status 0" in out, out
    # The CMOS clock (rtc.c) gave Linux the host's time.
    year = re.search(rf"^{re.escape(good)}year=(\d+)$", out, re.M)
    assert year and abs(int(year.group(1)) - time.gmtime().tm_year) <= 1, out
    assert "bad      | failing on purpose" in out, out
    assert "bad      | bh: exit status 3" in out, out
    assert re.search(r"^  good\s+exited with status 0$", out, re.M), out
    assert re.search(r"^  bad\s+exited with status 3$", out, re.M), out
    # The status came from the exit register, not from Linux halting: no fault, no hang.
    assert "halted after" not in out and "System halted" not in out, out
    if images == "rig":
        assert out.rstrip().endswith("rig: exit status 1"), out
    print(f"two Linux partitions, mode {images}: {secs:.1f} s")


# The guest reads the first 1 MiB of its disk slice (written by the host before the
# run), writes 4 MiB of random data at 1 MiB with O_DIRECT, reads it back and compares,
# and shows the timer's and its virtio-blk queue's interrupts.
BLK_SCRIPT = (
    "echo S $(cat /sys/block/vda/size); "
    "echo R $(dd if=/dev/vda bs=64k count=16 iflag=direct 2>/dev/null | md5sum); "
    "dd if=/dev/urandom of=/tmp/w bs=64k count=64 2>/dev/null; "
    "dd if=/tmp/w of=/dev/vda bs=64k seek=16 oflag=direct conv=fsync 2>/dev/null || exit 10; "
    "dd if=/dev/vda bs=64k skip=16 count=64 iflag=direct 2>/dev/null | cmp - /tmp/w || exit 11; "
    "echo VERIFIED $(md5sum </tmp/w); "
    "echo T $(grep -E '^ *0:' /proc/interrupts); "
    "echo I $(grep -E 'virtio[0-9]+(-req\\.0)?$' /proc/interrupts)")


# Two vCPUs: how many CPUs Linux sees, which CPU a process pinned with taskset runs on
# (field 39 of /proc/self/stat, read by the pinned process itself), and /proc/stat's
# busy time (user + system ticks) of each CPU since boot.
SMP_SCRIPT = (
    "echo NPROC $(nproc); "
    "echo CPUINFO $(grep -c ^processor /proc/cpuinfo); "
    "for c in 0 1; do echo ON $c $(taskset -c $c cut -d ' ' -f 39 /proc/self/stat); done; "
    "echo BUSY $(awk '/^cpu[01] /{printf \"%s %d \", $1, $2 + $4}' /proc/stat); "
    "echo TOPO $(grep -E '^(siblings|cpu cores)' /proc/cpuinfo | sort -u | tr -d ' \t'); "
    "echo NOFLAGS $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' "
    "| grep -cxE 'svm|vmx|perfctr_core|pdcm|arch_perfmon'); "
    "echo PMU $(dmesg | grep -o 'Performance Events: .*'); "
    # Both vCPUs busy at once for a few seconds: one pure spin pinned to each CPU, then
    # each one's user time (stat field 14) and CPU (field 39) before the kill. The
    # partition must still end (once seen stalling in the rig, docs/rig.md).
    "taskset -c 0 sh -c 'while :; do :; done' & a=$!; "
    "taskset -c 1 sh -c 'while :; do :; done' & b=$!; "
    "sleep 3; echo SPIN $(cut -d ' ' -f 14,39 /proc/$a/stat) $(cut -d ' ' -f 14,39 /proc/$b/stat); "
    "kill $a $b; wait; echo SPIN done")


def test_linux_two_vcpus(images, bulkhead, tmp_path):
    """A Linux partition with cpus: [0, 1] gets two vCPUs (one thread each, pinned),
    brings the second up through INIT/SIPI, runs a process on each, keeps both busy at
    once for 3 s (a spin pinned to each CPU) and exits 0."""
    run64 = base64.b64encode(SMP_SCRIPT.encode()).decode()
    system = tmp_path / "linux-smp.yaml"
    write_system(system, "linux-smp", tmp_path / "log",
                 [partition("smp", GUEST, f"bh.run64={run64}", cpus="[0, 1]")])
    status, out, err = run_system(images, bulkhead, system)
    assert status == 0, out + err
    assert re.search(r"^smp\s+\| NPROC 2$", out, re.M), out
    assert re.search(r"^smp\s+\| CPUINFO 2$", out, re.M), out
    assert re.search(r"^smp\s+\| ON 0 0$", out, re.M), out
    assert re.search(r"^smp\s+\| ON 1 1$", out, re.M), out
    busy = re.search(r"^smp\s+\| BUSY cpu0 (\d+) cpu1 (\d+)\s*$", out, re.M)
    assert busy and int(busy.group(1)) > 0 and int(busy.group(2)) > 0, out
    # CPUID as the monitor filters it (x86/cpuid.c): one package of two single-thread
    # cores, no nested virtualisation, no PMU.
    assert re.search(r"^smp\s+\| TOPO cpucores:2 siblings:2$", out, re.M), out
    assert re.search(r"^smp\s+\| NOFLAGS 0$", out, re.M), out
    assert re.search(r"^smp\s+\| PMU Performance Events: PMU not available due to "
                     r"virtualization, using software events only\.$", out, re.M), out
    spin = re.search(r"^smp\s+\| SPIN (\d+) 0 (\d+) 1$", out, re.M)
    assert spin and int(spin.group(1)) > 0 and int(spin.group(2)) > 0, out
    assert re.search(r"^smp\s+\| SPIN done$", out, re.M), out
    assert re.search(r"^smp\s+\| bh: exit status 0$", out, re.M), out
    assert re.search(r"^  smp\s+exited with status 0$", out, re.M), out
    print(f"Linux on two vCPUs of bulkhead's monitor, mode {images}: "
          f"busy ticks since boot cpu0 {busy.group(1)}, cpu1 {busy.group(2)}; "
          f"3 s of two spins: user ticks {spin.group(1)} on cpu0, {spin.group(2)} on cpu1")


def test_linux_blk_write_verify_window_and_shared(images, bulkhead, tmp_path):
    """Linux's own virtio-blk driver on bulkhead's blk server: one partition in window
    isolation (the server never maps its RAM), one in shared isolation, each on an
    8 MiB slice of one disk. Each reads what the host put on its slice, writes 4 MiB
    with O_DIRECT, reads it back and compares.

    The monitor's ACPI tables give Linux the IOAPIC (the timer on its pin 0) and the PCI
    root bridge with its INTx routing: the window partition's queue interrupts are
    MSI-X messages (KVM GSI routes and irqfds), the shared one runs with pci=nomsi and
    takes INTx on the IOAPIC pin the _PRT names. The window partition then powers off
    through ACPI (_S5): it ends with status 0 without the init's exit register; the
    shared one ends through the init as usual."""
    disk = tmp_path / "disk.img"
    slice_mib = 8
    data = bytearray()
    for s in range(2):
        head = bytes((i * 7 + s * 13 + i // 4096) & 0xff for i in range(1 << 20))
        data += head + bytes((slice_mib - 1) << 20)
    disk.write_bytes(bytes(data))
    heads = [hashlib.md5(data[s * slice_mib << 20:(s * slice_mib << 20) + (1 << 20)]).hexdigest()
             for s in range(2)]
    parts = []
    for i, (name, mode, extra, tail) in enumerate((
            ("win", "window", "", "; echo powering off; poweroff -f"),
            ("shr", "shared", " pci=nomsi", ""))):
        run64 = base64.b64encode((BLK_SCRIPT + tail).encode()).decode()
        parts.append(partition(name, GUEST, f"{extra.strip()} bh.run64={run64}".strip(),
                               cpus=f"[{i}]", isolation=mode,
                               devices=[f"{{type: blk, server: blkio, disk: d, "
                                        f"offset: {i * slice_mib}M, size: {slice_mib}M}}"]))
    system = tmp_path / "linux-blk.yaml"
    write_system(system, "linux-blk", tmp_path / "log", parts,
                 servers=[blk_server(disk, f"{2 * slice_mib}M")])
    status, out, err = run_system(images, bulkhead, system)
    assert status == 0, out + err
    for name, head in (("win", heads[0]), ("shr", heads[1])):
        pfx = rf"^{name}\s+\| "
        assert re.search(rf"{pfx}S {slice_mib * 2048}$", out, re.M), out
        assert re.search(rf"{pfx}R {head} -$", out, re.M), out
        assert re.search(rf"{pfx}VERIFIED [0-9a-f]{{32}} -$", out, re.M), out
        assert re.search(rf"{pfx}T 0: \d+ IO-APIC 0-edge timer$", out, re.M), out
        if name == "win":
            irq = re.search(rf"{pfx}I \d+: (\d+) PCI-MSI \S+ virtio\d+-req\.0$", out, re.M)
        else:
            irq = re.search(rf"{pfx}I (1[6-9]|2[0-3]): (\d+) IO-APIC \1-fasteoi virtio\d+$",
                            out, re.M)
        assert irq and int(irq.groups()[-1]) > 0, out
        assert re.search(rf"^  {name}\s+exited with status 0$", out, re.M), out
    assert re.search(r"^win\s+\| powering off$", out, re.M), out
    assert not re.search(r"^win\s+\| bh: exit status", out, re.M), out
    assert re.search(r"^shr\s+\| bh: exit status 0$", out, re.M), out
    assert "I/O error" not in out and "ACPI Error" not in out, out
    print(f"Linux virtio-blk on bulkhead's monitor, mode {images}: window (MSI-X) and "
          "shared (INTx) isolation, write/verify passed")


# The guest's loop: ROUNDS times, 1 MiB of fresh random data written with O_DIRECT at one
# of seven offsets in turn, read back and compared. Any I/O error or mismatch ends it
# with status 10 or 11.
KILL_LOOP = (
    "r=1; while [ $r -le {rounds} ]; do off=$(( (r * 5 % 7) * 16 )); "
    "dd if=/dev/urandom of=/tmp/w bs=64k count=16 2>/dev/null; "
    "echo round $r writing at $off; "
    "dd if=/tmp/w of=/dev/vda bs=64k seek=$off oflag=direct conv=fsync 2>/dev/null "
    "|| exit 10; "
    "dd if=/dev/vda bs=64k skip=$off count=16 iflag=direct 2>/dev/null | cmp - /tmp/w "
    "|| exit 11; "
    "echo round $r verified; r=$((r + 1)); done")

# Runs next to 'bulkhead run' (inside the rig when there): waits for the guest to start
# writing in rounds 2, 6, 10, ..., kills the block server then with SIGKILL (its pid
# from the last server_start event), waits for the supervisor's server_restart; at the
# end reports how many restarts and reconnections events.jsonl holds and how many
# requests each reconnection replayed.
KILLER = r"""log={log}; n={kills}
ev=$log/events.jsonl
count() {{ c=$(grep -c "$2" "$1" 2>/dev/null); echo "${{c:-0}}"; }}
waitfor() {{ until [ "$(count "$1" "$2")" -ge "$3" ]; do sleep 0.1; done; }}
k=0
while [ $k -lt $n ]; do
	waitfor "$log/lx.console.log" "^round [0-9]* writing" $((2 + 4 * k))
	pid=$(grep '"event":"server_start"' "$ev" | tail -n 1 | sed 's/.*"pid":\([0-9]*\).*/\1/')
	kill -9 "$pid" || exit 1
	echo "killer: killed the block server, pid $pid"
	k=$((k + 1))
	waitfor "$ev" '"event":"server_restart"' $k
done
waitfor "$ev" '"state":"reconnected"' $n
echo "killer: server_restart $(count "$ev" '"event":"server_restart"')" \
	"reconnected $(count "$ev" '"state":"reconnected"')" \
	"replayed $(grep '"state":"reconnected"' "$ev" | sed 's/.*"replayed":\([0-9]*\).*/\1/' | tr '\n' ' ')"
"""


def test_linux_blk_survives_server_kills_window(images, bulkhead, tmp_path):
    """The block server is killed with SIGKILL three times while a Linux partition
    (window isolation) writes and verifies 1 MiB rounds with O_DIRECT: the supervisor
    restarts the server, the monitor re-posts its shadow chains to the new one, and
    Linux sees no I/O error, only a delay: every round verifies and the command exits 0.
    The kills come from a helper script next to 'bulkhead run' (inside the rig when
    there, rig/run.py --helper), which reads the server's pid from events.jsonl."""
    rounds, kills = 16, 3
    disk = tmp_path / "disk.img"
    disk.write_bytes(bytes(8 << 20))
    log = tmp_path / "log"
    helper = tmp_path / "killer.sh"
    helper.write_text(KILLER.format(log=log, kills=kills))
    run64 = base64.b64encode(KILL_LOOP.format(rounds=rounds).encode()).decode()
    system = tmp_path / "linux-kill.yaml"
    write_system(system, "linux-kill", log,
                 [partition("lx", GUEST, f"bh.run64={run64}", cpus="[1]", isolation="window",
                            devices=["{type: blk, server: blkio, disk: d}"])],
                 servers=[blk_server(disk, "8M")])
    status, out, err = run_system(images, bulkhead, system, helper)
    assert status == 0, out + err
    assert re.search(r"^rig: helper exit status 0$", out, re.M), out
    assert len(re.findall(r"^killer: killed the block server, pid \d+$", out, re.M)) == kills, out
    m = re.search(r"^killer: server_restart (\d+) reconnected (\d+) replayed ([\d ]*)$",
                  out, re.M)
    assert m and int(m.group(1)) == kills and int(m.group(2)) == kills, out
    for r in range(1, rounds + 1):
        assert re.search(rf"^lx\s+\| round {r} verified$", out, re.M), out
    assert re.search(r"^lx\s+\| bh: exit status 0$", out, re.M), out
    assert re.search(r"^  lx\s+exited with status 0$", out, re.M), out
    assert "I/O error" not in out and "blk_update_request" not in out, out
    print(f"Linux virtio-blk, window, mode {images}: {kills} server kills during "
          f"{rounds} write/verify rounds, none lost; requests replayed per restart: "
          f"{m.group(3).strip()}")


# Next to 'bulkhead run': once both partitions have stopped for good, counts each one's
# events.
EVENT_COUNTER = r"""ev={log}/events.jsonl
until [ "$(grep -c '"event":"partition_stop"' "$ev" 2>/dev/null)" -ge 2 ]; do sleep 0.2; done
n() {{ c=$(grep "\"partition\":\"$1\"" "$ev" | grep -c "$2"); echo "${{c:-0}}"; }}
for p in lx ly; do
	echo "events $p: fault $(n $p '"event":"fault"') panic $(n $p '"kind":"panic"')" \
		"restart $(n $p '"event":"partition_restart"') reset $(n $p '"event":"reset"')"
done
"""


def test_linux_panic_is_a_fault_handled_per_health(images, bulkhead, tmp_path):
    """Two Linux partitions whose command panics the kernel (sysrq 'c'). The guest
    image loads Linux's pvpanic driver, which finds the monitor's panic device in the
    DSDT (QEMU0001, port 0x505) and writes to it from the panic notifier, before
    panic=-1's reboot: the monitor stops the partition with a fault of kind panic, and
    the supervisor applies health.on_fault. lx (on_fault: restart, max_restarts: 1) is
    started again once, then halted; ly (on_fault: halt) is halted at once. No reset
    request: the panic never gets as far as rebooting."""
    log = tmp_path / "log"
    helper = tmp_path / "events.sh"
    helper.write_text(EVENT_COUNTER.format(log=log))
    system = tmp_path / "linux-panic.yaml"
    crash = 'bh.run="echo panicking; echo c >/proc/sysrq-trigger; echo still here"'
    write_system(system, "linux-panic", log, [
        partition("lx", GUEST, crash, cpus="[1]",
                  more="    health: {on_fault: restart, max_restarts: 1}\n"),
        partition("ly", GUEST, crash, cpus="[0]", more="    health: {on_fault: halt}\n")])
    status, out, err = run_system(images, bulkhead, system, helper)
    assert status == 1, out + err
    for name, boots in (("lx", 2), ("ly", 1)):
        assert len(re.findall(rf"^{name}\s+\| panicking$", out, re.M)) == boots, out
        assert len(re.findall(rf"^{name}\s+\| .*Kernel panic - not syncing: sysrq "
                              r"triggered crash", out, re.M)) == boots, out
    assert "still here" not in out, out
    assert re.search(r"^  lx\s+halted after a kernel panic \(max_restarts 1 reached\)$",
                     out, re.M), out
    assert re.search(r"^  ly\s+halted after a kernel panic$", out, re.M), out
    assert re.search(r"^events lx: fault 2 panic 2 restart 1 reset 0$", out, re.M), out
    assert re.search(r"^events ly: fault 1 panic 1 restart 0 reset 0$", out, re.M), out
    assert re.search(r"^rig: helper exit status 0$", out, re.M), out
    print(f"Linux panic on bulkhead's monitor, mode {images}: pvpanic fault, restarted "
          "once per on_fault: restart, halted per on_fault: halt")


# Both partitions read their virtio-rng device and write a line to their virtio-console
# port. Then "a" (10.0.0.1) pings b with each size and b (10.0.0.2) answers until a
# has gone. Each lists its virtio interrupts as "IRQ NAME COUNT CHIP" (one vCPU, so one
# count column in /proc/interrupts).
RNG_CON = (
    "echo RNG $(cat /sys/class/misc/hw_random/rng_current) "
    "$(head -c 4096 /dev/hwrng | gzip -c | wc -c); "
    "echo hello through virtio-console >/dev/hvc0 && echo CON ok; ")
PINGS = 10
IRQS = "awk '/virtio/{print \"IRQ\", $NF, $2, $3}' /proc/interrupts; "
NET_A = (
    RNG_CON + "until ping -c 1 -W 1 10.0.0.2 >/dev/null; do :; done; "
    f"for s in 56 1000 1900; do echo P $s $(ping -q -c {PINGS} -i 0.2 -W 3 -s $s 10.0.0.2 "
    "| tail -2); done; " + IRQS)
NET_B = (RNG_CON + "until ping -c 1 -W 1 10.0.0.1 >/dev/null; do :; done; " + IRQS +
         "while ping -c 1 -W 3 10.0.0.1 >/dev/null; do sleep 1; done; echo a has gone")
PING_SUMMARY = re.compile(r"^a\s+\| P (\d+) (\d+) packets transmitted, (\d+) packets "
                          r"received, 0% packet loss round-trip min/avg/max = "
                          r"([\d.]+)/([\d.]+)/([\d.]+) ms$", re.M)


@pytest.mark.parametrize("isolation", ["window", "shared"])
def test_linux_net_rng_console(images, bulkhead, tmp_path, isolation):
    """Linux's virtio-net, virtio-rng and virtio-console drivers on bulkhead's monitor,
    in window isolation (the servers never map the partitions' RAM) and in shared: two
    Linux partitions on one network of the net server ping each other with 56, 1000 and
    1900-byte payloads (the last fragmented), without loss; each reads 4 KiB from
    /dev/hwrng (the rng server's; it must not compress) and prints a line through
    /dev/hvc0 (the console server's, which the supervisor shows with the partition's
    console).

    Partition a takes its interrupts as MSI-X messages (one vector per queue), b runs
    with pci=nomsi and takes INTx on the IOAPIC pins the _PRT names (16 + slot): both
    interrupt paths in both isolation modes."""
    a64 = base64.b64encode(NET_A.encode()).decode()
    b64 = base64.b64encode(NET_B.encode()).decode()
    devices = ["{type: net, network: lan0}", "{type: rng, server: rngio}",
               "{type: console, server: conio}"]
    system = tmp_path / "linux-net.yaml"
    write_system(system, "linux-net", tmp_path / "log", [
        partition("a", GUEST, f"bh.ip=10.0.0.1/24 bh.run64={a64}", isolation=isolation,
                  devices=devices),
        partition("b", GUEST, f"pci=nomsi bh.ip=10.0.0.2/24 bh.run64={b64}", cpus="[1]",
                  isolation=isolation, devices=devices)],
        servers=["{name: netio, class: net}", "{name: rngio, class: rng}",
                 "{name: conio, class: console}"],
        networks=["{name: lan0, server: netio}"])
    status, out, err = run_system(images, bulkhead, system)
    assert status == 0, out + err
    got = {int(m.group(1)): m.groups() for m in PING_SUMMARY.finditer(out)}
    assert sorted(got) == [56, 1000, 1900], out
    for size, g in got.items():
        assert int(g[1]) == PINGS and int(g[2]) == PINGS, out
    for name in ("a", "b"):
        pfx = rf"^{name}\s+\| "
        rng = re.search(rf"{pfx}RNG virtio_rng\.\d+ (\d+)$", out, re.M)
        assert rng and int(rng.group(1)) > 4096, out
        assert re.search(rf"{pfx}hello through virtio-console$", out, re.M), out
        assert re.search(rf"{pfx}CON ok$", out, re.M), out
        assert re.search(rf"{pfx}bh: exit status 0$", out, re.M), out
        assert re.search(rf"^  {name}\s+exited with status 0$", out, re.M), out
    assert re.search(r"^b\s+\| a has gone$", out, re.M), out
    # virtio0 is the NIC (slot 1), virtio1 the rng (slot 2), virtio2 the console (slot 3).
    irqs = {(m.group(1), m.group(2)): (int(m.group(3)), m.group(4)) for m in
            re.finditer(r"^(a|b)\s+\| IRQ (\S+) (\d+) (\S+)$", out, re.M)}
    for q in ("virtio0-input.0", "virtio0-output.0", "virtio1-input", "virtio2-output"):
        n, chip = irqs.get(("a", q), (0, None))
        assert chip == "PCI-MSI" and n > 0, (q, out)
    for dev in range(3):
        n, chip = irqs.get(("b", f"virtio{dev}"), (0, None))
        assert chip == "IO-APIC" and n > 0, (dev, out)
    assert not [k for k, v in irqs.items() if k[0] == "b" and v[1] != "IO-APIC"], out
    print(f"Linux virtio-net/rng/console on bulkhead's monitor, {isolation}, mode {images}, "
          "MSI-X and INTx: " + ", ".join(f"{k} B avg {g[4]} ms" for k, g in sorted(got.items())))


# The whole of issue 8's end-to-end case in one partition: an ext2 file system made on
# the blk device, 2 MiB of random data and a marker file written, checksummed, unmounted,
# the caches dropped, mounted again read-only and verified; a line through virtio-console,
# 4 KiB from virtio-rng; then Linux powers off by itself (ACPI _S5), so the partition's
# status 0 comes from the power-off, not from the init's exit register. Any failure
# exits early with its own status (2x), which the partition reports instead.
FS_SCRIPT = (
    "mke2fs -L bhdata /dev/vda >/dev/null || exit 20; "
    "mkdir -p /mnt/d && mount -t ext2 /dev/vda /mnt/d || exit 21; "
    "echo FS $(awk '$2 == \"/mnt/d\" {{print $1, $3}}' /proc/mounts); "
    "dd if=/dev/urandom of=/mnt/d/random.bin bs=64k count=32 2>/dev/null || exit 22; "
    "echo {marker} >/mnt/d/marker.txt || exit 22; "
    "(cd /mnt/d && md5sum random.bin marker.txt) >/tmp/sums; "
    "sync; umount /mnt/d || exit 23; "
    "echo 3 >/proc/sys/vm/drop_caches; "
    "mount -t ext2 -o ro /dev/vda /mnt/d || exit 24; "
    "(cd /mnt/d && md5sum -c /tmp/sums) || exit 25; "
    "umount /mnt/d || exit 26; "
    "echo hello through virtio-console >/dev/hvc0 && echo CON ok; "
    "echo RNG $(cat /sys/class/misc/hw_random/rng_current) "
    "$(head -c 4096 /dev/hwrng | gzip -c | wc -c); "
    "echo powering off; poweroff -f")

# Next to 'bulkhead run' (inside the rig when there, where the disk file stays): once
# the partition has stopped, what its disk file holds: the ext2 magic and the marker.
DISK_CHECK = r"""ev={log}/events.jsonl
until grep -q '"event":"partition_stop"' "$ev" 2>/dev/null; do sleep 0.2; done
echo "disk: magic $(od -An -tx1 -j1080 -N2 {disk} | tr -d ' \n')"
if grep -q {marker} {disk}; then echo "disk: marker found"; else echo "disk: no marker"; fi
"""


def test_linux_ext2_on_blk_rng_console_poweroff_window(images, bulkhead, tmp_path):
    """Issue 8's combined case: a Linux partition on bulkhead's monitor mounts a blk
    device served by the block server in window isolation (an ext2 file system it makes
    there), writes and verifies data through a remount, reads entropy from virtio-rng,
    prints through virtio-console and powers off with status 0. Then the disk file
    holds the file system: the ext2 magic (0xEF53 at byte 1080) and the marker file's
    text, read by a helper once the partition has stopped (inside the rig when there:
    nothing comes back from it) and, in direct mode, by the test as well."""
    disk = tmp_path / "disk.img"
    disk.write_bytes(bytes(16 << 20))
    marker = f"bulkhead-ext2-marker-{os.urandom(8).hex()}"
    log = tmp_path / "log"
    helper = tmp_path / "diskcheck.sh"
    helper.write_text(DISK_CHECK.format(log=log, disk=disk, marker=marker))
    run64 = base64.b64encode(FS_SCRIPT.format(marker=marker).encode()).decode()
    system = tmp_path / "linux-fs.yaml"
    write_system(system, "linux-fs", log, [
        partition("lx", GUEST, f"bh.run64={run64}", cpus="[1]", isolation="window",
                  devices=["{type: blk, server: blkio, disk: d}",
                           "{type: rng, server: rngio}", "{type: console, server: conio}"])],
        servers=[blk_server(disk, "16M"), "{name: rngio, class: rng}",
                 "{name: conio, class: console}"])
    start = time.monotonic()
    status, out, err = run_system(images, bulkhead, system, helper)
    secs = time.monotonic() - start
    assert status == 0, out + err
    pfx = r"^lx\s+\| "
    assert re.search(rf"{pfx}FS /dev/vda ext2$", out, re.M), out
    assert re.search(rf"{pfx}random\.bin: OK$", out, re.M), out
    assert re.search(rf"{pfx}marker\.txt: OK$", out, re.M), out
    assert re.search(rf"{pfx}hello through virtio-console$", out, re.M), out
    assert re.search(rf"{pfx}CON ok$", out, re.M), out
    rng = re.search(rf"{pfx}RNG virtio_rng\.\d+ (\d+)$", out, re.M)
    assert rng and int(rng.group(1)) > 4096, out
    assert re.search(rf"{pfx}powering off$", out, re.M), out
    # The power-off ended it (ACPI _S5), not the init's exit register.
    assert not re.search(rf"{pfx}bh: exit status", out, re.M), out
    assert re.search(r"^  lx\s+exited with status 0$", out, re.M), out
    assert "I/O error" not in out and "EXT4-fs error" not in out, out
    assert re.search(r"^disk: magic 53ef$", out, re.M), out
    assert re.search(r"^disk: marker found$", out, re.M), out
    assert re.search(r"^rig: helper exit status 0$", out, re.M), out
    if images == "direct":
        data = disk.read_bytes()
        assert data[1080:1082] == b"\x53\xef" and marker.encode() in data
    print(f"Linux ext2 on blk (window), rng, console, power-off, mode {images}: "
          f"{secs:.1f} s")
