#!/usr/bin/env bash
# Benchmarks strata against franz-go's kfake (in memory, and discarding),
# a null broker (bench/cmd/nullbroker: the produce ceiling of the client)
# and NATS JetStream on this machine, and prints Markdown tables of
# medians, spreads and same-repetition ratios (docs/BENCHMARKS.md says how
# to read them).
#
#   bench/run.sh                     everything (about 40 minutes)
#   bench/run.sh -only kafka,e2e     some sections: probe, kafka, e2e,
#                                    fsync, compression, nats, startup
#   bench/run.sh -profile DIR        also save strata's pprof profiles
#   bench/run.sh -smoke              tiny counts, one repetition: proves
#                                    the harness works (CI runs this)
#
# Flags go to the bench program (bench/main.go): -reps N, -phase 5s,
# -work DIR, -json FILE, -startup-gib N, -v.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=bench/.bin
mkdir -p "$bin"
echo "== building strata, kfake, nullbroker, nats-server, nats and the bench driver" >&2
go build -o "$bin/strata" ./cmd/strata
(
	cd bench
	go build -o .bin/kfake ./cmd/kfake
	go build -o .bin/nullbroker ./cmd/nullbroker
	go build -o .bin/bench .
	# nats-server and natscli are pinned in bench/go.mod as tools.
	go build -o .bin/ github.com/nats-io/nats-server/v2 github.com/nats-io/natscli/nats
)
exec "$bin/bench" -bin "$bin" "$@"
