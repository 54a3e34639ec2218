#!/usr/bin/env bash
# The installed C++ library works for a program outside the tree: `cmake --install` the build
# that made $MEMSCOPE_BIN (component dev: libmemscope.a, include/memscope/, the CMake package)
# into a temporary prefix, build examples/ against it with find_package(memscope), run the
# example, and check its report. Only the public headers may be installed: nothing of src/.
#
# Environment (set by ctest): MEMSCOPE_BIN (its directory is the build tree),
# MEMSCOPE_SOURCE_DIR (the repository root).
# Exit status 77: skipped (the build tree or cmake is missing).
set -euo pipefail

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }

command -v cmake >/dev/null 2>&1 || skip "cmake is not installed"
[[ -x "${MEMSCOPE_BIN:-}" ]] || skip "MEMSCOPE_BIN is not an executable: '${MEMSCOPE_BIN:-}'"
build=$(cd "$(dirname "$MEMSCOPE_BIN")" && pwd)
[[ -f "$build/cmake_install.cmake" ]] || skip "$build is not a CMake build tree"
source_dir=${MEMSCOPE_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
[[ -f "$source_dir/examples/CMakeLists.txt" ]] || fail "no examples/ in $source_dir"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/memscope-install-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"

cmake --install "$build" --prefix "$prefix" --component dev >"$tmp/install.log" 2>&1 \
  || fail "cmake --install failed: $(tail -5 "$tmp/install.log")"
libdir=$(dirname "$(find "$prefix" -name libmemscope.a -print -quit)")
[[ -f "$libdir/libmemscope.a" ]] || fail "no libmemscope.a under $prefix"
[[ -f "$libdir/cmake/memscope/memscopeConfig.cmake" ]] || fail "no memscopeConfig.cmake"
[[ -f "$libdir/cmake/memscope/memscopeConfigVersion.cmake" ]] || fail "no memscopeConfigVersion.cmake"

# Only include/memscope/*.hpp, and each of them includes only the standard library and
# memscope/ headers.
[[ -f "$prefix/include/memscope/memscope.hpp" ]] || fail "no include/memscope/memscope.hpp"
leaked=$(cd "$prefix/include" && find . -type f ! -path './memscope/*.hpp')
[[ -z "$leaked" ]] || fail "files outside include/memscope/ were installed: $leaked"
for header in "$prefix"/include/memscope/*.hpp; do
  name=$(basename "$header")
  [[ -f "$source_dir/include/memscope/$name" ]] || fail "$name is not a public header"
  if grep -E '^\s*#\s*include\s*"' "$header" | grep -Ev '"memscope/[a-z_]+\.hpp"' ; then
    fail "$name includes a header that is not public (above)"
  fi
done

generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
cmake -S "$source_dir/examples" -B "$tmp/examples" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" >"$tmp/configure.log" 2>&1 \
  || fail "configuring examples/ against $prefix failed: $(tail -20 "$tmp/configure.log")"
grep -q "memscope_DIR:PATH=$prefix" "$tmp/examples/CMakeCache.txt" \
  || fail "find_package(memscope) did not find the installed package: $(grep memscope_DIR "$tmp/examples/CMakeCache.txt")"
cmake --build "$tmp/examples" -j1 >"$tmp/build.log" 2>&1 \
  || fail "building examples/ failed: $(tail -30 "$tmp/build.log")"
# The package points at the prefix only, never at the source or build tree.
if grep -qs -e "$source_dir" -e "$build" "$libdir"/cmake/memscope/*.cmake; then
  fail "the installed package refers to the source or build tree: $(grep -h -e "$source_dir" -e "$build" "$libdir"/cmake/memscope/*.cmake | head -3)"
fi

report="$tmp/report.json"
"$tmp/examples/profile_training_loop" "$report" 30 >"$tmp/run.out" 2>"$tmp/run.err" \
  || fail "the example failed: $(cat "$tmp/run.err")"
[[ -s "$report" ]] || fail "the example wrote no report"
python3 - "$report" <<'PY' || fail "the report is not the profile document it should be"
import json, sys
report = json.load(open(sys.argv[1]))
assert report["report"] == "memscope-profile", report.get("report")
assert report["num_samples"] >= 1, report["num_samples"]
counters = report["counters"]
assert counters["batch_size"]["count"] >= 1, counters.keys()
assert counters["step"]["count"] >= 1, counters.keys()
PY
echo "ok: installed into $prefix, built and ran the example: $(head -1 "$tmp/run.out")"
