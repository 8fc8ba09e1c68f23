#!/usr/bin/env bash
# Interop checks: real non-Go Kafka clients from Debian against strata.
#
# Builds strata, starts it on a free 127.0.0.1 port with a fresh data dir,
# drives it with kcat and with python3-confluent-kafka (both librdkafka),
# stops it, and prints "interop: N passed, M failed" last. Every check
# compares what it read back with what it wrote, item by item, and where
# it matters looks at the batches on disk (interop/segments.py) to see what
# the client really sent. Consumer groups are checked with kcat -G and with
# confluent-kafka members sharing a group (interop/groups.py helps kcat);
# the broker runs with group.initial.rebalance.delay.ms=0 so that a group's
# first rebalance does not wait Kafka's default 3 s.
#
# With --cluster (or CLUSTER=3) the same checks run against a three-node
# cluster, three `strata serve` processes (interop/cluster.sh), where every
# topic has three replicas (the checks create them with RF 3, and
# default.replication.factor=3 covers auto-created ones; __consumer_offsets
# has three too) and acks=all needs two in-sync replicas
# (min.insync.replicas=2). The clients bootstrap from all three brokers.
# A check that looks at batches on disk then reads every replica's copy
# and requires all three to hold the same batches; the restart check stops
# and restarts the whole cluster.
#
#   bash interop/run.sh
#   bash interop/run.sh --cluster              # three brokers, RF 3
#   INTEROP_TIMEOUT=300 bash interop/run.sh    # per client call, default 120 s
#   INTEROP_KEEP_LOGS=/tmp/logs bash interop/run.sh   # keep the brokers' logs
#
# Needs: go, kcat, /usr/bin/python3 with Debian's confluent_kafka (test.sh
# installs them). Uses /usr/bin/python3 on purpose: a pyenv python3 first
# on PATH cannot import Debian's module.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=/usr/bin/python3
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in the tree
TIMEOUT=${INTEROP_TIMEOUT:-120}
N=2000 # lines per kcat codec check

cluster=${CLUSTER:-}
case "${1:-}" in
--cluster) cluster=3 ;;
"") ;;
*) echo "usage: run.sh [--cluster]"; exit 2 ;;
esac
[ -z "$cluster" ] || [ "$cluster" = 3 ] || { echo "interop: CLUSTER=$cluster: only 3 nodes are supported"; exit 2; }
# RF is the replication factor of the topics the checks create (groups.py
# and confluent_test.py read it as INTEROP_RF).
RF=1
[ -z "$cluster" ] || RF=3
export INTEROP_RF=$RF

passed=0
failed=0
summary() { echo "interop${cluster:+ (3-node cluster, RF 3)}: $passed passed, $failed failed"; }

work=$(mktemp -d "${TMPDIR:-/tmp}/strata-interop.XXXXXX")
broker_pid=""
# shellcheck source=interop/cluster.sh
source interop/cluster.sh
stop_broker() {
	# SIGTERM, then wait; SIGKILL only if it does not stop in time.
	if [ -n "$cluster" ]; then
		[ "${#CLUSTER_PIDS[@]}" -gt 0 ] || return 0
		stop_cluster
		return
	fi
	[ -n "$broker_pid" ] || return 0
	local pid=$broker_pid rc=0
	broker_pid=""
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 600); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "interop: strata did not stop within 60s of SIGTERM; killing it" >&2
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		return 1
	fi
	wait "$pid" 2>/dev/null || rc=$?
	return "$rc"
}
child="" # the check or client run in progress, stopped first on exit
cleanup() {
	if [ -n "$child" ]; then
		pkill -TERM -P "$child" 2>/dev/null || true
		kill -TERM "$child" 2>/dev/null || true
		wait "$child" 2>/dev/null || true
	fi
	stop_broker || true
	if [ -n "${INTEROP_KEEP_LOGS:-}" ]; then
		mkdir -p "$INTEROP_KEEP_LOGS" && cp "$work"/*.log "$INTEROP_KEEP_LOGS"/ 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

missing=""
command -v go >/dev/null || missing="$missing go"
command -v kcat >/dev/null || missing="$missing kcat"
[ -x "$PY" ] && "$PY" -c 'import confluent_kafka' 2>/dev/null || missing="$missing python3-confluent-kafka"
if [ -n "$missing" ]; then
	echo "interop: missing:$missing (apt-get install -y kcat python3-confluent-kafka; ./test.sh installs them)"
	failed=1
	summary
	exit 1
fi
echo "interop: kcat $(kcat -V 2>&1 | grep -o 'Version [0-9.]*' | head -1 | cut -d' ' -f2)," \
	"python3-confluent-kafka $("$PY" -c 'import confluent_kafka as c; print(c.version()[0], "with librdkafka", c.libversion()[0])')"

echo "interop: building strata"
go build -o "$work/strata" ./cmd/strata

free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_broker starts strata on a free port over $work/data and sets BOOT.
# A port taken between choosing and binding it is retried. Each start logs
# to its own file; broker_logs prints them all, in order.
BOOT=""
starts=0
broker_logs() {
	if [ -n "$cluster" ]; then cluster_logs; else cat "$work"/strata.*.log; fi
}
# DATA_DIRS: every broker's log dir, comma-separated, node 1 first.
DATA_DIRS="$work/data"
start_broker() {
	local port log i
	if [ -n "$cluster" ]; then
		starts=$((starts + 1))
		start_cluster "$work/strata" "$work" --set group.initial.rebalance.delay.ms=0 \
			--set default.replication.factor=3 --set offsets.topic.replication.factor=3 \
			--set min.insync.replicas=2 || { stop_cluster || true; return 1; }
		DATA_DIRS=""
		for i in 1 2 3; do DATA_DIRS="$DATA_DIRS${DATA_DIRS:+,}${NODE_DIR[i]}"; done
		echo "interop: 3-node strata cluster ready at $BOOT"
		return 0
	fi
	for attempt in 1 2 3 4 5; do
		port=$(free_port)
		starts=$((starts + 1))
		log="$work/strata.$starts.log"
		"$work/strata" serve --set "listeners=PLAINTEXT://127.0.0.1:$port" \
			--set "log.dirs=$work/data" --set http.listener=127.0.0.1:0 \
			--set group.initial.rebalance.delay.ms=0 2>"$log" &
		broker_pid=$!
		for _ in $(seq 1 600); do
			if grep -q 'strata ready' "$log"; then
				BOOT=$(grep -m1 'strata ready' "$log" | grep -o 'addr=[^ ]*' | cut -d= -f2)
				echo "interop: strata ready at $BOOT"
				return 0
			fi
			kill -0 "$broker_pid" 2>/dev/null || break
			sleep 0.1
		done
		echo "interop: strata did not start (attempt $attempt):" >&2
		tail -20 "$log" >&2
		stop_broker || true
	done
	return 1
}

# check NAME FUNCTION [ARGS...] runs one check in a subshell with errexit
# on (a function called from an if would run with errexit off), counts it
# and shows its output only when it fails.
check() {
	local name=$1 rc=0 start=$SECONDS
	shift
	(
		set -euo pipefail
		"$@"
	) >"$work/check.out" 2>&1 &
	child=$!
	wait "$child" || rc=$?
	child=""
	if [ "$rc" -eq 0 ]; then
		passed=$((passed + 1))
		echo "ok   $name ($((SECONDS - start))s)"
		grep '^NOTE' "$work/check.out" | sed 's/^/     /' || true
	else
		failed=$((failed + 1))
		echo "FAIL $name ($((SECONDS - start))s, exit $rc)"
		tail -40 "$work/check.out" | sed 's/^/     | /'
	fi
}

kc() { timeout "$TIMEOUT" kcat -b "$BOOT" "$@"; }

# fail MESSAGE ends a check, saying why.
fail() {
	echo "$*"
	return 1
}

# Consumes partition 0 of a topic from the beginning to its end.
consume_all() { kc -C -t "$1" -p 0 -o beginning -e -q "${@:2}"; }

# librdkafka enables LZ4 only if the broker serves FindCoordinator v0 (see
# interop/apiversions.py) and otherwise sends lz4 batches uncompressed.
# strata serves it since it has consumer groups, so -z lz4 must really give
# lz4 batches; without FindCoordinator v0 the lz4 check fails here, by name.
require_lz4() {
	"$PY" interop/apiversions.py "$BOOT" 10 0 || {
		echo "strata does not serve FindCoordinator v0: librdkafka would send lz4 batches uncompressed"
		return 1
	}
}

# --- kcat -------------------------------------------------------------------

kcat_metadata() {
	local i
	echo hello | kc -P -t interop-meta -p 0
	kc -L >"$work/meta.txt"
	cat "$work/meta.txt"
	if [ -z "$cluster" ]; then
		grep -q "^ 1 brokers:" "$work/meta.txt"
		grep -q "broker 1 at $BOOT" "$work/meta.txt"
		grep -q 'topic "interop-meta" with 1 partitions:' "$work/meta.txt"
		grep -q 'partition 0, leader 1, replicas: 1, isrs: 1' "$work/meta.txt"
	else
		grep -q "^ 3 brokers:" "$work/meta.txt" || fail "want 3 brokers"
		for i in 1 2 3; do
			grep -q "broker $i at ${NODE_ADDR[i]}" "$work/meta.txt" || fail "broker $i is not at ${NODE_ADDR[i]}"
		done
		grep -q 'topic "interop-meta" with 1 partitions:' "$work/meta.txt"
		# Auto-created with default.replication.factor=3: three replicas,
		# all in sync, led by one of them.
		local line leader replicas isrs
		line=$(grep -A1 'topic "interop-meta"' "$work/meta.txt" | tail -1)
		leader=$(echo "$line" | sed -n 's/.*leader \([0-9]*\),.*/\1/p')
		replicas=$(echo "$line" | sed -n 's/.*replicas: \([0-9,]*\),.*/\1/p' | tr , '\n' | sort | tr -d '\n')
		isrs=$(echo "$line" | sed -n 's/.*isrs: \([0-9,]*\)$/\1/p' | tr , '\n' | sort | tr -d '\n')
		[ "$replicas" = 123 ] && [ "$isrs" = 123 ] && [[ "$leader" =~ ^[123]$ ]] ||
			fail "want partition 0 led by one of 3 replicas, all in the ISR: $line"
	fi
	[ "$(consume_all interop-meta)" = hello ]
}

kcat_codec() {
	local codec=$1 topic="interop-kcat-$1"
	# Compressible lines of many lengths, with UTF-8, each long and
	# repetitive enough that every codec shrinks even a batch of one line:
	# librdkafka sends a batch uncompressed when compressing does not help,
	# and kcat's first batch can be a single short line (seen with lz4).
	"$PY" -c '
import sys
codec, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    print("%s %06d %s" % (codec, i, ("payload-\u00e9\u4e2d " * (10 + i % 37)) + "end"))
' "$codec" "$N" >"$work/$codec.in"
	[ "$codec" != lz4 ] || require_lz4
	kc -P -t "$topic" -p 0 -z "$codec" <"$work/$codec.in"
	consume_all "$topic" >"$work/$codec.out"
	echo "produced $(wc -l <"$work/$codec.in") lines, consumed $(wc -l <"$work/$codec.out")"
	[ "$(wc -l <"$work/$codec.in")" -eq "$N" ]
	cmp "$work/$codec.in" "$work/$codec.out"
	# Offsets 0..N-1, each with its line.
	consume_all "$topic" -f '%o %s\n' >"$work/$codec.offsets"
	awk '{ print NR - 1 " " $0 }' "$work/$codec.in" | cmp - "$work/$codec.offsets"
	# The batches on disk carry the codec kcat really sent: all of them.
	# On a cluster: every replica's copy, all holding the same batches.
	"$PY" interop/segments.py codecs "$DATA_DIRS" "$topic" 0 "$RF" >"$work/$codec.disk"
	sort "$work/$codec.disk" | uniq -c >"$work/$codec.codecs"
	cat "$work/$codec.codecs"
	[ "$(awk '{ print $2 }' "$work/$codec.codecs")" = "$codec" ]
	[ "$codec" != lz4 ] || echo "NOTE: kcat -z lz4: $(awk '{ print $1 }' "$work/$codec.codecs") batches on disk, all lz4"
}

kcat_offsets() {
	local topic=interop-kcat-none
	consume_all_from() { kc -C -t "$topic" -p 0 -o "$1" -e -q; }
	consume_all_from 1500 | cmp - <(tail -n +1501 "$work/none.in")
	consume_all_from -10 | cmp - <(tail -n 10 "$work/none.in")
	consume_all_from end | cmp - /dev/null
	# -c caps the count.
	kc -C -t "$topic" -p 0 -o 100 -c 5 -q | cmp - <(sed -n 101,105p "$work/none.in")
}

kcat_keys_and_headers() {
	local topic=interop-kcat-keys
	{
		for i in $(seq 0 499); do echo "key-$i:value-$i"; done
		echo 'k:value:with:colons'
		echo ':value with an empty key'
		echo 'key with spaces:v'
	} >"$work/keys.in"
	kc -P -t "$topic" -p 0 -K: -H trace=abc -H n=1 <"$work/keys.in"
	consume_all "$topic" -K: >"$work/keys.out"
	echo "produced $(wc -l <"$work/keys.in"), consumed $(wc -l <"$work/keys.out")"
	cmp "$work/keys.in" "$work/keys.out"
	kc -C -t "$topic" -p 0 -o beginning -c 3 -q -f '%k|%h|%s\n' >"$work/keys.fmt"
	printf '%s\n' 'key-0|trace=abc,n=1|value-0' 'key-1|trace=abc,n=1|value-1' \
		'key-2|trace=abc,n=1|value-2' | cmp - "$work/keys.fmt"
}

kcat_query_timestamps() {
	local topic=interop-kcat-ts base
	base=$(($(date +%s) * 1000 - 86400000)) # a day ago, within retention
	# Batches: [b, b+1000, b+2000] [b+10000] [b+20000, b+20000 (dup), b+25000]
	"$PY" interop/produce_timestamps.py "$BOOT" "$topic" 0 \
		$base +$((base + 1000)) +$((base + 2000)) $((base + 10000)) \
		$((base + 20000)) +$((base + 20000)) +$((base + 25000))
	local cases=(
		"$((base - 5000)) 0"  # before everything: the first offset
		"$base 0"             # exact first
		"$((base + 1)) 1"     # inside the first batch
		"$((base + 2000)) 2"  # last of the first batch
		"$((base + 2001)) 3"  # between batches: the next batch
		"$((base + 10000)) 3" # a batch of one
		"$((base + 20000)) 4" # first of two equal timestamps
		"$((base + 20001)) 6" # inside the last batch
		"$((base + 25000)) 6" # exact last
		"$((base + 25001)) -1" # after everything: none
	)
	local c ts want got
	for c in "${cases[@]}"; do
		read -r ts want <<<"$c"
		got=$(kc -Q -t "$topic:0:$ts")
		echo "base+$((ts - base)): $got (want offset $want)"
		[ "$got" = "$topic [0] offset $want" ]
	done
	# The records are there with those timestamps.
	consume_all "$topic" -f '%o %T %s\n' >"$work/ts.out"
	cat "$work/ts.out"
	[ "$(wc -l <"$work/ts.out")" -eq 7 ]
	awk '{ if ("ts-" $2 != $3) exit 1 }' "$work/ts.out"
}

# kcat -G: a balanced consumer (JoinGroup, SyncGroup, Heartbeat, OffsetFetch,
# OffsetCommit, LeaveGroup). A first run stops after $k records; kcat -G
# leaves offsets to librdkafka's auto-commit (on by default), which commits
# the offsets of the records handed to kcat when the consumer closes. A
# second run in the same group must start at those offsets and so get
# exactly the other records; a third finds nothing left.
kcat_group() {
	local topic=interop-kcat-group group=interop-kcat-group n=200 k=70 parts=4
	"$PY" interop/groups.py create "$BOOT" "$topic" "$parts"
	for i in $(seq 0 $((n - 1))); do echo "key-$i:value-$i"; done >"$work/group.in"
	kc -P -t "$topic" -K: <"$work/group.in"
	# What the topic holds, read without a group: the reference.
	kc -C -t "$topic" -o beginning -e -q -f '%p %o %k:%s\n' >"$work/group.all"
	[ "$(cut -d' ' -f3- "$work/group.all" | sort)" = "$(sort "$work/group.in")" ] ||
		fail "the topic does not hold what kcat -P produced"
	# Keys spread the records over every partition; nothing committed yet.
	"$PY" interop/groups.py offsets "$BOOT" "$group" "$topic" >"$work/group.off0"
	cat "$work/group.off0"
	[ "$(wc -l <"$work/group.off0")" -eq "$parts" ] || fail "want $parts partitions"
	awk -v n="$n" '$2 != -1 || $3 < 1 { exit 1 } { s += $3 } END { exit s != n }' "$work/group.off0" ||
		fail "want no commits yet, and $n records spread over every partition"

	# No -o: kcat -G would apply it to every assigned partition and so
	# override the committed offsets. A new group starts at the beginning.
	# Shorter long polls only make -e see the ends sooner.
	kcg() {
		kc -G "$group" -X auto.offset.reset=earliest -X fetch.wait.max.ms=100 \
			-q -f '%p %o %k:%s\n' "$topic" "$@"
	}
	kcg -c "$k" >"$work/group.1"
	echo "first run: $(wc -l <"$work/group.1") records"
	[ "$(wc -l <"$work/group.1")" -eq "$k" ] || fail "want $k records from -c $k"
	# Per partition, the first run read a prefix (offsets 0, 1, ...), and the
	# group's committed offset is where that prefix ends; a partition it
	# read nothing from has no commit (-1).
	awk '{ if ($2 != c[$1]++) exit 1 }' "$work/group.1" ||
		fail "the first run did not start each partition at offset 0 and read on in order"
	"$PY" interop/groups.py offsets "$BOOT" "$group" "$topic" >"$work/group.off1"
	cat "$work/group.off1"
	awk 'NR == FNR { c[$1]++; next } $2 != (c[$1] ? c[$1] : -1) { exit 1 }' \
		"$work/group.1" "$work/group.off1" ||
		fail "committed offsets are not where the first run stopped in each partition"

	kcg -e >"$work/group.2"
	echo "second run: $(wc -l <"$work/group.2") records"
	# Together: every record exactly once, with its partition and offset.
	sort "$work/group.1" "$work/group.2" >"$work/group.12"
	if ! sort "$work/group.all" | cmp -s - "$work/group.12"; then
		sort "$work/group.all" | diff - "$work/group.12" | head -20 || true
		fail "the two runs did not read every record exactly once (diff: > read, < not read)"
	fi
	[ "$(wc -l <"$work/group.2")" -eq $((n - k)) ] || fail "want the other $((n - k)) records"
	"$PY" interop/groups.py offsets "$BOOT" "$group" "$topic" >"$work/group.off2"
	cat "$work/group.off2"
	awk '$2 != $3 { exit 1 }' "$work/group.off2" ||
		fail "committed offsets are not the ends of the partitions"

	kcg -e >"$work/group.3"
	cmp "$work/group.3" /dev/null || fail "a third run read records again"
}

# Transactions through librdkafka (interop/transactions.py): commit, abort,
# send_offsets_to_transaction, zombie fencing; a read_committed consumer
# sees each committed record once and no aborted one.
transactions() {
	INTEROP_TIMEOUT=$TIMEOUT INTEROP_RF=$RF "$PY" interop/transactions.py "$BOOT" interop-txn
}

# --- python3-confluent-kafka --------------------------------------------------

confluent() {
	local rc=0 total ran=0 bad=0 status name
	STRATA_BOOTSTRAP=$BOOT STRATA_LOG_DIR="$DATA_DIRS" INTEROP_TIMEOUT=$TIMEOUT \
		timeout $((TIMEOUT * 20)) "$PY" interop/confluent_test.py \
		>"$work/confluent.out" 2>"$work/confluent.err" &
	child=$!
	wait "$child" || rc=$?
	child=""
	total=$(awk '$1 == "interop-check" && $2 == "total" { print $3 }' "$work/confluent.out")
	while read -r _ status name; do
		[ "$status" = total ] && continue
		ran=$((ran + 1))
		if [ "$status" = ok ]; then
			passed=$((passed + 1))
			echo "ok   confluent $name"
		else
			bad=$((bad + 1))
			failed=$((failed + 1))
			echo "FAIL confluent $name"
		fi
	done < <(grep '^interop-check ' "$work/confluent.out")
	grep -o "NOTE: .*" "$work/confluent.err" | sort -u | sed 's/^/     /' || true
	# Not every test reported, or a failure exit with none failing: count
	# the run itself as failed, so a crash cannot pass as "no failures".
	if [ -z "$total" ] || [ "$ran" -ne "$total" ] || [ "$ran" -eq 0 ] ||
		{ [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; }; then
		failed=$((failed + 1))
		echo "FAIL confluent_test.py: exit $rc, reported $ran of ${total:-?} tests"
	fi
	if [ "$rc" -ne 0 ]; then
		sed 's/^/     | /' "$work/confluent.err" | tail -150
	fi
}

# --- the run --------------------------------------------------------------------

start=$SECONDS
if ! start_broker; then
	failed=$((failed + 1))
	summary
	exit 1
fi

check "kcat -L lists broker and topic" kcat_metadata
for codec in none gzip snappy lz4 zstd; do
	check "kcat produce/consume $N lines -z $codec" kcat_codec "$codec"
done
check "kcat -o offsets (absolute, from end, end, -c)" kcat_offsets
check "kcat keys (-K:) and headers (-H)" kcat_keys_and_headers
check "kcat -Q offsets by timestamp" kcat_query_timestamps
check "kcat -G: a second run in the group gets exactly the rest" kcat_group
check "transactions (confluent-kafka): commit, abort, offsets in a transaction, fencing, read_committed" transactions
confluent

# A clean stop, nothing logged at ERROR, and the data still there after a
# restart on the same log dir.
restart_keeps_data() {
	local i
	if [ -z "$cluster" ]; then
		grep -q 'clean_shutdown=true' "$work/strata.$starts.log"
	else
		for i in 1 2 3; do
			grep -q 'clean_shutdown=true' "${NODE_LOG[i]}" || fail "node $i did not find a clean shutdown"
		done
	fi
	consume_all interop-kcat-zstd | cmp - "$work/zstd.in"
	consume_all interop-kcat-keys -K: | cmp - "$work/keys.in"
	consume_all interop-kcat-ts -f '%o %T %s\n' | cmp - "$work/ts.out"
	# The group's committed offsets too (kept in __consumer_offsets).
	"$PY" interop/groups.py offsets "$BOOT" interop-kcat-group interop-kcat-group |
		cmp - "$work/group.off2"
}
# errors_logged prints the ERROR lines of the brokers' logs. On a cluster
# all three nodes stop at once, and hashicorp/raft logs at ERROR what its
# peers going away does to its connections ("failed to heartbeat to",
# "failed to decode incoming command: transport shutdown"): those, from
# logger=raft after the node logged "shutting down", are shown as a NOTE
# and not counted; any other ERROR is.
errors_logged() {
	local f
	if [ -z "$cluster" ]; then
		broker_logs | grep 'level=ERROR'
		return
	fi
	for f in "$work"/node-*.*.log; do
		awk -v f="$(basename "$f")" '
			/msg="shutting down"/ { stopping = 1 }
			/level=ERROR/ {
				if (stopping && / logger=raft /) { print "NOTE: " f ": raft, while stopping: " $0 > "/dev/stderr" }
				else { print f ": " $0 }
			}' "$f"
	done 2>"$work/raft-stop.notes" | grep .
}
stopped_rc=0
stop_broker || stopped_rc=$?
if [ "$stopped_rc" -eq 0 ] && ! errors_logged; then
	passed=$((passed + 1))
	echo "ok   strata stops cleanly on SIGTERM, no errors logged"
	if [ -s "$work/raft-stop.notes" ]; then
		echo "     NOTE: $(wc -l <"$work/raft-stop.notes") ERROR lines from hashicorp/raft while the nodes stopped, not counted:"
		sed 's/^NOTE: /       /' "$work/raft-stop.notes" | head -5
	fi
else
	failed=$((failed + 1))
	echo "FAIL strata stops cleanly on SIGTERM, no errors logged (exit $stopped_rc)"
fi
if start_broker; then
	check "restart keeps the data (kcat reads it back)" restart_keeps_data
	stop_broker || true
else
	failed=$((failed + 1))
	echo "FAIL restart keeps the data: strata did not start again"
fi

if [ "$failed" -ne 0 ]; then
	echo "--- strata log (last 60 lines)"
	broker_logs | tail -60
fi
echo "interop: took $((SECONDS - start))s"
summary
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
