#!/bin/sh
# The last part of 'make demo': runs examples/restart.yaml and kills its block server
# three times while both partitions verify their data, printing each kill and what the
# supervisor did about it; ends with bulkhead run's status (0: nothing was lost).
set -u
cd "$(dirname "$0")/.."
bin=${BULKHEAD:-build/bulkhead}
system=examples/restart.yaml
log=build/run/restart
rm -rf "$log"
"$bin" run "$system" &
run=$!
i=0
while [ ! -S "$log/control.sock" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
for k in 1 2 3; do
	sleep 0.4
	pid=$("$bin" ctl --socket "$log/control.sock" --json status 2>/dev/null |
		sed -n 's/.*"io_servers": *\[[^]]*"pid": *\([0-9]*\).*/\1/p')
	[ -n "$pid" ] || break
	echo "demo: kill -9 of I/O server 'blkio' (pid $pid), kill $k of 3"
	kill -9 "$pid"
	sleep 0.3
done
wait "$run"
status=$?
echo "demo: what the supervisor logged ($log/events.jsonl):"
grep -E '"(server_exit|server_start|server_restart|standby_start)"' "$log/events.jsonl" |
	sed 's/,"time".*//; s/^/  /'
exit $status
