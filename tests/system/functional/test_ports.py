"""The inmate ports API over real channels (`bulkhead run`, the `ports` inmate): a queuing
channel carries every message in order while its queue fills; a sampling channel reads
valid while written and invalid once older than refresh; wrong roles, names and types
are clear errors; a hostile end's scribbles are reported as a corrupt channel, not
followed. Also the monitor's --region port fields."""
import os
import subprocess

from test_run import events, private_image, run

CHANNELS = """channels:
  - {{name: cmds, type: queuing, max_message: 64, depth: 4,
     source: {{partition: a, port: CMD_OUT}}, destinations: [{{partition: b, port: CMD_IN}}]}}
  - {{name: speed, type: sampling, max_message: 32, refresh: {refresh},
     source: {{partition: a, port: SPEED_OUT}}, destinations: [{{partition: b, port: SPEED_IN}}]}}
"""


def system(tmp_path, inmates, a, b, refresh="300ms"):
    img = private_image(tmp_path, inmates, "ports")
    path = tmp_path / "system.yaml"
    path.write_text(f"""system: {{name: ports, cpus: [0, 1], log_dir: {tmp_path}/log}}
{CHANNELS.format(refresh=refresh)}partitions:
  - {{name: a, image: {img}, cmdline: "{a}", cpus: [0], memory: 4M}}
  - {{name: b, image: {img}, cmdline: "{b}", cpus: [1], memory: 4M}}
""")
    return path


def exits(tmp_path):
    return {e["partition"]: e["status"] for e in events(tmp_path) if e["event"] == "exit"}


def faults(tmp_path):
    return [e for e in events(tmp_path) if e["event"] in ("fault", "monitor_crash")]


def test_queue_carries_every_message_in_order_while_full(bulkhead, inmates, tmp_path):
    # The destination starts 200 ms late: the source fills the 4 slots and must wait.
    r = run(bulkhead, system(tmp_path, inmates, "send CMD_OUT 200",
                             "recv CMD_IN 200 delay=200"))
    assert r.returncode == 0, r.stdout + r.stderr
    sent = [l for l in r.stdout.splitlines() if "ports: sent 200 messages to 'CMD_OUT'" in l]
    assert sent and "(queue full 0 times)" not in sent[0], r.stdout
    assert "b        | ports: received 200 messages from 'CMD_IN', 0 errors" in r.stdout
    assert exits(tmp_path) == {"a": 0, "b": 0}


def test_sample_is_valid_while_written_and_invalid_when_stale(bulkhead, inmates, tmp_path):
    # 40 samples 10 ms apart, refresh 300 ms: the writer never leaves a gap of refresh.
    r = run(bulkhead, system(tmp_path, inmates, "sample-write SPEED_OUT 40 10",
                             "sample-read SPEED_IN 40"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "a        | ports: wrote 40 samples to 'SPEED_OUT'" in r.stdout
    assert ("b        | ports: 'SPEED_IN': latest sample 40 valid while the writer ran"
            in r.stdout), r.stdout
    assert "0 stale)" in r.stdout
    line = [l for l in r.stdout.splitlines() if "invalid at age" in l]
    assert line, r.stdout
    age = int(line[0].split("invalid at age ")[1].split()[0])
    assert 300000 <= age < 10300000, line


def test_wrong_role_name_or_type_is_a_clear_error(bulkhead, inmates, tmp_path):
    r = run(bulkhead, system(
        tmp_path, inmates,
        "recv CMD_OUT 1 then send NOPE 1 then send SPEED_OUT 1 then peek SPEED_OUT",
        "send CMD_IN 1 then sample-write SPEED_IN 1 1 then peek SPEED_IN"))
    assert r.returncode != 0
    out = r.stdout
    assert ("a        | ports: cannot open 'CMD_OUT' as a queuing destination: wrong role"
            in out), out
    assert "a        | ports: cannot open 'NOPE' as a queuing source: no such port" in out
    assert ("a        | ports: cannot open 'SPEED_OUT' as a queuing source: wrong type of "
            "channel" in out)
    assert ("a        | ports: cannot open 'SPEED_OUT' as a sampling destination: wrong role"
            in out)
    assert "b        | ports: cannot open 'CMD_IN' as a queuing source: wrong role" in out
    assert "b        | ports: cannot open 'SPEED_IN' as a sampling source: wrong role" in out
    assert "b        | ports: 'SPEED_IN' is empty" in out      # nobody wrote it
    assert exits(tmp_path) == {"a": 101, "b": 101}
    assert faults(tmp_path) == []


def test_destination_corrupting_the_tail_is_reported_by_the_source(bulkhead, inmates,
                                                                    tmp_path):
    r = run(bulkhead, system(tmp_path, inmates, "send CMD_OUT 1000",
                             "recv CMD_IN 3 then corrupt CMD_IN tail"))
    out = r.stdout
    assert "b        | ports: corrupted the tail of 'CMD_IN'" in out, out
    assert "a        | ports: send to 'CMD_OUT' failed at message" in out, out
    assert "of 1000: corrupt channel" in out
    assert exits(tmp_path) == {"a": 1, "b": 0}
    assert faults(tmp_path) == []


def test_source_writing_a_bad_length_is_reported_by_the_destination(bulkhead, inmates,
                                                                     tmp_path):
    r = run(bulkhead, system(tmp_path, inmates, "corrupt CMD_OUT length", "recv CMD_IN 1"))
    out = r.stdout
    assert "a        | ports: corrupted the length of 'CMD_OUT'" in out, out
    assert ("b        | ports: receive from 'CMD_IN' failed at message 1 of 1: corrupt "
            "channel" in out), out
    assert exits(tmp_path) == {"a": 0, "b": 1}
    assert faults(tmp_path) == []


def monitor_region(bulkhead, inmates, region_tail, kind="queuing"):
    """`bulkhead monitor` running hello with one 4 KiB region whose --region ends in
    region_tail; returns (exit code, stdout, stderr)."""
    fd = os.memfd_create("chan")
    os.ftruncate(fd, 4096)
    try:
        p = subprocess.run([bulkhead, "monitor", "--image", str(inmates / "hello.elf"),
                            "--memory", "4M", "--region",
                            f"q,{kind},0x100000000,4096,{fd},rw{region_tail}"],
                           capture_output=True, text=True, pass_fds=(fd,), timeout=30)
    finally:
        os.close(fd)
    return p.returncode, p.stdout, p.stderr


def test_region_port_fields(bulkhead, inmates):
    rc, out, err = monitor_region(bulkhead, inmates, "")
    assert rc == 0, err
    assert "hello: region 'q' at 0x100000000, 4 KiB\n" in out
    rc, out, err = monitor_region(bulkhead, inmates, ",port=Q_IN,destination")
    assert rc == 0, err
    assert "hello: region 'q' at 0x100000000, 4 KiB, port 'Q_IN' (destination)" in out
    for bad in (",port=Q_IN", ",source", ",port=Q_IN,source,source", ",port=,source",
                ",port=A,port=B,source", ",sink,port=A", ",port=" + "x" * 33 + ",source"):
        rc, out, err = monitor_region(bulkhead, inmates, bad)
        assert rc == 2, (bad, out, err)
        assert "--region: not NAME,KIND,GPA,SIZE,FD,rw|ro[,port=PORT,source|destination]" \
            in err, err
    rc, out, err = monitor_region(bulkhead, inmates, ",port=Q,source", kind="shared")
    assert rc == 2, (out, err)       # a shared region has no port
    r = subprocess.run([bulkhead, "monitor", "--help"], capture_output=True, text=True)
    assert "[,port=PORT,source|destination]" in r.stdout
