"""`bulkhead run` with I/O servers: partitions reach blk, console and rng devices served
by supervised `bulkhead ioserver` processes over socket pairs, in window and shared
isolation; slices and read-only slices hold on the real disk file; a hostile guest
breaks only its own device while its neighbour's data verifies."""
import json
import subprocess

import pytest

MiB = 1 << 20


def run_system(bulkhead, tmp_path, servers, partitions, timeout=120):
    text = f"system: {{name: dev, cpus: [0, 1], log_dir: {tmp_path}/log}}\n"
    text += "io_servers:\n" + servers + "partitions:\n" + partitions
    path = tmp_path / "system.yaml"
    path.write_text(text)
    r = subprocess.run([bulkhead, "run", str(path)], capture_output=True, text=True,
                       timeout=timeout)
    events = [json.loads(l) for l in open(tmp_path / "log" / "events.jsonl")]
    return r, events


def blk_server(tmp_path, size="16M"):
    return (f"  - name: blkio\n    class: blk\n    disks:\n"
            f"      - {{name: d, file: {tmp_path}/disk.img, size: {size}, create: true}}\n")


@pytest.mark.parametrize("isolation", ["window", "shared"])
def test_slices_and_read_only_on_the_real_file(bulkhead, inmates, tmp_path, isolation):
    parts = (f"  - {{name: w, image: {inmates}/blkcheck.elf, cmdline: \"seed=7\", cpus: [0], "
             f"memory: 16M, isolation: {isolation}, devices: [{{type: blk, server: blkio, "
             f"disk: d, offset: 4M, size: 4M}}]}}\n"
             f"  - {{name: r, image: {inmates}/blkcheck.elf, cmdline: \"expect-readonly\", "
             f"cpus: [1], memory: 16M, isolation: {isolation}, devices: [{{type: blk, "
             f"server: blkio, disk: d, offset: 8M, size: 4M, readonly: true}}]}}\n")
    r, events = run_system(bulkhead, tmp_path, blk_server(tmp_path), parts)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "w        | inmate-test: " in r.stdout and ", 0 failures" in r.stdout
    data = (tmp_path / "disk.img").read_bytes()
    assert len(data) == 16 * MiB
    assert data[:4 * MiB] == bytes(4 * MiB)            # before w's slice: untouched
    assert data[4 * MiB:8 * MiB].count(0) < MiB        # w's slice: its pattern
    assert data[8 * MiB:] == bytes(8 * MiB)            # r's read-only slice and the rest
    assert [e for e in events if e["event"] == "server_exit"][0]["expected"] is True


def test_console_and_rng_devices(bulkhead, inmates, tmp_path):
    servers = "  - {name: conio, class: console}\n  - {name: rngio, class: rng}\n"
    parts = (f"  - {{name: talker, image: {inmates}/vconsole.elf, cmdline: \"lines=3\", "
             f"cpus: [0], memory: 16M, devices: [{{type: console, server: conio}}]}}\n"
             f"  - {{name: dice, image: {inmates}/rngcheck.elf, cpus: [1], memory: 16M, "
             f"isolation: shared, devices: [{{type: rng, server: rngio}}]}}\n")
    r, events = run_system(bulkhead, tmp_path, servers, parts)
    assert r.returncode == 0, r.stdout + r.stderr
    for i in (1, 2, 3):
        assert f"talker   | talker: virtio-console line {i} of 3" in r.stdout
    log = (tmp_path / "log" / "talker.console.log").read_text()
    assert "talker: virtio-console line 3 of 3" in log
    assert "dice     | inmate-test: " in r.stdout


@pytest.mark.parametrize("mode", ["loop", "oob", "rdonly", "head", "idx", "indirect"])
def test_hostile_guest_breaks_only_its_own_device(bulkhead, inmates, tmp_path, mode):
    parts = (f"  - {{name: evil, image: {inmates}/hostile.elf, cmdline: \"{mode} no-recover\", "
             f"cpus: [0], memory: 16M, isolation: shared, devices: [{{type: blk, "
             f"server: blkio, disk: d, offset: 0, size: 4M}}]}}\n"
             f"  - {{name: good, image: {inmates}/blkcheck.elf, cmdline: \"seed=3 loops=2\", "
             f"cpus: [1], memory: 16M, devices: [{{type: blk, server: blkio, disk: d, "
             f"offset: 8M, size: 4M}}]}}\n")
    r, events = run_system(bulkhead, tmp_path, blk_server(tmp_path), parts)
    assert "good     | inmate-test: " in r.stdout and ", 0 failures" in r.stdout, r.stdout
    errors = [e for e in events if e["event"] == "device_error"]
    assert errors and all(e["partition"] == "evil" and e["server"] == "blkio" for e in errors)
    stop = {e["partition"]: e for e in events if e["event"] == "exit"}
    assert stop["good"]["status"] == 0
    exits = [e for e in events if e["event"] == "server_exit"]
    assert len(exits) == 1 and exits[0]["expected"] is True and exits[0]["status"] == 0
