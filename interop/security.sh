#!/usr/bin/env bash
# Security interop checks: librdkafka clients (Debian's kcat and
# python3-confluent-kafka) against one strata broker over TLS, mutual TLS,
# SASL_SSL and SASL_PLAINTEXT.
#
# Makes a CA, a broker certificate and a client certificate with openssl,
# starts strata with five listeners (PLAINTEXT for set-up, SSL, MTLS: SSL
# with ssl.client.auth=required, SASL_SSL and SASL_PLAINTEXT), creates SCRAM
# users with `strata user create`, then checks that each client gets in
# with the right credentials, reads back exactly what it wrote, and is
# refused with the wrong ones. Prints "security interop: N passed, M
# failed" last.
#
#   bash interop/security.sh
#   INTEROP_TIMEOUT=300 bash interop/security.sh   # per client call, default 60 s
set -euo pipefail
cd "$(dirname "$0")/.."

PY=/usr/bin/python3
export PYTHONDONTWRITEBYTECODE=1
TIMEOUT=${INTEROP_TIMEOUT:-60}

passed=0
failed=0
summary() { echo "security interop: $passed passed, $failed failed"; }

work=$(mktemp -d "${TMPDIR:-/tmp}/strata-security.XXXXXX")
broker_pid=""
cleanup() {
	if [ -n "$broker_pid" ]; then
		kill -TERM "$broker_pid" 2>/dev/null || true
		for _ in $(seq 1 300); do
			kill -0 "$broker_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$broker_pid" 2>/dev/null || true
		wait "$broker_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for cmd in go kcat openssl; do
	command -v "$cmd" >/dev/null || { echo "security interop: $cmd is missing"; failed=1; summary; exit 1; }
done
"$PY" -c 'import confluent_kafka' 2>/dev/null || { echo "security interop: python3-confluent-kafka is missing"; failed=1; summary; exit 1; }

echo "security interop: building strata"
go build -o "$work/strata" ./cmd/strata

# A CA, the broker's certificate for 127.0.0.1, and alice's client
# certificate. The broker's key is an encrypted PKCS#8 key, as operators
# are told to keep it.
pki="$work/pki"
mkdir -p "$pki"
(
	cd "$pki"
	openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=strata-interop-ca" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -keyout broker.key -out broker.csr -subj "/CN=localhost" 2>/dev/null
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >broker.ext
	openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out broker.crt -days 2 -extfile broker.ext 2>/dev/null
	openssl pkcs8 -topk8 -v2 aes-256-cbc -in broker.key -out broker.enc.key -passout pass:keypass
	cat broker.enc.key broker.crt >broker.pem
	openssl req -newkey rsa:2048 -nodes -keyout alice.key -out alice.csr -subj "/CN=alice/OU=eng/O=acme" 2>/dev/null
	openssl x509 -req -in alice.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out alice.crt -days 2 2>/dev/null
)

free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_broker() {
	local log="$work/strata.log"
	PLAIN_PORT=$(free_port)
	SSL_PORT=$(free_port)
	MTLS_PORT=$(free_port)
	SASL_SSL_PORT=$(free_port)
	SASL_PORT=$(free_port)
	"$work/strata" serve \
		--set "listeners=PLAINTEXT://127.0.0.1:$PLAIN_PORT,SSL://127.0.0.1:$SSL_PORT,MTLS://127.0.0.1:$MTLS_PORT,SASL_SSL://127.0.0.1:$SASL_SSL_PORT,SASL_PLAINTEXT://127.0.0.1:$SASL_PORT" \
		--set "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,MTLS:SSL,SASL_SSL:SASL_SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT" \
		--set inter.broker.listener.name=PLAINTEXT \
		--set "ssl.keystore.location=$pki/broker.pem" --set ssl.key.password=keypass \
		--set "ssl.truststore.location=$pki/ca.pem" \
		--set listener.name.mtls.ssl.client.auth=required \
		--set 'ssl.principal.mapping.rules=RULE:^CN=([^,]*),.*$/$1/,DEFAULT' \
		--set sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512 \
		--set "log.dirs=$work/data" --set http.listener=127.0.0.1:0 \
		--set group.initial.rebalance.delay.ms=0 2>"$log" &
	broker_pid=$!
	for _ in $(seq 1 600); do
		grep -q 'strata ready' "$log" && return 0
		kill -0 "$broker_pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "security interop: strata did not start:" >&2
	tail -30 "$log" >&2
	return 1
}

check() {
	local name=$1 rc=0 start=$SECONDS
	shift
	(
		set -euo pipefail
		"$@"
	) >"$work/check.out" 2>&1 || rc=$?
	if [ "$rc" -eq 0 ]; then
		passed=$((passed + 1))
		echo "ok   $name ($((SECONDS - start))s)"
	else
		failed=$((failed + 1))
		echo "FAIL $name ($((SECONDS - start))s, exit $rc)"
		tail -30 "$work/check.out" | sed 's/^/     | /'
	fi
}

fail() {
	echo "$*"
	return 1
}

if ! start_broker; then
	failed=1
	summary
	exit 1
fi
echo "security interop: strata ready; PLAINTEXT $PLAIN_PORT, SSL $SSL_PORT, MTLS $MTLS_PORT, SASL_SSL $SASL_SSL_PORT, SASL_PLAINTEXT $SASL_PORT"

cli() { timeout "$TIMEOUT" "$work/strata" --bootstrap "127.0.0.1:$PLAIN_PORT" "$@"; }
# Users are made on the PLAINTEXT listener, before any SASL client needs them.
cli user create alice --mechanism SCRAM-SHA-512 --password alice-secret >/dev/null
cli user create alice --mechanism SCRAM-SHA-256 --password alice-secret >/dev/null
cli user create bob --mechanism SCRAM-SHA-256 --password bob-secret >/dev/null

TLS=(-X "ssl.ca.location=$pki/ca.pem")
MTLS=("${TLS[@]}" -X "ssl.certificate.location=$pki/alice.crt" -X "ssl.key.location=$pki/alice.key")

# roundtrip PORT TOPIC KCAT-ARGS...: produces 500 distinct lines with kcat
# over the listener on PORT (the topic is made on the PLAINTEXT listener)
# and consumes them back over the same listener, line for line.
roundtrip() {
	local port=$1 topic=$2
	shift 2
	cli topic create "$topic" --partitions 1 >/dev/null
	seq -f "$topic-%g" 1 500 >"$work/$topic.in"
	timeout "$TIMEOUT" kcat -b "127.0.0.1:$port" "$@" -P -t "$topic" -p 0 -X acks=all "$work/$topic.in"
	timeout "$TIMEOUT" kcat -b "127.0.0.1:$port" "$@" -C -t "$topic" -p 0 -o beginning -c 500 -e -q -f '%s\n' >"$work/$topic.raw"
	# kcat ends its output with an empty line; no value written is empty.
	grep -v '^$' "$work/$topic.raw" >"$work/$topic.out" || true
	if ! cmp -s "$work/$topic.in" "$work/$topic.out"; then
		diff "$work/$topic.in" "$work/$topic.out" | head -20
		fail "read back differs from what was written"
	fi
}

# refused PORT KCAT-ARGS...: a metadata request over the listener on PORT
# must fail (kcat -L exits non-zero when it cannot get metadata).
refused() {
	local port=$1
	shift
	if timeout "$TIMEOUT" kcat -b "127.0.0.1:$port" "$@" -L -m 5 >"$work/refused.out" 2>&1; then
		cat "$work/refused.out"
		fail "the client got in"
	fi
	cat "$work/refused.out"
}

check "kcat over SSL: produce and consume 500 lines" roundtrip "$SSL_PORT" sec-ssl -X security.protocol=ssl "${TLS[@]}"
check "kcat over SSL: a CA that did not sign the broker's certificate is refused" \
	refused "$SSL_PORT" -X security.protocol=ssl -X "ssl.ca.location=$pki/alice.crt"
check "kcat over mutual TLS with alice's certificate: produce and consume" roundtrip "$MTLS_PORT" sec-mtls -X security.protocol=ssl "${MTLS[@]}"
check "kcat over mutual TLS without a client certificate is refused" refused "$MTLS_PORT" -X security.protocol=ssl "${TLS[@]}"
check "kcat over SASL_SSL with SCRAM-SHA-512: produce and consume" roundtrip "$SASL_SSL_PORT" sec-scram512 \
	-X security.protocol=sasl_ssl "${TLS[@]}" -X sasl.mechanisms=SCRAM-SHA-512 -X sasl.username=alice -X sasl.password=alice-secret
check "kcat over SASL_SSL with PLAIN (checked against SCRAM credentials): produce and consume" roundtrip "$SASL_SSL_PORT" sec-plain \
	-X security.protocol=sasl_ssl "${TLS[@]}" -X sasl.mechanisms=PLAIN -X sasl.username=bob -X sasl.password=bob-secret
check "kcat over SASL_PLAINTEXT with SCRAM-SHA-256: produce and consume" roundtrip "$SASL_PORT" sec-scram256 \
	-X security.protocol=sasl_plaintext -X sasl.mechanisms=SCRAM-SHA-256 -X sasl.username=alice -X sasl.password=alice-secret
check "kcat with a wrong SCRAM-SHA-512 password is refused" refused "$SASL_SSL_PORT" \
	-X security.protocol=sasl_ssl "${TLS[@]}" -X sasl.mechanisms=SCRAM-SHA-512 -X sasl.username=alice -X sasl.password=wrong
check "kcat with a wrong PLAIN password is refused" refused "$SASL_PORT" \
	-X security.protocol=sasl_plaintext -X sasl.mechanisms=PLAIN -X sasl.username=bob -X sasl.password=wrong
check "kcat as an unknown SCRAM user is refused" refused "$SASL_PORT" \
	-X security.protocol=sasl_plaintext -X sasl.mechanisms=SCRAM-SHA-256 -X sasl.username=mallory -X sasl.password=x
check "kcat without SASL on a SASL listener is refused" refused "$SASL_PORT" -X security.protocol=plaintext
check "kcat with plaintext on a TLS listener is refused" refused "$SSL_PORT" -X security.protocol=plaintext

pyclient() {
	timeout "$TIMEOUT" "$PY" - "$@" <<'EOF'
import sys
from confluent_kafka import Consumer, Producer, KafkaException

port, topic, mech, user, password, ca = sys.argv[1:7]
conf = {
    "bootstrap.servers": "127.0.0.1:" + port,
    "security.protocol": "SASL_SSL",
    "sasl.mechanisms": mech,
    "sasl.username": user,
    "sasl.password": password,
    "ssl.ca.location": ca,
}
p = Producer(dict(conf, **{"acks": "all", "enable.idempotence": True}))
sent = [("%s-%d" % (topic, i)).encode() for i in range(300)]
errors = []
for v in sent:
    p.produce(topic, v, key=v, on_delivery=lambda err, msg: err and errors.append(err))
p.flush(30)
if errors:
    sys.exit("delivery failed: %s" % errors[:3])
c = Consumer(dict(conf, **{"group.id": "sec-" + topic, "auto.offset.reset": "earliest", "enable.auto.commit": False}))
c.subscribe([topic])
got = []
while len(got) < len(sent):
    m = c.poll(10)
    if m is None:
        sys.exit("read %d of %d" % (len(got), len(sent)))
    if m.error():
        raise KafkaException(m.error())
    got.append(m.value())
c.commit(asynchronous=False)
c.close()
if sorted(got) != sorted(sent):
    sys.exit("read back differs")
print("read", len(got))
EOF
}

check "confluent-kafka over SASL_SSL SCRAM-SHA-512: idempotent produce, group consume and commit" \
	pyclient "$SASL_SSL_PORT" sec-py512 SCRAM-SHA-512 alice alice-secret "$pki/ca.pem"
pywrong() {
	timeout "$TIMEOUT" "$PY" - "$@" <<'EOF'
import sys
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

port, ca = sys.argv[1:3]
a = AdminClient({
    "bootstrap.servers": "127.0.0.1:" + port,
    "security.protocol": "SASL_SSL",
    "sasl.mechanisms": "SCRAM-SHA-512",
    "sasl.username": "alice",
    "sasl.password": "wrong",
    "ssl.ca.location": ca,
})
try:
    a.list_topics(timeout=10)
except KafkaException as e:
    err = e.args[0]
    print("refused:", err)
    # librdkafka reports the broker's SASL_AUTHENTICATION_FAILED as
    # _AUTHENTICATION, or as a timeout once it gave up on the broker.
    if err.code() in (KafkaError._AUTHENTICATION, KafkaError._TRANSPORT, KafkaError._TIMED_OUT, KafkaError._ALL_BROKERS_DOWN):
        sys.exit(0)
    sys.exit("unexpected error %s" % err)
sys.exit("the client got metadata with a wrong password")
EOF
}
check "confluent-kafka over SASL_SSL with a wrong password is refused" pywrong "$SASL_SSL_PORT" "$pki/ca.pem"
summary
[ "$failed" -eq 0 ]
