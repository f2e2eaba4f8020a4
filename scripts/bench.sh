#!/bin/sh
# Runs every benchmark; each prints its figures and writes JSON under <build>/bench/.
set -eu
build=${1:-build}
for b in bench/*/bench_*.py; do
	/usr/bin/python3 "$b" "$build"
done
