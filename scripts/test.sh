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
find src -name '*.cpp' ! -name '*_test.cpp' -print0 |
  xargs -0 -P "$jobs" -n 8 clang-tidy-14 -p build/release --quiet

echo "== clang 14 build + unit tests"
cmake --preset clang >/dev/null
cmake --build --preset clang -j "$jobs"
ctest --preset clang -j "$jobs" -L unit

echo "== AddressSanitizer + UBSan build + unit and end-to-end tests"
cmake --preset asan >/dev/null
cmake --build --preset asan -j "$jobs"
ctest --preset asan -j "$jobs" -LE script
