#!/bin/bash
# Writes the <proc> trees `memscope system` is tested on (see README.md). Overwrites them.
set -euo pipefail
cd "$(dirname "$0")"

# process DIR PID COMM PPID CMDLINE RSS_KIB PRIVATE_KIB SWAP_KIB
process() {
  local dir=$1/proc/$2
  mkdir -p "$dir"
  printf '%s (%s) S %s %s %s 0 -1 4194304 100 0 0 0 10 5 0 0 20 0 1 0 %s 1000000 100 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0\n' \
    "$2" "$3" "$4" "$4" "$4" "$((5000 + $2))" >"$dir/stat"
  printf '%s %s 100 10 0 %s 0\n' "$(($6 / 4 * 2))" "$(($6 / 4))" "$(($6 / 4))" >"$dir/statm"
  cat >"$dir/smaps_rollup" <<ROLLUP
55d5c1a00000-7ffc3a7f1000 ---p 00000000 00:00 0                          [rollup]
Rss:            $6 kB
Pss:            $7 kB
Shared_Clean:   $(($6 - $7)) kB
Shared_Dirty:   0 kB
Private_Clean:  0 kB
Private_Dirty:  $7 kB
Swap:           $8 kB
SwapPss:        $8 kB
ROLLUP
  printf '%s' "$5" | tr ' ' '\0' >"$dir/cmdline"
  printf '\0' >>"$dir/cmdline"
  : >"$dir/environ"
}

# meminfo DIR TOTAL_KIB AVAILABLE_KIB SWAP_TOTAL_KIB SWAP_FREE_KIB
meminfo() {
  cat >"$1/proc/meminfo" <<MEMINFO
MemTotal:       $2 kB
MemFree:        $(($3 / 2)) kB
MemAvailable:   $3 kB
Buffers:           20480 kB
Cached:         $(($3 / 2)) kB
SwapCached:            0 kB
Shmem:             65536 kB
SwapTotal:      $4 kB
SwapFree:       $5 kB
MEMINFO
}

common() {
  rm -rf "$1"
  mkdir -p "$1/proc/sys/kernel" "$1/proc/sys/vm" "$1/proc/pressure"
  echo 4194304 >"$1/proc/sys/kernel/pid_max"
  echo 0 >"$1/proc/sys/vm/drop_caches"
  echo 0 >"$1/proc/sys/vm/compact_memory"
  printf 'cpu  1000 0 500 8000 500 0 0 0 0 0\ncpu0 1000 0 500 8000 500 0 0 0 0 0\nintr 0\n' \
    >"$1/proc/stat"
  printf 'nr_free_pages 1\npgmajfault 12\noom_kill 0\n' >"$1/proc/vmstat"
}

GIB=$((1024 * 1024))

# healthy: 64 GiB, 48 GiB available (25 % used), 8 GiB swap with 1 GiB used (12.5 %), calm PSI.
common healthy
meminfo healthy $((64 * GIB)) $((48 * GIB)) $((8 * GIB)) $((7 * GIB))
printf 'some avg10=0.10 avg60=0.05 avg300=0.01 total=1000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=10\n' \
  >healthy/proc/pressure/memory
printf 'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/nvme0n1p3                          partition\t%s\t%s\t\t-2\n' \
  $((8 * GIB)) $((1 * GIB)) >healthy/proc/swaps
process healthy 1 systemd 0 "/sbin/init splash" 12288 4096 0
process healthy 2001 python3 1 "python3 train.py --epochs 3" $((6 * GIB + 4096)) $((6 * GIB)) $((768 * 1024))
process healthy 2002 python3 1 "python3 serve.py" $((2 * GIB + 4096)) $((2 * GIB)) 0
process healthy 2003 bash 1 "bash" 8192 8192 $((256 * 1024))
ln -s 2003 healthy/proc/self

# warning: 85 % of memory used, no swap, no PSI, no processes.
common warning
rm -r warning/proc/pressure
meminfo warning $((64 * GIB)) $((64 * GIB * 15 / 100)) 0 0
printf 'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n' >warning/proc/swaps

# stressed: 64 GiB, 2 GiB available (96.9 % used), 8 GiB swap with 6 GiB used (75 %), PSI high.
common stressed
meminfo stressed $((64 * GIB)) $((2 * GIB)) $((8 * GIB)) $((2 * GIB))
printf 'some avg10=23.50 avg60=12.00 avg300=3.00 total=99999\nfull avg10=7.25 avg60=3.00 avg300=1.00 total=5555\n' \
  >stressed/proc/pressure/memory
printf 'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/nvme0n1p3                          partition\t%s\t%s\t\t-2\n/swapfile                               file\t\t%s\t%s\t\t-3\n' \
  $((4 * GIB)) $((4 * GIB)) $((4 * GIB)) $((2 * GIB)) >stressed/proc/swaps
process stressed 1 systemd 0 "/sbin/init splash" 12288 4096 0
process stressed 2001 python3 1 "python3 train.py --epochs 3" $((40 * GIB)) $((40 * GIB - 4096)) $((5 * GIB))
process stressed 2002 python3 1 "python3 serve.py" $((20 * GIB)) $((20 * GIB - 4096)) $((1 * GIB))
process stressed 2003 bash 1 "bash" 8192 8192 0
ln -s 2003 stressed/proc/self
