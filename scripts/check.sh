#!/bin/sh
# Runs every test: cmocka unit tests in the plain and the sanitizer build, system tests
# (pytest) against the plain binary, and the system-file tests again against the
# sanitizer binary. Ends with one 'N passed, N failed' line over all of them.
set -u
build=${1:-build}
asan=${2:-build-asan}
python=/usr/bin/python3
results=$build/test-results
rm -rf "$results"
mkdir -p "$results"

echo "== unit tests ($build)"
meson test -C "$build" --print-errorlogs -q
cp "$build/meson-logs/testlog.json" "$results/unit.json"

echo "== unit tests under ASan+UBSan ($asan)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	meson test -C "$asan" --print-errorlogs -q
cp "$asan/meson-logs/testlog.json" "$results/unit-asan.json"

echo "== system tests"
$python -m pytest -q -p no:cacheprovider tests/system --junitxml="$results/system.xml"

echo "== system-file tests under ASan+UBSan"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1 BULKHEAD_BIN="$(pwd)/$asan/bulkhead" \
	$python -m pytest -q -p no:cacheprovider tests/system/functional/test_configs.py \
	tests/system/functional/test_check_cli.py --junitxml="$results/system-asan.xml"

echo "== total"
$python scripts/tally.py "$results"/*.json "$results"/*.xml
