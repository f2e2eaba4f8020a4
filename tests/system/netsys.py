"""Systems of partitions on networks, for the network tests and bench/net: writes a
system file, runs it with `bulkhead run`, and reads what the net inmates (netping,
netperf, netecho) and the net server's counters report. One place for both, so the
tests and the benchmark measure the same thing."""
import json
import pathlib
import re
import subprocess

PING_RE = re.compile(r"netping: (\d+) sent, (\d+) received, (\d+) lost, rtt "
                     r"min/avg/max/median/p99 = (\d+)/(\d+)/(\d+)/(\d+)/(\d+) us")
STREAM_RE = re.compile(r"netecho: stream: received (\d+) of (\d+) frames \((\d+) lost, "
                       r"(\d+) out of order\), (\d+) bytes in (\d+) us: (\d+) frames/s, "
                       r"([\d.]+) Mbit/s")
SEND_RE = re.compile(r"netperf: sent (\d+) frames, (\d+) bytes in (\d+) us: (\d+) frames/s, "
                     r"([\d.]+) Mbit/s")


class Partition:
    """One partition of a network system: an inmate, its arguments and its net devices
    (a list of dicts: network, and optionally mac, rate)."""

    def __init__(self, name, image, cmdline, nets, cpu=0, isolation="window", memory="16M",
                 extra=""):
        self.name, self.image, self.cmdline, self.nets = name, image, cmdline, nets
        self.cpu, self.isolation, self.memory, self.extra = cpu, isolation, memory, extra


def system_yaml(name, log_dir, partitions, networks=("lan0",), uplinks=None):
    """The text of a system file: one net server switching every network; uplinks maps
    a network to a TAP name."""
    uplinks = uplinks or {}
    lines = [f"system: {{name: {name}, cpus: [0, 1], log_dir: {log_dir}}}",
             "io_servers: [{name: netio, class: net}]", "networks:"]
    for n in networks:
        up = f", uplink: {{tap: {uplinks[n]}}}" if n in uplinks else ""
        lines.append(f"  - {{name: {n}, server: netio{up}}}")
    lines.append("partitions:")
    for p in partitions:
        devs = []
        for d in p.nets:
            extra = "".join(f", {k}: {v}" for k, v in d.items() if k != "network")
            devs.append(f"{{type: net, network: {d['network']}{extra}}}")
        lines += [f"  - name: {p.name}", f"    image: {p.image}", f"    cpus: [{p.cpu}]",
                  f"    memory: {p.memory}", f"    isolation: {p.isolation}",
                  f"    cmdline: \"{p.cmdline}\"", f"    devices: [{', '.join(devs)}]"]
        if p.extra:
            lines.append(p.extra)
    return "\n".join(lines) + "\n"


class Result:
    def __init__(self, proc, log_dir):
        self.returncode = proc.returncode
        self.stdout, self.stderr = proc.stdout, proc.stderr
        self.log_dir = pathlib.Path(log_dir)

    def console(self, partition):
        path = self.log_dir / f"{partition}.console.log"
        return path.read_text() if path.exists() else ""

    def events(self):
        path = self.log_dir / "events.jsonl"
        return [json.loads(l) for l in path.read_text().splitlines()] if path.exists() else []

    def counters(self, partition, device=0):
        """The net server's counters for one port, summed over the server's lives."""
        total = {}
        for e in self.events():
            if e.get("event") == "counters" and e.get("partition") == partition and \
                    e.get("device", 0) == device:
                for k, v in e.items():
                    if isinstance(v, int) and k not in ("device",):
                        total[k] = total.get(k, 0) + v
        return total

    def ping(self, partition):
        m = PING_RE.search(self.console(partition))
        if not m:
            return None
        keys = ("sent", "received", "lost", "min", "avg", "max", "median", "p99")
        return dict(zip(keys, map(int, m.groups())))

    def streams(self, partition):
        keys = ("received", "sent", "lost", "reordered", "bytes", "us", "fps", "mbps")
        return [dict(zip(keys, [int(g) for g in m.groups()[:7]] + [float(m.group(8))]))
                for m in STREAM_RE.finditer(self.console(partition))]

    def sent(self, partition):
        m = SEND_RE.search(self.console(partition))
        if not m:
            return None
        return dict(zip(("frames", "bytes", "us", "fps"), map(int, m.groups()[:4])),
                    mbps=float(m.group(5)))

    def describe(self):
        parts = [f"exit {self.returncode}", "--- stdout", self.stdout[-6000:],
                 "--- stderr", self.stderr[-3000:]]
        return "\n".join(parts)


def run(bulkhead, directory, text, timeout=120, env=None):
    """Writes the system file into directory and runs it; returns a Result."""
    directory = pathlib.Path(directory)
    path = directory / "system.yaml"
    path.write_text(text)
    proc = subprocess.run([bulkhead, "run", str(path)], capture_output=True, text=True,
                          timeout=timeout, env=env)
    m = re.search(r"log_dir: (\S+)\}", text)
    log_dir = directory / m.group(1) if m else directory
    return Result(proc, log_dir)
