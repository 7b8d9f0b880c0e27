#!/usr/bin/env bash
# Runs the bench module's benchmarks (livectx against its peers on memory,
# bbolt and a real Redis) in interleaved rounds, then prints the Markdown
# table README.md quotes and writes it to bench/RESULTS.md (raw output in
# bench/RESULTS.raw.txt).
#
# Environment:
#   LIVECTX_REDIS_ADDR  Redis server to use (default 127.0.0.1:6379); the
#                       benchmarks write only under a random key prefix and
#                       delete it afterwards. Without a server the Redis rows
#                       read "not measured".
#   ROUNDS              rounds of every benchmark (default 8)
#   BENCHTIME           -benchtime of each benchmark in a round (default 500ms)
#   BENCH               regexp of the benchmarks to run in every round at
#                       BENCHTIME (default mount and event)
#   RECONNECT           regexp of the benchmarks to run for three ops
#                       (-benchtime 3x) in every round (default the mass
#                       reconnect, whose op mounts 10,000 contexts; one op
#                       alone swings with whatever else the machine runs;
#                       empty: skip it)
#   BENCH_NOTE          a sentence for the table's heading (say which Redis
#                       server was used, what else ran on the machine)
#
# About 9 minutes on 2 cores with the defaults (2026-11-30).
set -euo pipefail
cd "$(dirname "$0")"
export PATH="/usr/local/go/bin:$PATH"

rounds=${ROUNDS:-8}
benchtime=${BENCHTIME:-500ms}
bench=${BENCH:-^Benchmark(Mount|Event)$}
reconnect=${RECONNECT-^BenchmarkReconnect$}
addr=${LIVECTX_REDIS_ADDR:-127.0.0.1:6379}
export LIVECTX_REDIS_ADDR=$addr

if ! (exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}") 2>/dev/null; then
	echo "run.sh: warning: no Redis at $addr: the Redis rows will read \"not measured\"" >&2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/bench.test" .
go build -o "$tmp/benchtable" ./cmd/benchtable

echo "== checking that every contender persists its events" >&2
"$tmp/bench.test" -test.run . -test.count=1 >&2

raw=RESULTS.raw.txt
: >"$raw"
for i in $(seq "$rounds"); do
	echo "== round $i of $rounds ($(date -u +%H:%M:%S))" >&2
	"$tmp/bench.test" -test.run '^$' -test.bench "$bench" -test.benchtime "$benchtime" -test.benchmem >>"$raw"
	if [ -n "$reconnect" ]; then
		"$tmp/bench.test" -test.run '^$' -test.bench "$reconnect" -test.benchtime 3x -test.benchmem >>"$raw"
	fi
done
echo "== idle memory" >&2
"$tmp/bench.test" -test.run '^$' -test.bench '^BenchmarkIdleMemory$' -test.benchtime 1x -test.count 3 >>"$raw"

machine="$(nproc) × $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
"$tmp/benchtable" -date "$(date -u +%Y-%m-%d)" -go "$(go env GOVERSION)" -machine "$machine" -note "${BENCH_NOTE:-}" <"$raw" >RESULTS.md
cat RESULTS.md
