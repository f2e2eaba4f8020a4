"""`bulkhead check` as a user runs it: exit codes (0 sound, 1 problems, 2 usage or an
unreadable file), the FILE:LINE:COL diagnostics, --print's JSON (defaults filled in,
memory maps, devices, networks), and hostile files that must be refused quickly."""
import json
import os
import re
import subprocess

import pytest

DIAG = re.compile(r"^(?P<file>.+):(?P<line>\d+):(?P<col>\d+): (?P<sev>error|warning): (?P<msg>.+)$")


def run(bulkhead, *args, cwd=None, timeout=30):
    return subprocess.run([bulkhead, "check", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


@pytest.fixture
def valid(root):
    return root / "tests" / "configs" / "valid"


@pytest.fixture
def invalid(root):
    return root / "tests" / "configs" / "invalid"


def printed(bulkhead, path):
    r = run(bulkhead, "--print", path)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


# ---- exit codes and usage --------------------------------------------------------------

def test_help_exits_0(bulkhead):
    r = run(bulkhead, "--help")
    assert r.returncode == 0
    assert r.stdout.startswith("usage: bulkhead check")
    assert "exit status: 0 sound, 1 problems found, 2 usage error" in r.stdout


@pytest.mark.parametrize("args", [[], ["a.yaml", "b.yaml"], ["--bogus", "a.yaml"]],
                         ids=["no-file", "two-files", "unknown-option"])
def test_usage_errors_exit_2(bulkhead, args):
    r = run(bulkhead, *args)
    assert r.returncode == 2
    assert "usage: bulkhead check" in r.stderr
    assert r.stdout == ""


def test_sound_file_exits_0(bulkhead, inmates, valid):
    r = run(bulkhead, valid / "full-dedicated.yaml")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{valid / 'full-dedicated.yaml'}: ok: system 'full', 2 partitions, 4 I/O servers\n"
    assert r.stderr == ""


def test_quiet_prints_nothing_when_sound(bulkhead, inmates, valid):
    r = run(bulkhead, "--quiet", valid / "minimal.yaml")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_unsound_file_exits_1(bulkhead, invalid):
    r = run(bulkhead, invalid / "memory-not-2m.yaml")
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.endswith("memory-not-2m.yaml: 2 errors, 0 warnings\n")


def test_missing_file_exits_2(bulkhead, tmp_path):
    r = run(bulkhead, tmp_path / "nothing.yaml")
    assert r.returncode == 2
    assert "cannot read" in r.stderr and "No such file or directory" in r.stderr


def test_directory_exits_2(bulkhead, tmp_path):
    r = run(bulkhead, tmp_path)
    assert r.returncode == 2
    assert "Is a directory" in r.stderr


def test_fifo_refused_without_waiting(bulkhead, tmp_path):
    """Opening a FIFO for reading blocks until a writer comes: the checker must not."""
    fifo = tmp_path / "system.yaml"
    os.mkfifo(fifo)
    r = run(bulkhead, fifo, timeout=10)
    assert r.returncode == 2
    assert "cannot read" in r.stderr


def test_device_file_refused(bulkhead):
    r = run(bulkhead, "/dev/null")
    assert r.returncode == 2


# ---- diagnostics -------------------------------------------------------------------------

def test_diagnostics_are_file_line_col(bulkhead, invalid, tmp_path):
    """Every line but the summary is FILE:LINE:COL: severity: message, FILE as given on
    the command line, in file order; every error of the file is listed."""
    src = invalid / "several-errors.yaml"
    copy = tmp_path / "copy.yaml"
    copy.write_text(src.read_text().replace("../files/", str(src.parent.parent / "files") + "/")
                    .replace("../../../build/", str(src.parents[3] / "build") + "/"))
    r = run(bulkhead, "copy.yaml", cwd=tmp_path)
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert lines[-1] == "copy.yaml: 10 errors, 1 warning"
    diags = [DIAG.match(l) for l in lines[:-1]]
    assert all(diags), r.stderr
    assert {m["file"] for m in diags} == {"copy.yaml"}
    positions = [(int(m["line"]), int(m["col"])) for m in diags]
    assert positions == sorted(positions)
    assert len([m for m in diags if m["sev"] == "error"]) == 10
    expected = [l.split("expect: ", 1)[1] for l in src.read_text().splitlines() if "# expect:" in l]
    for e in expected:
        pos, sev, text = e.split(": ", 2)
        assert any(f"{m['line']}:{m['col']}" == pos and m["sev"] == sev and text in m["msg"]
                   for m in diags), f"{e} not in\n{r.stderr}"


def test_errors_name_key_and_value(bulkhead, invalid):
    r = run(bulkhead, invalid / "wrong-type-memory.yaml")
    m = DIAG.match(r.stderr.splitlines()[0])
    assert m and "'memory'" in m["msg"] and "'lots'" in m["msg"]


def test_warnings_do_not_fail(bulkhead, inmates, valid):
    r = run(bulkhead, valid / "warnings-only.yaml")
    assert r.returncode == 0, r.stderr
    warnings = [DIAG.match(l) for l in r.stderr.splitlines()]
    assert len(warnings) == 6 and all(m and m["sev"] == "warning" for m in warnings), r.stderr
    assert r.stdout.rstrip().endswith("(see warnings)")
    r = run(bulkhead, "--print", valid / "warnings-only.yaml")
    assert r.returncode == 0
    assert json.loads(r.stdout)["system"]["name"] == "warned"


def test_print_with_errors_prints_no_json(bulkhead, invalid):
    r = run(bulkhead, "--print", invalid / "dangling-server.yaml")
    assert r.returncode == 1
    assert r.stdout == ""


def test_relative_paths_resolve_against_the_file(bulkhead, inmates, valid, tmp_path):
    """Run from elsewhere with a relative path: images still resolve from the file's
    own directory, not the working directory."""
    rel = os.path.relpath(valid / "minimal.yaml", tmp_path)
    r = run(bulkhead, "--print", rel, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    part = json.loads(r.stdout)["partitions"][0]
    assert os.path.samefile(part["image"], inmates / "hello.elf")


# ---- --print -------------------------------------------------------------------------------

def test_print_memory_maps(bulkhead, inmates, valid):
    sys = printed(bulkhead, valid / "full-dedicated.yaml")
    sensor, logger = sys["partitions"]
    assert sensor["memory_map"] == [
        {"kind": "ram", "name": "ram", "gpa": "0x0", "size": 16 << 20, "access": "rw"},
        {"kind": "shared", "name": "telemetry", "gpa": "0x100000000", "size": 1 << 20, "access": "rw"},
        {"kind": "sampling", "name": "speed", "gpa": "0x100200000", "size": 4096, "access": "rw"},
        {"kind": "queuing", "name": "log", "gpa": "0x100400000", "size": 8192, "access": "rw"},
    ]
    # The sampling destination reads only; the queuing destination moves the head.
    assert [(e["name"], e["access"]) for e in logger["memory_map"]] == \
        [("ram", "rw"), ("telemetry", "rw"), ("speed", "ro"), ("log", "rw")]
    assert logger["memory_map"][0]["size"] == 32 << 20
    assert [c["size"] for c in sys["channels"]] == [4096, 8192]


def test_print_devices_with_pci_and_server(bulkhead, inmates, valid):
    sys = printed(bulkhead, valid / "full-dedicated.yaml")
    sensor, logger = sys["partitions"]
    assert [(d["type"], d["pci"], d["server"]) for d in sensor["devices"]] == [
        ("console", "00:01.0", "conio"), ("rng", "00:02.0", "rngio"),
        ("blk", "00:03.0", "blkio"), ("net", "00:04.0", "netio")]
    blk = sensor["devices"][2]
    assert (blk["disk"], blk["offset"], blk["size"], blk["readonly"]) == ("shared", 0, 512 << 10, False)
    # Slice sizes left out run to the end of the disk; a disk without size has its file's.
    ro, scratch = logger["devices"][1], logger["devices"][2]
    assert (ro["offset"], ro["size"], ro["readonly"]) == (512 << 10, 512 << 10, True)
    assert scratch["size"] == 64 << 20
    assert sensor["devices"][3]["rate"] == {"bytes_per_sec": 10 << 20, "burst": 64 << 10}
    assert logger["devices"][3]["rate"] == {"bytes_per_sec": 1 << 20, "burst": 64 << 10}
    disks = sys["io_servers"][2]["disks"]
    assert [(k["name"], k["size"], k["exists"], k["create"]) for k in disks] == \
        [("shared", 1 << 20, True, False), ("scratch", 64 << 20, False, True)]


def test_print_networks_and_macs(bulkhead, inmates, valid):
    sys = printed(bulkhead, valid / "net-macs.yaml")
    nets = {n["name"]: n for n in sys["networks"]}
    assert nets["front"]["server"] == "sw0"
    assert nets["front"]["members"] == [{"partition": "web", "mac": "52:54:00:ab:cd:01"}]
    # Derived MACs: 02:62:68, a hash of the system name, partition index, device index.
    assert nets["back"]["members"] == [
        {"partition": "web", "mac": nets["back"]["members"][0]["mac"]},
        {"partition": "db", "mac": "52:54:00:ab:cd:02"}]
    derived = nets["back"]["members"][0]["mac"]
    assert re.fullmatch(r"02:62:68:[0-9a-f]{2}:00:01", derived)
    assert nets["front"]["uplink"] == {"tap": "bh-uplink0"}
    assert "uplink" not in nets["back"]


def test_print_fills_defaults(bulkhead, inmates, valid):
    sys = printed(bulkhead, valid / "minimal.yaml")
    s = sys["system"]
    assert s["scheduling"] == "dedicated"
    assert s["cpus"] == sorted(s["cpus"]) and 0 in s["cpus"]      # every online CPU
    assert os.path.samefile(os.path.dirname(s["log_dir"]), valid)
    assert os.path.basename(s["log_dir"]) == "bulkhead-minimal"
    assert s["control_socket"] == s["log_dir"] + "/control.sock"
    p = sys["partitions"][0]
    assert (p["engine"], p["isolation"], p["cmdline"]) == ("kvm", "window", "")
    assert p["health"] == {"on_fault": "halt", "max_restarts": 3, "watchdog_ns": 0}
    assert (sys["io_servers"], sys["networks"], sys["shared_regions"], sys["channels"]) == \
        ([], [], [], [])


def test_print_qemu_and_cyclic(bulkhead, inmates, valid):
    linux = printed(bulkhead, valid / "qemu-linux.yaml")["partitions"][0]
    assert (linux["engine"], linux["isolation"]) == ("qemu", "shared")
    assert linux["kernel"].endswith("files/bzImage") and linux["initrd"].endswith("files/initrd.img")
    assert linux["memory_map"][0] == {"kind": "ram", "name": "ram", "gpa": "0x0",
                                      "size": 256 << 20, "access": "rw"}
    cyc = printed(bulkhead, valid / "cyclic-plan.yaml")
    plan = cyc["system"]["plan"]
    assert plan["major_frame_ns"] == 10_000_000
    assert plan["slots"][1] == {"partition": "sensor", "start_ns": 2_000_000, "duration_ns": 1_500_000}
    # Without 'cpus', a partition in cyclic scheduling runs on the system's first CPU.
    assert [p["cpus"] for p in cyc["partitions"]] == [[0], [1], [0]]


# ---- hostile files ----------------------------------------------------------------------------

def test_oversize_file_refused(bulkhead, tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("system: {name: big}\n" + "# padding\n" * 120_000)   # 1.2 MB
    assert big.stat().st_size > 1 << 20
    r = run(bulkhead, big, timeout=10)
    assert r.returncode == 1
    assert r.stderr.splitlines()[0] == \
        f"{big}:1:1: error: file is larger than 1048576 bytes, the limit for system files"


def test_file_at_the_limit_is_read(bulkhead, tmp_path):
    text = "system: {name: t}\n"
    f = tmp_path / "limit.yaml"
    f.write_text(text + "#" * ((1 << 20) - len(text) - 1) + "\n")
    assert f.stat().st_size == 1 << 20
    r = run(bulkhead, f)
    assert r.returncode == 1
    assert "missing the required key 'partitions'" in r.stderr
    assert "larger than" not in r.stderr


def test_deep_nesting_bounded(bulkhead, tmp_path):
    f = tmp_path / "deep.yaml"
    f.write_text("system: {name: t}\npartitions: " + "[" * 200_000 + "]" * 200_000 + "\n")
    r = run(bulkhead, f, timeout=10)
    assert r.returncode == 1
    assert r.stderr.splitlines()[0] == f"{f}:2:44: error: nesting deeper than 32 levels"


def test_alias_expansion_refused(bulkhead, tmp_path):
    f = tmp_path / "laughs.yaml"
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    f.write_text("\n".join(lines) + "\n")
    r = run(bulkhead, f, timeout=10)
    assert r.returncode == 1
    assert "YAML aliases (*a0) are not supported" in r.stderr


def test_not_utf8_reported(bulkhead, tmp_path):
    f = tmp_path / "latin1.yaml"
    f.write_bytes("system:\n  name: d\u00e9mo\n".encode("latin-1"))
    r = run(bulkhead, f)
    assert r.returncode == 1
    assert r.stderr.splitlines()[0] == \
        f"{f}:2:10: error: not valid UTF-8 text: invalid trailing UTF-8 octet"


def test_binary_garbage_refused(bulkhead, tmp_path):
    f = tmp_path / "random.yaml"
    f.write_bytes(bytes(range(256)) * 64)
    r = run(bulkhead, f)
    assert r.returncode == 1
    assert DIAG.match(r.stderr.splitlines()[0])
