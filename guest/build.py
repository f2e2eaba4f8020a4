#!/usr/bin/python3
"""Builds the Linux guest image for bulkhead's Linux partitions: build/guest/vmlinuz and
build/guest/initramfs.cpio.gz, from Debian packages only (the cloud kernel, busybox-static,
iperf3 and its libraries), with guest/init as /init. Incremental; see docs/guest.md."""
import argparse
import fcntl
import gzip
import hashlib
import io
import os
import pathlib
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import urllib.parse

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent

KERNEL_META = "linux-image-cloud-amd64"
BUSYBOX = "busybox-static"
IPERF = "iperf3"

# Modules /init loads, in this order; their dependencies (from modules.dep) go first.
MODULES = ["virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev",
           "virtio_pci", "virtio_blk", "failover", "net_failover", "virtio_net",
           "virtio_console", "virtio-rng", "pvpanic", "pvpanic-mmio"]

LIB_DIRS = ["lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib", "usr/lib"]
GUEST_LIBDIR = "lib/x86_64-linux-gnu"

# Bumped when the image layout changes in a way the input hashes would not show.
FORMAT = "1"

# What say() and die() print first; rig/build.py, which imports these helpers, sets "rig".
PREFIX = "guest"


def say(msg):
    print(f"{PREFIX}: {msg}", flush=True)


def die(msg):
    print(f"{PREFIX}: error: {msg}", file=sys.stderr)
    sys.exit(1)


def run(cmd, **kw):
    try:
        return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout
    except FileNotFoundError:
        die(f"'{cmd[0]}' is not installed (run 'make deps')")
    except subprocess.CalledProcessError as e:
        die(f"'{' '.join(cmd)}' failed: {e.stderr.strip()}")


# ---- resolving packages (the candidate versions apt would install) -------------------

class Apt:
    """Candidate versions and dependencies from apt's lists. apt-cache here keeps no
    cache (Dir::Cache::pkgcache ""), so a private one in the output directory makes the
    up-to-date check fast; apt rebuilds it whenever the lists change."""

    def __init__(self, out):
        self.opts = ["-o", f"Dir::Cache::pkgcache={out / 'apt-pkgcache.bin'}"]
        self.updated = False

    def show(self, pkgs):
        """{package: (version, [dependency names])} for the candidate versions."""
        r = subprocess.run(["apt-cache", *self.opts, "show", "--no-all-versions", *pkgs],
                           text=True, capture_output=True)
        if r.returncode and not self.updated and os.geteuid() == 0:
            # A fresh machine may have no package lists yet: fetch them once.
            say("apt knows no such package yet: apt-get update")
            run(["apt-get", "update", "-qq"])
            self.updated = True
            return self.show(pkgs)
        if r.returncode:
            die(f"apt-cache show {' '.join(pkgs)}: {r.stderr.strip()} "
                "(run 'apt-get update' as root first)")
        out = r.stdout
        res = {}
        for para in out.split("\n\n"):
            fields = {}
            for line in para.splitlines():
                m = re.match(r"^([A-Za-z-]+):\s*(.*)$", line)
                if m:
                    fields[m.group(1)] = m.group(2)
            if "Package" not in fields:
                continue
            deps = []
            for key in ("Pre-Depends", "Depends"):
                for alt in filter(None, (d.strip() for d in fields.get(key, "").split(","))):
                    first = alt.split("|")[0].strip()   # the first alternative, as apt would
                    deps.append(re.split(r"[\s(:]", first)[0])
            res[fields["Package"]] = (fields["Version"], deps)
        for p in pkgs:
            if p not in res:
                die(f"apt knows no package '{p}' (run 'apt-get update' as root first)")
        return res


def resolve(apt):
    """(kernel package, {package: version}) for everything the image is made of."""
    meta = apt.show([KERNEL_META])[KERNEL_META]
    kernels = [d for d in meta[1] if d.startswith("linux-image-")]
    if not kernels:
        die(f"{KERNEL_META} depends on no linux-image-* package")
    info = apt.show([kernels[0], BUSYBOX, IPERF])
    pkgs = {p: v for p, (v, _) in info.items()}
    # iperf3's shared libraries: the closure of its Depends over library packages (Debian
    # names every shared-library package lib*); the ELF walk below takes what it needs.
    level = [IPERF]
    while level:
        new = sorted({d for p in level for d in info[p][1]
                      if d.startswith("lib") and d not in pkgs})
        if new:
            info.update(apt.show(new))
            pkgs.update({p: info[p][0] for p in new})
        level = new
    return kernels[0], pkgs


def deb_name(pkg, version):
    # apt-get download names files NAME_VERSION_ARCH.deb with ':' escaped as %3a.
    return f"{pkg}_{urllib.parse.quote(version, safe='+~.-_').replace('%3A', '%3a')}_"


def download(debdir, pkgs):
    debdir.mkdir(parents=True, exist_ok=True)
    have = {p.name for p in debdir.glob("*.deb")}
    files, missing = {}, []
    for pkg, ver in sorted(pkgs.items()):
        prefix = deb_name(pkg, ver)
        found = sorted(n for n in have if n.startswith(prefix))
        if found:
            files[pkg] = debdir / found[0]
        else:
            missing.append(f"{pkg}={ver}")
    if missing:
        say(f"downloading {' '.join(missing)}")
        cmd = ["apt-get", "download"]
        if os.geteuid() == 0:          # root: no _apt sandbox for a directory it cannot read
            cmd[1:1] = ["-o", "APT::Sandbox::User=root"]
        run(cmd + missing, cwd=debdir)
        return download(debdir, pkgs)
    for stale in sorted(have - {f.name for f in files.values()}):
        say(f"removing stale {stale}")
        (debdir / stale).unlink()
    return files


# ---- the pieces of the image ----------------------------------------------------------

def extract(files, tree):
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir(parents=True)
    roots = {}
    for pkg, deb in files.items():
        roots[pkg] = tree / pkg
        run(["dpkg-deb", "-x", str(deb), str(roots[pkg])])
    return roots


def kernel_modules(kroot, modules=MODULES):
    """(kernel release, [module paths relative to lib/modules/REL, in load order], their
    modules.dep entries) for MODULES and everything they depend on."""
    rels = sorted((kroot / "lib/modules").iterdir())
    if len(rels) != 1:
        die(f"expected one kernel release in the kernel package, found {len(rels)}")
    rel = rels[0].name
    if not (rels[0] / "modules.dep").exists():
        # Debian generates modules.dep at install time; make it for the extracted tree.
        run(["depmod", "-b", str(kroot), rel])
    deps = {}
    for line in (rels[0] / "modules.dep").read_text().splitlines():
        mod, _, rest = line.partition(":")
        deps[mod] = rest.split()
    by_name = {}
    for mod in deps:
        by_name[re.sub(r"\.ko(\.[a-z]+)?$", "", os.path.basename(mod)).replace("-", "_")] = mod
    builtin = set()
    for line in (rels[0] / "modules.builtin").read_text().splitlines():
        builtin.add(os.path.basename(line)[:-3].replace("-", "_"))
    order = []

    def visit(mod):
        if mod in order:
            return
        for d in reversed(deps[mod]):      # modules.dep lists the deepest dependency last
            visit(d)
        order.append(mod)

    for name in modules:
        key = name.replace("-", "_")
        if key in by_name:
            visit(by_name[key])
        elif key not in builtin:
            die(f"kernel {rel} has no module {name}")
    for mod in order:
        if not mod.endswith(".ko"):
            die(f"{mod}: compressed modules are not supported by busybox insmod here")
    return rel, order, {m: deps[m] for m in order}


def elf_needs(path):
    """(interpreter or None, [NEEDED sonames]) of an ELF file."""
    out = run(["readelf", "-W", "-d", "-l", str(path)])
    interp = re.search(r"Requesting program interpreter: (\S+)\]", out)
    return (interp.group(1) if interp else None,
            re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out))


def find_lib(roots, soname):
    for r in roots:
        for d in LIB_DIRS:
            p = r / d / soname
            if p.exists():
                return p.resolve()
    return None


def libraries(binary, roots):
    """{soname: file} every library binary needs, transitively, and the interpreter."""
    interp, needed = elf_needs(binary)
    libs, todo = {}, list(needed)
    while todo:
        so = todo.pop()
        if so in libs:
            continue
        p = find_lib(roots, so)
        if not p:
            die(f"no package among {', '.join(r.name for r in roots)} provides {so}")
        libs[so] = p
        todo += elf_needs(p)[1]
    if interp:
        p = find_lib(roots, os.path.basename(interp))
        if not p:
            die(f"interpreter {interp} not found")
        libs[os.path.basename(interp)] = p
    return interp, libs


# ---- cpio (newc), written here so entries are root-owned and reproducible --------------

class Cpio:
    def __init__(self):
        self.buf = io.BytesIO()
        self.ino = 1
        self.names = set()

    def _entry(self, name, mode, data=b"", rdev=(0, 0)):
        if name in self.names:
            return
        self.names.add(name)
        nameb = name.encode() + b"\0"
        hdr = "070701" + "".join(f"{v:08x}" for v in (
            self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(nameb), 0))
        self.ino += 1
        self.buf.write(hdr.encode() + nameb)
        self.buf.write(b"\0" * (-(110 + len(nameb)) % 4))
        self.buf.write(data)
        self.buf.write(b"\0" * (-len(data) % 4))

    def dir(self, name):
        parts = name.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            self._entry("/".join(parts[:i]), stat.S_IFDIR | 0o755)

    def file(self, name, data, mode=0o644):
        self.dir(os.path.dirname(name))
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name, target):
        self.dir(os.path.dirname(name))
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, name, major, minor, mode=0o600):
        self.dir(os.path.dirname(name))
        self._entry(name, stat.S_IFCHR | mode, rdev=(major, minor))

    def finish(self):
        self._entry("TRAILER!!!", 0)
        self.buf.write(b"\0" * (-self.buf.tell() % 512))
        return self.buf.getvalue()


BH_EXIT_SRC = HERE / "bh-exit.c"
BH_EXIT_CFLAGS = ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-static", "-nostdlib",
                  "-fno-pie", "-no-pie", "-ffreestanding", "-fno-stack-protector",
                  "-fno-asynchronous-unwind-tables", "-s", "-Wl,--build-id=none"]


def build_bh_exit():
    """guest/bh-exit.c, freestanding and static: /init's 32-bit write of the exit status
    to bulkhead's system-control port (docs/guest.md)."""
    cc = os.environ.get("CC", "cc")
    with tempfile.TemporaryDirectory() as tmp:
        exe = pathlib.Path(tmp) / "bh-exit"
        run([cc, *BH_EXIT_CFLAGS, "-o", str(exe), str(BH_EXIT_SRC)])
        return exe.read_bytes()


def build_initramfs(roots, kernel_pkg):
    cp = Cpio()
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "run",
              "root", "etc", "mnt"):
        cp.dir(d)
    cp.chardev("dev/console", 5, 1)
    cp.chardev("dev/null", 1, 3, 0o666)
    cp.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    cp.file("etc/group", b"root:x:0:\n")
    cp.file("init", (HERE / "init").read_bytes(), 0o755)
    cp.file("bin/bh-exit", build_bh_exit(), 0o755)

    busybox = roots[BUSYBOX] / "bin/busybox"
    cp.file("bin/busybox", busybox.read_bytes(), 0o755)
    applets = run([str(busybox), "--list-full"]).split()
    for a in applets:
        if a != "bin/busybox" and a != "linuxrc":
            cp.symlink(a, "/bin/busybox")

    iperf = roots[IPERF] / "usr/bin/iperf3"
    libroots = [r for p, r in sorted(roots.items()) if p.startswith("lib")]
    interp, libs = libraries(iperf, libroots)
    cp.file("usr/bin/iperf3", iperf.read_bytes(), 0o755)
    for so, p in sorted(libs.items()):
        cp.file(f"{GUEST_LIBDIR}/{so}", p.read_bytes(), 0o755)
    if interp and interp != f"/{GUEST_LIBDIR}/{os.path.basename(interp)}":
        cp.symlink(interp.lstrip("/"), f"/{GUEST_LIBDIR}/{os.path.basename(interp)}")

    kroot = roots[kernel_pkg]
    rel, order, deps = kernel_modules(kroot)
    mdir = f"lib/modules/{rel}"
    for mod in order:
        cp.file(f"{mdir}/{mod}", (kroot / mdir / mod).read_bytes())
    # modules.dep for the modules present (busybox modprobe reads it), and the load order.
    cp.file(f"{mdir}/modules.dep",
            "".join(f"{m}: {' '.join(deps[m])}\n" for m in order).encode())
    cp.file(f"{mdir}/bh-load", "".join(f"{m}\n" for m in order).encode())
    return cp.finish(), rel, order, sorted(libs)


# ---- main -----------------------------------------------------------------------------

def inputs_key(pkgs):
    h = hashlib.sha256(FORMAT.encode())
    for pkg, ver in sorted(pkgs.items()):
        h.update(f"{pkg}={ver}\n".encode())
    for f in (HERE / "init", BH_EXIT_SRC, pathlib.Path(__file__).resolve()):
        h.update(f.read_bytes())
    h.update(" ".join(BH_EXIT_CFLAGS).encode())
    return h.hexdigest()


def write_atomic(path, data):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(ROOT / "build/guest"), help="output directory")
    ap.add_argument("--force", action="store_true", help="rebuild even when up to date")
    args = ap.parse_args()
    out = pathlib.Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)

    lock = open(out / ".lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)       # one build at a time per output directory
    kernel_pkg, pkgs = resolve(Apt(out))
    key = inputs_key(pkgs)
    stamp = out / "stamp"
    outputs = [out / "vmlinuz", out / "initramfs.cpio.gz"]
    if (not args.force and all(p.exists() for p in outputs) and stamp.exists()
            and stamp.read_text().strip() == key):
        say(f"up to date ({kernel_pkg} {pkgs[kernel_pkg]})")
        return

    say(f"kernel {kernel_pkg} {pkgs[kernel_pkg]} (via {KERNEL_META})")
    files = download(out / "debs", pkgs)
    say(f"extracting {len(files)} packages into {out / 'pkgs'}")
    roots = extract(files, out / "pkgs")

    image, rel, order, libs = build_initramfs(roots, kernel_pkg)
    say(f"modules ({rel}): {' '.join(os.path.basename(m)[:-3] for m in order)}")
    say(f"iperf3 libraries: {' '.join(libs)}")
    write_atomic(out / "initramfs.cpio.gz", gzip.compress(image, compresslevel=9, mtime=0))
    vmlinuz = roots[kernel_pkg] / f"boot/vmlinuz-{rel}"
    write_atomic(out / "vmlinuz", vmlinuz.read_bytes())
    manifest = [f"kernel-release {rel}"] + [f"package {p} {v}" for p, v in sorted(pkgs.items())]
    (out / "manifest.txt").write_text("\n".join(manifest) + "\n")
    stamp.write_text(key + "\n")
    shutil.rmtree(out / "pkgs")
    for p in outputs:
        say(f"wrote {p.relative_to(ROOT) if p.is_relative_to(ROOT) else p} "
            f"({p.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
