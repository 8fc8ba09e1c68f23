#!/bin/sh
# Long fault-injection runs against strata serve processes: one, or a
# cluster with --nodes.
#
#   chaos/run.sh                                   # 5 minutes, every nemesis, a random seed
#   chaos/run.sh --seed 7 --duration 30m --nemesis kill,pause
#   chaos/run.sh --nodes 3 --rf 3 --min-insync 2 --nemesis kill,pause,cut,isolate --victims all
#   chaos/run.sh --nodes 3 --rf 3 --min-insync 2 --nemesis diskfull,kill   # a full disk (root: tmpfs per node)
#   chaos/run.sh --set log.flush.interval.messages=1   # fsync mode
#   chaos/run.sh --replay chaos-7.jsonl            # re-check a saved history only
#
# Every flag goes to chaos/cmd/chaos (go run ./chaos/cmd/chaos -h lists
# them). Prints the checker's table; saves the history as JSON lines
# (chaos-<seed>.jsonl unless --history FILE). Exit 1: anomalies; 2: the
# broker crashed or would not restart, or the harness failed.
set -eu
cd "$(dirname "$0")/.."
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -buildvcs=false -o "$bin/strata" ./cmd/strata
go build -buildvcs=false -o "$bin/chaos" ./chaos/cmd/chaos
rc=0
case " $* " in
*" --replay "* | *" -replay "*) "$bin/chaos" "$@" || rc=$? ;;
*) "$bin/chaos" --strata "$bin/strata" --duration 5m --nemesis all "$@" || rc=$? ;;
esac
exit $rc
