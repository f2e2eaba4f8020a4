"""The rig (make rig, rig/run.py): a QEMU-TCG machine with -cpu max, whose /dev/kvm is KVM
on emulated SVM with real hardware-virtualisation semantics. bulkhead's monitor runs the
bare-metal partitions of examples/hello.yaml there too, the rig reports bulkhead's exit
status (0 and nonzero), and a rig that cannot offer KVM says so with status 125.
It runs on this machine (nothing is skipped): the rig needs only QEMU and TCG."""
import importlib.util
import os
import re
import subprocess
import time

import pytest

from conftest import ROOT

PYTHON = "/usr/bin/python3"
RIG_BUILDER = ROOT / "rig" / "build.py"
GUEST_BUILDER = ROOT / "guest" / "build.py"
RUNNER = ROOT / "rig" / "run.py"
RIG = ROOT / "build" / "rig"
INMATES = ROOT / "build" / "inmates"
TIMEOUT = 180


def load_runner():
    spec = importlib.util.spec_from_file_location("rig_run", RUNNER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def rig(bulkhead, inmates):
    """make rig without make: the guest image first (the rig carries it), then the rig;
    both do nothing when up to date."""
    for builder in (GUEST_BUILDER, RIG_BUILDER):
        r = subprocess.run([PYTHON, str(builder)], capture_output=True, text=True,
                           timeout=600)
        assert r.returncode == 0, f"{builder} failed:\n{r.stdout}{r.stderr}"
    r = subprocess.run([PYTHON, str(RIG_BUILDER)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and "up to date" in r.stdout, r.stdout + r.stderr
    return RIG


def run_in_rig(system, *args):
    """rig/run.py on SYSTEM; returns (exit status, stdout, stderr, seconds)."""
    start = time.monotonic()
    r = subprocess.run([PYTHON, str(RUNNER), "--timeout", str(TIMEOUT), *args, str(system)],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=TIMEOUT + 60)
    return r.returncode, r.stdout, r.stderr, time.monotonic() - start


def test_hello_runs_on_the_rigs_kvm(rig):
    status, out, err, secs = run_in_rig(ROOT / "examples" / "hello.yaml")
    assert status == 0, out + err
    ready = re.search(r"^rig: kvm ready \(kvm_amd npt=(\w)", out, re.M)
    assert ready, f"the rig's KVM did not come up:\n{out}{err}"
    for name, words in (("alpha", ("first", "partition")), ("beta", ("second", "partition"))):
        pre = f"{name:<8} | "
        assert f"{pre}Hello from partition '{name}' (id {0 if name == 'alpha' else 1}, " \
               f"1 vCPU)" in out, out
        assert f'{pre}hello:   argv[1] = "{words[0]}"' in out, out
        assert f'{pre}hello:   argv[2] = "{words[1]}"' in out, out
        assert f"{pre}hello: goodbye" in out, out
        assert re.search(rf"^  {name}\s+exited with status 0$", out, re.M), out
    assert out.rstrip().endswith("rig: exit status 0"), out
    assert "bulkhead exited with status 0" in err
    print(f"hello.yaml in the rig: {secs:.1f} s")


def test_failing_system_status_comes_back(rig, tmp_path):
    """A partition exiting 7 makes 'bulkhead run' exit 1 inside the rig: rig/run.py exits
    1 too. The system file lives outside the repository (pytest's tmp_path) and names the
    inmate by absolute path: both reach the rig."""
    faults = INMATES / "faults.elf"
    system = tmp_path / "failing.yaml"
    system.write_text(f"""system:
  name: failing
  cpus: [0, 1]
  log_dir: {tmp_path / 'log'}
partitions:
  - {{name: good, image: {faults}, cpus: [0], memory: 16M, cmdline: "exit 0"}}
  - {{name: bad, image: {faults}, cpus: [1], memory: 16M, cmdline: "exit 7"}}
""")
    status, out, err, _ = run_in_rig(system)
    assert status == 1, out + err
    assert re.search(r"^  bad\s+exited with status 7$", out, re.M), out
    assert re.search(r"^  good\s+exited with status 0$", out, re.M), out
    assert out.rstrip().endswith("rig: exit status 1"), out


def test_helper_runs_alongside_bulkhead(rig, tmp_path):
    """rig/run.py --helper: a script carried into the rig runs next to 'bulkhead run'
    in the system's directory, with RIG_SYSTEM set; its status is reported before
    bulkhead's. A helper still running when bulkhead ends is stopped, with a note."""
    system = tmp_path / "failing.yaml"
    system.write_text(f"""system:
  name: helped
  cpus: [0, 1]
  log_dir: {tmp_path / 'log'}
partitions:
  - {{name: p, image: {INMATES / 'faults.elf'}, cpus: [0], memory: 16M, cmdline: "exit 0"}}
""")
    quick = tmp_path / "quick.sh"
    quick.write_text('echo "helper: in $(pwd) for $RIG_SYSTEM"; exit 4\n')
    status, out, err, _ = run_in_rig(system, "--helper", str(quick))
    assert status == 0, out + err
    assert f"helper: in {tmp_path} for {system}" in out, out
    assert re.search(r"^rig: helper exit status 4\nrig: exit status 0$", out, re.M), out
    slow = tmp_path / "slow.sh"
    slow.write_text("sleep 600; echo never\n")
    status, out, err, secs = run_in_rig(system, "--helper", str(slow))
    assert status == 0, out + err
    assert "rig: helper stopped: still running when bulkhead run ended" in out, out
    assert "never" not in out and secs < TIMEOUT, out


def test_rig_without_kvm_is_a_rig_failure(rig):
    """A rig CPU without SVM (an Intel model: TCG has no VMX) offers no /dev/kvm: that is
    the rig failing, status 125 with the reason, not a status of bulkhead's."""
    status, out, err, _ = run_in_rig(ROOT / "examples" / "hello.yaml", "--cpu", "Nehalem")
    assert status == 125, out + err
    assert "the rig failed: the rig's CPU has no SVM" in err, err
    assert "exit status" not in out


def test_probe_picks_the_rig_on_pvm():
    """kvm_mode() is how later tests choose between this host's /dev/kvm and the rig. On
    PVM (this machine) the answer must be the rig."""
    runner = load_runner()
    ok, why = runner.host_kvm_boots_linux()
    assert isinstance(ok, bool) and why
    if os.path.isdir("/sys/module/kvm_pvm"):
        assert not ok and "PVM" in why
        env = os.environ.pop("BULKHEAD_KVM_MODE", None)
        try:
            assert runner.kvm_mode() == ("rig", why)
        finally:
            if env is not None:
                os.environ["BULKHEAD_KVM_MODE"] = env
