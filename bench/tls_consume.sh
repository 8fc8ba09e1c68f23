#!/usr/bin/env bash
# Consume over TLS against PLAINTEXT: one `strata serve` with a PLAINTEXT
# and an SSL listener on one log, a topic of RECORDS x 1 KiB records in one
# partition, then kcat reads it all over each listener in turn, REPS times,
# alternating, then `strata perf consume` (franz-go) does the same.
# Reports wall time and the broker's CPU (utime + stime from
# /proc) per GiB: PLAINTEXT sends with sendfile(2), SSL reads (pread) into
# a pooled buffer and encrypts in crypto/tls.
#
#   bench/tls_consume.sh                  3 repetitions of 1 GiB
#   REPS=1 RECORDS=200000 bench/tls_consume.sh
#
# Needs openssl and kcat. All traffic is on 127.0.0.1; the broker is killed
# at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

REPS=${REPS:-3}
RECORDS=${RECORDS:-1048576}
PLAIN=${PLAIN:-127.0.0.1:39192}
SSL=${SSL:-127.0.0.1:39193}

work=$(mktemp -d "${TMPDIR:-/tmp}/strata-tlsbench.XXXXXX")
pid=
cleanup() {
	[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/strata" ./cmd/strata
cd "$work"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 1 -subj /CN=bench-ca 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout broker.key -out broker.csr -subj /CN=broker 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >ext.cnf
openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out broker.crt -days 1 -extfile ext.cnf 2>/dev/null
cat broker.key broker.crt >broker.pem
cat >server.properties <<EOF
listeners=PLAINTEXT://$PLAIN,SSL://$SSL
log.dirs=$work/data
http.listener=
ssl.keystore.location=$work/broker.pem
EOF
./strata serve --config server.properties >serve.log 2>&1 &
pid=$!
sleep 2
./strata perf produce --bootstrap "$PLAIN" --topic perf --num-records "$RECORDS" --record-size 1024 --partitions 1 >/dev/null

cpu() { awk '{print $14+$15}' "/proc/$pid/stat"; }
tck=$(getconf CLK_TCK)
echo "| round | client | listener | wall s | MiB/s | broker CPU s/GiB |"
echo "| ---: | --- | --- | ---: | ---: | ---: |"
for round in $(seq "$REPS"); do
	for mode in PLAINTEXT SSL; do
		if [ $mode = PLAINTEXT ]; then
			args=(-b "$PLAIN")
		else
			args=(-b "$SSL" -X security.protocol=ssl -X ssl.ca.location=ca.pem)
		fi
		if [ $mode = PLAINTEXT ]; then
			perf=(--bootstrap "$PLAIN")
		else
			perf=(--bootstrap "$SSL" --tls-truststore ca.pem)
		fi
		for client in kcat strata; do
			c0=$(cpu)
			t0=$(date +%s.%N)
			if [ $client = kcat ]; then
				n=$(kcat "${args[@]}" -C -t perf -o beginning -e -q -f '%o\n' | wc -l)
			else
				./strata perf consume "${perf[@]}" --topic perf --num-records "$RECORDS" --report-interval 0 >/dev/null
				n=$RECORDS
			fi
			t1=$(date +%s.%N)
			c1=$(cpu)
			awk -v m=$mode -v cl=$client -v r="$round" -v n="$n" -v t0="$t0" -v t1="$t1" -v c=$((c1 - c0)) -v tck="$tck" \
				'BEGIN{w=t1-t0; gib=n/1048576; printf "| %d | %s | %s | %.2f | %.0f | %.2f |\n", r, cl, m, w, n/1024/w, (c/tck)/gib}'
		done
	done
done
