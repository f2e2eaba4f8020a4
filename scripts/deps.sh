#!/bin/sh
# Installs the Debian packages bulkhead needs, only those missing; idempotent.
set -e
pkgs="gcc make meson ninja-build pkg-config libyaml-dev libjansson-dev libseccomp-dev
      liburing-dev libcmocka-dev python3 python3-pytest python3-pexpect clang
      libclang-rt-14-dev iproute2 iputils-ping qemu-system-x86 qemu-utils fio kmod binutils"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends $missing
