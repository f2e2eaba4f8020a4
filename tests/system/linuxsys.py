"""Linux partitions on bulkhead's own monitor, for tests/system/functional/
test_linux_own.py and bench/linux_own: the kernel command line the rig needs, the rig's
runner, and one partition's entry of a system file. One place for both, so the tests
and the benchmark boot the same thing."""
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


def partition(name, guest, params, cpus="[0]", isolation=None, devices=(), more=""):
    """A Linux partition's entry under `partitions:`: the guest image in GUEST, CMDLINE
    then PARAMS (bh.run=/bh.run64=, bh.ip=, ...), 256 MiB; ISOLATION, DEVICES (each a
    flow mapping's text) and MORE (whole lines, e.g. a health block) when given."""
    text = (f"  - name: {name}\n"
            f"    kernel: {guest / 'vmlinuz'}\n"
            f"    initrd: {guest / 'initramfs.cpio.gz'}\n"
            f"    cmdline: '{CMDLINE} {params}'\n"
            f"    cpus: {cpus}\n"
            f"    memory: 256M\n")
    if isolation:
        text += f"    isolation: {isolation}\n"
    text += more
    if devices:
        text += "    devices:\n" + "".join(f"      - {d}\n" for d in devices)
    return text
