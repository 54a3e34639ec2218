#!/usr/bin/env bash
# README command 2 (and CI): install what is missing, then build with g++ and run every test;
# build with clang 14; build with AddressSanitizer + UBSan and run the unit and end-to-end
# tests again under it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

jobs=$(nproc)
echo "== g++ release build + all tests"
cmake --preset release >/dev/null
cmake --build --preset release -j "$jobs"
ctest --preset release -j "$jobs"

echo "== clang-tidy (.clang-tidy: its checks are errors)"
find src python/src examples -name '*.cpp' ! -name '*_test.cpp' -print0 |
  xargs -0 -P "$jobs" -n 8 clang-tidy-14 -p build/release --quiet

echo "== clang 14 build + unit tests"
cmake --preset clang >/dev/null
cmake --build --preset clang -j "$jobs"
ctest --preset clang -j "$jobs" -L unit

echo "== fuzzing the parsers of untrusted input (30 s each, from tests/fuzz/corpus)"
for fuzzer in procfs_parsers session_reader trace_csv alloc_trace pickle http_request; do
  work=$(mktemp -d)
  corpus=tests/fuzz/corpus/"${fuzzer%%_*}"
  [ -d tests/fuzz/corpus/"$fuzzer" ] && corpus=tests/fuzz/corpus/"$fuzzer"
  cp "$corpus"/* "$work"/
  if ! (cd "$work" && "$OLDPWD"/build/clang/tests/fuzz_$fuzzer -max_total_time=30 -rss_limit_mb=1024 \
        -print_final_stats=1 . > fuzz.log 2>&1); then
    tail -40 "$work/fuzz.log"
    echo "fuzz_$fuzzer: found an input that crashes (above; the input is in $work)"
    exit 1
  fi
  echo "fuzz_$fuzzer: $(grep -h stat::number_of_executed_units "$work/fuzz.log") without a crash"
  rm -rf "$work"
done

echo "== AddressSanitizer + UBSan build + unit and end-to-end tests"
cmake --preset asan >/dev/null
cmake --build --preset asan -j "$jobs"
ctest --preset asan -j "$jobs" -LE script
