#!/usr/bin/env bash
# Fuzzes kbindex's on-disk readers with libFuzzer + AddressSanitizer (not part of CI).
#
#   scripts/fuzz.sh segment SECONDS    SegmentReader(path:) + every accessor + verify()
#   scripts/fuzz.sh manifest SECONDS   Manifest.read(from:)
#
# Builds Fuzz/ (its own package, depending on this one) with -sanitize=fuzzer,address, writes
# a seed corpus of valid segments or manifests into Fuzz/corpus/TARGET (every run, so the seeds
# follow the writer; the fuzz binary writes them itself when KBINDEX_FUZZ_SEEDS is set), then runs libFuzzer for SECONDS
# over that corpus (new inputs are added to it), with Fuzz/TARGET.dict. Inputs that crash,
# trap, leak or run out of memory are saved under Fuzz/crashes/TARGET/; reproduce one with
#   Fuzz/.build/debug/fuzz-TARGET Fuzz/crashes/TARGET/crash-…
# Ends by printing the executions, exec/s, cov/ft (from libFuzzer's last status line), the
# corpus size and the crash files. The exit status is libFuzzer's (0 when nothing was found).
# On a shared machine run it as `nice -n 19 scripts/fuzz.sh segment 1800`.
set -euo pipefail
target=${1:?usage: scripts/fuzz.sh segment|manifest SECONDS}
seconds=${2:?usage: scripts/fuzz.sh segment|manifest SECONDS}
case "$target" in segment|manifest) ;; *) echo "error: TARGET is segment or manifest, not '$target'" >&2; exit 2 ;; esac
cd "$(dirname "$0")/../Fuzz"

flags=(-c debug -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library)
echo "== building fuzz-$target"
swift build "${flags[@]}" --product "fuzz-$target"
bin="$(swift build "${flags[@]}" --show-bin-path)/fuzz-$target"

corpus="corpus/$target" crashes="crashes/$target"
mkdir -p "$corpus" "$crashes"
# The seeds are (re)written every run, so the corpus always holds files in the format the
# current writer produces (e.g. with sections added since the corpus was started).
echo "== writing seeds into Fuzz/$corpus"
KBINDEX_FUZZ_SEEDS="$corpus" "$bin"

log="$(mktemp "${TMPDIR:-/tmp}/kbindex-fuzz-$target.XXXXXX")"
trap 'rm -f "$log"' EXIT
echo "== fuzzing fuzz-$target for $seconds s ($(ls "$corpus" | wc -l) inputs in the corpus)"
set +e
"$bin" "$corpus" \
  -max_total_time="$seconds" -print_final_stats=1 -dict="$target.dict" \
  -artifact_prefix="$crashes/" -timeout=30 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

last=$(grep -E '^#[0-9]+[[:space:]].*cov: ' "$log" | tail -n 1 || true)
stat() { grep -E "^stat::$1:" "$log" | tail -n 1 | awk '{print $2}'; }
echo "== fuzz-$target summary"
echo "executions: $(stat number_of_executed_units)"
echo "exec/s: $(stat average_exec_per_sec)"
echo "cov: $(echo "$last" | sed -nE 's/.*cov: ([0-9]+).*/\1/p')  ft: $(echo "$last" | sed -nE 's/.*ft: ([0-9]+).*/\1/p')"
echo "last status line: $last"
echo "corpus: $(ls "$corpus" | wc -l) inputs in Fuzz/$corpus"
# crash-, leak-, oom-, timeout- files are findings; slow-unit- files only mean one input took
# over 10 s of wall time once (on a loaded machine, often the machine, not the input).
echo "findings in Fuzz/$crashes: $(ls "$crashes" | grep -cvE '^slow-unit-' || true)"
echo "slow units in Fuzz/$crashes: $(ls "$crashes" | grep -cE '^slow-unit-' || true)"
ls "$crashes" | sed 's/^/  /'
echo "libFuzzer exit status: $status"
exit "$status"
