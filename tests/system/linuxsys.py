"""Linux partitions for the system tests and benchmarks (test_linux_own.py and
bench/linux_own on bulkhead's own monitor, test_qemu_engine.py on the QEMU engine): the
kernel command line the rig needs, the rig's runner, and one partition's entry of a
system file. One place for all, so they boot the same thing."""
import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]

# The rig's KVM runs on TCG-emulated SVM: without these the inner kernel hangs in its
# timer set-up there (docs/rig.md). Harmless on a real host.
RIG_TIMER_ARGS = ("no_timer_check lpj=4000000 tsc=reliable clocksource=tsc "
                  "tsc_early_khz=2000000 noapictimer nolapic_timer")
CMDLINE = f"console=ttyS0 panic=-1 quiet {RIG_TIMER_ARGS}"


def load_runner():
    """rig/run.py as a module (kvm_mode(), the rig's runner)."""
    spec = importlib.util.spec_from_file_location("rig_run", ROOT / "rig" / "run.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def partition(name, guest, params, cpus="[0]", isolation=None, devices=(), more="",
              engine=None, kernel=None):
    """A Linux partition's entry under `partitions:`: the guest image in GUEST, 256 MiB,
    PARAMS (bh.run=/bh.run64=, bh.ip=, ...) on the kernel command line; ISOLATION,
    DEVICES (each a flow mapping's text) and MORE (whole lines, e.g. a health block) when
    given. On bulkhead's own monitor (ENGINE None) the command line starts with CMDLINE;
    with engine: qemu, bulkhead's runner puts the console and panic options in front
    itself. KERNEL replaces the image's kernel (a copy, a broken one)."""
    base = f"{CMDLINE} " if engine is None else ""
    text = (f"  - name: {name}\n"
            f"    kernel: {kernel or guest / 'vmlinuz'}\n"
            f"    initrd: {guest / 'initramfs.cpio.gz'}\n"
            f"    cmdline: '{base}{params}'\n")
    if engine:
        text += f"    engine: {engine}\n"
    text += (f"    cpus: {cpus}\n"
             f"    memory: 256M\n")
    if isolation:
        text += f"    isolation: {isolation}\n"
    text += more
    if devices:
        text += "    devices:\n" + "".join(f"      - {d}\n" for d in devices)
    return text


def blk_server(disk, size, name="blkio", more=""):
    """A blk I/O server's entry (flow mapping) serving DISK as disk 'd' of SIZE; MORE
    adds keys to the disk (e.g. ', create: true')."""
    return f"{{name: {name}, class: blk, disks: [{{name: d, file: {disk}, size: {size}{more}}}]}}"


def write_system(path, name, log, partitions, servers=(), networks=()):
    """A system file at PATH: NAME on CPUs 0 and 1, logs in LOG, the I/O SERVERS and
    NETWORKS (each an entry's flow mapping), then the PARTITIONS' entries (partition()).
    Returns PATH."""
    text = f"system:\n  name: {name}\n  cpus: [0, 1]\n  log_dir: {log}\n"
    if servers:
        text += "io_servers:\n" + "".join(f"  - {s}\n" for s in servers)
    if networks:
        text += "networks:\n" + "".join(f"  - {n}\n" for n in networks)
    path.write_text(text + "partitions:\n" + "".join(partitions))
    return path
