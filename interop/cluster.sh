# Sourced by interop/run.sh and interop/franz-go.sh in cluster mode: three
# `strata serve` processes on free 127.0.0.1 ports forming one cluster, as
# users run it (each node a voter of the controller quorum and a broker),
# like bench/replication.sh.
#
#   start_cluster STRATA WORKDIR [--set k=v ...]
#       node i (1..3) keeps its data in WORKDIR/node-i/data and logs to
#       WORKDIR/node-i.N.log (N counts its starts). Waits until every node
#       logged "strata ready" and the cluster lists three unfenced brokers.
#       Sets BOOT (the three addresses, comma-separated), NODE_ADDR[i],
#       NODE_DIR[i] and CLUSTER_PIDS[i].
#   stop_cluster
#       SIGTERM to each node, then waits (SIGKILL after 60 s); returns
#       non-zero if a node had to be killed or exited non-zero.
#   cluster_logs
#       every node's logs, in order, each line prefixed with its node.
#
# The same ports and data dirs are reused when start_cluster runs again
# in the same WORKDIR (a restart).

CLUSTER_N=3
CLUSTER_PIDS=()
NODE_ADDR=()
NODE_DIR=()
NODE_LOG=()
_cluster_ports=()
_cluster_cports=()
_cluster_starts=0

_cluster_free_port() {
	/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_cluster() {
	local bin=$1 dir=$2 i voters listeners n info
	shift 2
	if [ "${#_cluster_ports[@]}" -eq 0 ]; then
		for i in $(seq 1 "$CLUSTER_N"); do
			_cluster_ports[i]=$(_cluster_free_port)
			_cluster_cports[i]=$(_cluster_free_port)
		done
	fi
	voters=""
	for i in $(seq 1 "$CLUSTER_N"); do
		voters="$voters${voters:+,}$i@127.0.0.1:${_cluster_cports[i]}"
	done
	_cluster_starts=$((_cluster_starts + 1))
	BOOT=""
	for i in $(seq 1 "$CLUSTER_N"); do
		NODE_ADDR[i]="127.0.0.1:${_cluster_ports[i]}"
		NODE_DIR[i]="$dir/node-$i/data"
		NODE_LOG[i]="$dir/node-$i.$_cluster_starts.log"
		BOOT="$BOOT${BOOT:+,}${NODE_ADDR[i]}"
		listeners="PLAINTEXT://${NODE_ADDR[i]},CONTROLLER://127.0.0.1:${_cluster_cports[i]}"
		"$bin" serve --set node.id="$i" --set "controller.quorum.voters=$voters" \
			--set "listeners=$listeners" --set "log.dirs=${NODE_DIR[i]}" \
			--set http.listener=127.0.0.1:0 "$@" >"${NODE_LOG[i]}" 2>&1 &
		CLUSTER_PIDS[i]=$!
	done
	for _ in $(seq 1 600); do
		n=0
		for i in $(seq 1 "$CLUSTER_N"); do
			grep -q 'strata ready' "${NODE_LOG[i]}" && n=$((n + 1))
			kill -0 "${CLUSTER_PIDS[i]}" 2>/dev/null || { echo "cluster: node $i exited:" >&2; tail -20 "${NODE_LOG[i]}" >&2; return 1; }
		done
		[ "$n" -eq "$CLUSTER_N" ] && break
		sleep 0.1
	done
	[ "$n" -eq "$CLUSTER_N" ] || { echo "cluster: only $n of $CLUSTER_N nodes ready after 60s" >&2; return 1; }
	# Ready nodes may not all be registered and unfenced yet: a topic with
	# three replicas needs three usable brokers.
	for _ in $(seq 1 300); do
		info=$("$bin" cluster info --bootstrap "$BOOT" --json 2>/dev/null || true)
		if [ -n "$info" ] && /usr/bin/python3 -c '
import json, sys
bs = json.loads(sys.argv[1])["brokers"]
sys.exit(0 if len(bs) == int(sys.argv[2]) and not any(b["fenced"] for b in bs) else 1)
' "$info" "$CLUSTER_N" 2>/dev/null; then
			return 0
		fi
		sleep 0.2
	done
	echo "cluster: brokers not all registered and unfenced after 60s: $info" >&2
	return 1
}

stop_cluster() {
	local i pid rc=0 one
	for i in "${!CLUSTER_PIDS[@]}"; do
		kill -TERM "${CLUSTER_PIDS[i]}" 2>/dev/null || true
	done
	for i in "${!CLUSTER_PIDS[@]}"; do
		pid=${CLUSTER_PIDS[i]}
		for _ in $(seq 1 600); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			echo "cluster: node $i did not stop within 60s of SIGTERM; killing it" >&2
			kill -KILL "$pid" 2>/dev/null || true
			rc=1
		fi
		one=0
		wait "$pid" 2>/dev/null || one=$?
		[ "$one" -eq 0 ] || { echo "cluster: node $i exited $one" >&2; rc=1; }
	done
	CLUSTER_PIDS=()
	return "$rc"
}

cluster_logs() {
	local f
	for f in "${NODE_LOG[@]%.*.log}"; do
		for g in "$f".*.log; do
			[ -e "$g" ] && sed "s|^|$(basename "$f"): |" "$g"
		done
	done
}
