#!/bin/sh
# Runs every benchmark (every bench/*/bench_*.py: boot, blk, net, restart, linux,
# linux_own, latency); each prints its figures and writes JSON under <build>/bench/.
set -eu
build=${1:-build}
for b in bench/*/bench_*.py; do
	/usr/bin/python3 "$b" "$build"
done
