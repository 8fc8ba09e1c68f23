#!/usr/bin/env bash
# Replication benchmark: three `strata serve` processes on this machine,
# acks=all produce throughput with 3 replicas against 1 replica in the same
# run (interleaved repetitions), end-to-end latency at a fixed rate with 3
# replicas, and the brokers' CPU per GB for replication against a
# consumer's read of the same bytes. Prints Markdown for
# docs/BENCHMARKS.md.
#
#   bench/replication.sh                 3 repetitions of 2 GB per topic
#   REPS=1 RECORDS=200000 bench/replication.sh     quicker
#
# All traffic is on 127.0.0.1; the brokers are killed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

REPS=${REPS:-3}
RECORDS=${RECORDS:-1000000} # of 1 KiB each, per produce run
SIZE=${SIZE:-1024}
PARTS=${PARTS:-8}
E2E_RATE=${E2E_RATE:-10000}
E2E_DURATION=${E2E_DURATION:-20s}

work=$(mktemp -d "${TMPDIR:-/tmp}/strata-repbench.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/strata" ./cmd/strata
S="$work/strata"

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ports=() cports=()
for i in 1 2 3; do ports+=("$(free_port)"); cports+=("$(free_port)"); done
voters="1@127.0.0.1:${cports[0]},2@127.0.0.1:${cports[1]},3@127.0.0.1:${cports[2]}"
for i in 1 2 3; do
	"$S" serve --set node.id=$i --set "controller.quorum.voters=$voters" \
		--set "listeners=PLAINTEXT://127.0.0.1:${ports[$((i - 1))]},CONTROLLER://127.0.0.1:${cports[$((i - 1))]}" \
		--set "log.dirs=$work/node-$i" --set "http.listener=127.0.0.1:$(free_port)" --set http.pprof.enable=true >"$work/node-$i.log" 2>&1 &
	pids+=($!)
done
boot="127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}"
for _ in $(seq 300); do
	n=0
	for i in 1 2 3; do grep -q "strata ready" "$work/node-$i.log" && n=$((n + 1)); done
	[ "$n" = 3 ] && break
	sleep 0.2
done
[ "$n" = 3 ] || { echo "cluster did not start"; tail "$work"/node-*.log; exit 1; }

# cpu: the three brokers' user+system CPU seconds so far.
cpu() {
	local t=0 tick
	tick=$(getconf CLK_TCK)
	for p in "${pids[@]}"; do
		t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
	done
	echo "scale=3; $t / $tick" | bc
}
field() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

"$S" topic create rf1 --bootstrap "$boot" --partitions "$PARTS" --replicas 1 >/dev/null
"$S" topic create rf3 --bootstrap "$boot" --partitions "$PARTS" --replicas 3 --config min.insync.replicas=2 >/dev/null
"$S" topic create e2e3 --bootstrap "$boot" --partitions "$PARTS" --replicas 3 --config min.insync.replicas=2 >/dev/null
sleep 2

echo "| rep | RF 1 MB/s | RF 3 MB/s | RF3/RF1 | RF 1 p99 ms | RF 3 p99 ms | CPU s/GB RF 1 | CPU s/GB RF 3 |"
echo "|---|---|---|---|---|---|---|---|"
declare -A mbs p99 cpugb
for rep in $(seq "$REPS"); do
	for rf in 1 3; do
		curls=()
		if [ -n "${PROFILE:-}" ] && [ "$rf" = 3 ]; then
			for i in 1 2 3; do
				addr=$(grep -o 'http=[0-9.:]*' "$work/node-$i.log" | head -1 | cut -d= -f2)
				echo "profiling node $i at $addr" >&2
				curl -s -o "$PROFILE/node-$i.pprof" "http://$addr/debug/pprof/profile?seconds=4" &
				curls+=($!)
			done
		fi
		c0=$(cpu)
		out=$("$S" perf produce --bootstrap "$boot" --topic "rf$rf" --num-records "$RECORDS" --record-size "$SIZE" --acks all --json)
		c1=$(cpu)
		for c in "${curls[@]}"; do wait "$c"; done # the profiles being taken
		mbs[$rf]=$(echo "$out" | field 'd["mb_per_sec"]')
		p99[$rf]=$(echo "$out" | field 'd["latency_ms"]["p99"]')
		bytes=$(echo "$out" | field 'd["bytes"]')
		cpugb[$rf]=$(echo "scale=2; ($c1 - $c0) * 1000000000 / $bytes" | bc)
	done
	ratio=$(echo "scale=2; ${mbs[3]} / ${mbs[1]}" | bc)
	echo "| $rep | ${mbs[1]} | ${mbs[3]} | $ratio | ${p99[1]} | ${p99[3]} | ${cpugb[1]} | ${cpugb[3]} |"
done

# A consumer reads rf1 (the bytes the leaders send once, by sendfile): the
# brokers' CPU per GB for that, against what replication added above.
c0=$(cpu)
out=$("$S" perf consume --bootstrap "$boot" --topic rf1 --json)
c1=$(cpu)
bytes=$(echo "$out" | field 'd["bytes"]')
echo
echo "consume of rf1: $(echo "$out" | field 'd["mb_per_sec"]') MB/s, brokers' CPU $(echo "scale=2; ($c1 - $c0) * 1000000000 / $bytes" | bc) s/GB"

echo
echo "e2e, RF 3, acks=all, $E2E_RATE records/s of $SIZE B for $E2E_DURATION (the first 2 s out of the latency figures):"
"$S" perf e2e --bootstrap "$boot" --topic e2e3 --throughput "$E2E_RATE" --record-size "$SIZE" --duration "$E2E_DURATION" --warmup 2s --json |
	field '"p50 %s ms, p99 %s ms, p99.9 %s ms, max %s ms, records %s" % (d["latency_ms"]["p50"], d["latency_ms"]["p99"], d["latency_ms"]["p999"], d["latency_ms"]["max"], d["records"])'
