#!/usr/bin/env bash
# kafkajs (the Node.js Kafka client, pinned in interop/kafkajs/package.json)
# against strata: its transactions (interop/kafkajs/transactions.js: commit,
# abort, sendOffsets, zombie fencing, read_committed) on one broker, then
# on a three-node cluster with replication factor 3 (interop/cluster.sh).
#
#   bash interop/kafkajs.sh
#
# Needs node and npm (test.sh installs Debian's nodejs and npm when they
# are missing); `npm ci` fetches kafkajs from the npm registry.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
broker_pid=""
# shellcheck source=interop/cluster.sh
source interop/cluster.sh
cleanup() {
	if [ -n "$broker_pid" ]; then kill "$broker_pid" 2>/dev/null || true; wait "$broker_pid" 2>/dev/null || true; fi
	stop_cluster >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

(cd interop/kafkajs && npm ci --no-audit --no-fund --silent) || { echo "kafkajs.sh: npm ci failed"; exit 1; }
echo "kafkajs $(node -p 'require("./interop/kafkajs/node_modules/kafkajs/package.json").version') on node $(node --version)"
go build -o "$work/strata" ./cmd/strata

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$work/strata" serve --set "log.dirs=$work/data" --set "listeners=PLAINTEXT://127.0.0.1:$port" \
	--set group.initial.rebalance.delay.ms=0 --set http.listener=127.0.0.1:0 >"$work/broker.log" 2>&1 &
broker_pid=$!
for _ in $(seq 50); do
	grep -q "strata ready" "$work/broker.log" && break
	sleep 0.1
done
echo "== one broker (127.0.0.1:$port)"
if ! timeout 300 node interop/kafkajs/transactions.js "127.0.0.1:$port" 1; then
	echo "kafkajs on one broker failed; broker log tail:"; tail -40 "$work/broker.log"
	exit 1
fi
kill "$broker_pid"
wait "$broker_pid" 2>/dev/null || true
broker_pid=""

start_cluster "$work/strata" "$work" --set group.initial.rebalance.delay.ms=0 \
	--set default.replication.factor=3 --set offsets.topic.replication.factor=3 \
	--set min.insync.replicas=2
echo "== a 3-node cluster ($BOOT), RF 3"
if ! timeout 600 node interop/kafkajs/transactions.js "$BOOT" 3; then
	echo "kafkajs on the cluster failed; log tail:"; cluster_logs | tail -60
	exit 1
fi
stop_cluster
echo "kafkajs: PASS"
