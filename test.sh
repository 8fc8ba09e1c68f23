#!/usr/bin/env bash
# Runs every check strata has: formatting, vet, the race-enabled test suite
# (crash tests with real SIGKILLs included), and a short run of each fuzz
# target over its committed seed corpus. Installs what the tests need.
#
#   ./test.sh                 everything
#   FUZZTIME=60s ./test.sh    fuzz each target longer (default 10s)
set -euo pipefail
cd "$(dirname "$0")"

command -v go >/dev/null || { echo "test.sh: Go is required (https://go.dev/dl)"; exit 1; }
go mod download

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

echo "== go test -race"
go test -race -count=1 -timeout 20m ./...

echo "== fuzz (${FUZZTIME:-10s} per target)"
for pkg in $(go list ./...); do
	for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "-- $pkg $target"
		go test -run='^$' -fuzz="^${target}\$" -fuzztime="${FUZZTIME:-10s}" "$pkg"
	done
done
