#!/usr/bin/env bash
# Runs franz-go's own integration tests (its kgo package: group consumers
# classic and KIP-848, static members, regex subscriptions, produce and
# consume edge cases from its issue tracker) against a fresh strata broker,
# or with --cluster against a fresh three-node cluster (three `strata serve`
# processes, interop/cluster.sh) where every topic the tests create has
# three replicas (KGO_TEST_RF=3, default.replication.factor=3),
# __consumer_offsets too, and acks=all needs two in-sync replicas
# (min.insync.replicas=2). franz-go is built at the version go.mod pins;
# the tests listed are all but the ones that need share groups, which
# strata lacks (TestTxnEtl is its transactional ETL: GroupTransactSession
# consuming and producing in transactions, read_committed).
#
#   bash interop/franz-go.sh              one broker, KGO_TEST_RF=1
#   bash interop/franz-go.sh --cluster    three brokers, KGO_TEST_RF=3
#   CLUSTER=3 bash interop/franz-go.sh    the same
#   bash interop/franz-go.sh --secure     every client over TLS (KGO_TEST_TLS), plus its SCRAM tests
#                                         (KGO_TEST_SCRAM) on a SASL_PLAINTEXT listener
set -euo pipefail
cd "$(dirname "$0")/.."

cluster=${CLUSTER:-}
secure=""
case "${1:-}" in
--cluster) cluster=3 ;;
--secure) secure=1 ;;
"") ;;
*) echo "usage: franz-go.sh [--cluster|--secure]"; exit 2 ;;
esac
[ -z "$cluster" ] || [ "$cluster" = 3 ] || { echo "franz-go.sh: CLUSTER=$cluster: only 3 nodes are supported"; exit 2; }

tests='TestGroupETL|TestTxnEtl|TestGroupSimple|TestConsumeRegex|Test848RegexBrokerResolves|TestIssue325|TestConsumeTopicRetrieval|TestConsumeTopicRetrieval_Many|TestIssue337|TestDirectPartitionPurge|TestIssue434|TestAddRemovePartitions|TestPauseIssue489|TestPauseIssueOct2023|TestIssue523|TestIssue648|TestIssue810|TestIssue865|TestUnknownGroupOffsetFetchPinned|TestClient_Produce|TestIssue769|TestIssue831|TestClient_ProduceLargeMessages|TestIssueFetchLargerThanBrokerMaxReadBytes|TestPing|TestIssue1034|TestIssue1377'

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

version=$(go list -m -f '{{.Version}}' github.com/twmb/franz-go)
mkdir "$work/mod"
cat > "$work/mod/go.mod" <<MOD
module franzgosuite

go 1.26.0

require github.com/twmb/franz-go $version
MOD
echo 'package franzgosuite' > "$work/mod/x.go"
(cd "$work/mod" && GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 && GOFLAGS=-mod=mod go test -c -o "$work/kgo.test" github.com/twmb/franz-go/pkg/kgo 2>&1 | grep -v "^go: finding module" || true)
[ -x "$work/kgo.test" ] || { echo "franz-go.sh: building franz-go's kgo tests failed"; exit 1; }
go build -o "$work/strata" ./cmd/strata

start=$SECONDS
if [ -n "$cluster" ]; then
	start_cluster "$work/strata" "$work" --set group.initial.rebalance.delay.ms=0 \
		--set default.replication.factor=3 --set offsets.topic.replication.factor=3 \
		--set min.insync.replicas=2
	seeds=$BOOT rf=3 what="a 3-node strata cluster ($seeds), RF 3"
	logs() { cluster_logs; }
elif [ -n "$secure" ]; then
	# Every test client over TLS (KGO_TEST_TLS) on an SSL listener, and
	# franz-go's SCRAM tests (KGO_TEST_SCRAM) on a SASL_PLAINTEXT one
	# (they dial without TLS). A PLAINTEXT listener makes the user.
	free() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
	pport=$(free) sport=$(free) scport=$(free)
	(
		cd "$work"
		openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=kgo-test-ca" 2>/dev/null
		openssl req -newkey rsa:2048 -nodes -keyout broker.key -out broker.csr -subj "/CN=localhost" 2>/dev/null
		printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >broker.ext
		openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out broker.crt -days 2 -extfile broker.ext 2>/dev/null
		cat broker.key broker.crt >broker.pem
	)
	"$work/strata" serve --set "log.dirs=$work/data" \
		--set "listeners=PLAINTEXT://127.0.0.1:$pport,SSL://127.0.0.1:$sport,SASL_PLAINTEXT://127.0.0.1:$scport" \
		--set inter.broker.listener.name=PLAINTEXT --set "ssl.keystore.location=$work/broker.pem" \
		--set group.initial.rebalance.delay.ms=0 --set http.listener=127.0.0.1:0 >"$work/broker.log" 2>&1 &
	broker_pid=$!
	for _ in $(seq 50); do
		grep -q "strata ready" "$work/broker.log" && break
		sleep 0.1
	done
	"$work/strata" --bootstrap "127.0.0.1:$pport" user create kgo --mechanism SCRAM-SHA-512 --password kgo-secret >/dev/null
	export KGO_TEST_TLS="ca:$work/ca.pem" KGO_TEST_SCRAM="kgo:kgo-secret:512" KGO_TEST_SCRAM_SEEDS="127.0.0.1:$scport"
	# TestIssue769 dials through its own Dialer, which kgo refuses
	# together with the TLS config every test client gets here.
	tests="${tests//|TestIssue769/}|TestSCRAMAuth|TestSCRAMAuthBadCredentials"
	seeds="127.0.0.1:$sport" rf=1 what="strata over TLS on 127.0.0.1:$sport (SCRAM-SHA-512 on 127.0.0.1:$scport)"
	logs() { cat "$work/broker.log"; }
else
	port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	"$work/strata" serve --set "log.dirs=$work/data" --set "listeners=PLAINTEXT://127.0.0.1:$port" \
		--set group.initial.rebalance.delay.ms=0 --set http.listener=127.0.0.1:0 >"$work/broker.log" 2>&1 &
	broker_pid=$!
	for _ in $(seq 50); do
		grep -q "strata ready" "$work/broker.log" && break
		sleep 0.1
	done
	seeds="127.0.0.1:$port" rf=1 what="strata on 127.0.0.1:$port"
	logs() { cat "$work/broker.log"; }
fi

echo "franz-go $version kgo integration tests against $what"
if ! (cd "$work" && KGO_SEEDS="$seeds" KGO_TEST_RF=$rf KGO_TEST_RECORDS=20000 KGO_LOG_LEVEL=warn \
	timeout 600 ./kgo.test -test.v -test.run "^($tests)\$" -test.timeout 9m >"$work/tests.log" 2>&1); then
	grep -E -- '^(--- FAIL|FAIL|panic)|_test.go:[0-9]+:' "$work/tests.log" | head -50
	echo "franz-go suite failed; broker log tail:"; logs | tail -40
	[ -z "${KEEP_LOGS:-}" ] || { mkdir -p "$KEEP_LOGS" && cp "$work"/*.log "$KEEP_LOGS"/ && echo "logs kept in $KEEP_LOGS"; }
	exit 1
fi
if [ -n "$cluster" ]; then
	if ! stop_cluster; then
		echo "franz-go suite: the cluster did not stop cleanly; log tail:"; logs | tail -40
		exit 1
	fi
	# The tests really ran on replicated topics: the controller logs each
	# topic it creates with its replication factor.
	rf3=$(logs | grep -c 'msg="created \(internal \)\?topic".* replication_factor=3' || true)
	if [ "$rf3" -eq 0 ] || logs | grep 'msg="created \(internal \)\?topic"' | grep -v ' replication_factor=3'; then
		echo "franz-go suite: want every topic created with 3 replicas ($rf3 were)"
		exit 1
	fi
	echo "franz-go suite: $rf3 topics created, each with 3 replicas"
fi
passed=$(grep -c -- '^--- PASS' "$work/tests.log" || true)
skipped=$(grep -c -- '--- SKIP' "$work/tests.log" || true)
if [ -n "$secure" ] && ! grep -q -- '^--- PASS: TestSCRAMAuth ' "$work/tests.log"; then
	echo "franz-go suite: TestSCRAMAuth did not pass"; exit 1
fi
echo "franz-go suite${cluster:+ (3-node cluster, RF 3)}${secure:+ (TLS, SCRAM)}: PASS ($passed top-level tests passed, $skipped skipped, $((SECONDS - start))s)"
