#!/bin/bash
# Captures a small <proc> and <sys> tree from this machine for the collectors' tests:
#   tests/data/linux/capture.sh [OUT_DIR]      (default: tests/data/linux/this-machine)
# What it copies, and why it copies it this way, is in README.md beside it. After a new capture
# the numbers in src/collect/linux/*_test.cpp that name this-machine must follow: the summary
# printed at the end has them.
set -euo pipefail

out=${1:-$(cd "$(dirname "$0")" && pwd)/this-machine}
rm -rf "$out"
mkdir -p "$out/proc" "$out/sys"

# Processes to capture: this shell, a sleeping child started with the rank variables a torchrun
# worker has, and (where python3 exists) a child holding 32 MiB of private memory.
env -i PATH=/usr/bin:/bin LANG=C.UTF-8 RANK=0 LOCAL_RANK=0 WORLD_SIZE=2 sleep 600 &
sleeper=$!
pids=("$$" "$sleeper")
if command -v python3 >/dev/null; then
  python3 -c 'import time; block = bytearray(32 << 20); time.sleep(600)' &
  pids+=("$!")
fi
trap 'kill "${pids[@]:1}" 2>/dev/null || true' EXIT
sleep 0.5  # let the children exec and touch their memory

# procfs reports most sizes as 0 and generates content on read: `cp` may copy nothing, so cat.
copy() {
  if [[ -r $1 ]] && cat "$1" >"$2" 2>/dev/null; then return 0; fi
  rm -f "$2"
}

copy /proc/meminfo "$out/proc/meminfo"
copy /proc/vmstat "$out/proc/vmstat"
if [[ -e /proc/pressure/memory ]]; then
  mkdir -p "$out/proc/pressure"
  copy /proc/pressure/memory "$out/proc/pressure/memory"
fi

for pid in "${pids[@]}"; do
  dir=$out/proc/$pid
  mkdir -p "$dir"
  for file in stat statm smaps_rollup cmdline cgroup; do copy "/proc/$pid/$file" "$dir/$file"; done
  # environ is sanitised: only LANG, SHELL, TERM and the rank variables survive.
  tr '\0' '\n' <"/proc/$pid/environ" |
    grep -E '^(LANG|SHELL|TERM|RANK|LOCAL_RANK|WORLD_SIZE)=' | tr '\n' '\0' >"$dir/environ" || true
done
ln -s "$$" "$out/proc/self"

# The memory cgroup of this shell and its ancestors up to the mount root: v1 if the memory
# controller has a v1 line, else v2 (at /sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrids).
v1_path=$(awk -F: '{ n = split($2, c, ","); for (i = 1; i <= n; i++) if (c[i] == "memory") print $3 }' \
  "/proc/$$/cgroup" | head -n 1)
v2_path=$(awk -F: '$1 == "0" && $2 == "" { print $3 }' "/proc/$$/cgroup" | head -n 1)
if [[ -n $v1_path ]]; then
  base=/sys/fs/cgroup/memory
  path=$v1_path
  files=(memory.usage_in_bytes memory.limit_in_bytes memory.oom_control memory.failcnt
         memory.memsw.usage_in_bytes)
else
  base=/sys/fs/cgroup
  [[ -e $base/cgroup.controllers ]] || base=/sys/fs/cgroup/unified
  path=${v2_path:-/}
  files=(memory.current memory.max memory.events memory.swap.current)
fi
at=$path
while :; do
  src=$base${at%/}
  dst=$out$src
  mkdir -p "$dst"
  for file in "${files[@]}"; do copy "$src/$file" "$dst/$file"; done
  [[ $at == / ]] && break
  at=$(dirname "$at")
done

if [[ -n $v1_path ]]; then version=v1; else version=v2; fi
echo "captured into $out: pids ${pids[*]} (self -> $$), memory cgroup $version $path"
awk '/^(MemTotal|MemAvailable):/ { print "  " $1 " " $2 " kB" }' "$out/proc/meminfo"
for pid in "${pids[@]}"; do
  printf '  %s statm resident pages: %s\n' "$pid" "$(awk '{ print $2 }' "$out/proc/$pid/statm")"
  awk -v pid="$pid" '/^(Rss|Pss|Private_Clean|Private_Dirty|Swap):/ { printf "    %s %s kB\n", $1, $2 }' \
    "$out/proc/$pid/smaps_rollup" 2>/dev/null || true
done
