#!/usr/bin/env bash
# Runs kmt's benchmarks and prints one table. Numbers are measured in this
# run on this machine; compare ratios from the same run, not absolute values
# across machines.
set -uo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# A failing benchmark package is reported and the others still run: the
# table shows what was measured, and the exit status says something failed.
failed=()
bench() { "$@" | tee -a "$out" >&2 || failed+=("$*"); }
# Loadgen vs a bare franz-go producer on the same embedded brokers, in the
# same run (ratio, CPU ns per record, rate accuracy at half the ceiling): b.N
# is the records per run, so it needs a large fixed N.
bench go test -run '^$' -bench 'LoadgenVsFranz' -benchtime "${LOADGEN_N:-300000}x" -count 1 ./loadgen
# The validator's CPU cost of one checked record without Kafka: decode,
# checksum, padding, tracker (VerifyRecord), and the whole per-record path a
# poll's records take, metrics included (ObserveTarget): ns/op needs many
# records, not one.
bench go test -run '^$' -bench 'VerifyRecord|ObserveTarget' -benchmem -benchtime "${VERIFY_N:-300000}x" -count 1 ./validator
# The loadgen's CPU cost of building one record (wire.Encoder, and
# wire.Append for comparison), at 100 and 1000 bytes.
bench go test -run '^$' -bench 'EncodeRecord' -benchtime "${ENCODE_N:-1000000}x" -count 1 ./internal/check/wire
pkgs=(./loadgen ./validator ./internal/env/wan ./internal/check/intervals ./internal/check/wire)
for p in "${pkgs[@]}"; do
  bench go test -run '^$' -bench . -skip 'LoadgenVsFranz|VerifyRecord|ObserveTarget|EncodeRecord' -benchmem -benchtime "${BENCHTIME:-1x}" -count 1 "$p"
done
# The reference mirror copying a backlog (seconds): what one fetch/write/
# commit round costs, which bounded the ceiling below.
bench go test -run '^$' -bench 'ReferenceBacklog' -benchtime 1x -count 1 ./internal/mirror
# The highest rate the whole embedded setup passes baseline at (minutes).
if [ -z "${SKIP_CEILING:-}" ]; then
  bench go test -run '^$' -bench 'EmbeddedBaselineCeiling' -benchtime 1x -count 1 -timeout 30m ./internal/runner
fi
# kmt's loadgen and validator against Apache Kafka's ProducerPerformance and
# ConsumerPerformance on one real broker, in one run (needs java; the
# distribution is assembled from Maven Central once: make kafka).
if [ -z "${SKIP_APACHE:-}" ]; then
  go test -run '^$' -bench 'VsApacheTools' -benchtime 1x -count 1 -timeout 30m ./internal/env/apachekafka | tee -a "$out" >&2
fi
echo
# Wall-clock ratios on a shared machine mean little without its load.
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
printf '%-48s %16s  %s\n' "benchmark" "value" "unit"
printf '%-48s %16s  %s\n' "---------" "-----" "----"
# Each benchmark line: Name-N iterations v1 unit1 v2 unit2 ...
awk '/^Benchmark/ {
  name=$1; sub(/-[0-9]+$/, "", name)
  for (i = 3; i < NF; i += 2) {
    unit=$(i+1)
    if (unit == "ns/op" || unit == "B/op" || unit == "allocs/op") { if (unit != "ns/op") continue }
    printf "%-48s %16s  %s\n", name, $i, unit
  }
}' "$out"
if [ ${#failed[@]} -gt 0 ]; then
  printf 'FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
