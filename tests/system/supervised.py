"""A system under `bulkhead run` as the control and restart tests drive it: start it and
wait for its control socket, talk to it with `bulkhead ctl`, read its events, and the
two-partition block system (blkcheck on two slices of one disk) that the server-restart,
standby and partition-restart tests share."""
import json
import subprocess
import time


def running(bulkhead, path, timeout=20):
    """Starts `bulkhead run PATH`; returns (process, control socket) once it listens.
    The socket is log_dir/control.sock, log_dir being the file's directory's log/."""
    sock = path.parent / "log" / "control.sock"
    proc = subprocess.Popen([bulkhead, "run", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + timeout
    while time.time() < deadline and not sock.exists():
        time.sleep(0.02)
    assert sock.exists(), "bulkhead run never made its control socket"
    return proc, sock


def ctl(bulkhead, *args, timeout=30):
    return subprocess.run([bulkhead, "ctl", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def events(tmp_path):
    """The events written so far (a line still being written is left out)."""
    try:
        with open(tmp_path / "log" / "events.jsonl") as f:
            return [json.loads(l) for l in f if l.endswith("\n")]
    except FileNotFoundError:
        return []


def blk_pair(tmp_path, inmates, isolation, name="rs", server="", loops=(12, 12)):
    """Two blkcheck partitions (one on CPU 0, two on CPU 1) on slices of one disk of
    server 'blkio'; server adds keys to the server (restart:, standby:)."""
    return f"""system: {{name: {name}, cpus: [0, 1], log_dir: {tmp_path}/log}}
io_servers:
  - name: blkio
    class: blk{server}
    disks:
      - {{name: d, file: {tmp_path}/disk.img, size: 8M, create: true}}
partitions:
  - {{name: one, image: {inmates}/blkcheck.elf, cmdline: "seed=11 loops={loops[0]}", cpus: [0],
     memory: 16M, isolation: {isolation},
     devices: [{{type: blk, server: blkio, disk: d, offset: 0, size: 2M}}]}}
  - {{name: two, image: {inmates}/blkcheck.elf, cmdline: "seed=22 loops={loops[1]}", cpus: [1],
     memory: 16M, isolation: {isolation},
     devices: [{{type: blk, server: blkio, disk: d, offset: 4M, size: 2M}}]}}
"""
