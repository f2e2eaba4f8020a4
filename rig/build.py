#!/usr/bin/python3
"""Builds bulkhead's rig: build/rig/vmlinuz and build/rig/initramfs.cpio, a QEMU-TCG
machine (-cpu max, so SVM) whose /dev/kvm is KVM with real hardware-virtualisation
semantics. Debian's cloud kernel and busybox-static from Debian packages, the kvm
modules, the bulkhead binary with its libraries, the inmates and the Linux guest image,
with rig/init as /init. Incremental; see docs/rig.md."""
import argparse
import fcntl
import hashlib
import importlib.util
import os
import pathlib
import shutil
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent


def _guest_builder():
    """guest/build.py as a module: the package, cpio and library helpers are shared."""
    spec = importlib.util.spec_from_file_location("guest_build", ROOT / "guest" / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


gb = _guest_builder()
gb.PREFIX = "rig"
say, die = gb.say, gb.die

KERNEL_META = gb.KERNEL_META          # the same cloud kernel as the guest image
BUSYBOX = gb.BUSYBOX

# Modules /init loads, in this order; their dependencies (from modules.dep) go first.
MODULES = ["irqbypass", "kvm", "kvm-amd"]

# Bumped when the image layout changes in a way the input hashes would not show.
FORMAT = "1"

# Files of the image that come from the build tree, at their host paths: rig/run.py
# compares them with the host's current files (files.txt) and overlays the changed ones.
FILES_LIST = "files.txt"


def resolve(apt):
    """(kernel package, {package: version})."""
    meta = apt.show([KERNEL_META])[KERNEL_META]
    kernels = [d for d in meta[1] if d.startswith("linux-image-")]
    if not kernels:
        die(f"{KERNEL_META} depends on no linux-image-* package")
    info = apt.show([kernels[0], BUSYBOX])
    return kernels[0], {p: v for p, (v, _) in info.items()}


def seed_debs(debdir, pkgs, others):
    """Hard-links (or copies) .debs the guest build already downloaded, so the kernel is
    fetched once per machine."""
    debdir.mkdir(parents=True, exist_ok=True)
    for pkg, ver in pkgs.items():
        prefix = gb.deb_name(pkg, ver)
        if any(p.name.startswith(prefix) for p in debdir.glob("*.deb")):
            continue
        for src in sorted(others.glob(f"{prefix}*.deb")) if others.is_dir() else []:
            try:
                os.link(src, debdir / src.name)
            except OSError:
                shutil.copyfile(src, debdir / src.name)
            say(f"reusing {src.name} from {others}")
            break


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_files(bulkhead, inmates, guest):
    """[host path] of the build-tree files the rig carries, at the same paths inside."""
    files = [bulkhead]
    elves = sorted(inmates.glob("*.elf"))
    if not elves:
        die(f"no inmates in {inmates} (run 'make')")
    files += elves
    for name in ("vmlinuz", "initramfs.cpio.gz"):
        if not (guest / name).is_file():
            die(f"{guest / name} is missing (run 'make guest')")
        files.append(guest / name)
    return files


def inputs_key(pkgs, hashes, libs):
    h = hashlib.sha256(FORMAT.encode())
    for pkg, ver in sorted(pkgs.items()):
        h.update(f"{pkg}={ver}\n".encode())
    for path, digest in hashes:
        h.update(f"{path} {digest}\n".encode())
    for so, path in sorted(libs.items()):
        h.update(f"{so} {path} {sha256(path)}\n".encode())
    for f in (HERE / "init", pathlib.Path(__file__).resolve(), ROOT / "guest" / "build.py"):
        h.update(f.read_bytes())
    return h.hexdigest()


def build_initramfs(roots, kernel_pkg, bulkhead, interp, libs, files):
    cp = gb.Cpio()
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "run",
              "root", "etc", "mnt"):
        cp.dir(d)
    cp.chardev("dev/console", 5, 1)
    cp.chardev("dev/null", 1, 3, 0o666)
    cp.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    cp.file("etc/group", b"root:x:0:\n")
    cp.file("init", (HERE / "init").read_bytes(), 0o755)

    busybox = roots[BUSYBOX] / "bin/busybox"
    cp.file("bin/busybox", busybox.read_bytes(), 0o755)
    for a in gb.run([str(busybox), "--list-full"]).split():
        if a not in ("bin/busybox", "linuxrc"):
            cp.symlink(a, "/bin/busybox")

    kroot = roots[kernel_pkg]
    rel, order, deps = gb.kernel_modules(kroot, MODULES)
    mdir = f"lib/modules/{rel}"
    for mod in order:
        cp.file(f"{mdir}/{mod}", (kroot / mdir / mod).read_bytes())
    cp.file(f"{mdir}/modules.dep",
            "".join(f"{m}: {' '.join(deps[m])}\n" for m in order).encode())
    cp.file(f"{mdir}/rig-load", "".join(f"{m}\n" for m in order).encode())

    # The bulkhead binary's libraries are the host's (it was linked against them).
    for so, p in sorted(libs.items()):
        cp.file(f"{gb.GUEST_LIBDIR}/{so}", p.read_bytes(), 0o755)
    if interp and interp != f"/{gb.GUEST_LIBDIR}/{os.path.basename(interp)}":
        cp.symlink(interp.lstrip("/"), f"/{gb.GUEST_LIBDIR}/{os.path.basename(interp)}")
    for f in files:
        cp.file(str(f).lstrip("/"), f.read_bytes(), f.stat().st_mode & 0o777)
    cp.symlink("usr/bin/bulkhead", str(bulkhead))
    return cp.finish(), rel, order


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(ROOT / "build/rig"), help="output directory")
    ap.add_argument("--bulkhead", default=str(ROOT / "build/bulkhead"),
                    help="the bulkhead binary (default build/bulkhead)")
    ap.add_argument("--inmates", default=str(ROOT / "build/inmates"),
                    help="directory of the inmates' *.elf (default build/inmates)")
    ap.add_argument("--guest", default=str(ROOT / "build/guest"),
                    help="the Linux guest image's directory (default build/guest)")
    ap.add_argument("--force", action="store_true", help="rebuild even when up to date")
    args = ap.parse_args()
    out = pathlib.Path(args.out).resolve()
    bulkhead = pathlib.Path(args.bulkhead).resolve()
    inmates = pathlib.Path(args.inmates).resolve()
    guest = pathlib.Path(args.guest).resolve()
    if not bulkhead.is_file():
        die(f"{bulkhead} is missing (run 'make')")
    out.mkdir(parents=True, exist_ok=True)

    lock = open(out / ".lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)       # one build at a time per output directory
    kernel_pkg, pkgs = resolve(gb.Apt(out))
    files = tree_files(bulkhead, inmates, guest)
    hashes = [(str(f), sha256(f)) for f in files]
    interp, libs = gb.libraries(bulkhead, [pathlib.Path("/")])
    key = inputs_key(pkgs, hashes, libs)
    stamp = out / "stamp"
    outputs = [out / "vmlinuz", out / "initramfs.cpio", out / FILES_LIST]
    if (not args.force and all(p.exists() for p in outputs) and stamp.exists()
            and stamp.read_text().strip() == key):
        say(f"up to date ({kernel_pkg} {pkgs[kernel_pkg]})")
        return

    say(f"kernel {kernel_pkg} {pkgs[kernel_pkg]} (via {KERNEL_META})")
    seed_debs(out / "debs", pkgs, guest / "debs")
    debs = gb.download(out / "debs", pkgs)
    say(f"extracting {len(debs)} packages into {out / 'pkgs'}")
    roots = gb.extract(debs, out / "pkgs")

    image, rel, order = build_initramfs(roots, kernel_pkg, bulkhead, interp, libs, files)
    say(f"modules ({rel}): {' '.join(os.path.basename(m)[:-3] for m in order)}")
    say(f"bulkhead libraries: {' '.join(sorted(libs))}")
    say(f"from the build tree: {bulkhead.name}, {len(files) - 3} inmates, the guest image")
    # Uncompressed: the rig boots under TCG, where inflating costs more than reading, and
    # rig/run.py appends its own cpio of the files a system names.
    gb.write_atomic(out / "initramfs.cpio", image)
    vmlinuz = roots[kernel_pkg] / f"boot/vmlinuz-{rel}"
    gb.write_atomic(out / "vmlinuz", vmlinuz.read_bytes())
    gb.write_atomic(out / FILES_LIST,
                    "".join(f"{digest} {path}\n" for path, digest in hashes).encode())
    manifest = ([f"kernel-release {rel}"]
                + [f"package {p} {v}" for p, v in sorted(pkgs.items())]
                + [f"library {so} {p}" for so, p in sorted(libs.items())]
                + [f"file {path} {digest}" for path, digest in hashes])
    (out / "manifest.txt").write_text("\n".join(manifest) + "\n")
    stamp.write_text(key + "\n")
    shutil.rmtree(out / "pkgs")
    for p in outputs[:2]:
        say(f"wrote {p.relative_to(ROOT) if p.is_relative_to(ROOT) else p} "
            f"({p.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
